//! One client's session, from the end of its TLS handshake to its close.
//!
//! The session is one state machine in one task, polling the TLS stream for
//! reading and for writing at once (no split, no channel):
//!
//! - **Reading**: lines are decoded (SPEC §2) and each reply is reversed
//!   (§4) and encoded straight into the session's *outgoing bytes*, in
//!   order. While the outgoing bytes are at their bound (`queue_bytes`), the
//!   session stops reading, so a client that sends faster than it reads is
//!   held back by TCP flow control instead of by server memory.
//! - **Dates**: at each of the client's own deadlines (§5) a `date` frame is
//!   appended, whether or not the bound is reached (one frame per period).
//! - **Writing**: whatever is outgoing is written and flushed as soon as the
//!   socket takes it, as one batch. If the socket takes nothing for the
//!   write timeout, the client has stopped reading: the session ends (§7).
//!
//! Every client has its own [`DateSchedule`], started at its own handshake,
//! so there is no global timer: with no client connected the server does no
//! periodic work, and a client that does not read delays nobody else.
//!
//! On shutdown (§8) the session answers the lines already received (decoded
//! or waiting in the socket), appends a `shutting_down` frame and stops
//! reading; it writes everything outgoing, then sends TLS close_notify and
//! lingers briefly so the last frames are not lost to a TCP reset.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep, interval_at};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::Config;
use super::metrics::{SessionCounters, SessionEnd};
use crate::codec::{Inbound, LineDecoder};
use crate::protocol::{ErrorCode, Frame};

/// Bytes read from the TLS session at a time. Small, because every idle
/// client holds one such buffer (rustls already holds the decrypted record,
/// so a long line only takes more reads, each a copy): 4 KiB here made an
/// idle client cost about 35 KiB of server memory, 1 KiB about 32.
const READ_CHUNK: usize = 1024;

/// An outgoing buffer that grew past this is given back once it is empty,
/// so one burst does not pin its memory for an idle session.
const KEEP_OUTGOING_CAPACITY: usize = 16 * 1024;

/// How long a closing session waits for its close_notify to be sent, and
/// then for the client's end of the connection, before dropping the socket.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Why a session ended: the reason in the server's "client left" log line.
#[derive(Debug)]
pub(super) enum EndReason {
    /// The client closed its side cleanly.
    Closed,
    /// The client closed its side cleanly, in the middle of a line (the
    /// unterminated line is dropped).
    ClosedMidLine,
    /// The client's stream ended without TLS close_notify.
    Truncated,
    /// Reading failed: a reset, or a TLS error.
    ReadFailed(io::Error),
    /// The socket took nothing for longer than the write timeout: the client
    /// is not reading.
    SlowReader(Duration),
    /// Writing failed.
    WriteFailed(io::Error),
    /// The client stopped answering at the TCP level for the dead-peer
    /// timeout: its path died without a word.
    DeadPeer(Duration),
    /// The server is shutting down.
    Shutdown,
}

impl EndReason {
    /// The text of a reason that carries no detail.
    fn fixed_text(&self) -> Option<&'static str> {
        match self {
            Self::Closed => Some("closed by client"),
            Self::ClosedMidLine => Some("closed by client in the middle of a line"),
            Self::Truncated => Some("closed without TLS close_notify"),
            Self::Shutdown => Some("server shutdown"),
            Self::ReadFailed(_)
            | Self::SlowReader(_)
            | Self::WriteFailed(_)
            | Self::DeadPeer(_) => None,
        }
    }

    /// The reason, as the metrics count it.
    pub(super) fn metric(&self) -> SessionEnd {
        match self {
            Self::Closed => SessionEnd::Closed,
            Self::ClosedMidLine => SessionEnd::ClosedMidLine,
            Self::Truncated => SessionEnd::Truncated,
            Self::ReadFailed(_) => SessionEnd::ReadFailed,
            Self::SlowReader(_) => SessionEnd::SlowReader,
            Self::WriteFailed(_) => SessionEnd::WriteFailed,
            Self::DeadPeer(_) => SessionEnd::DeadPeer,
            Self::Shutdown => SessionEnd::Shutdown,
        }
    }

    /// The reason as text (its `Display`), allocated only for a reason
    /// with details: most sessions end in one of the fixed ones, and the
    /// server logs one for every client.
    pub(super) fn text(&self) -> std::borrow::Cow<'static, str> {
        match self.fixed_text() {
            Some(text) => text.into(),
            None => self.to_string().into(),
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReadFailed(err) => write!(f, "read failed: {err}"),
            Self::SlowReader(after) => {
                write!(f, "slow reader: a write stalled for {after:?}")
            }
            Self::WriteFailed(err) => write!(f, "write failed: {err}"),
            Self::DeadPeer(after) => {
                write!(f, "dead peer: no answer from the client for {after:?}")
            }
            Self::Closed | Self::ClosedMidLine | Self::Truncated | Self::Shutdown => {
                f.write_str(self.fixed_text().unwrap_or_default())
            }
        }
    }
}

