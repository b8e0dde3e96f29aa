//! Reconnect storms: N clients that reconnect as `clientcli --reconnect`
//! does, each sending numbered lines at a steady rate, while the server is
//! restarted under them (SPEC §10, §12: with reconnection every line is
//! answered exactly once).
//!
//! Each client waits before each attempt exactly as clientcli does, and
//! gives up exactly when it would: both come from
//! [`nea::client::reconnect_delay`] and
//! [`nea::client::is_retried`], and connecting is
//! [`nea::client::connect`] itself. After a new connection a client sends
//! again, in order, every line not answered yet (those lost in flight and
//! those due while it was away), and checks every reply: each line must be
//! answered exactly once, in order, by its exact reversal. A duplicate, a
//! reply out of order, a wrong reply, a line never answered or a client that
//! gave up fails the run.
//!
//! What an operator wants to know about a restart is measured per
//! *disconnection wave*: a wave opens at the first connection lost while
//! none is open, and closes once every client is connected again and
//! every line that was pending, or came due, before its client was back is
//! answered. For each wave the report gives both times from its first
//! loss. `--series` writes, every 100 ms, the clients connected, the lines
//! due and answered so far, and the handshakes completed in that
//! interval: the curve of a restart.
//!
//! Lines are scheduled, not counted by a timer: line `k` of client `c` is
//! due at `(k + c / N) / rate` seconds after sending starts (the clients'
//! lines are spread evenly over each interval), whether or not the client
//! is connected then, as lines typed while a client reconnects are kept
//! and sent once it is back.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nea::client::{is_retried, reconnect_delay};
use nea::error::ClientError;
use nea::protocol::{ErrorCode, Frame};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{LoadError, Protocol, Target, make_line};

/// Bytes per line (with the client and line numbers at its start).
const LINE_BYTES: usize = 32;

/// Most lines written at once after a reconnection, so that a long backlog
/// goes out in writes of about 32 KiB.
const BATCH_LINES: u64 = 1024;

/// How often `--series` samples.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// How long a client that is done may take to close (close_notify).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What to run, and what counts as passing.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Clients.
    pub clients: usize,
    /// Lines per second per client.
    pub rate: f64,
    /// How long lines come due.
    pub duration: Duration,
    /// Handshakes in progress at once while the clients first connect.
    pub ramp: usize,
    /// After the last line is due, how long to wait for the last answers
    /// (and reconnections) before what is missing counts as lost.
    pub patience: Duration,
    /// Where to write the samples, as CSV.
    pub series: Option<PathBuf>,
    /// Fail if a wave takes longer than this to close.
    pub max_recovery: Option<Duration>,
    /// Re-send unanswered lines after reconnecting. Off only to check that
    /// the check catches a client that forgets them.
    pub resend: bool,
}

/// When each client's lines are due. Pure: the sampler and the clients
/// compute the same figures from it.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    clients: usize,
    rate: f64,
    duration: Duration,
}

impl Schedule {
    /// Client `client`'s offset in a line interval, in lines: in [0, 1).
    fn phase(&self, client: usize) -> f64 {
        client as f64 / self.clients.max(1) as f64
    }

    /// How many lines client `client` sends in all: those due before the
    /// end of the run.
    fn total(&self, client: usize) -> u64 {
        let lines = self.duration.as_secs_f64() * self.rate - self.phase(client);
        if lines > 0.0 { lines.ceil() as u64 } else { 0 }
    }

    /// How many of client `client`'s lines are due `elapsed` after sending
    /// started.
    fn due(&self, client: usize, elapsed: Duration) -> u64 {
        let lines = elapsed.as_secs_f64() * self.rate - self.phase(client);
        if lines < 0.0 {
            0
        } else {
            (lines.floor() as u64)
                .saturating_add(1)
                .min(self.total(client))
        }
    }

    /// When line `seq` of client `client` is due, after sending started.
    fn due_at(&self, client: usize, seq: u64) -> Duration {
        Duration::from_secs_f64((seq as f64 + self.phase(client)) / self.rate)
    }
}

