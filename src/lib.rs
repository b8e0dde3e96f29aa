//! nea: a TLS date-and-reverse line service.
//!
//! The server (`servercli`) accepts TLS clients on TCP port 3443, sends each
//! connected client the current date every date period, and answers every
//! line a client sends with that line reversed by grapheme clusters. The
//! client (`clientcli`) connects over verified TLS, shows the dates as they
//! arrive, and sends a line each time Return is pressed. The
//! behaviour contract is SPEC v1; the README maps each of its sections to the
//! module that implements it.
//!
//! # Layout
//!
//! - [`protocol`]: the server's frames (`date`, `string`, `error`) and their
//!   JSON Lines encoding, with the wire-format documentation.
//! - [`codec`]: the bounded line decoder for what clients send; over-long and
//!   non-UTF-8 lines are values, not errors.
//! - [`reverse`]: grapheme-cluster reversal with an ASCII fast path.
//! - [`tls`]: rustls configurations for both ends, PEM loading, fingerprints.
//! - [`devca`]: the local development CA that `servercli` creates once, and
//!   certificate issuing for tests.
//! - [`server`]: the accept loop, handshake limits and client slots
//!   (`server::listener`), and one client's session (`server::conn`).
//! - [`client`]: trust, connecting with a deadline per phase, the session
//!   (lines in, events out, reconnection), and the pipe and terminal front
//!   ends of `clientcli`.
//! - [`limits`]: the open-file limit, and giving freed memory back.
//! - [`shutdown`]: the SIGINT-or-SIGTERM future, built once.
//! - [`error`]: error enums whose `Display` is one sentence.
//! - [`cli`]: what the binaries share: duration flags, usage errors, logging.
//! - `src/bin/servercli.rs`, `src/bin/clientcli.rs`:
//!   flags, logging and exit codes; nothing else.
//! - `tools/loadcli`: the load and measurement program, a package of its
//!   own (it is not part of the product).
//!
//! Defaults live in this file, in one place.

use std::time::Duration;

pub mod cli;
pub mod client;
pub mod codec;
pub mod devca;
pub mod error;
pub mod limits;
pub mod protocol;
pub mod reverse;
pub mod server;
pub mod shutdown;
pub mod tls;

/// TCP port the server listens on and the client connects to.
pub const DEFAULT_PORT: u16 = 3443;

/// Most clients connected at once (SPEC §6).
pub const DEFAULT_MAX_CLIENTS: usize = 100;

/// Time between two `date` frames to one client (SPEC §5).
pub const DEFAULT_DATE_PERIOD: Duration = Duration::from_secs(10);

/// Longest a TLS handshake may take before the socket is closed (SPEC §6).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most TLS handshakes in progress at once. Further connections wait in the
/// kernel's accept backlog until a handshake finishes or times out, so a
/// flood of idle sockets cannot exhaust memory or file descriptors.
pub const DEFAULT_MAX_HANDSHAKES: usize = 128;

/// Longest line a client may send, in bytes, without terminator (SPEC §2).
pub const DEFAULT_MAX_LINE_BYTES: usize = 65_536;

/// Longest one write to a client may stall before the client is dropped as
/// a slow reader (SPEC §7).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of encoded frames waiting to be written to one client at which the
/// server stops reading that client's lines. Together with the line limit
/// this bounds the memory one client can make the server hold.
pub const DEFAULT_QUEUE_BYTES: usize = 64 * 1024;

/// After SIGINT/SIGTERM, how long connections get to answer the lines
/// already received, send `shutting_down` and close (SPEC §8).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
