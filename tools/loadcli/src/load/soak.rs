//! Endurance: N clients each send lines at a steady rate for a long time.
//! Every reply must be the exact reversal of the oldest unanswered line
//! (so a lost, duplicated or misordered reply fails the run at once), every
//! date must be punctual, and the server's memory must stay flat.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use super::hold::lateness_of;
use super::proc::Sample;
use super::{
    LoadError, Percentiles, Received, Target, check_reply, interpret, make_line, new_histogram,
};

/// What to run, and what counts as passing.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Clients.
    pub clients: usize,
    /// Lines per second per client.
    pub rate: f64,
    /// How long to send.
    pub duration: Duration,
    /// The server's date period.
    pub period: Duration,
    /// Bytes per line.
    pub line_bytes: usize,
    /// Fail if any date is later than this.
    pub max_lateness: Duration,
    /// Fail if server RSS grows by more than this fraction between the
    /// first sample (after a minute, or a third of the run if shorter) and
    /// the end.
    pub max_rss_growth: f64,
    /// The server's process id.
    pub server_pid: Option<u32>,
}

/// What a run measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Report {
    /// Lines sent.
    pub sent: u64,
    /// Replies received and checked (each the exact reversal, in order).
    pub answered: u64,
    /// Lines never answered.
    pub lost: u64,
    /// Date lateness.
    pub lateness: Percentiles,
    /// Server RSS at the first sample, KiB.
    pub rss_first_kib: Option<u64>,
    /// Server RSS at the end, KiB.
    pub rss_end_kib: Option<u64>,
    /// (end − first) / first.
    pub rss_growth: Option<f64>,
    /// Seconds sending.
    pub seconds: f64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} lines sent in {:.0} s, {} answered exactly and in order, {} lost",
            self.sent, self.seconds, self.answered, self.lost
        )?;
        writeln!(f, "date lateness: {}", self.lateness)?;
        if let (Some(first), Some(end), Some(growth)) =
            (self.rss_first_kib, self.rss_end_kib, self.rss_growth)
        {
            writeln!(
                f,
                "server RSS: {first} KiB then {end} KiB ({:+.2}%)",
                growth * 100.0
            )?;
        }
        Ok(())
    }
}

/// Runs the plan; `Err` if anything was wrong, lost, late or growing.
pub(crate) async fn run(target: &Target, plan: &Plan) -> Result<Report, LoadError> {
    let totals = Arc::new(Totals {
        sent: AtomicU64::new(0),
        answered: AtomicU64::new(0),
        lateness: Mutex::new(new_histogram()),
    });
    let streams = connect_all(target, plan.clients).await?;
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for (client, (stream, t0)) in streams.into_iter().enumerate() {
        let (target, plan, totals) = (target.clone(), plan.clone(), totals.clone());
        clients.spawn(async move { one_client(&target, &plan, client, stream, t0, &totals).await });
    }
    let first_sample_at = Duration::from_secs(60).min(plan.duration / 3);
    let pid = plan.server_pid;
    let (first, lost) = super::with_progress("replies", &totals.answered, async {
        tokio::time::sleep(first_sample_at).await;
        let first = pid.and_then(Sample::of);
        let mut lost = 0;
        while let Some(result) = clients.join_next().await {
            lost += result.map_err(|err| LoadError::Failed(err.to_string()))??;
        }
        Ok::<_, LoadError>((first, lost))
    })
    .await?;
    super::end_progress();
    let end = pid.and_then(Sample::of);
    let report = report(&totals, lost, first, end, started.elapsed().as_secs_f64())?;
    let failures = failures(&report, plan);
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(LoadError::Failed(format!(
            "{report}FAILED: {}",
            failures.join("; ")
        )))
    }
}

/// Connects every client, one after the other. Each client's date
/// schedule starts at its own handshake, so each comes with when ours
/// completed, noted before the next one connects.
async fn connect_all(
    target: &Target,
    clients: usize,
) -> Result<Vec<(Connection, jiff::Timestamp)>, LoadError> {
    let mut streams = Vec::with_capacity(clients);
    for client in 0..clients {
        let stream = target.connect(client).await?;
        streams.push((stream, jiff::Timestamp::now()));
    }
    Ok(streams)
}

/// The report of a run: `first` and `end` are the server's counters after
/// the first minute (or third of the run) and at the end.
fn report(
    totals: &Totals,
    lost: u64,
    first: Option<Sample>,
    end: Option<Sample>,
    seconds: f64,
) -> Result<Report, LoadError> {
    let lateness = totals
        .lateness
        .lock()
        .map(|hist| Percentiles::of(&hist))
        .map_err(|_| LoadError::Failed("lateness lock poisoned".into()))?;
    let rss_growth = match (first, end) {
        (Some(first), Some(end)) if first.rss_kib > 0 => {
            Some((end.rss_kib as f64 - first.rss_kib as f64) / first.rss_kib as f64)
        }
        _ => None,
    };
    Ok(Report {
        sent: totals.sent.load(Ordering::Relaxed),
        answered: totals.answered.load(Ordering::Relaxed),
        lost,
        lateness,
        rss_first_kib: first.map(|s| s.rss_kib),
        rss_end_kib: end.map(|s| s.rss_kib),
        rss_growth,
        seconds,
    })
}