/// One disconnection wave, times from the start of sending.
#[derive(Debug, Clone, Copy)]
struct Wave {
    first_loss: Duration,
    /// Connections lost while it was open.
    losses: u64,
    /// Handshakes completed before it opened.
    handshakes_before: u64,
    /// Every client connected again (reset by a later loss in the wave).
    reconnected: Option<Duration>,
    /// Every line pending before its client was back, answered: the wave
    /// is over.
    answered: Option<Duration>,
    handshakes: u64,
}

/// Which clients are away or catching up, and the waves so far.
///
/// Invariants: `disconnected` clients have lost their connection and not
/// made a new one; `recovering` clients (a superset) have lost one and not
/// yet had every line answered that was due before they were back; a wave
/// is open exactly while `recovering > 0` after a loss.
#[derive(Debug, Default)]
struct Waves {
    disconnected: usize,
    recovering: usize,
    open: Option<Wave>,
    done: Vec<Wave>,
}

impl Waves {
    /// A client lost its connection; `was_recovering` if it had not caught
    /// up from an earlier loss.
    fn lost(&mut self, now: Duration, handshakes: u64, was_recovering: bool) {
        self.disconnected += 1;
        if !was_recovering {
            self.recovering += 1;
        }
        let wave = self.open.get_or_insert(Wave {
            first_loss: now,
            losses: 0,
            handshakes_before: handshakes,
            reconnected: None,
            answered: None,
            handshakes: 0,
        });
        wave.losses += 1;
        wave.reconnected = None;
    }

    /// A client that had lost its connection has a new one.
    fn connected(&mut self, now: Duration) {
        self.disconnected = self.disconnected.saturating_sub(1);
        if self.disconnected == 0
            && let Some(wave) = &mut self.open
        {
            wave.reconnected.get_or_insert(now);
        }
    }

    /// A client has caught up: every line due before it was back is
    /// answered.
    fn recovered(&mut self, now: Duration, handshakes: u64) {
        self.recovering = self.recovering.saturating_sub(1);
        if self.recovering == 0
            && self.disconnected == 0
            && let Some(mut wave) = self.open.take()
        {
            wave.reconnected.get_or_insert(now);
            wave.answered = Some(now);
            wave.handshakes = handshakes.saturating_sub(wave.handshakes_before);
            self.done.push(wave);
        }
    }
}

/// What every client adds to, and the clock they share.
#[derive(Debug)]
struct Shared {
    schedule: Schedule,
    protocol: Protocol,
    started: Instant,
    connected: AtomicU64,
    answered: AtomicU64,
    /// Handshakes completed after the first connections.
    handshakes: AtomicU64,
    /// Reconnection attempts that failed (refused, reset, timed out...).
    failed_attempts: AtomicU64,
    /// Of those, refused: nothing listening.
    refused_attempts: AtomicU64,
    /// Of those, no TCP connection or no handshake within clientcli's
    /// connect timeout (the server's queue was longer than that), or the
    /// host unreachable.
    timed_out_attempts: AtomicU64,
    duplicates: AtomicU64,
    out_of_order: AtomicU64,
    wrong: AtomicU64,
    gave_up: AtomicU64,
    waves: Mutex<Waves>,
    /// The first thing that went wrong, in one sentence.
    first_problem: Mutex<Option<String>>,
}

impl Shared {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn waves(&self) -> std::sync::MutexGuard<'_, Waves> {
        self.waves.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn problem(&self, counter: &AtomicU64, sentence: impl FnOnce() -> String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(sentence());
        }
    }
}

/// One wave, as reported: seconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct WaveReport {
    /// When its first connection was lost, after sending started.
    pub first_loss_s: f64,
    /// Connections lost in it.
    pub connections_lost: u64,
    /// From the first loss until every client was connected again.
    pub reconnected_after_s: Option<f64>,
    /// From the first loss until every line pending before its client was
    /// back was answered: the wave's end.
    pub answered_after_s: Option<f64>,
    /// Handshakes completed in it.
    pub handshakes: u64,
}

