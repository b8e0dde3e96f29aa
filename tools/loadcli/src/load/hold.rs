//! Holding silent clients: how punctual the dates are, how much memory each
//! connection costs the server, and what the server does while it waits.
//!
//! Memory is measured from a *warm* idle server: before the figures, one
//! client connects, exchanges a line, waits for a date and leaves, so that
//! the code for serving is already paged in. (A fresh process has about
//! 1 MiB less resident, which is its own program text, not memory it holds
//! for clients; `rss_anon` leaves program text out altogether.)
//!
//! Lateness is the date's own timestamp (taken by the server as it builds
//! the frame) minus its deadline, `t0 + n × period`, where `t0` is when
//! this client's handshake completed on our side. The server starts its
//! schedule a little after that (once it has read our Finished message), so
//! the figure is an upper bound on the server's lateness.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::proc::Sample;
use super::{LoadError, Percentiles, Received, Target, interpret, new_histogram};

/// What to hold.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Clients to connect (0 measures the idle server).
    pub clients: usize,
    /// How long to hold them once all are connected.
    pub duration: Duration,
    /// The server's date period.
    pub period: Duration,
    /// Handshakes in progress at once while connecting.
    pub ramp: usize,
    /// The server's process id.
    pub server_pid: Option<u32>,
}

/// What a run measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Report {
    /// Clients held.
    pub clients: usize,
    /// Date lateness, all dates.
    pub lateness: Percentiles,
    /// Date lateness over the first ten periods of each client.
    pub lateness_first_periods: Percentiles,
    /// Date lateness from the tenth period on (drift would show here).
    pub lateness_later_periods: Percentiles,
    /// Server RSS when it started (nobody connected yet), KiB.
    pub rss_fresh_kib: Option<u64>,
    /// Server RSS after the warm-up client left, nobody connected, KiB.
    pub rss_idle_kib: Option<u64>,
    /// The anonymous part of `rss_idle_kib`.
    pub rss_anon_idle_kib: Option<u64>,
    /// Server RSS with every client connected, KiB.
    pub rss_held_kib: Option<u64>,
    /// (held − idle) / clients, KiB.
    pub rss_per_client_kib: Option<f64>,
    /// Server RSS a few seconds after every client left, KiB.
    pub rss_after_kib: Option<u64>,
    /// The anonymous part of `rss_after_kib`.
    pub rss_anon_after_kib: Option<u64>,
    /// Server CPU time while holding, milliseconds.
    pub server_cpu_ms: Option<f64>,
    /// Server context switches while holding.
    pub server_context_switches: Option<u64>,
    /// Seconds the hold lasted.
    pub seconds: f64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} clients held for {:.1} s", self.clients, self.seconds)?;
        writeln!(f, "date lateness: {}", self.lateness)?;
        writeln!(f, "  first 10 periods: {}", self.lateness_first_periods)?;
        writeln!(f, "  later periods:    {}", self.lateness_later_periods)?;
        if let (Some(idle), Some(held), Some(after)) =
            (self.rss_idle_kib, self.rss_held_kib, self.rss_after_kib)
        {
            writeln!(
                f,
                "server RSS: idle {idle} KiB, held {held} KiB ({:.1} KiB per client), after {after} KiB",
                self.rss_per_client_kib.unwrap_or(0.0)
            )?;
        }
        if let (Some(idle), Some(after)) = (self.rss_anon_idle_kib, self.rss_anon_after_kib) {
            writeln!(f, "  anonymous: idle {idle} KiB, after {after} KiB")?;
        }
        if let (Some(cpu), Some(switches)) = (self.server_cpu_ms, self.server_context_switches) {
            writeln!(
                f,
                "server while holding: {cpu:.1} ms CPU, {switches} context switches"
            )?;
        }
        Ok(())
    }
}

/// Lateness samples shared by every client's reader.
#[derive(Debug)]
struct Lateness {
    /// Every date.
    all: Histogram<u64>,
    /// Dates of each client's first ten periods.
    first: Histogram<u64>,
    /// Dates from each client's eleventh period on.
    later: Histogram<u64>,
}

impl Lateness {
    fn new() -> Self {
        Self {
            all: new_histogram(),
            first: new_histogram(),
            later: new_histogram(),
        }
    }
}

/// The server's counters at each step of a run (each `None` without
/// `--pid`, or once the server is gone).
#[derive(Debug, Default)]
struct Steps {
    /// Before anything: the fresh server.
    fresh: Option<Sample>,
    /// After the warm-up client left: the warm idle server.
    idle: Option<Sample>,
    /// Every client connected, their handshakes settled.
    held_start: Option<Sample>,
    /// At the end of the hold.
    held_end: Option<Sample>,
    /// A few seconds after every client left.
    after: Option<Sample>,
}

