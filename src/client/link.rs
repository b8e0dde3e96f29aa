//! One TLS connection of a session: pending lines out, frames in.
//!
//! Reading frames and writing lines run side by side: lines go to a writer
//! task through a bounded queue, and the link keeps reading frames while
//! that task writes. A client that stopped reading to finish a large write
//! could otherwise deadlock with the server's own flow control.
//!
//! A server that stops answering is noticed two ways (SPEC §13): the
//! kernel gives up on a path that died (`crate::dead_peer`: the read fails
//! with `ETIMEDOUT`), and while lines wait for replies, nothing at all from
//! the server for the dead-peer timeout ends the link too (a server that
//! accepts a connection and then says nothing is no better than a dead
//! one). A server that is merely quiet while nothing is asked of it is
//! kept for ever.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::Options;
use super::connect::{classify_tls_error, connect, describe};
use super::lines::Lines;
use super::session::{Event, Input, Outcome};
use crate::codec::{Inbound, LineDecoder};
use crate::error::ClientError;
use crate::protocol::{ErrorCode, Frame};

/// Longest frame accepted from the server. A reply to a maximal line, with
/// every character escaped in JSON, fits with room to spare.
pub(crate) const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Lines handed to the writer task but not yet written.
const OUTBOX_LINES: usize = 64;

/// How long closing may take: writing what is queued, then close_notify.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// One TLS connection to the server.
pub(crate) struct Link {
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
    /// When the connection was made.
    opened: Instant,
    /// True once the server sent a date or a reply: the connection was
    /// served, not only rejected.
    served: bool,
    /// When the server last sent anything, or a line was sent with none
    /// waiting before it: the silence that counts against the dead-peer
    /// timeout starts here.
    heard: Instant,
    /// See [`Options::dead_peer_timeout`].
    dead_peer_timeout: Duration,
    /// Report frames exactly as received (`--json`).
    json: bool,
}

