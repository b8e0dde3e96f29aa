//! Admission: whether a client whose handshake is done gets a slot, and how
//! a client that does not is turned away (SPEC §6).
//!
//! A client counts from the end of its TLS handshake until its connection
//! closes. Its [`ClientSlot`] is a permit: dropping it frees the slot at
//! once. A client that finds no free slot gets a [`Rejection`], a value,
//! not an error: it is told why in one `error` frame and closed cleanly, and
//! no connected client notices anything.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::session;
use super::source::Source;
use crate::protocol::{ErrorCode, Frame};

/// Longest a rejection may take: write, close, linger.
const REJECT_DEADLINE: Duration = Duration::from_secs(2);

/// The client slots: `max` in all, and at most `per_source` for one
/// source when that limit is set.
#[derive(Debug)]
pub(super) struct ClientSlots {
    held: Mutex<Held>,
    /// `--max-clients`.
    max: usize,
    /// `--max-clients-per-address`; 0 for no limit.
    per_source: usize,
    /// Told each time a slot is taken or freed (for the service manager's
    /// status line).
    changed: tokio::sync::Notify,
    /// The `nea_clients_connected` gauge, set whenever `total` changes.
    gauge: prometheus_client::metrics::gauge::Gauge,
}

/// The slots held right now.
#[derive(Debug, Default)]
struct Held {
    /// Slots held. Invariant: at most `max`, and the sum of `by_source`
    /// when the per-source limit is set.
    total: usize,
    /// Slots held by each source, only while a per-source limit is set.
    /// Invariant: no zero entry, none above `per_source`.
    by_source: HashMap<Source, usize>,
}

/// One client's place among the slots, held from the end of its handshake
/// until its last frame is written; dropping it frees the place at once.
#[derive(Debug)]
pub(super) struct ClientSlot {
    /// The slots it is one of; `None` once freed.
    slots: Option<Arc<ClientSlots>>,
    source: Source,
}

/// Why a client whose handshake succeeded is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rejection {
    /// Every slot is taken; the limit.
    ServerFull {
        /// `--max-clients`.
        max: usize,
    },
    /// The client's source holds every slot it may.
    AddressLimit {
        /// `--max-clients-per-address`.
        max: usize,
    },
}

impl Rejection {
    /// The code, as the metrics count it.
    pub(super) fn metric_code(self) -> super::metrics::RejectionCode {
        match self {
            Self::ServerFull { .. } => super::metrics::RejectionCode::ServerFull,
            Self::AddressLimit { .. } => super::metrics::RejectionCode::AddressLimit,
        }
    }

    /// The code, as it is written on the wire.
    pub(super) fn wire_code(self) -> &'static str {
        match self {
            Self::ServerFull { .. } => "server_full",
            Self::AddressLimit { .. } => "address_limit",
        }
    }

    /// The code of the `error` frame that tells the client.
    fn code(self) -> ErrorCode {
        match self {
            Self::ServerFull { .. } => ErrorCode::ServerFull,
            Self::AddressLimit { .. } => ErrorCode::AddressLimit,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, max) = match *self {
            Self::ServerFull { max } => ("server full", max),
            Self::AddressLimit { max } => ("address at its limit", max),
        };
        let code = self.wire_code();
        let clients = if max == 1 { "client" } else { "clients" };
        write!(f, "{what} ({max} {clients}); sent {code}")
    }
}

