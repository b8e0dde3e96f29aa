//! nea: a TLS date-and-reverse line service.
//!
//! The server (`servercli`) accepts TLS clients on TCP port 3443, sends each
//! connected client the current date every date period, and answers every
//! line a client sends with that line reversed by grapheme clusters. The
//! client (`clientcli`) connects over verified TLS, shows the dates as they
//! arrive, and sends a line each time Return is pressed. The
//! behaviour contract is SPEC v3; `docs/design.md` maps each of its
//! sections to the module that implements it.
//!
//! # Embedding the server
//!
//! [`server::Server::builder`] takes an identity (certificate files, the
//! development CA, or a ready rustls configuration) and optional limits,
//! admin endpoint, reload requests and observer; `bind` reads the identity
//! and binds, and reports where it listens; [`server::Server::run`] serves
//! until a shutdown future completes, then answers what it has received,
//! tells every client it is shutting down, and returns. `servercli` is one
//! caller of it; `examples/embedded.rs` is a whole program that embeds it
//! with limits, the admin endpoint, an observer and a shutdown of its own.
//! The client side is [`client::session::Session`].
//!
//! ```
//! use nea::client::session::{Event, Input, Session};
//! use nea::devca::CertificateAuthority;
//! use nea::server::{Identity, Server};
//! use rustls::pki_types::pem::PemObject;
//! use rustls::pki_types::{CertificateDer, PrivateKeyDer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // An identity for the server: here a throw-away CA and its certificate
//! // for localhost; in production, `Identity::Files` naming your files.
//! let ca = CertificateAuthority::new("example CA")?;
//! let issued = ca.issue_server(&["localhost"])?;
//! let chain = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes()).collect::<Result<_, _>>()?;
//! let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())?;
//! let tls = nea::tls::server_config(chain, key, None)?;
//!
//! let server = Server::builder(Identity::Tls(tls))
//!     .listen_on("127.0.0.1:0".parse()?)
//!     .bind()
//!     .await?;
//! let port = server.local_addr().port();
//! let metrics = server.metrics();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let running = tokio::spawn(server.run(stopped));
//!
//! // A client that trusts that CA sends one line and reads its reply.
//! let ca_cert = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes())?;
//! let roots = nea::tls::root_store(vec![ca_cert])?;
//! let client_tls = nea::tls::client_config(roots, None)?;
//! let (events, mut shown) = tokio::sync::mpsc::channel(16);
//! let (input, inputs) = tokio::sync::mpsc::channel(16);
//! let session = Session::connect(nea::client::Options::new("localhost", port)?, client_tls, events).await?;
//! let client = tokio::spawn(session.run(inputs));
//! input.send(Input::Line(b"hello".to_vec())).await?;
//! input.send(Input::End).await?;
//! let mut reply = None;
//! while let Some(event) = shown.recv().await {
//!     if let Event::Reply(text) = event {
//!         reply = Some(text);
//!     }
//! }
//! assert_eq!(reply.as_deref(), Some("olleh"));
//! client.await??;
//!
//! let _ = stop.send(());
//! running.await?;
//! assert!(metrics.encode().contains("nea_connections_total 1\n"));
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`protocol`]: the server's frames (`date`, `string`, `error`) and their
//!   JSON Lines encoding, with the wire-format documentation.
//! - [`codec`]: the bounded line decoder for what clients send; over-long and
//!   non-UTF-8 lines are values, not errors.
//! - [`reverse`]: grapheme-cluster reversal with an ASCII fast path.
//! - [`tls`]: rustls configurations for both ends, PEM loading, fingerprints.
//! - [`pin`]: public-key pins (`--pin sha256:…`), the key a client may
//!   trust with no CA and no name.
//! - [`devca`]: the local development CA that `servercli` creates once, and
//!   certificate issuing for tests.
//! - [`server`]: the one entry point, [`server::Server`] and its builder
//!   (`server::builder`); the validated [`server::Config`]; the accept
//!   loop and each connection's steps (`server::listener`); handshake
//!   slots shared fairly between source addresses
//!   (`server::handshake_queue`, `server::source`); client slots and
//!   rejections (`server::admission`); the certificate files and the TLS
//!   configuration read from them (`server::identity`), read again on
//!   request or when they change (`server::reload`); one client's session
//!   (`server::session`); the metrics and the admin endpoint
//!   ([`server::Metrics`], `server::admin`); the PROXY protocol header of
//!   a trusted load balancer (`server::proxy`).
//! - [`client`]: trust, connecting with a deadline per phase, and the
//!   session (lines in, events out, reconnection).
//! - `dead_peer`: noticing a peer whose path died silently, by TCP
//!   keepalive and the TCP user timeout, for both ends.
//! - [`duration`]: durations as settings write them (`250ms`, `1.5s`),
//!   parsed exactly.
//! - `limits`: reading the open-file limit, capping each socket's kernel
//!   buffers, and giving freed memory back.
//! - [`error`]: error enums whose `Display` is one sentence.
//! - `crates/nea-cli`: the programs `servercli` and `clientcli`, and what
//!   they share with the load tool (flags, usage errors, logging, the
//!   client's terminal and pipe front ends). Embedders never compile it.
//! - `tools/loadcli`: the load and measurement program, a package of its
//!   own (it is not part of the product).
//! - `tools/docgen`: the man pages and shell completions in `contrib/`,
//!   made from the programs' `flags.rs`.
//!
//! Defaults live in this file, in one place, each beside the range of
//! values the setting accepts ([`server::Config::builder`] refuses any
//! other, so no flag or environment variable can make the server panic,
//! overflow or hold unbounded memory).

