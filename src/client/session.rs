//! One client session, whatever the front end: lines come in as [`Input`],
//! what the user should see goes out as [`Event`].
//!
//! Every line sent stays in `pending` until its answer (a reply, or a
//! per-line error) arrives; the server answers in order, so each answer
//! retires the oldest pending line. This is what makes end of input safe
//! (the session closes only once nothing is pending) and reconnection exact
//! (after a new connection, every pending line is sent again, in order, and
//! each is shown once, when its one answer arrives).
//!
//! Reading frames and writing lines run side by side: lines go to a writer
//! task through a bounded queue, and the session keeps reading frames while
//! that task writes. A client that stopped reading to finish a large write
//! could otherwise deadlock with the server's own flow control.

use std::collections::VecDeque;
use std::io;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;

use super::Options;
use super::backoff::backoff;
use super::connect::{classify_tls_error, connect, describe};
use crate::codec::{Inbound, LineDecoder};
use crate::error::ClientError;
use crate::protocol::{ErrorCode, Frame};

/// Longest frame accepted from the server. A reply to a maximal line, with
/// every character escaped in JSON, fits with room to spare.
const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Lines handed to the writer task but not yet written.
const OUTBOX_LINES: usize = 64;

/// How long closing may take: writing what is queued, then close_notify.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a front end sends to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// One message, without its line terminator.
    Line(Vec<u8>),
    /// End of input: close once every pending line is answered.
    End,
    /// Stop now (Ctrl-C): close without waiting.
    Abort,
}

/// What the session asks its front end to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A connection is established: `target` and "version, cipher".
    Connected {
        /// `host:port`.
        target: String,
        /// The negotiated TLS version and cipher suite.
        tls: String,
    },
    /// The reversal of one of our lines.
    Reply(String),
    /// A `date` frame's payload (RFC 3339, UTC).
    Date(String),
    /// The server rejected one of our lines; its sentence.
    LineRejected(String),
    /// An `error` frame this version does not know; its sentence.
    ServerError(String),
    /// A frame exactly as received (`--json` mode), without its newline.
    Frame(String),
    /// The connection was lost and will be retried after `delay`.
    Reconnecting {
        /// Why the connection ended.
        reason: String,
        /// 1 for the first attempt after a loss.
        attempt: u32,
        /// How long until the attempt.
        delay: Duration,
    },
}

/// How a session that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Input ended and every line was answered.
    Finished,
    /// The user stopped it (Ctrl-C).
    Aborted,
    /// The front end stopped taking events: the reader of standard output
    /// went away (`clientcli | head -1`). Like other Unix tools, the client
    /// then ends at once and quietly.
    OutputClosed,
}

/// A connected session, ready to run.
pub struct Session {
    options: Options,
    config: Arc<rustls::ClientConfig>,
    events: mpsc::Sender<Event>,
    link: Link,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("target", &self.options.target())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connects; the first connection's failure is returned as it is
    /// (reconnection is only for connections that were working).
    pub async fn connect(
        options: Options,
        config: Arc<rustls::ClientConfig>,
        events: mpsc::Sender<Event>,
    ) -> Result<Self, ClientError> {
        let link = Link::open(&options, config.clone(), &events).await?;
        Ok(Self {
            options,
            config,
            events,
            link,
        })
    }

    /// Runs until input ends and every line is answered, the user aborts,
    /// or a failure that is not retried.
    pub async fn run(self, mut inputs: mpsc::Receiver<Input>) -> Result<Outcome, ClientError> {
        let Self {
            options,
            config,
            events,
            mut link,
        } = self;
        let mut lines = Lines::default();
        loop {
            let exchanged = link
                .exchange(&mut lines, &mut inputs, &events, options.json)
                .await;
            let failure = match exchanged {
                Ok(outcome) => {
                    link.close().await;
                    return Ok(outcome);
                }
                Err(failure) => failure,
            };
            link.abandon();
            if !options.reconnect || !failure.is_transient() {
                return Err(failure);
            }
            let retried = reconnect(&options, &config, failure, &mut lines, &mut inputs, &events);
            link = match retried.await? {
                Reconnected::Link(link) => link,
                Reconnected::Over(outcome) => return Ok(outcome),
            };
        }
    }
}

/// How waiting for a new connection ended.
enum Reconnected {
    /// Connected again: the session goes on over this link.
    Link(Link),
    /// The session ended while it waited (input done and answered, an
    /// abort, or nobody reading its events).
    Over(Outcome),
}

