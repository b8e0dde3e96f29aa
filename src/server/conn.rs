//! One client's session, from the end of its TLS handshake to its close.
//!
//! The session runs two halves in one task, over `tokio::io::split`:
//!
//! - the **reader** decodes lines (SPEC §2), reverses them (§4) and pushes
//!   the reply frames into a bounded queue, in order. When the queue is full
//!   it stops reading, so a client that sends faster than it reads is held
//!   back by TCP flow control instead of by server memory;
//! - the **writer** takes frames from the queue, adds a `date` frame at each
//!   of the client's own deadlines (§5), and writes them in batches, flushing
//!   after each. A batch that cannot be written within the write timeout
//!   means the client stopped reading: the session ends (§7).
//!
//! Every client has its own [`DateSchedule`], started at its own handshake,
//! so there is no global timer: with no client connected the server does no
//! periodic work, and a client that does not read delays nobody else.
//!
//! On shutdown (§8) the reader answers the lines already received (decoded
//! or waiting in the socket), queues a `shutting_down` frame and stops; the
//! writer drains the queue; then the session sends TLS close_notify and
//! lingers briefly so the last frames are not lost to a TCP reset.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Instant, Interval, MissedTickBehavior, interval_at, timeout};
use tokio_util::sync::CancellationToken;

use super::Config;
use crate::codec::{Inbound, LineDecoder};
use crate::protocol::{ErrorCode, Frame};
use crate::reverse::reverse;

/// Bytes read from the TLS session at a time. Small, because every idle
/// client holds one such buffer (rustls already holds the decrypted record,
/// so a long line only takes more reads, each a copy): 4 KiB here made an
/// idle client cost about 35 KiB of server memory, 1 KiB about 32.
const READ_CHUNK: usize = 1024;

/// Frames are encoded into one buffer up to about this size, then written
/// and flushed together.
const BATCH_BYTES: usize = 64 * 1024;

/// How long a closing session waits for its close_notify to be sent, and
/// then for the client's end of the connection, before dropping the socket.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Why a session ended: the reason in the server's "client left" log line.
#[derive(Debug)]
pub enum EndReason {
    /// The client closed its side cleanly.
    Closed,
    /// The client's stream ended without TLS close_notify, or in the middle
    /// of a line (the unterminated line is dropped).
    Truncated,
    /// Reading failed: a reset, or a TLS error.
    ReadFailed(io::Error),
    /// Writing stalled for longer than the write timeout: the client is not
    /// reading.
    SlowReader(Duration),
    /// Writing failed.
    WriteFailed(io::Error),
    /// The server is shutting down.
    Shutdown,
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("closed by client"),
            Self::Truncated => f.write_str("closed without TLS close_notify"),
            Self::ReadFailed(err) => write!(f, "read failed: {err}"),
            Self::SlowReader(after) => {
                write!(f, "slow reader: a write stalled for {after:?}")
            }
            Self::WriteFailed(err) => write!(f, "write failed: {err}"),
            Self::Shutdown => f.write_str("server shutdown"),
        }
    }
}

/// What a finished session reports.
#[derive(Debug)]
pub struct Session {
    /// Why it ended.
    pub reason: EndReason,
    /// Lines answered (replies and per-line error frames).
    pub lines: u64,
}

/// A client's date deadlines: the n-th date is due at `start + n × period`.
///
/// Missed deadlines (a client whose writes are blocked) are skipped, not
/// caught up in a burst, and later ticks stay on the same grid, so the
/// schedule never drifts whatever the load.
#[derive(Debug)]
pub struct DateSchedule {
    /// Ticks at `start + period`, `start + 2·period`, ...
    interval: Interval,
}