/// What fails the run, one clause each; empty if it passed.
fn failures(report: &Report, plan: &Plan) -> Vec<String> {
    let mut failures = Vec::new();
    if report.lost > 0 {
        failures.push(format!("{} lines were never answered", report.lost));
    }
    let max_late_us = plan.max_lateness.as_micros() as u64;
    if report.lateness.max_us > max_late_us {
        failures.push(format!(
            "a date was {} µs late (limit {max_late_us} µs)",
            report.lateness.max_us
        ));
    }
    if let Some(growth) = report.rss_growth.filter(|g| *g > plan.max_rss_growth) {
        failures.push(format!("server RSS grew by {:.2}%", growth * 100.0));
    }
    failures
}

/// A client's connection.
type Connection = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// What every client adds to.
struct Totals {
    /// Lines sent, all clients.
    sent: AtomicU64,
    /// Replies checked, all clients.
    answered: AtomicU64,
    /// Every date's lateness, µs.
    lateness: Mutex<hdrhistogram::Histogram<u64>>,
}

/// One client of the run, and what it counts into.
struct Client<'a> {
    target: &'a Target,
    plan: &'a Plan,
    id: usize,
    totals: &'a Totals,
    /// Its own lines sent and replies checked: what is not answered when
    /// sending ends is what it lost.
    sent: AtomicU64,
    answered: AtomicU64,
}

/// One client: a writer sending at the rate, and a reader checking each
/// reply against the oldest line not yet answered. Returns lines lost.
/// `t0` is when its handshake completed on our side.
async fn one_client(
    target: &Target,
    plan: &Plan,
    id: usize,
    stream: Connection,
    t0: jiff::Timestamp,
    totals: &Totals,
) -> Result<u64, LoadError> {
    let client = Client {
        target,
        plan,
        id,
        totals,
        sent: AtomicU64::new(0),
        answered: AtomicU64::new(0),
    };
    let (read, write) = tokio::io::split(stream);
    // Expected replies, oldest first; the writer queues one before sending
    // its line, so the reader always finds it.
    let (expect_tx, expect_rx) = mpsc::channel::<(u64, String)>(100_000);
    let reader = client.check_replies(read, t0, expect_rx);
    tokio::pin!(reader);
    let mut write = tokio::select! {
        written = client.write_at_rate(write, expect_tx) => written?,
        read = &mut reader => return read,
    };
    // Sending is over: wait (bounded) for the last replies.
    let lost = match tokio::time::timeout(Duration::from_secs(10), &mut reader).await {
        Ok(result) => result?,
        Err(_) => client.sent.load(Ordering::Relaxed) - client.answered.load(Ordering::Relaxed),
    };
    let _ = write.shutdown().await;
    Ok(lost)
}

impl Client<'_> {
    /// Sends a line every `1 / rate` seconds for the plan's duration, each
    /// announced to the reader first; returns the write half once done,
    /// with the expected-reply queue closed.
    async fn write_at_rate(
        &self,
        mut write: WriteHalf<Connection>,
        expect_tx: mpsc::Sender<(u64, String)>,
    ) -> Result<WriteHalf<Connection>, LoadError> {
        let (client, plan) = (self.id, self.plan);
        let io = |source| LoadError::Io { client, source };
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.rate.max(0.001)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop_at = tokio::time::Instant::now() + plan.duration;
        let mut seq = 0u64;
        while tokio::time::Instant::now() < stop_at {
            ticks.tick().await;
            let text = make_line(client, seq, plan.line_bytes, false);
            let _ = expect_tx
                .send((seq, self.target.expected_reply(&text)))
                .await;
            write
                .write_all(format!("{text}\n").as_bytes())
                .await
                .map_err(io)?;
            write.flush().await.map_err(io)?;
            self.totals.sent.fetch_add(1, Ordering::Relaxed);
            self.sent.fetch_add(1, Ordering::Relaxed);
            seq += 1;
        }
        Ok(write)
    }

    /// Checks each reply against the oldest line not answered, and records
    /// each date's lateness, until every line sent is answered (`Ok(0)`:
    /// none lost); `Err` on a wrong reply or a closed connection.
    async fn check_replies(
        &self,
        read: ReadHalf<Connection>,
        t0: jiff::Timestamp,
        mut expect_rx: mpsc::Receiver<(u64, String)>,
    ) -> Result<u64, LoadError> {
        let client = self.id;
        let io = |source| LoadError::Io { client, source };
        let mut reader = BufReader::new(read);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await.map_err(io)? == 0 {
                return Err(LoadError::Failed(format!(
                    "client {client}: the server closed"
                )));
            }
            match interpret(self.target.protocol, line.trim_end_matches('\n')) {
                Received::Reply(reply) => {
                    check_reply(client, expect_rx.recv().await, reply)?;
                    self.totals.answered.fetch_add(1, Ordering::Relaxed);
                    self.answered.fetch_add(1, Ordering::Relaxed);
                    if expect_rx.is_closed() && expect_rx.is_empty() {
                        return Ok(0);
                    }
                }
                Received::Date(payload) => {
                    record_lateness(&self.totals.lateness, t0, &payload, self.plan.period);
                }
                Received::Other => {}
            }
        }
    }
}

/// Records one date's lateness against the grid that starts at `t0`.
fn record_lateness(
    lateness: &Mutex<hdrhistogram::Histogram<u64>>,
    t0: jiff::Timestamp,
    payload: &str,
    period: Duration,
) {
    if let Ok(ts) = payload.parse::<jiff::Timestamp>() {
        let (_, late) = lateness_of(t0, ts, period);
        if let Ok(mut hist) = lateness.lock() {
            let _ = hist.record(late.max(1));
        }
    }
}
