//! `--series`: the curve of a restart. Every [`SAMPLE_EVERY`] the clients
//! connected, the lines due and answered so far, and the handshakes
//! completed; written as CSV with the handshakes per interval, and the
//! report's peak handshake rate taken from it.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::super::LoadError;
use super::shared::{Shared, count};

/// How often the counters are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// One sample of the counters.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    /// Since sending started.
    pub(super) at: Duration,
    pub(super) connected: u64,
    pub(super) due: u64,
    pub(super) answered: u64,
    /// Handshakes completed since the first connections (a running total).
    pub(super) handshakes: u64,
}

/// The `--series` file, created before the run so that a path that cannot
/// be written fails the run before it starts.
pub(super) fn create(path: Option<&Path>) -> Result<Option<std::fs::File>, LoadError> {
    path.map(|path| {
        std::fs::File::create(path).map_err(|err| {
            LoadError::Failed(format!("cannot write --series {}: {err}", path.display()))
        })
    })
    .transpose()
}

/// Writes the samples to the `--series` file.
pub(super) fn write(mut file: std::fs::File, samples: &[Sample]) -> Result<(), LoadError> {
    write_csv(&mut file, samples)
        .map_err(|err| LoadError::Failed(format!("cannot write --series: {err}")))
}

/// Samples the counters every [`SAMPLE_EVERY`] until `finished`, and once
/// more then.
pub(super) async fn sample(shared: &Shared, finished: &AtomicBool) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let at = shared.now();
        samples.push(Sample {
            at,
            connected: count(&shared.connected),
            due: shared.schedule.due_all(at),
            answered: count(&shared.answered),
            handshakes: count(&shared.handshakes),
        });
        if finished.load(Ordering::Relaxed) {
            return samples;
        }
    }
}

/// The most handshakes per second over one sampling interval.
pub(super) fn peak_rate(samples: &[Sample]) -> f64 {
    samples
        .windows(2)
        .map(|pair| {
            let seconds = pair[1].at.saturating_sub(pair[0].at).as_secs_f64();
            let handshakes = pair[1].handshakes.saturating_sub(pair[0].handshakes);
            if seconds > 0.0 {
                handshakes as f64 / seconds
            } else {
                0.0
            }
        })
        .fold(0.0, f64::max)
}

/// The series as CSV: one row per sample, handshakes counted in the
/// interval since the row before.
fn write_csv(out: &mut impl std::io::Write, samples: &[Sample]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    writeln!(out, "seconds,connected,due,answered,handshakes")?;
    let mut before = 0;
    for sample in samples {
        writeln!(
            out,
            "{:.3},{},{},{},{}",
            sample.at.as_secs_f64(),
            sample.connected,
            sample.due,
            sample.answered,
            sample.handshakes - before
        )?;
        before = sample.handshakes;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_counts_handshakes_per_interval() {
        let at = Duration::from_millis;
        let samples = [
            Sample {
                at: at(100),
                connected: 2,
                due: 2,
                answered: 1,
                handshakes: 0,
            },
            Sample {
                at: at(200),
                connected: 0,
                due: 4,
                answered: 1,
                handshakes: 0,
            },
            Sample {
                at: at(300),
                connected: 2,
                due: 6,
                answered: 6,
                handshakes: 2,
            },
        ];
        let mut csv = Vec::new();
        write_csv(&mut csv, &samples).expect("written");
        assert_eq!(
            String::from_utf8(csv).expect("utf-8"),
            "seconds,connected,due,answered,handshakes\n0.100,2,2,1,0\n0.200,0,4,1,0\n0.300,2,6,6,2\n"
        );
        assert!((peak_rate(&samples) - 20.0).abs() < 1e-6);
        assert_eq!(peak_rate(&samples[..1]), 0.0);
    }
}
