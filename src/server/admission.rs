//! Admission: whether a client whose handshake is done gets a slot, and how
//! a client that does not is turned away (SPEC §6).
//!
//! A client counts from the end of its TLS handshake until its connection
//! closes. Its [`ClientSlot`] is a permit: dropping it frees the slot at
//! once. A client that finds no free slot gets a [`Rejection`], a value,
//! not an error: it is told why in one `error` frame and closed cleanly, and
//! no connected client notices anything.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::conn;
use crate::protocol::{ErrorCode, Frame};

/// Longest a rejection may take: write, close, linger.
const REJECT_DEADLINE: Duration = Duration::from_secs(2);

/// The client slots, `max` in all.
#[derive(Debug)]
pub(super) struct ClientSlots {
    /// One permit per free slot. Invariant: permits held + available = `max`.
    free: Arc<Semaphore>,
    /// `--max-clients`.
    max: usize,
}

/// One client's place among the slots, held from the end of its handshake
/// until its last frame is written; dropping it frees the place.
pub(super) type ClientSlot = OwnedSemaphorePermit;

/// Why a client whose handshake succeeded is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rejection {
    /// Every slot is taken; the limit.
    ServerFull {
        /// `--max-clients`.
        max: usize,
    },
}

impl Rejection {
    /// The code of the `error` frame that tells the client.
    fn code(self) -> ErrorCode {
        match self {
            Self::ServerFull { .. } => ErrorCode::ServerFull,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ServerFull { max: 1 } => f.write_str("server full (1 client); sent server_full"),
            Self::ServerFull { max } => write!(f, "server full ({max} clients); sent server_full"),
        }
    }
}

impl ClientSlots {
    pub(super) fn new(max: usize) -> Self {
        Self {
            free: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A slot for a client whose handshake just completed, without waiting.
    pub(super) fn admit(&self) -> Result<ClientSlot, Rejection> {
        self.free
            .clone()
            .try_acquire_owned()
            .map_err(|_| Rejection::ServerFull { max: self.max })
    }

    /// Clients holding a slot right now.
    pub(super) fn connected(&self) -> usize {
        self.max - self.free.available_permits()
    }
}

/// Tells the client why it is turned away (one `error` frame) and closes the
/// session cleanly, all within [`REJECT_DEADLINE`].
pub(super) async fn reject<S>(mut stream: S, rejection: Rejection)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut frame = Vec::new();
    Frame::error(rejection.code(), 0).encode(&mut frame);
    let _ = tokio::time::timeout(REJECT_DEADLINE, async {
        let written = async {
            stream.write_all(&frame).await?;
            stream.flush().await
        };
        if written.await.is_ok() {
            conn::close(stream, true).await;
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[test]
    fn a_freed_slot_is_free_again_at_once() {
        let slots = ClientSlots::new(2);
        let first = slots.admit().expect("a slot");
        let _second = slots.admit().expect("a slot");
        assert_eq!(slots.connected(), 2);
        assert_eq!(slots.admit().err(), Some(Rejection::ServerFull { max: 2 }));
        drop(first);
        assert_eq!(slots.connected(), 1);
        assert!(slots.admit().is_ok());
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