/// Retries with exponential backoff and jitter until a connection works,
/// the user aborts, or input ends with nothing left to answer.
async fn reconnect(
    options: &Options,
    config: &Arc<rustls::ClientConfig>,
    mut failure: ClientError,
    lines: &mut Lines,
    inputs: &mut mpsc::Receiver<Input>,
    events: &mpsc::Sender<Event>,
) -> Result<Reconnected, ClientError> {
    for attempt in 1.. {
        let delay = backoff(options.first_backoff, attempt);
        tracing::debug!(attempt, ?delay, reason = %failure, "reconnecting");
        let _ = events
            .send(Event::Reconnecting {
                reason: failure.to_string(),
                attempt,
                delay,
            })
            .await;
        let wait = tokio::time::sleep(delay);
        tokio::pin!(wait);
        // Lines typed meanwhile are kept, to be sent once connected.
        loop {
            if lines.input_done && lines.pending.is_empty() {
                return Ok(Reconnected::Over(Outcome::Finished));
            }
            tokio::select! {
                () = &mut wait => break,
                () = events.closed() => return Ok(Reconnected::Over(Outcome::OutputClosed)),
                input = inputs.recv(), if lines.listening() => {
                    if lines.take(input).is_break() {
                        return Ok(Reconnected::Over(Outcome::Aborted));
                    }
                }
            }
        }
        // Connecting can take up to the connect timeout: Ctrl-C must not.
        let opened = tokio::select! {
            opened = Link::open(options, config.clone(), events) => opened,
            () = lines.until_abort(inputs) => return Ok(Reconnected::Over(Outcome::Aborted)),
        };
        match opened {
            Ok(link) => return Ok(Reconnected::Link(link)),
            Err(err) if err.is_transient() => failure = err,
            Err(err) => return Err(err),
        }
    }
    Err(failure)
}

/// The lines of the session, across connections.
#[derive(Debug, Default)]
struct Lines {
    /// Lines sent or to be sent and not yet answered, oldest first.
    pending: VecDeque<Vec<u8>>,
    /// True once the front end has no more lines.
    input_done: bool,
    /// True once the front end's sender is gone: nothing, not even an
    /// abort, can come any more. An abort can come after the last line
    /// (Ctrl-C after Ctrl-D), so inputs are read until then.
    inputs_closed: bool,
}

impl Lines {
    /// Whether inputs are still to be read.
    fn listening(&self) -> bool {
        !self.inputs_closed
    }

    /// Reads inputs, keeping lines, until an abort (forever if none can
    /// come any more).
    async fn until_abort(&mut self, inputs: &mut mpsc::Receiver<Input>) {
        while self.listening() {
            if self.take(inputs.recv().await).is_break() {
                return;
            }
        }
        std::future::pending().await
    }

    /// Records one input from the front end; `Break` for an abort.
    fn take(&mut self, input: Option<Input>) -> ControlFlow<()> {
        match input {
            Some(Input::Line(line)) => self.pending.push_back(line),
            Some(Input::End) => self.input_done = true,
            None => {
                self.input_done = true;
                self.inputs_closed = true;
            }
            Some(Input::Abort) => return ControlFlow::Break(()),
        }
        ControlFlow::Continue(())
    }
}

/// One TLS connection to the server.
struct Link {
    /// Frames from the server.
    frames: FrameReader,
    /// Lines for the writer task; dropping it makes the task send
    /// close_notify after the last line.
    outbox: Option<mpsc::Sender<Vec<u8>>>,
    /// Writes lines, then closes.
    writer: JoinHandle<io::Result<()>>,
    /// How many of the pending lines (the oldest ones) were handed to this
    /// connection's writer. Invariant: `sent <= pending.len()`.
    sent: usize,
    /// True once a frame has arrived; before that, an alert is likely the
    /// server refusing our client certificate.
    got_frame: bool,
}

impl Link {
    async fn open(
        options: &Options,
        config: Arc<rustls::ClientConfig>,
        events: &mpsc::Sender<Event>,
    ) -> Result<Self, ClientError> {
        let stream = connect(options, config).await?;
        let _ = events
            .send(Event::Connected {
                target: options.target(),
                tls: describe(&stream),
            })
            .await;
        let (read, write) = tokio::io::split(stream);
        let (outbox, queue) = mpsc::channel(OUTBOX_LINES);
        Ok(Self {
            frames: FrameReader::new(read),
            outbox: Some(outbox),
            writer: tokio::spawn(write_lines(write, queue)),
            sent: 0,
            got_frame: false,
        })
    }

