//! The steps before serving, in the order [`ServerBuilder::bind`] takes
//! them: the identity read (or the development CA created), the listening
//! socket bound (or a passed one taken over), the admin endpoint bound.
//! Each failure is a [`ServerError`] that names its step; nothing is
//! served until every step has succeeded.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::admission::ClientCount;
use super::identity::IdentityFiles;
use super::metrics::Metrics;
use super::reload::CurrentTls;
use super::{Config, Observer, Server, Unobserved};
use crate::error::ServerError;

/// What the server presents to clients.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A certificate chain and its private key, PEM files read at start
    /// and again on each reload.
    Files {
        /// The certificate chain, leaf first.
        cert: PathBuf,
        /// The private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// The development CA's server certificate for `localhost` and the
    /// loopback addresses, created in `dir` on first use and reused after
    /// (SPEC §9); [`crate::devca::default_dir`] is the per-user default.
    Development {
        /// Where the CA and the certificate live.
        dir: PathBuf,
    },
    /// A ready TLS configuration, used as it is: nothing is read from
    /// files, and nothing is reloaded.
    Tls(Arc<rustls::ServerConfig>),
}

/// Where the server listens.
#[derive(Debug)]
enum Listen {
    /// Bind this address (port 0 picks a free port).
    Address(SocketAddr),
    /// Serve this listening socket (a service manager's, say), as it is.
    Passed(std::net::TcpListener),
}

/// Sets up a [`Server`]: made by [`Server::builder`], finished by
/// [`ServerBuilder::bind`].
#[must_use]
pub struct ServerBuilder {
    identity: Identity,
    client_ca: Option<PathBuf>,
    listen: Listen,
    config: Config,
    admin: Option<SocketAddr>,
    reload_requests: Option<tokio::sync::mpsc::Receiver<()>>,
    observer: Arc<dyn Observer>,
    log_drops: Option<Box<dyn Fn() -> u64 + Send + Sync>>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("identity", &self.identity)
            .field("listen", &self.listen)
            .field("config", &self.config)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    pub(super) fn new(identity: Identity) -> Self {
        Self {
            identity,
            client_ca: None,
            listen: Listen::Address(SocketAddr::new(crate::DEFAULT_BIND, crate::DEFAULT_PORT)),
            config: Config::default(),
            admin: None,
            reload_requests: None,
            observer: Arc::new(Unobserved),
            log_drops: None,
        }
    }

    /// Present `identity` instead of the one the builder was made with.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// Listen on `addr` (port 0 picks a free port; [`Server::local_addr`]
    /// says which).
    pub fn listen_on(mut self, addr: SocketAddr) -> Self {
        self.listen = Listen::Address(addr);
        self
    }

    /// Serve `listener`, a listening socket made elsewhere (a service
    /// manager passes one, so that a restart never refuses a connection).
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listen = Listen::Passed(listener);
        self
    }

    /// Require every client to present a certificate signed by a CA in
    /// this PEM file (mutual TLS); read again on each reload. Ignored for
    /// [`Identity::Tls`], whose configuration says whom it trusts.
    pub fn client_ca(mut self, file: PathBuf) -> Self {
        self.client_ca = Some(file);
        self
    }

    /// Serve with these limits and periods.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Serve `/metrics` and `/healthz` over plain HTTP on `addr`.
    pub fn admin(mut self, addr: SocketAddr) -> Self {
        self.admin = Some(addr);
        self
    }

    /// Reload the certificate files on each message (the files are also
    /// reloaded whenever they change on disk).
    pub fn reload_requests(mut self, requests: tokio::sync::mpsc::Receiver<()>) -> Self {
        self.reload_requests = Some(requests);
        self
    }

    /// Tell `observer` each [`super::Event`].
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Show in the metrics how many log lines the program's log writer has
    /// dropped so far (`nea_log_lines_dropped_total`), read at each scrape.
    pub fn log_drops(mut self, dropped_so_far: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.log_drops = Some(Box::new(dropped_so_far));
        self
    }

    /// Reads the identity, binds the listening socket and the admin
    /// endpoint: a server ready to [`Server::run`].
    pub async fn bind(self) -> Result<Server, ServerError> {
        let identity = load(self.identity, self.client_ca).await?;
        warn_if_too_few_files(&self.config);
        let passed = matches!(self.listen, Listen::Passed(_));
        let listener = listen(self.listen)?;
        let local = listener.local_addr().map_err(|source| ServerError::Io {
            phase: "reading the listening address",
            source,
        })?;
        let metrics = Arc::new(Metrics::new(self.config.max_clients()));
        metrics.set_expiry(identity.expiry);
        if let Some(dropped) = self.log_drops {
            metrics.count_log_drops(dropped);
        }
        let admin = match self.admin {
            Some(addr) => Some(bind_admin(addr).await?),
            None => None,
        };
        Ok(Server {
            clients: ClientCount::new(&self.config, metrics.clients_connected.clone()),
            listener,
            local,
            passed,
            identity,
            config: self.config,
            metrics,
            admin,
            reload_requests: self.reload_requests,
            observer: self.observer,
        })
    }
}