impl ClientSlots {
    pub(super) fn new(
        max: usize,
        per_source: usize,
        gauge: prometheus_client::metrics::gauge::Gauge,
    ) -> Arc<Self> {
        Arc::new(Self {
            held: Mutex::new(Held::default()),
            max,
            per_source,
            changed: tokio::sync::Notify::new(),
            gauge,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a client from `source` whose handshake just completed,
    /// without waiting. A source at its own limit is told so even when the
    /// server is full too: that is the limit it would meet again.
    pub(super) fn admit(self: &Arc<Self>, source: Source) -> Result<ClientSlot, Rejection> {
        let mut taken = self.lock();
        if self.per_source > 0 {
            let held = taken.by_source.get(&source).copied().unwrap_or(0);
            if held >= self.per_source {
                return Err(Rejection::AddressLimit {
                    max: self.per_source,
                });
            }
        }
        if taken.total >= self.max {
            return Err(Rejection::ServerFull { max: self.max });
        }
        taken.total += 1;
        self.gauge
            .set(i64::try_from(taken.total).unwrap_or(i64::MAX));
        if self.per_source > 0 {
            *taken.by_source.entry(source).or_insert(0) += 1;
        }
        self.changed.notify_one();
        Ok(ClientSlot {
            slots: Some(self.clone()),
            source,
        })
    }

    /// Clients holding a slot right now.
    pub(super) fn connected(&self) -> usize {
        self.lock().total
    }

    /// `--max-clients`.
    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// Completes once a slot has been taken or freed since the last time
    /// it completed (or since the start).
    pub(super) async fn changed(&self) {
        self.changed.notified().await;
    }
}

impl ClientSlot {
    /// Frees the slot now; the clients still connected once it is free
    /// (what the leave line says, right for each client even when many
    /// leave at once, as at shutdown).
    pub(super) fn release(mut self) -> usize {
        self.free().unwrap_or(0)
    }

    /// Frees the slot, once; the clients still connected then.
    fn free(&mut self) -> Option<usize> {
        let slots = self.slots.take()?;
        let mut held = slots.lock();
        held.total -= 1;
        slots
            .gauge
            .set(i64::try_from(held.total).unwrap_or(i64::MAX));
        if let Some(count) = held.by_source.get_mut(&self.source) {
            *count -= 1;
            if *count == 0 {
                held.by_source.remove(&self.source);
            }
        }
        let remaining = held.total;
        drop(held);
        slots.changed.notify_one();
        Some(remaining)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.free();
    }
}

impl super::session::Place for ClientSlot {
    fn release(self) -> usize {
        Self::release(self)
    }
}

/// The number of clients connected to a [`super::Server`], for whoever
/// reports it (a service manager's status line, say).
#[derive(Debug, Clone)]
pub struct ClientCount {
    slots: Arc<ClientSlots>,
}

impl ClientCount {
    /// The slots of a server with `config`'s limits, reported in `gauge`.
    pub(super) fn new(
        config: &super::Config,
        gauge: prometheus_client::metrics::gauge::Gauge,
    ) -> Self {
        Self {
            slots: ClientSlots::new(config.max_clients, config.max_clients_per_address, gauge),
        }
    }

    /// The slots themselves, for the server that takes and frees them.
    pub(super) fn slots(&self) -> Arc<ClientSlots> {
        self.slots.clone()
    }

    /// Clients connected right now.
    pub fn connected(&self) -> usize {
        self.slots.connected()
    }

    /// The most clients the server takes at once (`--max-clients`).
    pub fn max(&self) -> usize {
        self.slots.max()
    }

    /// Completes once a client has come or gone since the last time it
    /// completed (or since the server started). One waiter at a time.
    pub async fn changed(&self) {
        self.slots.changed().await;
    }
}

/// Tells the client why it is turned away (one `error` frame) and closes the
/// session cleanly, all within [`REJECT_DEADLINE`].
pub(super) async fn reject<S>(mut stream: S, rejection: Rejection)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut frame = Vec::new();
    Frame::error(rejection.code()).encode(&mut frame);
    let _ = tokio::time::timeout(REJECT_DEADLINE, async {
        let written = async {
            stream.write_all(&frame).await?;
            stream.flush().await
        };
        if written.await.is_ok() {
            session::close(stream, true).await;
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    fn source(last: u8) -> Source {
        Source::from(std::net::IpAddr::from([127, 0, 0, last]))
    }

    #[test]
    fn a_freed_slot_is_free_again_at_once() {
        let slots = ClientSlots::new(2, 0, Default::default());
        let first = slots.admit(source(1)).expect("a slot");
        let _second = slots.admit(source(1)).expect("a slot");
        assert_eq!(slots.connected(), 2);
        assert_eq!(
            slots.admit(source(2)).err(),
            Some(Rejection::ServerFull { max: 2 })
        );
        drop(first);
        assert_eq!(slots.connected(), 1);
        assert!(slots.admit(source(1)).is_ok());
    }

    #[test]
    fn a_source_at_its_limit_is_told_so_and_others_are_served() {
        let slots = ClientSlots::new(3, 2, Default::default());
        let first = slots.admit(source(1)).expect("a slot");
        let _second = slots.admit(source(1)).expect("a slot");
        assert_eq!(
            slots.admit(source(1)).err(),
            Some(Rejection::AddressLimit { max: 2 })
        );
        let _other = slots.admit(source(2)).expect("another source is served");
        // Full, and source 1 at its limit too: the limit it would meet again.
        assert_eq!(
            slots.admit(source(1)).err(),
            Some(Rejection::AddressLimit { max: 2 })
        );
        assert_eq!(
            slots.admit(source(3)).err(),
            Some(Rejection::ServerFull { max: 3 })
        );
        drop(first);
        assert_eq!(slots.connected(), 2);
        assert!(
            slots.admit(source(1)).is_ok(),
            "its freed slot is its again"
        );
    }

    #[test]
    fn a_rejection_reads_as_log_text() {
        assert_eq!(
            Rejection::ServerFull { max: 1 }.to_string(),
            "server full (1 client); sent server_full"
        );
        assert_eq!(
            Rejection::ServerFull { max: 100 }.to_string(),
            "server full (100 clients); sent server_full"
        );
        assert_eq!(
            Rejection::AddressLimit { max: 10 }.to_string(),
            "address at its limit (10 clients); sent address_limit"
        );
    }

    #[tokio::test]
    async fn a_rejected_client_gets_one_frame_then_the_end() {
        let (mut client, server) = tokio::io::duplex(1024);
        let rejected = tokio::spawn(reject(server, Rejection::ServerFull { max: 1 }));
        let mut received = String::new();
        client.read_to_string(&mut received).await.expect("read");
        drop(client);
        rejected.await.expect("rejection");
        let frame = Frame::parse(received.trim_end()).expect("one frame");
        assert!(
            matches!(
                frame,
                Frame::Error {
                    code: ErrorCode::ServerFull,
                    ..
                }
            ),
            "{frame:?}"
        );
    }
}
