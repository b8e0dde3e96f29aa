//! Full TLS handshakes per second: `concurrency` workers connect, complete
//! a full handshake (no resumption), close, and start again, for a while.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::proc::Sample;
use super::{LoadError, Target};

/// What a run measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Report {
    /// Handshakes completed.
    pub handshakes: u64,
    /// Wall-clock time, in seconds.
    pub seconds: f64,
    /// Handshakes per second.
    pub per_second: f64,
    /// Server CPU time per handshake, in microseconds (with `--pid`).
    pub server_cpu_us_per_handshake: Option<f64>,
    /// The key exchange group negotiated.
    pub key_exchange: String,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} full handshakes in {:.2} s: {:.0}/s (key exchange {})",
            self.handshakes, self.seconds, self.per_second, self.key_exchange
        )?;
        if let Some(cpu) = self.server_cpu_us_per_handshake {
            writeln!(f, "server CPU: {cpu:.1} µs per handshake")?;
        }
        Ok(())
    }
}

/// Runs handshakes for `duration` with `concurrency` workers.
pub(crate) async fn run(
    target: &Target,
    concurrency: usize,
    duration: Duration,
    server_pid: Option<u32>,
) -> Result<Report, LoadError> {
    let done = Arc::new(AtomicU64::new(0));
    let group = Arc::new(std::sync::Mutex::new(String::new()));
    let before = server_pid.and_then(Sample::of);
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..concurrency.max(1) {
        let (target, done, group) = (target.clone(), done.clone(), group.clone());
        workers.spawn(async move {
            while Instant::now() < deadline {
                let mut stream = target.connect(worker).await?;
                if let Some(kx) = stream.get_ref().1.negotiated_key_exchange_group()
                    && let Ok(mut name) = group.lock()
                {
                    *name = format!("{:?}", kx.name());
                }
                let _ = stream.shutdown().await;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, LoadError>(())
        });
    }
    super::with_progress("handshakes", &done, async {
        while let Some(result) = workers.join_next().await {
            result.map_err(|err| LoadError::Failed(err.to_string()))??;
        }
        Ok::<_, LoadError>(())
    })
    .await?;
    super::end_progress();
    let seconds = started.elapsed().as_secs_f64();
    let handshakes = done.load(Ordering::Relaxed);
    let after = server_pid.and_then(Sample::of);
    let server_cpu_us_per_handshake = match (before, after) {
        (Some(before), Some(after)) if handshakes > 0 => {
            Some(after.since(&before).cpu_ns as f64 / 1000.0 / handshakes as f64)
        }
        _ => None,
    };
    let key_exchange = group.lock().map(|name| name.clone()).unwrap_or_default();
    Ok(Report {
        handshakes,
        seconds,
        per_second: handshakes as f64 / seconds,
        server_cpu_us_per_handshake,
        key_exchange,
    })
}
