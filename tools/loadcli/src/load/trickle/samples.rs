//! The measured handshakes: from an address of their own, which stalls
//! nothing, one full TLS handshake at a time (from the TCP connect to the
//! handshake done), `samples` of them, one every `interval` (or right after
//! the one before, when it took longer). Each completes, fails (refused,
//! reset, an alert) or runs out of `timeout`; a failure or a timeout is
//! counted, not the end of the run.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;

use super::super::{LoadError, Target, connect_from, new_histogram};
use super::stall::Stalls;

/// How long a measured client may take to close (close_notify).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How the handshakes are measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sampling {
    /// The measured client's address.
    pub prober: IpAddr,
    /// Handshakes measured.
    pub samples: usize,
    /// From the start of one to the start of the next, at least.
    pub interval: Duration,
    /// After this, a handshake counts as timed out.
    pub timeout: Duration,
}

/// What the measured handshakes found.
#[derive(Debug)]
pub(crate) struct Samples {
    /// Times of the handshakes that completed, µs.
    pub times: Histogram<u64>,
    pub completed: usize,
    pub failed: usize,
    pub timed_out: usize,
    /// The first failure's error.
    pub first_failure: Option<String>,
    /// The stalled sockets open as each handshake started: the fewest and
    /// the most.
    pub stalled_open: Option<(u64, u64)>,
}

/// How one measured handshake ended.
enum Outcome {
    Completed(Duration),
    Failed(String),
    TimedOut,
}

/// One handshake before anything stalls, not counted: the measured
/// client's first handshake pays one-time costs of its own, and a server
/// that cannot be reached fails the run here.
pub(crate) async fn warm_up(target: &Target, sampling: &Sampling) -> Result<(), LoadError> {
    match handshake(target, sampling).await {
        Outcome::Completed(_) => Ok(()),
        Outcome::Failed(error) => Err(LoadError::Failed(format!(
            "the first handshake from {}, before anything stalled, failed: {error}",
            sampling.prober
        ))),
        Outcome::TimedOut => Err(LoadError::Failed(format!(
            "the first handshake from {}, before anything stalled, took more than {:?}",
            sampling.prober, sampling.timeout
        ))),
    }
}

/// Measures the handshakes, one at a time.
pub(crate) async fn measure(target: &Target, sampling: &Sampling, stalls: &Stalls) -> Samples {
    let mut samples = Samples {
        times: new_histogram(),
        completed: 0,
        failed: 0,
        timed_out: 0,
        first_failure: None,
        stalled_open: None,
    };
    let measured = AtomicU64::new(0);
    let mut ticks = tokio::time::interval(sampling.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    super::super::with_progress("handshakes measured", &measured, async {
        for _ in 0..sampling.samples {
            ticks.tick().await;
            let open = stalls.open.load(Ordering::Relaxed);
            samples.stalled_open = Some(
                samples
                    .stalled_open
                    .map_or((open, open), |(low, high)| (low.min(open), high.max(open))),
            );
            samples.record(handshake(target, sampling).await);
            measured.fetch_add(1, Ordering::Relaxed);
        }
    })
    .await;
    super::super::end_progress();
    samples
}

impl Samples {
    fn record(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Completed(took) => {
                self.completed += 1;
                let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
                let _ = self.times.record(micros.min(self.times.high()));
            }
            Outcome::Failed(error) => {
                self.failed += 1;
                self.first_failure.get_or_insert(error);
            }
            Outcome::TimedOut => self.timed_out += 1,
        }
    }
}

/// One full handshake from the prober, timed from the TCP connect.
async fn handshake(target: &Target, sampling: &Sampling) -> Outcome {
    let started = Instant::now();
    let connecting = async {
        let tcp = connect_from(sampling.prober, target.addr).await?;
        target.handshake(tcp).await
    };
    match tokio::time::timeout(sampling.timeout, connecting).await {
        Ok(Ok(mut stream)) => {
            let took = started.elapsed();
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.shutdown()).await;
            Outcome::Completed(took)
        }
        Ok(Err(error)) => Outcome::Failed(error.to_string()),
        Err(_) => Outcome::TimedOut,
    }
}
