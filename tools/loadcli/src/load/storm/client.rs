//! One storm client: sends its lines as they come due, checks every reply,
//! and through a lost connection reconnects as clientcli does and sends
//! again, in order, every line not answered yet (those lost in flight and
//! those due while it was away).
//!
//! Each line must be answered exactly once, in order, by its exact
//! reversal: a duplicate, a reply out of order or a wrong reply is counted
//! and the first one described.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nea::client::Backoff;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};

use super::lines::{self, Incoming};
use super::reconnect::{self, Connection};
use super::shared::Shared;

/// Most lines written at once after a reconnection, so that a long backlog
/// goes out in writes of about 32 KiB.
const BATCH_LINES: u64 = 1024;

/// How long a client that is done may take to close (close_notify).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How one connection ended.
enum Served {
    /// Every line of the client is answered.
    Done,
    /// The connection was lost or the server ended it.
    Lost,
}

/// One reconnecting client.
pub(super) struct Client {
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
    /// Re-send unanswered lines after reconnecting (off only to check that
    /// the run catches a client that forgets them).
    resend: bool,
    /// When it reconnects next, as clientcli's schedule says.
    schedule: Backoff,
    /// When the connection in use opened.
    opened: Instant,
    /// Whether the connection in use has sent a date or a reply (not only
    /// a rejection): only such a connection, up for
    /// [`nea::client::SERVED_FOR`], starts the schedule over.
    served: bool,
}

impl Client {
    /// Client `id`, connected, with nothing sent yet.
    pub(super) fn new(
        id: usize,
        shared: Arc<Shared>,
        tls: Arc<rustls::ClientConfig>,
        options: Arc<nea::client::Options>,
        resend: bool,
    ) -> Self {
        let total = shared.schedule.total(id);
        Self {
            id,
            shared,
            tls,
            options,
            total,
            acked: 0,
            sent: 0,
            recovering: false,
            backlog_until: 0,
            resend,
            schedule: Backoff::default(),
            opened: Instant::now(),
            served: false,
        }
    }

    /// Serves connection after connection until every line is answered,
    /// or a failure clientcli does not retry.
    pub(super) async fn run(mut self, stream: Connection) {
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
                Served::Lost => self.lost(),
            }
        }
    }

    /// Records a lost connection: the client is away, and recovering until
    /// it has caught up.
    fn lost(&mut self) {
        let served_for = if self.served {
            self.opened.elapsed()
        } else {
            Duration::ZERO
        };
        self.schedule.served(served_for);
        let shared = &self.shared;
        shared.connected.fetch_sub(1, Ordering::Relaxed);
        let handshakes = shared.handshakes.load(Ordering::Relaxed);
        shared
            .waves()
            .lost(shared.now(), handshakes, self.recovering);
        self.recovering = true;
    }

    /// Waits and tries as clientcli does; `None` if it gives up.
    async fn reconnect(&mut self) -> Option<Connection> {
        let stream = reconnect::reconnect(
            self.id,
            &self.shared,
            &self.options,
            &self.tls,
            &mut self.schedule,
        )
        .await?;
        self.opened = Instant::now();
        self.served = false;
        let shared = &self.shared;
        shared.connected.fetch_add(1, Ordering::Relaxed);
        let now = shared.now();
        shared.waves().connected(now);
        self.backlog_until = shared.schedule.due(self.id, now);
        if !self.resend {
            // Forget every line not answered yet.
            self.sent = self.sent.max(self.backlog_until);
        }
        Some(stream)
    }

    /// Sends due lines (first every line not answered yet) and checks
    /// replies, until every line is answered or the connection ends.
    async fn serve(&mut self, stream: Connection) -> Served {
        if self.resend {
            self.sent = self.acked;
        }
        self.caught_up();
        let (read, mut write) = tokio::io::split(stream);
        // Lines handed to this connection, shared by its writer and reader.
        let sent = AtomicU64::new(self.sent);
        let (shared, id, total) = (self.shared.clone(), self.id, self.total);
        let served = {
            let reader = self.read_replies(read, &sent);
            tokio::pin!(reader);
            tokio::select! {
                served = &mut reader => served,
                _ = write_due_lines(&shared, id, total, &sent, &mut write) => Served::Lost,
            }
        };
        if let Served::Done = served {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, write.shutdown()).await;
            self.shared.connected.fetch_sub(1, Ordering::Relaxed);
        }
        self.sent = sent.load(Ordering::Relaxed).max(self.acked);
        served
    }

    /// Reads and checks replies until every line is answered (`Done`) or
    /// the connection ends (`Lost`).
    async fn read_replies(&mut self, read: ReadHalf<Connection>, sent: &AtomicU64) -> Served {
        let mut reader = BufReader::with_capacity(4096, read);
        let mut line = String::new();
        while self.acked < self.total {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return Served::Lost,
                Ok(_) => {}
            }
            let incoming = lines::incoming(self.shared.protocol, line.trim_end_matches('\n'));
            self.served |= !matches!(incoming, Incoming::End);
            match incoming {
                Incoming::Reply(reply) => self.check(&reply, sent.load(Ordering::Relaxed)),
                Incoming::LineError(sentence) => self.line_error(&sentence),
                Incoming::End => return Served::Lost,
                Incoming::Other => {}
            }
        }
        Served::Done
    }

    /// Checks one reply against the oldest line not answered; `sent` lines
    /// have been written.
    fn check(&mut self, reply: &str, sent: u64) {
        let (id, shared) = (self.id, self.shared.clone());
        let acked = self.acked;
        match lines::seq_of(id, reply) {
            Some(seq) if seq < acked => shared.problem(&shared.duplicates, || {
                format!("client {id}: line {seq} answered again (line {acked} was next)")
            }),
            Some(seq) if seq < sent && reply == lines::expected(shared.protocol, id, seq) => {
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

    /// A per-line error answers the oldest line not answered, wrongly.
    fn line_error(&mut self, sentence: &str) {
        let (id, seq, shared) = (self.id, self.acked, &self.shared);
        shared.problem(&shared.wrong, || {
            format!("client {id}, line {seq}: an error instead of a reply: {sentence}")
        });
        self.acked += 1;
        self.caught_up();
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

/// Writes client `id`'s lines as they come due, from line `sent` on, until
/// the connection fails; `sent` is updated before each write goes, since a
/// reply can come while the write is still being flushed. Once all `total`
/// lines are written it waits for ever (the reader ends the connection).
async fn write_due_lines(
    shared: &Shared,
    id: usize,
    total: u64,
    sent: &AtomicU64,
    write: &mut WriteHalf<Connection>,
) -> std::io::Result<()> {
    let schedule = shared.schedule;
    let mut next = sent.load(Ordering::Relaxed);
    let mut batch = String::new();
    loop {
        let due = schedule.due(id, shared.now());
        if next < due {
            let upto = due.min(next + BATCH_LINES);
            lines::batch(id, next..upto, &mut batch);
            sent.store(upto, Ordering::Relaxed);
            write.write_all(batch.as_bytes()).await?;
            write.flush().await?;
            next = upto;
        } else if due >= total {
            std::future::pending::<()>().await;
        } else {
            let at = tokio::time::Instant::from_std(shared.started) + schedule.due_at(id, due);
            tokio::time::sleep_until(at).await;
        }
    }
}