/// Runs the plan.
pub(crate) async fn run(target: &Target, plan: &Plan) -> Result<Report, LoadError> {
    let read = || plan.server_pid.and_then(Sample::of);
    let mut steps = Steps {
        fresh: read(),
        ..Steps::default()
    };
    warm_up(target, plan.period).await?;
    steps.idle = read();
    let held = Held::connect(target, plan).await?;
    // Let the last handshakes' work settle before measuring the hold.
    tokio::time::sleep(Duration::from_millis(500)).await;
    steps.held_start = read();
    let seconds = hold_for(plan.duration).await;
    steps.held_end = read();
    let lateness = held.release().await?;
    // Give the server time to notice every close and free its memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    steps.after = read();
    Ok(report(plan, &steps, &lateness, seconds))
}

/// The clients held, and what they share.
struct Held {
    /// Every date's lateness, recorded by the clients as dates come.
    lateness: Arc<Mutex<Lateness>>,
    /// Cancelled to make every client close.
    stop: CancellationToken,
    /// One task per client: `Err` if it could not connect or the server
    /// closed on it.
    clients: JoinSet<Result<(), LoadError>>,
}

impl Held {
    /// Connects `plan.clients` clients, `plan.ramp` handshakes at a time,
    /// and returns once every one is connected (or one failed).
    async fn connect(target: &Target, plan: &Plan) -> Result<Self, LoadError> {
        let mut held = Self {
            lateness: Arc::new(Mutex::new(Lateness::new())),
            stop: CancellationToken::new(),
            clients: JoinSet::new(),
        };
        let connected = Arc::new(AtomicU64::new(0));
        let slots = Arc::new(tokio::sync::Semaphore::new(plan.ramp.max(1)));
        let ramp = async {
            for client in 0..plan.clients {
                let permit = slots.clone().acquire_owned().await;
                let (target, lateness) = (target.clone(), held.lateness.clone());
                let (connected, stop, period) = (connected.clone(), held.stop.clone(), plan.period);
                held.clients.spawn(async move {
                    let stream = target.connect(client).await;
                    drop(permit);
                    let stream = stream?;
                    connected.fetch_add(1, Ordering::Relaxed);
                    hold_one(&target, client, stream, period, &lateness, stop).await
                });
            }
            while connected.load(Ordering::Relaxed) < plan.clients as u64 {
                if let Some(Ok(Err(err))) = held.clients.try_join_next() {
                    return Err(err);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(())
        };
        super::with_progress("connected", &connected, ramp).await?;
        super::end_progress();
        Ok(held)
    }

    /// Makes every client close, waits for them, and returns the lateness
    /// of every date they received.
    async fn release(mut self) -> Result<Lateness, LoadError> {
        self.stop.cancel();
        while let Some(result) = self.clients.join_next().await {
            result.map_err(|err| LoadError::Failed(err.to_string()))??;
        }
        let mut lateness = self
            .lateness
            .lock()
            .map_err(|_| LoadError::Failed("lateness lock poisoned".into()))?;
        Ok(std::mem::replace(&mut *lateness, Lateness::new()))
    }
}

/// One held client: records each date's lateness against the grid that
/// starts when its handshake completed, until `stop`; `Err` if the server
/// closes first.
async fn hold_one(
    target: &Target,
    client: usize,
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    period: Duration,
    lateness: &Mutex<Lateness>,
    stop: CancellationToken,
) -> Result<(), LoadError> {
    let t0 = jiff::Timestamp::now();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        let read = tokio::select! {
            () = stop.cancelled() => break,
            read = reader.read_line(&mut line) => read,
        };
        if read.map_err(|source| LoadError::Io { client, source })? == 0 {
            return Err(LoadError::Failed(format!(
                "client {client}: the server closed"
            )));
        }
        if let Received::Date(payload) = interpret(target.protocol, line.trim_end()) {
            record(lateness, t0, &payload, period);
        }
    }
    let _ = tokio::io::AsyncWriteExt::shutdown(reader.get_mut()).await;
    Ok(())
}

/// Waits `duration`, drawing progress each second; returns the seconds it
/// took.
async fn hold_for(duration: Duration) -> f64 {
    let started = std::time::Instant::now();
    let held_seconds = AtomicU64::new(0);
    super::with_progress("seconds held", &held_seconds, async {
        let until = tokio::time::Instant::now() + duration;
        while tokio::time::Instant::now() < until {
            let step = until
                .saturating_duration_since(tokio::time::Instant::now())
                .min(Duration::from_secs(1));
            tokio::time::sleep(step).await;
            held_seconds.store(started.elapsed().as_secs(), Ordering::Relaxed);
        }
    })
    .await;
    started.elapsed().as_secs_f64()
}

/// The report, from the server's counters at each step and the dates'
/// lateness.
fn report(plan: &Plan, steps: &Steps, lateness: &Lateness, seconds: f64) -> Report {
    let rss_per_client_kib = match (steps.idle, steps.held_end) {
        (Some(idle), Some(held)) if plan.clients > 0 => {
            Some((held.rss_kib as f64 - idle.rss_kib as f64) / plan.clients as f64)
        }
        _ => None,
    };
    let during = steps
        .held_start
        .zip(steps.held_end)
        .map(|(start, end)| end.since(&start));
    Report {
        clients: plan.clients,
        lateness: Percentiles::of(&lateness.all),
        lateness_first_periods: Percentiles::of(&lateness.first),
        lateness_later_periods: Percentiles::of(&lateness.later),
        rss_fresh_kib: steps.fresh.map(|s| s.rss_kib),
        rss_idle_kib: steps.idle.map(|s| s.rss_kib),
        rss_anon_idle_kib: steps.idle.map(|s| s.rss_anon_kib),
        rss_held_kib: steps.held_end.map(|s| s.rss_kib),
        rss_per_client_kib,
        rss_after_kib: steps.after.map(|s| s.rss_kib),
        rss_anon_after_kib: steps.after.map(|s| s.rss_anon_kib),
        server_cpu_ms: during.map(|d| d.cpu_ns as f64 / 1e6),
        server_context_switches: during.map(|d| d.context_switches),
        seconds,
    }
}

/// One client that exchanges a line, waits for a date (or two periods) and
/// leaves, so that the server's code for all of that is paged in.
async fn warm_up(target: &Target, period: Duration) -> Result<(), LoadError> {
    let io = |source| LoadError::Io { client: 0, source };
    let mut stream = BufReader::new(target.connect(0).await?);
    tokio::io::AsyncWriteExt::write_all(stream.get_mut(), b"warm up\n")
        .await
        .map_err(io)?;
    tokio::io::AsyncWriteExt::flush(stream.get_mut())
        .await
        .map_err(io)?;
    let wait = async {
        let mut line = String::new();
        let mut replied = false;
        loop {
            line.clear();
            if stream.read_line(&mut line).await.map_err(io)? == 0 {
                return Ok::<_, LoadError>(());
            }
            match interpret(target.protocol, line.trim_end()) {
                Received::Reply(_) if target.protocol == super::Protocol::Baseline => return Ok(()),
                Received::Reply(_) => replied = true,
                Received::Date(_) if replied => return Ok(()),
                _ => {}
            }
        }
    };
    let _ = tokio::time::timeout(period * 2 + Duration::from_secs(1), wait).await;
    let _ = tokio::io::AsyncWriteExt::shutdown(stream.get_mut()).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}

/// Records one date's lateness against the grid that starts at `t0`.
fn record(lateness: &Mutex<Lateness>, t0: jiff::Timestamp, payload: &str, period: Duration) {
    let Ok(ts) = payload.parse::<jiff::Timestamp>() else {
        return;
    };
    let (n, late_us) = lateness_of(t0, ts, period);
    if let Ok(mut hist) = lateness.lock() {
        let late = late_us.max(1);
        let _ = hist.all.record(late);
        let _ = if n <= 10 {
            hist.first.record(late)
        } else {
            hist.later.record(late)
        };
    }
}

/// For a date stamped `ts` on a schedule starting at `t0`: which period it
/// belongs to (the nearest deadline, n ≥ 1) and how late it is, in µs (0
/// if early).
pub(crate) fn lateness_of(
    t0: jiff::Timestamp,
    ts: jiff::Timestamp,
    period: Duration,
) -> (u64, u64) {
    let since_us = ts.duration_since(t0).as_micros().max(0) as u64;
    let period_us = (period.as_micros() as u64).max(1);
    let n = ((since_us + period_us / 2) / period_us).max(1);
    let late = since_us.saturating_sub(n * period_us);
    (n, late)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_is_measured_from_the_nearest_deadline() {
        let t0: jiff::Timestamp = "2026-11-26T20:00:00Z".parse().expect("ts");
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("ts");
        let second = Duration::from_secs(1);
        assert_eq!(
            lateness_of(t0, at("2026-11-26T20:00:01.002Z"), second),
            (1, 2000)
        );
        assert_eq!(
            lateness_of(t0, at("2026-11-26T20:01:00.000Z"), second),
            (60, 0)
        );
        // Slightly early (our t0 is a bound, not the server's own): 0.
        assert_eq!(
            lateness_of(t0, at("2026-11-26T20:00:04.999Z"), second),
            (5, 0)
        );
    }
}
