//! The server: [`Server::builder`] loads an identity and binds, and
//! [`Server::run`] serves TLS clients until a shutdown future completes.
//! `servercli` is one caller of this entry point, like any embedder.
//!
//! - `builder` owns the steps before serving: the identity read (or
//!   created), the listening socket bound (or taken over), the admin
//!   endpoint bound.
//! - `config` owns the limits and periods, each checked against its range.
//! - `listener` owns accepting, the handshake deadline, and each
//!   connection's steps (SPEC §1, §6, §8).
//! - `handshake_queue` owns the handshake slots, shared fairly between
//!   sources, and the sockets waiting for one; `source` says which
//!   connections share a source (an IPv4 address, an IPv6 /64).
//! - `admission` owns the client slots, in all and per source, and the
//!   rejections.
//! - `identity` owns the certificate files and the TLS configuration read
//!   from them (through `blocking_read`: off the serving threads, with a
//!   deadline); `reload` reads them again on request or when they change,
//!   and `expiry` says when the certificate in use is next checked for its
//!   end (SPEC §11).
//! - `metrics` keeps the counters, gauges and histograms, and `admin`
//!   serves them, with the health check, on an admin address (SPEC §11).
//! - `proxy` reads the PROXY protocol header a trusted load balancer sends
//!   first, naming the client (SPEC §12).
//! - `session` owns one client's session: lines in, frames out, its date
//!   deadlines, its bounded queue and write timeout, and the shutdown drain
//!   (SPEC §2–5, §7, §8).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod admin;
mod admission;
mod blocking_read;
mod builder;
mod client_hello;
mod config;
mod expiry;
mod handshake_queue;
mod identity;
mod listener;
mod metrics;
mod process_metrics;
mod proxy;
mod reload;
mod session;
mod source;

pub use admission::ClientCount;
pub use builder::{Identity, ServerBuilder};
pub use config::{Config, ConfigBuilder};
pub use metrics::Metrics;
pub use proxy::{IpNet, TrustedProxies, parse_network, read_proxy_header};

/// What a running server tells its embedder, as it happens: what a
/// service manager is told (`servercli` turns these into `sd_notify`
/// messages), and what a test waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The server accepts connections on this address from now on.
    Listening(SocketAddr),
    /// A certificate reload starts.
    Reloading,
    /// A certificate reload is over, whether it took the new files or kept
    /// the certificate in use.
    Reloaded,
    /// Shutdown starts, with this many clients connected.
    Stopping {
        /// Clients connected when shutdown started.
        clients: usize,
    },
}

/// Told each [`Event`] as it happens. Called on the server's own tasks:
/// it must return quickly and never block.
pub trait Observer: Send + Sync {
    /// One event.
    fn event(&self, event: &Event);
}

/// An observer for embedders that want none.
struct Unobserved;

impl Observer for Unobserved {
    fn event(&self, _: &Event) {}
}

/// A server whose identity is loaded and whose listening socket is bound:
/// connections that arrive now wait in the kernel's backlog until
/// [`Server::run`] accepts them.
pub struct Server {
    /// The listening socket; serving ends by dropping it.
    listener: TcpListener,
    /// Where it listens.
    local: SocketAddr,
    /// Whether the socket was passed in (a service manager's) rather than
    /// bound here.
    passed: bool,
    /// What new handshakes present, and the files a reload reads again
    /// (none for a TLS configuration given whole).
    identity: builder::LoadedIdentity,
    /// Limits and periods.
    config: Config,
    /// Counters, gauges and histograms, shared with the admin endpoint.
    metrics: Arc<Metrics>,
    /// The admin endpoint's socket and address, when one was asked for.
    admin: Option<(TcpListener, SocketAddr)>,
    /// Each message asks for a reload of the certificate files.
    reload_requests: Option<tokio::sync::mpsc::Receiver<()>>,
    /// Told what happens.
    observer: Arc<dyn Observer>,
    /// The client slots, shared with whoever watches the count.
    clients: ClientCount,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local", &self.local)
            .field("admin", &self.admin_addr())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A builder for a server presenting `identity`, listening on every
    /// IPv4 address at the default port, with the default [`Config`].
    pub fn builder(identity: Identity) -> ServerBuilder {
        ServerBuilder::new(identity)
    }

    /// Where the server listens (the port chosen when port 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Where the admin endpoint listens, if one was asked for.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(_, addr)| *addr)
    }

    /// The server's metrics, live while it runs.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The number of clients connected, and a way to wait for it to change.
    pub fn clients(&self) -> ClientCount {
        self.clients.clone()
    }

    /// Serves clients until `shutdown` completes, then stops accepting,
    /// lets every session answer what it has received, send
    /// `shutting_down` and close, and returns once they are done (or the
    /// shutdown grace has passed). Reloads the certificate files on each
    /// reload request and whenever they change on disk.
    pub async fn run(self, shutdown: impl Future) {
        self.log_start();
        let helpers = CancellationToken::new();
        let admin = self.admin.map(|(listener, _)| {
            tokio::spawn(admin::accept_loop(
                listener,
                self.metrics.clone(),
                helpers.clone(),
            ))
        });
        let reloading = self.identity.files.map(|(files, watch)| {
            tokio::spawn(reload::reload_on_change(
                reload::Reloadable::new(
                    files,
                    &self.identity.fingerprint,
                    self.identity.expiry,
                    self.identity.stamps,
                    self.identity.current.clone(),
                    self.metrics.clone(),
                    self.observer.clone(),
                ),
                watch,
                self.reload_requests,
                helpers.clone(),
            ))
        });
        self.observer.event(&Event::Listening(self.local));
        let serving = listener::Serving {
            tls: self.identity.current,
            config: self.config,
            metrics: self.metrics,
            observer: self.observer,
            clients: self.clients,
        };
        listener::accept_loop(self.listener, serving, shutdown).await;
        helpers.cancel();
        for helper in [admin, reloading].into_iter().flatten() {
            let _ = helper.await;
        }
    }

    /// The listening line and, for a server with certificate files, how
    /// to connect to it. Facts are fields: the address, the limits, and
    /// the command.
    fn log_start(&self) {
        let proxies = &self.config.proxies;
        tracing::info!(
            addr = %self.local,
            passed_socket = self.passed,
            max_clients = self.config.max_clients(),
            date_period = self.config.date_period.as_secs_f64(),
            mutual_tls = self.identity.files.as_ref().is_some_and(|(f, _)| f.mutual()),
            proxy_protocol_from = (!proxies.is_empty()).then(|| tracing::field::display(proxies)),
            "listening"
        );
        if let (Some((files, _)), Some(pin)) = (&self.identity.files, self.identity.pin) {
            let command = files.how_to_connect(self.local, pin);
            tracing::info!(
                command = command.as_str(),
                ca = files
                    .dev_ca
                    .as_ref()
                    .map(|ca| tracing::field::display(ca.display())),
                "connect with"
            );
        }
        if let Some((_, at)) = &self.admin {
            tracing::info!(
                metrics = %format_args!("http://{at}/metrics"),
                health = %format_args!("http://{at}/healthz"),
                "admin endpoint"
            );
        }
    }
}