impl WaveReport {
    fn of(wave: &Wave) -> Self {
        let after = |at: Duration| at.saturating_sub(wave.first_loss).as_secs_f64();
        Self {
            first_loss_s: wave.first_loss.as_secs_f64(),
            connections_lost: wave.losses,
            reconnected_after_s: wave.reconnected.map(after),
            answered_after_s: wave.answered.map(after),
            handshakes: wave.handshakes,
        }
    }
}

/// What a run measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Report {
    /// Clients.
    pub clients: usize,
    /// Lines due in all (every client's, over the run).
    pub lines: u64,
    /// Lines answered in order by their exact reversal.
    pub answered: u64,
    /// Lines never answered in order: `lines - answered`.
    pub lost: u64,
    /// Replies to a line already answered.
    pub duplicates: u64,
    /// Replies that came before the reply to an earlier line.
    pub out_of_order: u64,
    /// Replies that are not the reversal of any line of the client, and
    /// line errors.
    pub wrong: u64,
    /// Clients that stopped on a failure clientcli does not retry.
    pub gave_up: u64,
    /// Connections lost, all waves.
    pub connections_lost: u64,
    /// Handshakes completed after the first connections.
    pub handshakes: u64,
    /// Reconnection attempts that failed and were retried.
    pub failed_attempts: u64,
    /// Of those, refused (nothing listening on the port yet).
    pub refused_attempts: u64,
    /// Of those, timed out (no TCP connection or no handshake within
    /// clientcli's connect timeout) or unreachable.
    pub timed_out_attempts: u64,
    /// Most handshakes completed in one sampling interval, per second.
    pub peak_handshakes_per_s: f64,
    /// The disconnection waves, in order.
    pub waves: Vec<WaveReport>,
    /// Waves still open when the run ended (clients away or lines
    /// missing).
    pub unfinished_waves: usize,
    /// The first problem seen, if any.
    pub first_problem: Option<String>,
    /// Seconds from the start of sending to the last client done.
    pub seconds: f64,
    /// When sending started, Unix time in seconds (to line the series up
    /// with events outside, such as a server's restart).
    pub started_unix_s: f64,
}

impl Report {
    /// What fails the run, one clause each; empty if it passed.
    pub(crate) fn failures(&self, max_recovery: Option<Duration>) -> Vec<String> {
        let mut failures = Vec::new();
        for (count, what) in [
            (self.lost, "lines never answered"),
            (self.duplicates, "replies duplicated"),
            (self.out_of_order, "replies out of order"),
            (self.wrong, "wrong replies"),
            (self.gave_up, "clients gave up"),
        ] {
            if count > 0 {
                failures.push(format!("{count} {what}"));
            }
        }
        if self.unfinished_waves > 0 {
            failures.push(format!(
                "{} disconnection wave(s) not over when the run ended",
                self.unfinished_waves
            ));
        }
        if let Some(limit) = max_recovery {
            for (n, wave) in self.waves.iter().enumerate() {
                if let Some(after) = wave
                    .answered_after_s
                    .filter(|after| *after > limit.as_secs_f64())
                {
                    failures.push(format!(
                        "wave {} took {after:.2} s (limit {:.2} s)",
                        n + 1,
                        limit.as_secs_f64()
                    ));
                }
            }
        }
        if let Some(problem) = self.first_problem.as_ref().filter(|_| !failures.is_empty()) {
            failures.push(format!("first: {problem}"));
        }
        failures
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} clients, {} lines in {:.1} s: {} answered exactly once and in order, {} lost, \
             {} duplicated, {} out of order, {} wrong; {} clients gave up",
            self.clients,
            self.lines,
            self.seconds,
            self.answered,
            self.lost,
            self.duplicates,
            self.out_of_order,
            self.wrong,
            self.gave_up
        )?;
        writeln!(
            f,
            "{} connections lost, {} handshakes after the first connections (peak {:.0}/s), \
             {} failed attempts ({} refused, {} timed out)",
            self.connections_lost,
            self.handshakes,
            self.peak_handshakes_per_s,
            self.failed_attempts,
            self.refused_attempts,
            self.timed_out_attempts
        )?;
        let secs = |s: Option<f64>| s.map_or_else(|| "never".to_owned(), |s| format!("{s:.2} s"));
        for (n, wave) in self.waves.iter().enumerate() {
            writeln!(
                f,
                "wave {} at {:.2} s: {} connections lost; every client connected again after {}, \
                 every pending line answered after {}; {} handshakes",
                n + 1,
                wave.first_loss_s,
                wave.connections_lost,
                secs(wave.reconnected_after_s),
                secs(wave.answered_after_s),
                wave.handshakes
            )?;
        }
        if self.unfinished_waves > 0 {
            writeln!(f, "a wave was not over when the run ended")?;
        }
        Ok(())
    }
}