/// An identity ready to serve: the TLS configuration new handshakes use
/// and, for an identity read from files, the files and what was read.
pub(super) struct LoadedIdentity {
    /// What new handshakes use; a reload replaces it.
    pub(super) current: Arc<CurrentTls>,
    /// The files it was read from, watched since before they were first
    /// read; `None` for [`Identity::Tls`].
    pub(super) files: Option<(IdentityFiles, super::reload::FileWatch)>,
    /// The leaf certificate's SHA-256 fingerprint, when read from files.
    pub(super) fingerprint: String,
    /// When the leaf certificate expires, if known.
    pub(super) expiry: Option<jiff::Timestamp>,
    /// The pin of the leaf certificate's public key, when read from files.
    pub(super) pin: Option<crate::pin::Pin>,
    /// The files as they were just before they were read (none for
    /// [`Identity::Tls`]).
    pub(super) stamps: super::identity::FileStamps,
}

/// Reads (or creates) the identity and logs the certificate in force.
async fn load(
    identity: Identity,
    client_ca: Option<PathBuf>,
) -> Result<LoadedIdentity, ServerError> {
    let files = match identity {
        Identity::Tls(config) => {
            return Ok(LoadedIdentity {
                current: CurrentTls::new(config),
                files: None,
                fingerprint: String::new(),
                expiry: None,
                pin: None,
                stamps: super::identity::FileStamps::default(),
            });
        }
        Identity::Files { cert, key } => IdentityFiles::given(cert, key, client_ca),
        Identity::Development { dir } => IdentityFiles::development(&dir, client_ca)?,
    };
    let watch = super::reload::FileWatch::start(&files);
    let first = super::reload::first(&files).await?;
    Ok(LoadedIdentity {
        current: CurrentTls::new(first.config),
        files: Some((files, watch)),
        fingerprint: first.fingerprint,
        expiry: first.expiry,
        pin: first.pin,
        stamps: first.stamps,
    })
}

/// Connections the kernel may hold for the server before it accepts them
/// (the kernel caps it at `net.core.somaxconn`, 4096 on current Linux).
/// tokio's default, 1024, overflowed when 10,000 clients connected at once
/// and the kernel fell back to SYN cookies.
const LISTEN_BACKLOG: u32 = 4096;

/// The listening socket: `addr` bound with [`LISTEN_BACKLOG`], or the
/// passed socket taken over as it is.
fn listen(listen: Listen) -> Result<TcpListener, ServerError> {
    let bound = |addr: SocketAddr| -> std::io::Result<TcpListener> {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        // As tokio's own `bind` does: a restarted server can bind at once.
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    match listen {
        Listen::Address(addr) => bound(addr).map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        }),
        Listen::Passed(socket) => {
            let addr = socket
                .local_addr()
                .map_or_else(|_| "the passed socket".to_owned(), |a| a.to_string());
            socket
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(socket))
                .map_err(|source| ServerError::Bind { addr, source })
        }
    }
}

/// The admin endpoint's socket, and where it listens.
async fn bind_admin(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServerError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr().unwrap_or(addr);
    Ok((listener, local))
}

/// Warns when the open-file limit cannot hold `--max-clients` clients plus
/// the handshakes in progress: clients beyond it would fail to connect.
fn warn_if_too_few_files(config: &Config) {
    let files = crate::limits::open_file_limit();
    let needed =
        (config.max_clients + config.max_handshakes) as u64 + crate::limits::SERVER_SPARE_FILES;
    if files < needed {
        tracing::warn!(
            "the open-file limit is {files}, too low for --max-clients {} (needs about {needed}); \
             clients beyond it will fail to connect: raise the hard limit (ulimit -Hn)",
            config.max_clients
        );
    }
}