/// What a finished session reports, for its log line.
#[derive(Debug)]
pub(super) struct Report {
    /// Why it ended.
    pub(super) reason: EndReason,
    /// Lines answered (replies and per-line error frames).
    pub(super) lines: u64,
    /// Of those, lines answered by `line_too_long`.
    pub(super) too_long: u64,
    /// Of those, lines answered by `invalid_utf8`.
    pub(super) invalid_utf8: u64,
    /// Date frames sent.
    pub(super) dates: u64,
    /// Clients still connected once this one's slot was freed.
    pub(super) clients: usize,
}

/// A client's date deadlines: the n-th date is due at `start + n × period`.
///
/// Missed deadlines (a client whose writes are blocked) are skipped, not
/// caught up in a burst, and later ticks stay on the same grid, so the
/// schedule never drifts whatever the load.
#[derive(Debug)]
pub(super) struct DateSchedule {
    /// Ticks at `start + period`, `start + 2·period`, ...
    interval: Interval,
}

impl DateSchedule {
    /// The schedule of a session that started at `start`.
    pub(super) fn new(start: Instant, period: Duration) -> Self {
        let mut interval = interval_at(start + period, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Self { interval }
    }

    /// Polls for the next deadline: ready with it once it has come.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        self.interval.poll_tick(cx)
    }
}

/// A client's place among `--max-clients`, freed as soon as its session's
/// last frame is written, before the final close.
pub(super) trait Place {
    /// Frees the place; the clients still connected then.
    fn release(self) -> usize;
}

/// Serves one client until it leaves, stalls, or the server shuts down.
///
/// `slot` is the client's place among `--max-clients` (any value whose drop
/// frees it); it is released as soon as the session's last frame is
/// written, before the final close.
pub(super) async fn run<S, Slot: Place>(
    mut stream: S,
    config: &Config,
    shutdown: &CancellationToken,
    slot: Slot,
    counters: &SessionCounters,
) -> Report
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut session = Session::new(config, Instant::now(), counters.clone());
    // Built once: each `cancelled()` future registers with the token.
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let ending = std::future::poll_fn(|cx| session.poll(&mut stream, cancelled.as_mut(), cx)).await;
    let clients = slot.release();
    let reason = match ending {
        Ending::Close(reason) => {
            close(stream, matches!(reason, EndReason::Shutdown)).await;
            reason
        }
        Ending::Drop(reason) => reason,
    };
    Report {
        reason,
        lines: session.lines,
        too_long: session.too_long,
        invalid_utf8: session.invalid_utf8,
        dates: session.dates_sent,
        clients,
    }
}

/// Where reading stands.
#[derive(Debug)]
enum Reading {
    /// Lines are read and answered as they come.
    Open,
    /// Shutdown: what is readable without waiting is answered, then the
    /// `shutting_down` frame is appended.
    Draining,
    /// No more reading, for this reason; the session ends once its outgoing
    /// bytes are written.
    Done(EndReason),
}

/// How an exchange ended, and so what becomes of its connection.
#[derive(Debug)]
enum Ending {
    /// Reading is over and every outgoing byte is written and flushed: the
    /// session is closed cleanly (close_notify).
    Close(EndReason),
    /// Writing failed or stalled: the socket is dropped without ceremony,
    /// as nothing more can reach the client.
    Drop(EndReason),
}