impl DateSchedule {
    /// The schedule of a session that started at `start`.
    pub fn new(start: Instant, period: Duration) -> Self {
        let mut interval = interval_at(start + period, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Self { interval }
    }

    /// Waits for the next deadline and returns it.
    pub async fn next(&mut self) -> Instant {
        self.interval.tick().await
    }
}

/// Serves one client until it leaves, stalls, or the server shuts down.
///
/// `slot` is the client's place among `--max-clients`; it is released as
/// soon as the session's last frame is written, before the final close.
pub async fn serve<S>(
    stream: S,
    config: &Config,
    shutdown: &CancellationToken,
    slot: OwnedSemaphorePermit,
) -> Session
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let lines = AtomicU64::new(0);
    let (reader, writer) = tokio::io::split(stream);
    let (queue_tx, queue_rx) = mpsc::channel(config.queue_frames.max(1));
    let read_side = read_lines(reader, queue_tx, config, shutdown, &lines);
    let write_side = write_frames(writer, queue_rx, start, config, shutdown);
    tokio::pin!(read_side, write_side);

    let reason = tokio::select! {
        // Reader first: frames it queues are then taken by the writer in the
        // same poll, without another trip through the scheduler.
        biased;
        (reader, read_end) = &mut read_side => {
            // The reader dropped its queue sender: the writer drains what is
            // left and returns.
            let (writer, written) = (&mut write_side).await;
            drop(slot);
            match written {
                Ok(()) => {
                    let stream = reader.unsplit(writer);
                    close(stream, matches!(read_end, EndReason::Shutdown)).await;
                    read_end
                }
                Err(write_end) => write_end,
            }
        }
        (_writer, written) = &mut write_side => {
            // The writer only stops first on an error; the reader (and the
            // socket) are dropped without ceremony.
            drop(slot);
            match written {
                Err(write_end) => write_end,
                Ok(()) => EndReason::Closed,
            }
        }
    };
    Session {
        reason,
        lines: lines.load(Ordering::Relaxed),
    }
}

/// Reads and answers lines until end of stream, an error, or shutdown.
async fn read_lines<R: AsyncRead + Unpin>(
    mut reader: R,
    queue: mpsc::Sender<Frame>,
    config: &Config,
    shutdown: &CancellationToken,
    lines: &AtomicU64,
) -> (R, EndReason) {
    let mut decoder = LineDecoder::new(config.max_line_bytes);
    let mut chunk = vec![0u8; READ_CHUNK];
    // Built once: each `cancelled()` future registers with the token.
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let end = loop {
        let read = tokio::select! {
            biased;
            () = &mut cancelled => {
                break drain(&mut reader, &mut decoder, &mut chunk, &queue, lines).await;
            }
            read = reader.read(&mut chunk) => read,
        };
        match read {
            Ok(0) if decoder.has_partial_line() => break EndReason::Truncated,
            Ok(0) => break EndReason::Closed,
            Ok(n) => {
                if answer(&mut decoder, &chunk[..n], &queue, lines)
                    .await
                    .is_err()
                {
                    // The writer is gone; its own error is the reason.
                    break EndReason::Closed;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => break EndReason::Truncated,
            Err(err) => break EndReason::ReadFailed(err),
        }
    };
    (reader, end)
}

/// On shutdown: answers what the client has already sent (bytes readable
/// without waiting), then queues the `shutting_down` frame.
async fn drain<R: AsyncRead + Unpin>(
    reader: &mut R,
    decoder: &mut LineDecoder,
    chunk: &mut [u8],
    queue: &mpsc::Sender<Frame>,
    lines: &AtomicU64,
) -> EndReason {
    // `timeout` polls the read once before looking at its zero deadline, so
    // this takes exactly what is already there and never waits.
    while let Ok(Ok(n @ 1..)) = timeout(Duration::ZERO, reader.read(chunk)).await {
        if answer(decoder, &chunk[..n], queue, lines).await.is_err() {
            return EndReason::Shutdown;
        }
    }
    let _ = queue.send(Frame::error(ErrorCode::ShuttingDown, 0)).await;
    EndReason::Shutdown
}

/// Decodes `bytes` and queues one frame per complete line, in order.
/// Fails only if the writer has gone away.
async fn answer(
    decoder: &mut LineDecoder,
    mut bytes: &[u8],
    queue: &mpsc::Sender<Frame>,
    lines: &AtomicU64,
) -> Result<(), mpsc::error::SendError<Frame>> {
    while let Some(item) = decoder.decode(&mut bytes) {
        let frame = match item {
            Inbound::Line(text) => Frame::String {
                payload: reverse(text),
            },
            Inbound::TooLong => Frame::error(ErrorCode::LineTooLong, decoder.max_line_bytes()),
            Inbound::InvalidUtf8 => Frame::error(ErrorCode::InvalidUtf8, 0),
        };
        lines.fetch_add(1, Ordering::Relaxed);
        queue.send(frame).await?;
    }
    Ok(())
}

/// Writes queued frames and dates until the queue closes, or a write fails
/// or stalls past the write timeout.
async fn write_frames<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut queue: mpsc::Receiver<Frame>,
    start: Instant,
    config: &Config,
    shutdown: &CancellationToken,
) -> (W, Result<(), EndReason>) {
    let mut dates = DateSchedule::new(start, config.date_period);
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            // Dates first: a client that keeps the queue busy must not push
            // its own dates off their deadlines.
            biased;
            _ = dates.next(), if !shutdown.is_cancelled() => Frame::date_now().encode(&mut batch),
            frame = queue.recv() => match frame {
                Some(frame) => {
                    frame.encode(&mut batch);
                    while batch.len() < BATCH_BYTES {
                        let Ok(frame) = queue.try_recv() else { break };
                        frame.encode(&mut batch);
                    }
                }
                None => return (writer, Ok(())),
            },
        }
        let write = async {
            writer.write_all(&batch).await?;
            writer.flush().await
        };
        match write_within(config.write_timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return (writer, Err(EndReason::WriteFailed(err))),
            Err(_) => return (writer, Err(EndReason::SlowReader(config.write_timeout))),
        }
        batch.clear();
        if batch.capacity() > 2 * BATCH_BYTES {
            // One huge batch must not pin its memory for an idle session.
            batch = Vec::new();
        }
    }
}