    /// Sends pending lines and shows frames until input is done and
    /// answered, the user aborts, or the connection ends (an error: the
    /// connection failed, or the server ended it).
    async fn exchange(
        &mut self,
        lines: &mut Lines,
        inputs: &mut mpsc::Receiver<Input>,
        events: &mpsc::Sender<Event>,
        json: bool,
    ) -> Result<Outcome, ClientError> {
        loop {
            if lines.input_done && lines.pending.is_empty() {
                return Ok(Outcome::Finished);
            }
            let has_unsent = self.sent < lines.pending.len();
            let Some(outbox) = self.outbox.clone() else {
                return Ok(Outcome::Aborted);
            };
            tokio::select! {
                biased;
                frame = self.frames.next() => match frame {
                    Ok(Some(line)) => {
                        self.got_frame = true;
                        if let Some(ended) = self.show(&line, lines, events, json).await {
                            return ended;
                        }
                    }
                    Ok(None) => return Err(ClientError::ConnectionLost {
                        reason: "the server closed the connection".to_owned(),
                    }),
                    Err(err) => return Err(self.read_failure(&err)),
                },
                permit = outbox.reserve(), if has_unsent => match permit {
                    Ok(permit) => {
                        permit.send(lines.pending[self.sent].clone());
                        self.sent += 1;
                    }
                    Err(_) => return Err(ClientError::ConnectionLost {
                        reason: "writing to the server failed".to_owned(),
                    }),
                },
                input = inputs.recv(), if lines.listening() => {
                    if lines.take(input).is_break() {
                        return Ok(Outcome::Aborted);
                    }
                }
                () = events.closed() => return Ok(Outcome::OutputClosed),
            }
        }
    }

    /// Handles one frame; returns how the session ends if the frame (or a
    /// front end that takes no more events) ends it.
    async fn show(
        &mut self,
        line: &str,
        lines: &mut Lines,
        events: &mpsc::Sender<Event>,
        json: bool,
    ) -> Option<Result<Outcome, ClientError>> {
        let frame = Frame::parse(line).unwrap_or(Frame::Unknown);
        let (event, failure) = match frame {
            Frame::Date { payload } => (Some(Event::Date(payload)), None),
            Frame::String { payload } => {
                self.answered(lines);
                (Some(Event::Reply(payload)), None)
            }
            Frame::Error {
                code: ErrorCode::LineTooLong | ErrorCode::InvalidUtf8,
                payload,
            } => {
                self.answered(lines);
                (Some(Event::LineRejected(payload)), None)
            }
            // These end the session: the sentence and exit status say why.
            Frame::Error {
                code: ErrorCode::ServerFull,
                ..
            } => (None, Some(ClientError::ServerFull)),
            Frame::Error {
                code: ErrorCode::AddressLimit,
                ..
            } => (None, Some(ClientError::AddressLimit)),
            Frame::Error {
                code: ErrorCode::ShuttingDown,
                ..
            } => (None, Some(ClientError::ServerShutDown)),
            Frame::Error {
                code: ErrorCode::Unknown,
                payload,
            } => (Some(Event::ServerError(payload)), None),
            Frame::Unknown => (None, None),
        };
        // `--json` shows every frame as received, those that end the
        // session included, before the session ends.
        let event = if json {
            Some(Event::Frame(line.to_owned()))
        } else {
            event
        };
        if let Some(event) = event
            && events.send(event).await.is_err()
        {
            return Some(Ok(Outcome::OutputClosed));
        }
        failure.map(Err)
    }

    /// The oldest line sent on this connection has its answer.
    fn answered(&mut self, lines: &mut Lines) {
        if self.sent > 0 {
            lines.pending.pop_front();
            self.sent -= 1;
        }
    }

    fn read_failure(&self, err: &io::Error) -> ClientError {
        if !self.got_frame {
            // After the handshake no name is verified any more.
            // A certificate refused or an alert, not a garbled record: the
            // handshake succeeded, so the server does speak TLS.
            if let Some(failure) = classify_tls_error(err, "", "the server")
                .filter(|failure| !matches!(failure, ClientError::NotTls { .. }))
            {
                return failure;
            }
        }
        let reason = if err.kind() == io::ErrorKind::UnexpectedEof {
            "the server closed the connection without TLS close_notify".to_owned()
        } else {
            err.to_string()
        };
        ClientError::ConnectionLost { reason }
    }