/// The slow-reader deadline, one type: it counts from the moment the socket
/// last took bytes, and only while the session is blocked on writing.
///
/// Invariant: while `counting`, `sleep` is set and fires `timeout` after
/// the last progress. The timer is made at the first stall and reused, so a
/// session that never blocks on writing never touches the timer wheel.
struct StallTimer {
    /// See [`Config::write_timeout`].
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Whether the session is blocked on writing since the last progress.
    counting: bool,
}

impl StallTimer {
    fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            sleep: None,
            counting: false,
        }
    }

    /// The socket took bytes: a later stall counts afresh.
    fn progress(&mut self) {
        self.counting = false;
    }

    /// The session is blocked on writing: ready once it has been so for the
    /// whole timeout since the last progress.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.counting {
            let deadline = Instant::now() + self.timeout;
            match &mut self.sleep {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.counting = true;
        }
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

/// The state of one session between its handshake and its close.
struct Session {
    /// Splits what is read into lines. Invariant: it holds at most one
    /// line not yet ended, of at most `max_line_bytes` (its own invariant);
    /// the lines it returns are answered in the order they came.
    decoder: LineDecoder,
    /// Where each read lands. Invariant: always `READ_CHUNK` bytes long.
    chunk: Vec<u8>,
    /// Encoded frames not yet taken by the TLS stream, oldest first.
    /// Reading pauses while it holds `queue_bytes` or more, so it holds at
    /// most that plus the replies to one chunk and a date per period.
    outgoing: Vec<u8>,
    /// Invariant: true from the moment the TLS stream takes bytes until a
    /// flush succeeds; the session ends cleanly only when it is false and
    /// `outgoing` is empty.
    unflushed: bool,
    /// See [`Config::queue_bytes`]; at least 1.
    queue_bytes: usize,
    /// When the next date is due: on the session's own grid of periods
    /// from its start, missed ticks skipped.
    dates: DateSchedule,
    /// Where reading stands. Invariant: it only moves forward (`Open`,
    /// then `Draining` at shutdown, then `Done`), and nothing is read once
    /// it is `Done`.
    reading: Reading,
    /// How long writing has been blocked. Invariant: it runs only while
    /// the TLS stream takes no bytes, and starts afresh after each write
    /// that makes progress.
    stall: StallTimer,
    /// Lines answered so far (with their reply or with an error frame).
    lines: u64,
    /// Of those, answered by `line_too_long` and by `invalid_utf8`.
    /// Invariant: `too_long + invalid_utf8 <= lines`.
    too_long: u64,
    invalid_utf8: u64,
    /// Date frames queued so far.
    dates_sent: u64,
    /// The server's counters, which this session adds its work to as it
    /// goes (its own totals above are for its log line).
    counters: SessionCounters,
    /// See [`Config::dead_peer_timeout`]: named in the reason of a session
    /// whose client's path died.
    dead_peer_timeout: Duration,
}

impl Session {
    fn new(config: &Config, start: Instant, counters: SessionCounters) -> Self {
        Self {
            decoder: LineDecoder::new(config.max_line_bytes),
            chunk: vec![0; READ_CHUNK],
            outgoing: Vec::new(),
            unflushed: false,
            queue_bytes: config.queue_bytes.max(1),
            dates: DateSchedule::new(start, config.date_period),
            reading: Reading::Open,
            stall: StallTimer::new(config.write_timeout),
            lines: 0,
            too_long: 0,
            invalid_utf8: 0,
            dates_sent: 0,
            counters,
            dead_peer_timeout: config.dead_peer_timeout,
        }
    }