use std::ops::RangeInclusive;
use std::time::Duration;

pub mod client;
pub mod codec;
mod dead_peer;
pub mod devca;
pub mod duration;
pub mod error;
mod limits;
mod pem_files;
pub mod pin;
pub mod protocol;
pub mod reverse;
pub mod server;
pub mod tls;

/// TCP port the server listens on and the client connects to.
pub const DEFAULT_PORT: u16 = 3443;

/// The address the server listens on by default: every IPv4 address.
pub const DEFAULT_BIND: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

/// The server the client connects to by default.
pub const DEFAULT_HOST: &str = "localhost";

/// How long the client waits for each connection phase (the TCP connect,
/// then the TLS handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `--connect-timeout`: from 10 ms to 10 minutes.
pub const CONNECT_TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_secs(600);

/// Most clients connected at once (SPEC §6).
pub const DEFAULT_MAX_CLIENTS: usize = 100;

/// `--max-clients`: at least one; at most a million, far beyond what one
/// process's file descriptors allow, and well inside what the slot
/// semaphore can count.
pub const MAX_CLIENTS_RANGE: RangeInclusive<usize> = 1..=1_000_000;

/// Most clients connected at once from one source address (an IPv4
/// address, an IPv6 /64; SPEC §6); 0 means no limit.
pub const DEFAULT_MAX_CLIENTS_PER_ADDRESS: usize = 0;

/// `--max-clients-per-address`: 0 (no limit) up to the largest
/// `--max-clients`.
pub const MAX_CLIENTS_PER_ADDRESS_RANGE: RangeInclusive<usize> = 0..=1_000_000;

/// Time between two `date` frames to one client (SPEC §5).
pub const DEFAULT_DATE_PERIOD: Duration = Duration::from_secs(10);

/// `--date-period`: from 10 ms (a hundred dates a second to each client) to
/// a day.
pub const DATE_PERIOD_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_secs(24 * 3600);

/// Longest a TLS handshake may take before the socket is closed (SPEC §6),
/// from the moment it gets its handshake slot.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `--handshake-timeout`: from 10 ms to an hour.
pub const HANDSHAKE_TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_secs(3600);

/// Most TLS handshakes past their ClientHello in progress at once (32
/// times as many connections may read their ClientHello meanwhile).
/// Further connections wait for a turn, shared fairly between source
/// addresses, and then in the kernel's accept backlog, so a flood of idle
/// sockets cannot exhaust memory or file descriptors, nor keep other
/// addresses out.
pub const DEFAULT_MAX_HANDSHAKES: usize = 128;

/// `--max-handshakes`: from 1 to 100,000.
pub const MAX_HANDSHAKES_RANGE: RangeInclusive<usize> = 1..=100_000;

/// Longest line a client may send, in bytes, without terminator (SPEC §2).
pub const DEFAULT_MAX_LINE_BYTES: usize = 65_536;

/// `--max-line-bytes`: from 1 byte to 1 MiB. The upper bound keeps the
/// memory one client can make the server hold small, and keeps every
/// reply (at most six bytes of JSON per byte of line) within what the
/// client accepts as one frame.
pub const MAX_LINE_BYTES_RANGE: RangeInclusive<usize> = 1..=1024 * 1024;

/// Longest one write to a client may stall before the client is dropped as
/// a slow reader (SPEC §7).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// `--write-timeout`: from 10 ms to an hour.
pub const WRITE_TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_secs(3600);

/// How long a peer may stop answering at the TCP level (no ACK for data
/// sent, no answer to keepalive probes) before it is given up as gone
/// (SPEC §13). A path that dies silently (a laptop asleep, a NAT that
/// forgot the connection, a cable pulled) is noticed within this plus a
/// few seconds; a peer that is alive but quiet answers the probes from
/// its kernel and is kept for ever.
pub const DEFAULT_DEAD_PEER_TIMEOUT: Duration = Duration::from_secs(60);

/// `--dead-peer-timeout`: from 1 s (a shorter one would give up on a
/// healthy peer behind a slow path) to a day.
pub const DEAD_PEER_TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(24 * 3600);

/// Bytes of encoded frames waiting to be written to one client at which the
/// server stops reading that client's lines. Together with the line limit
/// this bounds the memory one client can make the server hold.
pub const DEFAULT_QUEUE_BYTES: usize = 64 * 1024;

/// The outgoing bound: from 1 KiB to 64 MiB.
pub const QUEUE_BYTES_RANGE: RangeInclusive<usize> = 1024..=64 * 1024 * 1024;

/// After SIGINT/SIGTERM, how long connections get to answer the lines
/// already received, send `shutting_down` and close (SPEC §8).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The shutdown grace: from 10 ms to a minute.
pub const SHUTDOWN_GRACE_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_secs(60);