/// Runs `write` under `limit`, arming the timer only if the write does not
/// complete at once. Most writes fit in the socket buffer, and a timer per
/// batch (inserted into and removed from the timer wheel) would be the
/// costliest part of answering a short line.
async fn write_within<F: std::future::Future>(
    limit: Duration,
    write: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::pin!(write);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(write.as_mut().poll(cx))).await;
    match first {
        std::task::Poll::Ready(done) => Ok(done),
        std::task::Poll::Pending => timeout(limit, write).await,
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

    use std::sync::Arc;

    use tokio::io::{AsyncBufReadExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf};
    use tokio::sync::Semaphore;
    use tokio::task::JoinHandle;

    use super::*;

    const PERIOD: Duration = Duration::from_secs(10);

    struct Peer {
        lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
        writer: WriteHalf<DuplexStream>,
        session: JoinHandle<Session>,
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
        let session = tokio::spawn(async move { serve(server, &config, &token, slot).await });
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
        assert_eq!(schedule.next().await, start + PERIOD);
        // Busy for three and a half periods: the missed deadlines are not
        // caught up in a burst, and the next one is back on the grid.
        tokio::time::sleep(PERIOD * 3 + PERIOD / 2).await;
        schedule.next().await;
        assert_eq!(schedule.next().await, start + PERIOD * 5);
        assert_eq!(Instant::now(), start + PERIOD * 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
        let config = Config {
            write_timeout: Duration::from_secs(10),
            queue_frames: 4,
            ..config()
        };
        let Peer {
            mut writer,
            session,
            lines,
            ..
        } = open(config, 1024);
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
        // The session held at most the queue and one batch, not the flood.
        assert!(ended.lines < 100, "answered {} lines", ended.lines);
        drop(lines);
        flood.abort();
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
    async fn a_close_in_the_middle_of_a_line_is_truncated() {
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
            matches!(ended.reason, EndReason::Truncated),
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
    }
}