    /// Runs the session until reading is done and everything outgoing is
    /// written and flushed, or until writing fails or stalls.
    fn poll<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        cancelled: Pin<&mut WaitForCancellationFuture<'_>>,
        cx: &mut Context<'_>,
    ) -> Poll<Ending> {
        if matches!(self.reading, Reading::Open) {
            if cancelled.poll(cx).is_ready() {
                self.reading = Reading::Draining;
            } else {
                self.queue_due_dates(cx);
            }
        }
        loop {
            let written = match self.poll_write(stream, cx) {
                Poll::Ready(Err(failure)) => {
                    return Poll::Ready(Ending::Drop(self.first_cause(failure)));
                }
                Poll::Ready(Ok(())) => true,
                Poll::Pending => false,
            };
            if let Reading::Done(end) = &mut self.reading {
                if written {
                    return Poll::Ready(Ending::Close(std::mem::replace(end, EndReason::Closed)));
                }
                return Poll::Pending;
            }
            if self.outgoing.len() >= self.queue_bytes {
                // Woken when the socket takes some of it.
                return Poll::Pending;
            }
            if self.poll_read(stream, cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// Appends a `date` frame for each deadline that has come, recording
    /// how late each is.
    fn queue_due_dates(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(deadline) = self.dates.poll_next(cx) {
            Frame::date_now().encode(&mut self.outgoing);
            self.dates_sent += 1;
            self.counters.dates_sent.inc();
            let late = Instant::now().saturating_duration_since(deadline);
            self.counters.date_lateness.observe(late.as_secs_f64());
        }
    }

    /// Reads once and answers what came; ready once something happened
    /// (lines answered, or reading stopped), pending when the socket has
    /// nothing now.
    fn poll_read<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let mut buf = ReadBuf::new(&mut self.chunk);
        match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                let n = buf.filled().len();
                self.answer(n);
            }
            Poll::Ready(Ok(())) => {
                let end = if self.decoder.has_partial_line() {
                    EndReason::ClosedMidLine
                } else {
                    EndReason::Closed
                };
                self.stop_reading(end);
            }
            Poll::Ready(Err(err)) => {
                let end = if err.kind() == io::ErrorKind::UnexpectedEof {
                    EndReason::Truncated
                } else if crate::dead_peer::gave_up(&err) {
                    EndReason::DeadPeer(self.dead_peer_timeout)
                } else {
                    EndReason::ReadFailed(err)
                };
                self.stop_reading(end);
            }
            Poll::Pending if matches!(self.reading, Reading::Draining) => {
                // Everything already received is answered.
                self.stop_reading(EndReason::Shutdown);
            }
            Poll::Pending => return Poll::Pending,
        }
        Poll::Ready(())
    }

    /// Decodes the first `n` bytes of the chunk and appends one frame per
    /// complete line, in order; adds what it answered to the server's
    /// counters, once for the whole chunk.
    fn answer(&mut self, n: usize) {
        let mut bytes = &self.chunk[..n];
        let (mut replies, mut too_long, mut invalid_utf8) = (0, 0, 0);
        while let Some(item) = self.decoder.decode(&mut bytes) {
            match item {
                Inbound::Line(text) => {
                    Frame::encode_reply(text, &mut self.outgoing);
                    replies += 1;
                }
                Inbound::TooLong => {
                    Frame::line_too_long(self.decoder.max_line_bytes()).encode(&mut self.outgoing);
                    too_long += 1;
                }
                Inbound::InvalidUtf8 => {
                    Frame::error(ErrorCode::InvalidUtf8).encode(&mut self.outgoing);
                    invalid_utf8 += 1;
                }
            }
        }
        self.lines += replies + too_long + invalid_utf8;
        self.too_long += too_long;
        self.invalid_utf8 += invalid_utf8;
        for (counter, n) in [
            (&self.counters.lines_answered, replies),
            (&self.counters.too_long, too_long),
            (&self.counters.invalid_utf8, invalid_utf8),
        ] {
            if n > 0 {
                counter.inc_by(n);
            }
        }
    }

    /// Stops reading for `end`. While draining for shutdown, unless reading
    /// failed, the client is told the server is shutting down.
    fn stop_reading(&mut self, end: EndReason) {
        // A peer whose reads fail cannot be told anything more: the failure
        // stays the reason, as it is outside shutdown.
        let end = if matches!(self.reading, Reading::Draining)
            && !matches!(end, EndReason::ReadFailed(_))
        {
            Frame::error(ErrorCode::ShuttingDown).encode(&mut self.outgoing);
            EndReason::Shutdown
        } else {
            end
        };
        self.reading = Reading::Done(end);
    }

    /// Why the session ends when writing fails or stalls: a failure of
    /// reading that came first is the real cause (a reset peer also fails
    /// the flush of the replies still due to it), otherwise the write's.
    fn first_cause(&mut self, write_failure: EndReason) -> EndReason {
        match &mut self.reading {
            Reading::Done(
                read_failure @ (EndReason::ReadFailed(_)
                | EndReason::Truncated
                | EndReason::DeadPeer(_)),
            ) => std::mem::replace(read_failure, EndReason::Closed),
            _ => write_failure,
        }
    }

    /// Writes and flushes the outgoing bytes: ready once all are flushed.
    /// Pending while the socket takes nothing, for at most the write
    /// timeout since it last took something.
    fn poll_write<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), EndReason>> {
        let dead_peer_timeout = self.dead_peer_timeout;
        let sent = self.poll_send(stream, cx).map_err(|err| {
            if crate::dead_peer::gave_up(&err) {
                EndReason::DeadPeer(dead_peer_timeout)
            } else {
                EndReason::WriteFailed(err)
            }
        });
        if sent.is_ready() {
            self.stall.progress();
            return sent;
        }
        ready!(self.stall.poll_expired(cx));
        Poll::Ready(Err(EndReason::SlowReader(self.stall.timeout)))
    }

    /// Hands the outgoing bytes to the stream and flushes it. Any progress
    /// restarts the stall count.
    fn poll_send<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while !self.outgoing.is_empty() {
            let n = ready!(Pin::new(&mut *stream).poll_write(cx, &self.outgoing))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.stall.progress();
            self.unflushed = true;
            if n == self.outgoing.len() {
                self.outgoing.clear();
                if self.outgoing.capacity() > KEEP_OUTGOING_CAPACITY {
                    self.outgoing = Vec::new();
                }
            } else {
                self.outgoing.drain(..n);
            }
        }
        if self.unflushed {
            ready!(Pin::new(&mut *stream).poll_flush(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }
}

/// Sends TLS close_notify (through `shutdown`), then, if the client may
/// still be sending (`linger`), reads and discards until it closes too or
/// [`CLOSE_LINGER`] passes: closing a socket with unread bytes makes the
/// kernel send a reset, which can destroy the frames just written.
pub(super) async fn close<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, linger: bool) {
    let deadline = Instant::now() + CLOSE_LINGER;
    if tokio::time::timeout_at(deadline, stream.shutdown())
        .await
        .is_err()
        || !linger
    {
        return;
    }
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout_at(deadline, async {
        while let Ok(1..) = stream.read(&mut sink).await {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    //! The session over an in-memory `duplex` pipe with tokio's paused
    //! clock: timers fire at exact virtual instants, so the schedule and the
    //! timeouts are checked to the millisecond, without waiting for them.

    use crate::reverse::reverse;
    use std::sync::Arc;

    use tokio::io::{AsyncBufReadExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf};
    use tokio::sync::Semaphore;
    use tokio::task::JoinHandle;

    use super::*;

    /// A semaphore permit stands for a client slot here.
    impl Place for tokio::sync::OwnedSemaphorePermit {
        fn release(self) -> usize {
            0
        }
    }

    const PERIOD: Duration = Duration::from_secs(10);

    struct Peer {
        lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
        writer: WriteHalf<DuplexStream>,
        session: JoinHandle<Report>,
        shutdown: CancellationToken,
    }

    /// Starts a session on one end of a pipe of `capacity` bytes.
    fn open(config: Config, capacity: usize) -> Peer {
        let (client, server) = tokio::io::duplex(capacity);
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let slot = Arc::new(Semaphore::new(1))
            .try_acquire_owned()
            .expect("a free slot");
        let session = tokio::spawn(async move {
            run(
                server,
                &config,
                &token,
                slot,
                &SessionCounters::unregistered(),
            )
            .await
        });
        let (read, writer) = tokio::io::split(client);
        Peer {
            lines: BufReader::new(read).lines(),
            writer,
            session,
            shutdown,
        }
    }

    impl Peer {
        async fn frame(&mut self) -> Frame {
            let line = self
                .lines
                .next_line()
                .await
                .expect("read")
                .expect("a frame");
            Frame::parse(&line).expect("a valid frame")
        }

        async fn send(&mut self, bytes: &[u8]) {
            self.writer.write_all(bytes).await.expect("write");
        }
    }

    fn config() -> Config {
        Config {
            date_period: PERIOD,
            ..Config::default()
        }
    }

    /// A session with a 4 KiB queue and a 10 s write timeout over a 1 KiB
    /// pipe: a client that does not read blocks it within a few lines.
    fn open_for_backpressure() -> Peer {
        let config = Config {
            write_timeout: Duration::from_secs(10),
            queue_bytes: 4096,
            ..config()
        };
        open(config, 1024)
    }

    #[tokio::test(start_paused = true)]
    async fn dates_fall_on_absolute_deadlines_for_twenty_periods_under_load() {
        let start = Instant::now();
        let mut peer = open(config(), 64 * 1024);
        for n in 1..=20u32 {
            // Keep the session busy between deadlines: a reply at an odd
            // moment must not shift the schedule.
            tokio::time::sleep(Duration::from_millis(3_333)).await;
            peer.send(format!("line {n}\n").as_bytes()).await;
            let reply = peer.frame().await;
            assert_eq!(
                reply,
                Frame::String {
                    payload: reverse(&format!("line {n}"))
                }
            );
            let date = peer.frame().await;
            assert!(matches!(date, Frame::Date { .. }), "{date:?}");
            assert_eq!(
                Instant::now() - start,
                PERIOD * n,
                "date {n} off its deadline"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_writer_skips_missed_dates_and_stays_on_the_grid() {
        let start = Instant::now();
        let mut schedule = DateSchedule::new(start, PERIOD);
        let mut next = async || std::future::poll_fn(|cx| schedule.poll_next(cx)).await;
        assert_eq!(next().await, start + PERIOD);
        // Busy for three and a half periods: the missed deadlines are not
        // caught up in a burst, and the next one is back on the grid.
        tokio::time::sleep(PERIOD * 3 + PERIOD / 2).await;
        next().await;
        assert_eq!(next().await, start + PERIOD * 5);
        assert_eq!(Instant::now(), start + PERIOD * 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
        let Peer {
            mut writer,
            session,
            lines,
            ..
        } = open_for_backpressure();
        let started = Instant::now();
        let flood = tokio::spawn(async move {
            let line = format!("{}\n", "w".repeat(1000));
            for _ in 0..1000 {
                if writer.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        let ended = session.await.expect("session task");
        assert!(
            matches!(ended.reason, EndReason::SlowReader(after) if after == Duration::from_secs(10)),
            "{:?}",
            ended.reason
        );
        assert!(Instant::now() - started >= Duration::from_secs(10));
        // The session held at most the queue and the replies to one read,
        // not the flood.
        assert!(ended.lines < 100, "answered {} lines", ended.lines);
        drop(lines);
        flood.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_reads_slowly_but_steadily_is_kept() {
        let Peer {
            mut writer,
            session,
            lines,
            ..
        } = open_for_backpressure();
        let mut reader = lines.into_inner().into_inner();
        let line = format!("{}\n", "s".repeat(1000));
        let sender = tokio::spawn(async move {
            for _ in 0..50 {
                writer.write_all(line.as_bytes()).await.expect("write");
            }
            writer
        });
        // 512 bytes every 5 s, about 100 bytes a second: writing the 51 KB
        // of replies takes far longer than the write timeout, but the socket
        // never goes 10 s without taking bytes.
        let started = Instant::now();
        let mut received = Vec::new();
        let mut chunk = [0u8; 512];
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let n = reader.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed early: {:?}", session.await);
            received.extend_from_slice(&chunk[..n]);
            let replies = received
                .split(|&b| b == b'\n')
                .filter(|line| line.starts_with(b"{\"msg_type\":\"string\""))
                .count();
            if replies == 50 {
                break;
            }
        }
        assert!(Instant::now() - started >= Duration::from_secs(400));
        let mut writer = sender.await.expect("sender");
        writer.shutdown().await.expect("close");
        while reader.read(&mut chunk).await.expect("read") > 0 {}
        let ended = session.await.expect("session");
        assert!(
            matches!(ended.reason, EndReason::Closed),
            "{:?}",
            ended.reason
        );
        assert_eq!(ended.lines, 50);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_answers_what_was_received_then_says_so_and_closes() {
        let mut peer = open(config(), 64 * 1024);
        peer.send(b"one\ntwo\nthree\n").await;
        tokio::task::yield_now().await;
        peer.shutdown.cancel();
        for word in ["eno", "owt", "eerht"] {
            assert_eq!(
                peer.frame().await,
                Frame::String {
                    payload: word.into()
                }
            );
        }
        assert!(matches!(
            peer.frame().await,
            Frame::Error {
                code: ErrorCode::ShuttingDown,
                ..
            }
        ));
        // Our end closes, as a client does once it sees the close.
        peer.writer.shutdown().await.expect("close");
        assert_eq!(peer.lines.next_line().await.expect("read"), None);
        let ended = peer.session.await.expect("session");
        assert!(
            matches!(ended.reason, EndReason::Shutdown),
            "{:?}",
            ended.reason
        );
        assert_eq!(ended.lines, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_clean_close_gets_pending_replies_and_a_close_back() {
        let mut peer = open(config(), 64 * 1024);
        peer.send(b"bye\n").await;
        peer.writer.shutdown().await.expect("close");
        assert_eq!(
            peer.frame().await,
            Frame::String {
                payload: "eyb".into()
            }
        );
        assert_eq!(peer.lines.next_line().await.expect("read"), None);
        let ended = peer.session.await.expect("session");
        assert!(
            matches!(ended.reason, EndReason::Closed),
            "{:?}",
            ended.reason
        );
        assert_eq!(ended.reason.to_string(), "closed by client");
    }

    #[tokio::test(start_paused = true)]
    async fn a_close_in_the_middle_of_a_line_answers_the_complete_lines() {
        let mut peer = open(config(), 64 * 1024);
        peer.send(b"complete\nhalf a li").await;
        peer.writer.shutdown().await.expect("close");
        assert_eq!(
            peer.frame().await,
            Frame::String {
                payload: "etelpmoc".into()
            }
        );
        let ended = peer.session.await.expect("session");
        assert!(
            matches!(ended.reason, EndReason::ClosedMidLine),
            "{:?}",
            ended.reason
        );
        assert_eq!(ended.lines, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_clean_close_after_half_a_line_is_not_called_a_missing_close_notify() {
        let mut peer = open(config(), 64 * 1024);
        peer.send(b"half a li").await;
        peer.writer.shutdown().await.expect("close");
        let ended = peer.session.await.expect("session");
        assert_eq!(
            ended.reason.to_string(),
            "closed by client in the middle of a line"
        );
    }

    /// A peer that resets the connection while the session's writes are
    /// blocked: it gives `input`, then fails every read with a reset; its
    /// first write waits (a full socket), and every later one fails.
    struct GoneAfter {
        input: &'static [u8],
        writes: usize,
    }

    impl AsyncRead for GoneAfter {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.input.is_empty() {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            let n = self.input.len().min(buf.remaining());
            buf.put_slice(&self.input[..n]);
            self.input = &self.input[n..];
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for GoneAfter {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes += 1;
            if self.writes == 1 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_failing_after_a_read_failure_keeps_the_first_cause() {
        let slot = Arc::new(Semaphore::new(1))
            .try_acquire_owned()
            .expect("a free slot");
        let stream = GoneAfter {
            input: b"a line\n",
            writes: 0,
        };
        let ended = run(
            stream,
            &config(),
            &CancellationToken::new(),
            slot,
            &SessionCounters::unregistered(),
        )
        .await;
        assert!(
            matches!(&ended.reason, EndReason::ReadFailed(err) if err.kind() == io::ErrorKind::ConnectionReset),
            "{:?}",
            ended.reason
        );
        assert_eq!(ended.lines, 1);
    }

    #[test]
    fn end_reasons_read_as_log_text() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(
            EndReason::ReadFailed(reset)
                .to_string()
                .starts_with("read failed: ")
        );
        let broken = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(
            EndReason::WriteFailed(broken)
                .to_string()
                .starts_with("write failed: ")
        );
        assert_eq!(
            EndReason::SlowReader(Duration::from_secs(1)).to_string(),
            "slow reader: a write stalled for 1s"
        );
        assert_eq!(EndReason::Shutdown.to_string(), "server shutdown");
        let every = [
            EndReason::Closed,
            EndReason::ClosedMidLine,
            EndReason::Truncated,
            EndReason::ReadFailed(io::ErrorKind::ConnectionReset.into()),
            EndReason::SlowReader(Duration::from_millis(1500)),
            EndReason::WriteFailed(io::ErrorKind::BrokenPipe.into()),
            EndReason::DeadPeer(Duration::from_secs(60)),
            EndReason::Shutdown,
        ];
        for reason in every {
            assert_eq!(reason.text(), reason.to_string(), "{reason:?}");
        }
    }
}
