//! One client session, whatever the front end: lines come in as [`Input`],
//! what the user should see goes out as [`Event`].
//!
//! Every line sent stays pending until its own answer (a reply, or a
//! per-line error) arrives (`super::lines`). This is what makes end of
//! input safe (the session closes only once nothing is pending),
//! reconnection exact (after a new connection, every pending line is sent
//! again, in order, and each is shown once, when its one answer arrives),
//! and the outcome honest (its [`Tally`] says whether every line got its
//! own reply). Each connection is a `super::link::Link`; between two, a
//! reconnecting session waits as `super::backoff` says.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Options;
use super::backoff::Backoff;
use super::lines::{Lines, Tally};
use super::link::Link;
use crate::error::ClientError;

/// What a front end sends to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// One message, without its line terminator: the next input line.
    Line(Vec<u8>),
    /// An input line the front end did not send (it said why): it keeps
    /// the numbering of later lines, and counts as not answered.
    Skipped,
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
    /// The server rejected one of our lines.
    LineRejected {
        /// The line's input number, from 1.
        line: u64,
        /// The server's sentence.
        reason: String,
    },
    /// A reply that answers none of our lines (nothing was waiting, or it
    /// is not made of the characters of the line that was).
    Unsolicited(String),
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
    /// Input ended and every line sent was answered (with its reply, or
    /// rejected: the tally says).
    Finished(Tally),
    /// The user stopped it (Ctrl-C); the tally counts the lines left
    /// unanswered.
    Aborted(Tally),
    /// The front end stopped taking events: the reader of standard output
    /// went away (`clientcli | head -1`). Like other Unix tools, the client
    /// then ends at once and quietly.
    OutputClosed,
}

/// A connected session, ready to run.
pub struct Session {
    /// Whom to connect to and how; whether to reconnect. Fixed for the
    /// session's life: every connection uses the same.
    options: Options,
    /// Whom to trust, the same for every connection, so that a reconnect
    /// never trusts more than the first connection did.
    config: Arc<rustls::ClientConfig>,
    /// Where everything the front end shows goes, in order. Invariant:
    /// bounded; the session waits for the front end rather than dropping an
    /// event, and ends when nobody reads them any more.
    events: mpsc::Sender<Event>,
    /// The connection in use. Invariant: a working connection (its
    /// handshake done) when the session is built, and replaced only by
    /// another working one; a failed link is dropped at once.
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
        let mut schedule = Backoff::new(options.first_backoff);
        loop {
            let exchanged = link.exchange(&mut lines, &mut inputs, &events).await;
            schedule.served(link.served_for());
            let failure = match exchanged {
                Ok(outcome) => {
                    link.close().await;
                    return Ok(outcome);
                }
                Err(failure) => failure,
            };
            // A failed connection goes at once (a server shutting down is
            // not kept waiting for a client that will go elsewhere).
            drop(link);
            if !options.reconnect || !failure.is_transient() {
                return Err(failure);
            }
            let reconnecting = Reconnecting {
                options: &options,
                config: &config,
                events: &events,
            };
            let retried =
                reconnecting.until_connected(failure, &mut schedule, &mut lines, &mut inputs);
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

/// What reconnecting needs from the session.
struct Reconnecting<'a> {
    options: &'a Options,
    config: &'a Arc<rustls::ClientConfig>,
    events: &'a mpsc::Sender<Event>,
}

impl Reconnecting<'_> {
    /// Retries with the backoff `schedule` until a connection works, the
    /// user aborts, or input ends with nothing left to answer.
    async fn until_connected(
        &self,
        mut failure: ClientError,
        schedule: &mut Backoff,
        lines: &mut Lines,
        inputs: &mut mpsc::Receiver<Input>,
    ) -> Result<Reconnected, ClientError> {
        loop {
            let (attempt, delay) = schedule.next_attempt();
            tracing::debug!(attempt, ?delay, reason = %failure, "reconnecting");
            let notice = Event::Reconnecting {
                reason: failure.to_string(),
                attempt,
                delay,
            };
            let _ = self.events.send(notice).await;
            if let Some(over) = self.wait(delay, lines, inputs).await {
                return Ok(Reconnected::Over(over));
            }
            // Connecting can take up to the connect timeout: Ctrl-C must not.
            let opened = tokio::select! {
                opened = Link::open(self.options, self.config.clone(), self.events) => opened,
                () = lines.until_abort(inputs) => return Ok(Reconnected::Over(Outcome::Aborted(lines.tally()))),
            };
            match opened {
                Ok(link) => return Ok(Reconnected::Link(link)),
                Err(err) if err.is_transient() => failure = err,
                Err(err) => return Err(err),
            }
        }
    }

    /// Waits `delay`, keeping the lines typed meanwhile; the outcome if the
    /// session ends first.
    async fn wait(
        &self,
        delay: Duration,
        lines: &mut Lines,
        inputs: &mut mpsc::Receiver<Input>,
    ) -> Option<Outcome> {
        let wait = tokio::time::sleep(delay);
        tokio::pin!(wait);
        loop {
            if lines.all_done() {
                return Some(Outcome::Finished(lines.tally()));
            }
            tokio::select! {
                () = &mut wait => return None,
                () = self.events.closed() => return Some(Outcome::OutputClosed),
                input = inputs.recv(), if lines.listening() => {
                    if lines.take(input).is_break() {
                        return Some(Outcome::Aborted(lines.tally()));
                    }
                }
            }
        }
    }
}