    /// Writes what is queued, sends close_notify, and waits (bounded) for
    /// that to finish.
    async fn close(mut self) {
        self.outbox = None;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, &mut self.writer).await;
        self.writer.abort();
    }

    /// Drops a failed connection without ceremony.
    fn abandon(&self) {
        self.writer.abort();
    }
}

/// Writes lines in batches, flushing after each; sends close_notify once the
/// outbox is closed.
async fn write_lines(
    mut writer: WriteHalf<TlsStream<TcpStream>>,
    mut queue: mpsc::Receiver<Vec<u8>>,
) -> io::Result<()> {
    let mut batch = Vec::new();
    while let Some(line) = queue.recv().await {
        batch.extend_from_slice(&line);
        batch.push(b'\n');
        while batch.len() < 64 * 1024 {
            let Ok(line) = queue.try_recv() else { break };
            batch.extend_from_slice(&line);
            batch.push(b'\n');
        }
        writer.write_all(&batch).await?;
        writer.flush().await?;
        batch.clear();
    }
    writer.shutdown().await
}

/// Reads the server's frames as lines. Cancel-safe: a `next` dropped while
/// waiting loses nothing.
struct FrameReader {
    reader: ReadHalf<TlsStream<TcpStream>>,
    decoder: LineDecoder,
    chunk: Box<[u8]>,
    /// The unread part of `chunk` is `chunk[start..end]`.
    start: usize,
    end: usize,
}

impl FrameReader {
    fn new(reader: ReadHalf<TlsStream<TcpStream>>) -> Self {
        Self {
            reader,
            decoder: LineDecoder::new(MAX_FRAME_BYTES),
            chunk: vec![0; 16 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The next frame line, `None` at a clean end of stream. Lines that are
    /// too long or not UTF-8 are skipped: no valid frame is either.
    async fn next(&mut self) -> io::Result<Option<String>> {
        loop {
            let mut input = &self.chunk[self.start..self.end];
            let item = self.decoder.decode(&mut input).map(|item| match item {
                Inbound::Line(text) => Some(text.to_owned()),
                Inbound::TooLong | Inbound::InvalidUtf8 => None,
            });
            self.start = self.end - input.len();
            match item {
                Some(Some(line)) => return Ok(Some(line)),
                Some(None) => continue,
                None => {}
            }
            let read = self.reader.read(&mut self.chunk).await?;
            if read == 0 {
                return Ok(None);
            }
            self.start = 0;
            self.end = read;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_kept_in_order_until_end_or_abort() {
        let mut lines = Lines::default();
        assert!(lines.take(Some(Input::Line(b"a".to_vec()))).is_continue());
        assert!(lines.take(Some(Input::Line(b"b".to_vec()))).is_continue());
        assert_eq!(lines.pending, [b"a".to_vec(), b"b".to_vec()]);
        assert!(!lines.input_done);
        assert!(lines.take(Some(Input::End)).is_continue());
        assert!(lines.input_done);
        // After the last line an abort can still come (Ctrl-C after Ctrl-D).
        assert!(lines.listening());
        assert!(lines.take(Some(Input::Abort)).is_break());
        assert!(lines.take(None).is_continue());
        assert!(!lines.listening());
    }

    #[tokio::test]
    async fn waiting_for_an_abort_keeps_the_lines_typed_meanwhile() {
        let (tx, mut rx) = mpsc::channel(8);
        for input in [
            Input::Line(b"a".to_vec()),
            Input::Line(b"b".to_vec()),
            Input::End,
            Input::Abort,
            Input::Line(b"after".to_vec()),
        ] {
            tx.send(input).await.expect("queued");
        }
        let mut lines = Lines::default();
        lines.until_abort(&mut rx).await;
        assert_eq!(lines.pending, [b"a".to_vec(), b"b".to_vec()]);
        assert!(lines.input_done);
        // What follows the abort is left for whoever reads next.
        assert_eq!(rx.recv().await, Some(Input::Line(b"after".to_vec())));
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_inputs_left_an_abort_is_awaited_forever() {
        let (tx, mut rx) = mpsc::channel::<Input>(1);
        drop(tx);
        let mut lines = Lines::default();
        let waited =
            tokio::time::timeout(Duration::from_secs(3600), lines.until_abort(&mut rx)).await;
        assert!(waited.is_err(), "until_abort returned");
        assert!(lines.input_done && !lines.listening());
    }
}