impl Link {
    /// Connects, and tells the front end where to.
    pub(crate) async fn open(
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
            opened: Instant::now(),
            served: false,
            heard: Instant::now(),
            dead_peer_timeout: options.dead_peer_timeout,
            json: options.json,
        })
    }

    /// How long the connection was served: since it opened, if the server
    /// sent a date or a reply; nothing if it only rejected us.
    pub(crate) fn served_for(&self) -> Duration {
        if self.served {
            self.opened.elapsed()
        } else {
            Duration::ZERO
        }
    }

    /// Sends pending lines and shows frames until input is done and
    /// answered, the user aborts, or the connection ends (an error: the
    /// connection failed, or the server ended it).
    pub(crate) async fn exchange(
        &mut self,
        lines: &mut Lines,
        inputs: &mut mpsc::Receiver<Input>,
        events: &mpsc::Sender<Event>,
    ) -> Result<Outcome, ClientError> {
        loop {
            if lines.all_done() {
                return Ok(Outcome::Finished(lines.tally()));
            }
            let has_unsent = self.sent < lines.pending.len();
            let Some(outbox) = self.outbox.clone() else {
                return Ok(Outcome::Aborted(lines.tally()));
            };
            let silence = tokio::time::sleep_until(self.heard + self.dead_peer_timeout);
            tokio::select! {
                biased;
                frame = self.frames.next() => {
                    if let Some(ended) = self.received(frame, lines, events).await {
                        return ended;
                    }
                }
                permit = outbox.reserve(), if has_unsent => match permit {
                    Ok(permit) => {
                        if self.sent == 0 {
                            self.heard = Instant::now();
                        }
                        permit.send(lines.pending[self.sent].text.clone());
                        self.sent += 1;
                    }
                    Err(_) => return Err(ClientError::ConnectionLost {
                        reason: "writing to the server failed".to_owned(),
                    }),
                },
                input = inputs.recv(), if lines.listening() => {
                    if lines.take(input).is_break() {
                        return Ok(Outcome::Aborted(lines.tally()));
                    }
                }
                () = events.closed() => return Ok(Outcome::OutputClosed),
                () = silence, if self.sent > 0 => {
                    return Err(ClientError::ServerSilent { after: self.dead_peer_timeout });
                }
            }
        }
    }

    /// Handles what one read gave; returns how the exchange ends, if it
    /// does.
    async fn received(
        &mut self,
        frame: Result<Option<String>, FrameError>,
        lines: &mut Lines,
        events: &mpsc::Sender<Event>,
    ) -> Option<Result<Outcome, ClientError>> {
        match frame {
            Ok(Some(line)) => {
                self.got_frame = true;
                self.heard = Instant::now();
                self.show(&line, lines, events).await
            }
            Ok(None) => Some(Err(ClientError::ConnectionLost {
                reason: "the server closed the connection".to_owned(),
            })),
            Err(FrameError::Read(err)) => Some(Err(self.read_failure(&err))),
            Err(FrameError::TooLarge) => Some(Err(ClientError::Protocol {
                reason: format!("the server sent a frame larger than {MAX_FRAME_BYTES} bytes"),
            })),
            Err(FrameError::NotUtf8) => Some(Err(ClientError::Protocol {
                reason: "the server sent a frame that is not UTF-8".to_owned(),
            })),
        }
    }

    /// Handles one frame; returns how the exchange ends if the frame (or a
    /// front end that takes no more events) ends it.
    async fn show(
        &mut self,
        line: &str,
        lines: &mut Lines,
        events: &mpsc::Sender<Event>,
    ) -> Option<Result<Outcome, ClientError>> {
        let (event, failure) = match Frame::parse(line) {
            Ok(frame) => self.take_frame(frame, lines),
            Err(err) => (
                None,
                Some(ClientError::Protocol {
                    reason: format!("the server sent a frame that is not valid JSON ({err})"),
                }),
            ),
        };
        // `--json` shows every frame as received, those that end the
        // session included, before the session ends.
        let event = if self.json {
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

    /// What one frame means: the event to show, and the failure that ends
    /// the exchange, if any.
    fn take_frame(
        &mut self,
        frame: Frame,
        lines: &mut Lines,
    ) -> (Option<Event>, Option<ClientError>) {
        match frame {
            Frame::Date { payload } => {
                self.served = true;
                (Some(Event::Date(payload)), None)
            }
            Frame::String { payload } if self.sent > 0 && lines.is_reply_to_oldest(&payload) => {
                self.served = true;
                self.sent -= 1;
                lines.answered();
                (Some(Event::Reply(payload)), None)
            }
            Frame::String { payload } => (Some(Event::Unsolicited(payload)), None),
            Frame::Error {
                code: ErrorCode::LineTooLong | ErrorCode::InvalidUtf8,
                payload,
            } if self.sent > 0 => {
                self.sent -= 1;
                let line = lines.rejected().unwrap_or_default();
                (
                    Some(Event::LineRejected {
                        line,
                        reason: payload,
                    }),
                    None,
                )
            }
            Frame::Error { code, payload } => match code {
                // These end the session: the sentence and exit status say why.
                ErrorCode::ServerFull => (None, Some(ClientError::ServerFull)),
                ErrorCode::AddressLimit => (None, Some(ClientError::AddressLimit)),
                ErrorCode::ShuttingDown => (None, Some(ClientError::ServerShutDown)),
                _ => (Some(Event::ServerError(payload)), None),
            },
            Frame::Unknown => (None, None),
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
        if crate::dead_peer::gave_up(err) {
            return ClientError::ServerSilent {
                after: self.dead_peer_timeout,
            };
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
    pub(crate) async fn close(mut self) {
        self.outbox = None;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, &mut self.writer).await;
        self.writer.abort();
    }
}

impl Drop for Link {
    /// A link dropped without [`Link::close`] (a failed one) goes at once:
    /// its writer stops and the socket is closed, so that a server shutting
    /// down is not kept waiting by a client that will reconnect elsewhere.
    fn drop(&mut self) {
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

/// Why no frame could be read.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// Reading the connection failed.
    Read(io::Error),
    /// A frame longer than [`MAX_FRAME_BYTES`].
    TooLarge,
    /// A frame that is not UTF-8.
    NotUtf8,
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

    /// The next frame line, `None` at a clean end of stream.
    async fn next(&mut self) -> Result<Option<String>, FrameError> {
        loop {
            let mut input = &self.chunk[self.start..self.end];
            let item = self.decoder.decode(&mut input).map(|item| match item {
                Inbound::Line(text) => Ok(text.to_owned()),
                Inbound::TooLong => Err(FrameError::TooLarge),
                Inbound::InvalidUtf8 => Err(FrameError::NotUtf8),
            });
            self.start = self.end - input.len();
            if let Some(item) = item {
                return item.map(Some);
            }
            let read = self
                .reader
                .read(&mut self.chunk)
                .await
                .map_err(FrameError::Read)?;
            if read == 0 {
                return Ok(None);
            }
            self.start = 0;
            self.end = read;
        }
    }
}