/// One sample of the series.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    connected: u64,
    due: u64,
    answered: u64,
    handshakes: u64,
}

/// Runs the plan. `Err` only if the run could not be made (the first
/// connections failed, the series cannot be written); what it found wrong
/// is in [`Report::failures`].
pub(crate) async fn run(target: &Target, plan: &Plan) -> Result<Report, LoadError> {
    let series_file = plan
        .series
        .as_ref()
        .map(|path| {
            std::fs::File::create(path).map_err(|err| {
                LoadError::Failed(format!("cannot write --series {}: {err}", path.display()))
            })
        })
        .transpose()?;
    let options = Arc::new(options(target)?);
    let streams = connect_all(target, &options, plan.clients, plan.ramp).await?;
    let schedule = Schedule {
        clients: plan.clients,
        rate: plan.rate,
        duration: plan.duration,
    };
    let started_unix_s = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    let shared = Arc::new(Shared {
        schedule,
        protocol: target.protocol,
        started: Instant::now(),
        connected: AtomicU64::new(plan.clients as u64),
        answered: AtomicU64::new(0),
        handshakes: AtomicU64::new(0),
        failed_attempts: AtomicU64::new(0),
        refused_attempts: AtomicU64::new(0),
        timed_out_attempts: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        out_of_order: AtomicU64::new(0),
        wrong: AtomicU64::new(0),
        gave_up: AtomicU64::new(0),
        waves: Mutex::new(Waves::default()),
        first_problem: Mutex::new(None),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for (id, stream) in streams.into_iter().enumerate() {
        let client = Client {
            id,
            shared: shared.clone(),
            tls: target.tls.clone(),
            options: options.clone(),
            total: schedule.total(id),
            acked: 0,
            sent: 0,
            recovering: false,
            backlog_until: 0,
            resend: plan.resend,
        };
        tasks.spawn(client.run(stream));
    }
    let finished = AtomicBool::new(false);
    let deadline = tokio::time::Instant::from_std(shared.started) + plan.duration + plan.patience;
    let waiting = async {
        let all_done = async { while tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout_at(deadline, all_done).await;
        tasks.abort_all();
        finished.store(true, Ordering::Relaxed);
    };
    let counter = &shared.answered;
    let (seconds, samples) = super::with_progress("answered", counter, async {
        let ((), samples) = tokio::join!(waiting, sample(&shared, &finished));
        (shared.now().as_secs_f64(), samples)
    })
    .await;
    super::end_progress();
    if let Some(mut file) = series_file {
        write_series(&mut file, &samples)
            .map_err(|err| LoadError::Failed(format!("cannot write --series: {err}")))?;
    }
    let lines: u64 = (0..plan.clients).map(|id| schedule.total(id)).sum();
    let answered = shared.answered.load(Ordering::Relaxed);
    let waves = shared.waves();
    let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    Ok(Report {
        clients: plan.clients,
        lines,
        answered,
        lost: lines.saturating_sub(answered),
        duplicates: count(&shared.duplicates),
        out_of_order: count(&shared.out_of_order),
        wrong: count(&shared.wrong),
        gave_up: count(&shared.gave_up),
        connections_lost: waves.done.iter().chain(&waves.open).map(|w| w.losses).sum(),
        handshakes: count(&shared.handshakes),
        failed_attempts: count(&shared.failed_attempts),
        refused_attempts: count(&shared.refused_attempts),
        timed_out_attempts: count(&shared.timed_out_attempts),
        peak_handshakes_per_s: peak_rate(&samples),
        waves: waves
            .done
            .iter()
            .chain(&waves.open)
            .map(WaveReport::of)
            .collect(),
        unfinished_waves: usize::from(waves.open.is_some()),
        first_problem: shared
            .first_problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
        seconds,
        started_unix_s,
    })
}

/// clientcli's options for the target, so that connecting is clientcli's
/// own code, with its deadlines and its classification of failures.
fn options(target: &Target) -> Result<nea::client::Options, LoadError> {
    let config = |err: nea::error::ConfigError| LoadError::Failed(err.to_string());
    nea::client::Options::new(&target.addr.ip().to_string(), target.addr.port())
        .map_err(config)?
        .server_name(&target.server_name.to_str())
        .map_err(config)
}

/// The first connection of every client, `ramp` handshakes at a time; any
/// failure fails the run (as clientcli does not retry a first connection).
async fn connect_all(
    target: &Target,
    options: &Arc<nea::client::Options>,
    clients: usize,
    ramp: usize,
) -> Result<Vec<TlsStream<TcpStream>>, LoadError> {
    let slots = Arc::new(tokio::sync::Semaphore::new(ramp.max(1)));
    let mut connecting = tokio::task::JoinSet::new();
    for id in 0..clients {
        let (slots, options, tls) = (slots.clone(), options.clone(), target.tls.clone());
        connecting.spawn(async move {
            let _permit = slots.acquire_owned().await;
            let stream = nea::client::connect(&options, tls).await;
            (id, stream)
        });
    }
    let mut streams: Vec<Option<TlsStream<TcpStream>>> = Vec::new();
    streams.resize_with(clients, || None);
    let connected = AtomicU64::new(0);
    super::with_progress("connected", &connected, async {
        while let Some(joined) = connecting.join_next().await {
            let (id, stream) = joined.map_err(|err| LoadError::Failed(err.to_string()))?;
            let stream = stream.map_err(|err| LoadError::Failed(format!("client {id}: {err}")))?;
            streams[id] = Some(stream);
            connected.fetch_add(1, Ordering::Relaxed);
        }
        Ok::<_, LoadError>(())
    })
    .await?;
    super::end_progress();
    Ok(streams.into_iter().flatten().collect())
}

/// Samples the counters every [`SAMPLE_EVERY`] until `finished`.
async fn sample(shared: &Shared, finished: &AtomicBool) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let at = shared.now();
        let schedule = shared.schedule;
        samples.push(Sample {
            at,
            connected: shared.connected.load(Ordering::Relaxed),
            due: (0..schedule.clients).map(|id| schedule.due(id, at)).sum(),
            answered: shared.answered.load(Ordering::Relaxed),
            handshakes: shared.handshakes.load(Ordering::Relaxed),
        });
        if finished.load(Ordering::Relaxed) {
            return samples;
        }
    }
}

/// The most handshakes per second over one sampling interval.
fn peak_rate(samples: &[Sample]) -> f64 {
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
fn write_series(out: &mut impl std::io::Write, samples: &[Sample]) -> std::io::Result<()> {
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

/// How one connection ended.
enum Served {
    /// Every line of the client is answered.
    Done,
    /// The connection was lost or the server ended it.
    Lost,
}

/// One reconnecting client.
struct Client {
    id: usize,
    shared: Arc<Shared>,
    tls: Arc<rustls::ClientConfig>,
    options: Arc<nea::client::Options>,
    /// Lines it sends in all.
    total: u64,
    /// Lines answered, in order: every line below this one.
    acked: u64,
    /// Lines handed to a connection: every line below this one.
    /// Invariant: `acked <= sent` while connected, after the resend rewind.
    sent: u64,
    /// Lost its connection and not yet caught up.
    recovering: bool,
    /// Lines due before it was back: it has caught up once they are
    /// answered.
    backlog_until: u64,
    resend: bool,
}

impl Client {
    /// Serves connection after connection until every line is answered,
    /// or a failure clientcli does not retry.
    async fn run(mut self, stream: TlsStream<TcpStream>) {
        let mut stream = Some(stream);
        loop {
            let connection = match stream.take() {
                Some(connection) => connection,
                None => match self.reconnect().await {
                    Some(connection) => connection,
                    None => return,
                },
            };
            match self.serve(connection).await {
                Served::Done => return,
                Served::Lost => {
                    let shared = &self.shared;
                    shared.connected.fetch_sub(1, Ordering::Relaxed);
                    let handshakes = shared.handshakes.load(Ordering::Relaxed);
                    shared
                        .waves()
                        .lost(shared.now(), handshakes, self.recovering);
                    self.recovering = true;
                }
            }
        }
    }

    /// Waits and tries as clientcli does; `None` if it gives up.
    async fn reconnect(&mut self) -> Option<TlsStream<TcpStream>> {
        let shared = self.shared.clone();
        for attempt in 1.. {
            tokio::time::sleep(reconnect_delay(attempt)).await;
            match nea::client::connect(&self.options, self.tls.clone()).await {
                Ok(stream) => {
                    shared.handshakes.fetch_add(1, Ordering::Relaxed);
                    shared.connected.fetch_add(1, Ordering::Relaxed);
                    let now = shared.now();
                    shared.waves().connected(now);
                    self.backlog_until = shared.schedule.due(self.id, now);
                    if !self.resend {
                        // Forget every line not answered yet.
                        self.sent = self.sent.max(self.backlog_until);
                    }
                    return Some(stream);
                }
                Err(err) if is_retried(&err) => {
                    shared.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    let kind = match err {
                        ClientError::Refused { .. } => Some(&shared.refused_attempts),
                        ClientError::HandshakeUnanswered { .. }
                        | ClientError::Unreachable { .. } => Some(&shared.timed_out_attempts),
                        _ => None,
                    };
                    if let Some(counter) = kind {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(err) => {
                    let id = self.id;
                    shared.problem(&shared.gave_up, || format!("client {id} gave up: {err}"));
                    return None;
                }
            }
        }
        None
    }

    /// Sends due lines (first every line not answered yet) and checks
    /// replies, until every line is answered or the connection ends.
    async fn serve(&mut self, stream: TlsStream<TcpStream>) -> Served {
        if self.resend {
            self.sent = self.acked;
        }
        self.caught_up();
        let (read, mut write) = tokio::io::split(stream);
        let sent = AtomicU64::new(self.sent);
        let (shared, id, total) = (self.shared.clone(), self.id, self.total);
        let writer = async {
            let schedule = shared.schedule;
            let mut next = sent.load(Ordering::Relaxed);
            let mut batch = String::new();
            loop {
                let due = schedule.due(id, shared.now());
                if next < due {
                    let upto = due.min(next + BATCH_LINES);
                    batch.clear();
                    for seq in next..upto {
                        batch.push_str(&make_line(id, seq, LINE_BYTES, false));
                        batch.push('\n');
                    }
                    // Handed over before the first byte goes: a reply can
                    // come while the write is still being flushed.
                    sent.store(upto, Ordering::Relaxed);
                    write.write_all(batch.as_bytes()).await?;
                    write.flush().await?;
                    next = upto;
                } else if due >= total {
                    std::future::pending::<()>().await;
                } else {
                    let at =
                        tokio::time::Instant::from_std(shared.started) + schedule.due_at(id, due);
                    tokio::time::sleep_until(at).await;
                }
            }
        };
        let reader = async {
            let mut reader = BufReader::with_capacity(4096, read);
            let mut line = String::new();
            while self.acked < total {
                line.clear();
                match reader.read_line(&mut line).await {
                    Ok(0) | Err(_) => return Served::Lost,
                    Ok(_) => {}
                }
                let text = line.trim_end_matches('\n');
                match frame(shared.protocol, text) {
                    Incoming::Reply(reply) => self.check(&reply, sent.load(Ordering::Relaxed)),
                    Incoming::LineError(sentence) => {
                        let seq = self.acked;
                        shared.problem(&shared.wrong, || {
                            format!(
                                "client {id}, line {seq}: an error instead of a reply: {sentence}"
                            )
                        });
                        self.acked += 1;
                        self.caught_up();
                    }
                    Incoming::End => return Served::Lost,
                    Incoming::Other => {}
                }
            }
            Served::Done
        };
        let served = {
            tokio::pin!(reader);
            tokio::select! {
                served = &mut reader => served,
                written = writer => {
                    let _: std::io::Result<()> = written;
                    Served::Lost
                }
            }
        };
        if let Served::Done = served {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, write.shutdown()).await;
            self.shared.connected.fetch_sub(1, Ordering::Relaxed);
        }
        self.sent = sent.load(Ordering::Relaxed).max(self.acked);
        served
    }

    /// Checks one reply against the oldest line not answered; `sent` lines
    /// have been written.
    fn check(&mut self, reply: &str, sent: u64) {
        let (id, shared) = (self.id, self.shared.clone());
        let acked = self.acked;
        match seq_of(id, reply) {
            Some(seq) if seq < acked => shared.problem(&shared.duplicates, || {
                format!("client {id}: line {seq} answered again (line {acked} was next)")
            }),
            Some(seq) if seq < sent && reply == expected(shared.protocol, id, seq) => {
                if seq > acked {
                    shared.problem(&shared.out_of_order, || {
                        format!("client {id}: line {seq} answered before line {acked}")
                    });
                }
                self.acked = seq + 1;
                shared.answered.fetch_add(1, Ordering::Relaxed);
                self.caught_up();
            }
            _ => shared.problem(&shared.wrong, || {
                format!(
                    "client {id}: {reply:?} answers none of its lines sent (line {acked} was next)"
                )
            }),
        }
    }

    /// Records that the client has caught up, once every line due before
    /// it was back is answered.
    fn caught_up(&mut self) {
        if self.recovering && self.acked >= self.backlog_until {
            self.recovering = false;
            let shared = &self.shared;
            let handshakes = shared.handshakes.load(Ordering::Relaxed);
            shared.waves().recovered(shared.now(), handshakes);
        }
    }
}

/// What one line from the server means to a storm client.
#[derive(Debug, PartialEq, Eq)]
enum Incoming {
    Reply(String),
    /// A per-line error (`line_too_long`, `invalid_utf8`): it answers a line,
    /// wrongly.
    LineError(String),
    /// The server ends the connection (`shutting_down`, `server_full`,
    /// `address_limit`): clientcli reconnects.
    End,
    /// A date, or what this version does not know.
    Other,
}

fn frame(protocol: Protocol, line: &str) -> Incoming {
    if protocol == Protocol::Baseline {
        return Incoming::Reply(line.to_owned());
    }
    match Frame::parse(line) {
        Ok(Frame::String { payload }) => Incoming::Reply(payload),
        Ok(Frame::Error {
            code: ErrorCode::LineTooLong | ErrorCode::InvalidUtf8,
            payload,
        }) => Incoming::LineError(payload),
        Ok(Frame::Error {
            code: ErrorCode::ShuttingDown | ErrorCode::ServerFull | ErrorCode::AddressLimit,
            ..
        }) => Incoming::End,
        _ => Incoming::Other,
    }
}

/// The reply line `seq` of client `id` must get.
fn expected(protocol: Protocol, id: usize, seq: u64) -> String {
    let line = make_line(id, seq, LINE_BYTES, false);
    match protocol {
        Protocol::Nea => nea::reverse::reverse(&line),
        Protocol::Baseline => line.chars().rev().collect(),
    }
}

/// Which line of client `id` a reply answers, read from the line numbers
/// that start every line (the reply ends with them, reversed); `None` if it
/// names another client or none.
fn seq_of(id: usize, reply: &str) -> Option<u64> {
    let line: String = reply.chars().rev().collect();
    let (client, seq) = line.split(' ').next()?.split_once(':')?;
    (client.parse::<usize>().ok()? == id).then_some(())?;
    seq.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(clients: usize, rate: f64, secs: u64) -> Schedule {
        Schedule {
            clients,
            rate,
            duration: Duration::from_secs(secs),
        }
    }

    #[test]
    fn every_line_is_due_once_spread_over_each_interval() {
        let s = schedule(4, 10.0, 2);
        // 20 lines each over 2 s at 10/s, client 1 a quarter interval later.
        assert_eq!((0..4).map(|c| s.total(c)).collect::<Vec<_>>(), [20; 4]);
        assert_eq!(s.due(0, Duration::ZERO), 1);
        assert_eq!(s.due(1, Duration::ZERO), 0);
        assert_eq!(s.due(1, Duration::from_millis(25)), 1);
        assert_eq!(s.due(0, Duration::from_millis(99)), 1);
        assert_eq!(s.due(0, Duration::from_millis(100)), 2);
        assert_eq!(s.due(3, Duration::from_secs(60)), 20);
        assert_eq!(s.due_at(1, 2), Duration::from_millis(225));
        for c in 0..4 {
            for seq in 0..20 {
                // Due at its time, not a moment before.
                let at = s.due_at(c, seq);
                assert_eq!(s.due(c, at + Duration::from_micros(1)), seq + 1);
                if let Some(before) = at.checked_sub(Duration::from_micros(1)) {
                    assert_eq!(s.due(c, before), seq);
                }
            }
        }
        // Slower than one line per run: some clients send none.
        let sparse = schedule(4, 0.25, 2);
        assert_eq!(
            (0..4).map(|c| sparse.total(c)).collect::<Vec<_>>(),
            [1, 1, 0, 0]
        );
    }

    #[test]
    fn a_wave_closes_once_every_client_is_back_and_caught_up() {
        let t = Duration::from_millis;
        let mut waves = Waves::default();
        waves.lost(t(100), 0, false);
        waves.lost(t(110), 0, false);
        waves.connected(t(300));
        waves.connected(t(400));
        assert_eq!(waves.open.and_then(|w| w.reconnected), Some(t(400)));
        waves.recovered(t(420), 2);
        assert!(waves.open.is_some());
        // One flaps: lost again before catching up, back, then caught up.
        waves.lost(t(450), 2, true);
        assert_eq!(waves.open.and_then(|w| w.reconnected), None);
        waves.connected(t(600));
        waves.recovered(t(650), 3);
        assert!(waves.open.is_none());
        let [wave] = waves.done.as_slice() else {
            panic!("one wave: {:?}", waves.done)
        };
        let report = WaveReport::of(wave);
        assert_eq!(report.connections_lost, 3);
        assert_eq!(report.handshakes, 3);
        assert!((report.reconnected_after_s.expect("back") - 0.5).abs() < 1e-9);
        assert!((report.answered_after_s.expect("over") - 0.55).abs() < 1e-9);
        // The next loss opens a second wave.
        waves.lost(t(2000), 3, false);
        assert_eq!(waves.open.map(|w| w.first_loss), Some(t(2000)));
    }

    #[test]
    fn replies_name_their_line() {
        let reply = expected(Protocol::Nea, 12, 345);
        assert_eq!(seq_of(12, &reply), Some(345));
        assert_eq!(seq_of(13, &reply), None);
        assert_eq!(seq_of(12, "olleh"), None);
        assert_eq!(
            expected(Protocol::Baseline, 1, 2),
            reply_of(&make_line(1, 2, 32, false))
        );
    }

    fn reply_of(line: &str) -> String {
        line.chars().rev().collect()
    }

    #[test]
    fn frames_that_end_a_connection_are_told_apart() {
        let end = r#"{"msg_type":"error","code":"shutting_down","payload":"bye"}"#;
        assert_eq!(frame(Protocol::Nea, end), Incoming::End);
        let long = r#"{"msg_type":"error","code":"line_too_long","payload":"no"}"#;
        assert_eq!(frame(Protocol::Nea, long), Incoming::LineError("no".into()));
        let date = r#"{"msg_type":"date","payload":"2026-12-02T00:00:00.000Z"}"#;
        assert_eq!(frame(Protocol::Nea, date), Incoming::Other);
        assert_eq!(frame(Protocol::Baseline, "x"), Incoming::Reply("x".into()));
    }

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
        write_series(&mut csv, &samples).expect("written");
        assert_eq!(
            String::from_utf8(csv).expect("utf-8"),
            "seconds,connected,due,answered,handshakes\n0.100,2,2,1,0\n0.200,0,4,1,0\n0.300,2,6,6,2\n"
        );
        assert!((peak_rate(&samples) - 20.0).abs() < 1e-6);
        assert_eq!(peak_rate(&samples[..1]), 0.0);
    }
}
