//! The server: [`run`] serves TLS clients on a bound listener until a
//! shutdown future completes.
//!
//! - `listener` owns accepting, the handshake deadline, and each
//!   connection's steps (SPEC §1, §6, §8).
//! - `handshake_queue` owns the handshake slots, shared fairly between
//!   sources, and the sockets waiting for one; `source` says which
//!   connections share a source (an IPv4 address, an IPv6 /64).
//! - `admission` owns the client slots, in all and per source, and the
//!   rejections.
//! - `identity` owns the certificate files and the TLS configuration read
//!   from them; `reload` reads them again on SIGHUP or when they change
//!   (SPEC §11).
//! - `metrics` keeps the counters, gauges and histograms, and `admin`
//!   serves them, with the health check, on `--admin-addr` (SPEC §11).
//! - `service_manager` tells systemd (`NOTIFY_SOCKET`) when the server is
//!   ready, reloading or stopping, and how many clients it has.
//! - `proxy` reads the PROXY protocol header a trusted load balancer sends
//!   first, naming the client (SPEC §12).
//! - `conn` owns one client's session: lines in, frames out, its date
//!   deadlines, its bounded queue and write timeout, and the shutdown drain
//!   (SPEC §2–5, §7, §8).

use std::time::Duration;

mod admin;
mod admission;
mod conn;
mod handshake_queue;
mod identity;
mod listener;
mod metrics;
mod proxy;
mod reload;
mod service_manager;
mod source;

use crate::error::{ConfigError, ServerError};
use identity::IdentityFiles;
pub use listener::run;
pub use proxy::{IpNet, TrustedProxies, parse_network, read_proxy_header};

/// The limits and periods [`run`] serves with: how many clients, how
/// often dates go out, and every deadline and bound of one connection.
///
/// Built only through [`Config::builder`] (or [`Config::default`]): every
/// value is inside its range in the crate root (`MAX_CLIENTS_RANGE` and the
/// like), so no value can make the server panic, overflow, or hold more
/// memory per client than its bounds say.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most clients connected at once; one slot is held from the end of a
    /// client's TLS handshake until its connection closes.
    pub(crate) max_clients: usize,
    /// Most clients connected at once from one source address; 0 for no
    /// limit.
    pub(crate) max_clients_per_address: usize,
    /// Time between two `date` frames to one client.
    pub(crate) date_period: Duration,
    /// Deadline for a TLS handshake, from the socket's turn for a
    /// handshake slot; and for a PROXY protocol header, from the accept.
    pub(crate) handshake_timeout: Duration,
    /// Most TLS handshakes in progress at once.
    pub(crate) max_handshakes: usize,
    /// Longest line accepted, in bytes, terminator excluded.
    pub(crate) max_line_bytes: usize,
    /// Longest a client's socket may take none of the frames waiting for
    /// it before the client is dropped as a slow reader.
    pub(crate) write_timeout: Duration,
    /// Encoded frames, in bytes, waiting to be written to one client at
    /// which the server stops reading that client's lines.
    pub(crate) queue_bytes: usize,
    /// After shutdown starts, how long a connection gets to finish.
    pub(crate) shutdown_grace: Duration,
    /// The balancers whose connections begin with a PROXY protocol header
    /// naming the real client; empty for none.
    pub(crate) proxies: TrustedProxies,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_clients: crate::DEFAULT_MAX_CLIENTS,
            max_clients_per_address: crate::DEFAULT_MAX_CLIENTS_PER_ADDRESS,
            date_period: crate::DEFAULT_DATE_PERIOD,
            handshake_timeout: crate::DEFAULT_HANDSHAKE_TIMEOUT,
            max_handshakes: crate::DEFAULT_MAX_HANDSHAKES,
            max_line_bytes: crate::DEFAULT_MAX_LINE_BYTES,
            write_timeout: crate::DEFAULT_WRITE_TIMEOUT,
            queue_bytes: crate::DEFAULT_QUEUE_BYTES,
            shutdown_grace: crate::DEFAULT_SHUTDOWN_GRACE,
            proxies: TrustedProxies::default(),
        }
    }
}

impl Config {
    /// A builder that starts from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Self::default(),
        }
    }

    /// Most clients connected at once.
    pub fn max_clients(&self) -> usize {
        self.max_clients
    }
}

/// Sets [`Config`] values; [`ConfigBuilder::build`] checks each against its
/// range. Unset values keep their defaults.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// Most clients connected at once (`MAX_CLIENTS_RANGE`).
    pub fn max_clients(mut self, n: usize) -> Self {
        self.config.max_clients = n;
        self
    }

    /// Most clients at once from one source address, 0 for no limit
    /// (`MAX_CLIENTS_PER_ADDRESS_RANGE`).
    pub fn max_clients_per_address(mut self, n: usize) -> Self {
        self.config.max_clients_per_address = n;
        self
    }

    /// Time between two dates to one client (`DATE_PERIOD_RANGE`).
    pub fn date_period(mut self, period: Duration) -> Self {
        self.config.date_period = period;
        self
    }

    /// Deadline for a TLS handshake (`HANDSHAKE_TIMEOUT_RANGE`).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.handshake_timeout = timeout;
        self
    }

    /// Most TLS handshakes at once (`MAX_HANDSHAKES_RANGE`).
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.config.max_handshakes = n;
        self
    }

    /// Longest line accepted, in bytes (`MAX_LINE_BYTES_RANGE`).
    pub fn max_line_bytes(mut self, n: usize) -> Self {
        self.config.max_line_bytes = n;
        self
    }

    /// How long a client's socket may take nothing before the client is
    /// dropped (`WRITE_TIMEOUT_RANGE`).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// Outgoing bytes at which a client's lines stop being read
    /// (`QUEUE_BYTES_RANGE`).
    pub fn queue_bytes(mut self, n: usize) -> Self {
        self.config.queue_bytes = n;
        self
    }

    /// How long connections get to finish after shutdown starts
    /// (`SHUTDOWN_GRACE_RANGE`).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// The networks whose connections must begin with a PROXY protocol
    /// header, and whose header names the client (SPEC §12).
    pub fn proxy_protocol_from(mut self, proxies: TrustedProxies) -> Self {
        self.config.proxies = proxies;
        self
    }

    /// The configuration, or the first value outside its range.
    pub fn build(self) -> Result<Config, ConfigError> {
        let c = self.config;
        ConfigError::within("max-clients", c.max_clients, &crate::MAX_CLIENTS_RANGE)?;
        ConfigError::within(
            "max-clients-per-address",
            c.max_clients_per_address,
            &crate::MAX_CLIENTS_PER_ADDRESS_RANGE,
        )?;
        ConfigError::within("date-period", c.date_period, &crate::DATE_PERIOD_RANGE)?;
        ConfigError::within(
            "handshake-timeout",
            c.handshake_timeout,
            &crate::HANDSHAKE_TIMEOUT_RANGE,
        )?;
        ConfigError::within(
            "max-handshakes",
            c.max_handshakes,
            &crate::MAX_HANDSHAKES_RANGE,
        )?;
        ConfigError::within(
            "max-line-bytes",
            c.max_line_bytes,
            &crate::MAX_LINE_BYTES_RANGE,
        )?;
        ConfigError::within(
            "write-timeout",
            c.write_timeout,
            &crate::WRITE_TIMEOUT_RANGE,
        )?;
        ConfigError::within("queue-bytes", c.queue_bytes, &crate::QUEUE_BYTES_RANGE)?;
        ConfigError::within(
            "shutdown-grace",
            c.shutdown_grace,
            &crate::SHUTDOWN_GRACE_RANGE,
        )?;
        Ok(c)
    }
}

/// Everything [`start`] needs: where to listen, which identity to present,
/// and the [`Config`] to serve with. (`Config` is what serving needs once a
/// listener is bound; `Settings` adds what setting one up needs.)
#[derive(Debug)]
pub struct Settings {
    /// Address and port to listen on (port 0 picks a free port), unless
    /// `inherited` is set.
    pub listen: std::net::SocketAddr,
    /// A listening socket passed by the service manager (`LISTEN_FDS`),
    /// served instead of binding `listen`: a restart never refuses a
    /// connection, because the socket outlives the process.
    pub inherited: Option<std::net::TcpListener>,
    /// Certificate chain and key files; `None` uses the development CA.
    pub identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// CA file whose certificates clients must present (mutual TLS).
    pub client_ca: Option<std::path::PathBuf>,
    /// File to write the listening port to once the server accepts
    /// connections (for a supervisor or test that started it on port 0).
    pub port_file: Option<std::path::PathBuf>,
    /// Where to serve `/metrics` and `/healthz` over plain HTTP; `None`
    /// for nowhere.
    pub admin: Option<std::net::SocketAddr>,
    /// The log writer's count of dropped lines, shown in the metrics
    /// (`crate::cli::ServerLogging::drops`).
    pub log_drops: Option<tracing_appender::non_blocking::ErrorCounter>,
    /// Limits and periods.
    pub config: Config,
}

/// Loads (or creates) the certificates, binds the listener, logs where it
/// listens, and serves until `shutdown` completes. Each message on
/// `reloads` (the binary sends one per SIGHUP), and each change of the
/// certificate files, reloads them (SPEC §11); an embedder that wants no
/// requests passes a receiver whose sender is dropped.
pub async fn start(
    settings: Settings,
    shutdown: impl std::future::Future,
    reloads: tokio::sync::mpsc::Receiver<()>,
) -> Result<(), ServerError> {
    let identity = IdentityFiles::locate(settings.identity, settings.client_ca)?;
    let first = reload::first(&identity)?;
    let tls = reload::CurrentTls::new(first.config.clone());
    warn_if_too_few_files(&settings.config);
    let inherited = settings.inherited.is_some();
    let listener = match settings.inherited {
        Some(socket) => socket
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(socket)),
        None => bind(settings.listen),
    }
    .map_err(|source| ServerError::Bind {
        addr: settings.listen.to_string(),
        source,
    })?;
    let local = listener.local_addr().map_err(|source| ServerError::Io {
        phase: "reading the listening address",
        source,
    })?;
    if let Some(path) = &settings.port_file {
        crate::cli::write_port_file(path, local.port()).map_err(|source| ServerError::Io {
            phase: "writing the port file",
            source,
        })?;
    }
    let passed = if inherited {
        " (the socket the service manager passed)"
    } else {
        ""
    };
    let proxies = &settings.config.proxies;
    tracing::info!(
        max_clients = settings.config.max_clients(),
        date_period = ?settings.config.date_period,
        mutual_tls = identity.mutual(),
        proxy_protocol_from = (!proxies.is_empty()).then(|| tracing::field::display(proxies)),
        "listening on {local}{passed}"
    );
    tracing::info!("{}", identity.how_to_connect(local));
    let metrics = std::sync::Arc::new(metrics::Metrics::new(settings.config.max_clients()));
    metrics.set_expiry(first.expiry);
    if let Some(drops) = settings.log_drops {
        metrics.count_log_drops(drops);
    }
    // The helpers (reload, admin endpoint) run until serving has ended.
    let stop_helpers = tokio_util::sync::CancellationToken::new();
    let admin = match settings.admin {
        Some(addr) => {
            let admin = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: addr.to_string(),
                    source,
                })?;
            let at = admin.local_addr().unwrap_or(addr);
            tracing::info!("admin endpoint on http://{at}/metrics and http://{at}/healthz");
            Some(tokio::spawn(admin::serve(
                admin,
                metrics.clone(),
                stop_helpers.clone(),
            )))
        }
        None => None,
    };
    let reloading = tokio::spawn(reload::reload_on_change(
        reload::Reloadable {
            files: identity,
            fingerprint: first.fingerprint,
            current: tls.clone(),
            metrics: metrics.clone(),
        },
        reloads,
        stop_helpers.clone(),
    ));
    service_manager::ready(&service_manager::status(0, settings.config.max_clients()));
    listener::serve(listener, tls, settings.config, shutdown, metrics).await;
    stop_helpers.cancel();
    let _ = reloading.await;
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    Ok(())
}

/// Connections the kernel may hold for the server before it accepts them
/// (the kernel caps it at `net.core.somaxconn`, 4096 on current Linux).
/// tokio's default, 1024, overflowed when 10,000 clients connected at once
/// and the kernel fell back to SYN cookies.
const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `addr`, with [`LISTEN_BACKLOG`].
fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As tokio's own `bind` does: a restarted server can bind at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_inside_their_ranges() {
        let built = Config::builder().build().expect("the defaults are valid");
        assert_eq!(built.max_clients(), crate::DEFAULT_MAX_CLIENTS);
    }

    #[test]
    fn each_bound_is_accepted_and_the_values_beyond_it_are_refused() {
        let ok = |b: ConfigBuilder| b.build().expect("inside the range");
        let refused = |b: ConfigBuilder| b.build().expect_err("outside the range");
        let (lo, hi) = (
            *crate::MAX_CLIENTS_RANGE.start(),
            *crate::MAX_CLIENTS_RANGE.end(),
        );
        assert_eq!(ok(Config::builder().max_clients(lo)).max_clients, lo);
        assert_eq!(ok(Config::builder().max_clients(hi)).max_clients, hi);
        assert_eq!(
            refused(Config::builder().max_clients(usize::MAX)).to_string(),
            format!(
                "--max-clients must be from 1 to 1000000, not {}",
                usize::MAX
            )
        );
        refused(Config::builder().max_clients(0));
        ok(Config::builder().max_clients_per_address(0));
        ok(Config::builder().max_clients_per_address(1_000_000));
        refused(Config::builder().max_clients_per_address(1_000_001));
        refused(Config::builder().max_handshakes(0));
        refused(Config::builder().max_handshakes(usize::MAX));
        refused(Config::builder().max_line_bytes(usize::MAX));
        refused(Config::builder().queue_bytes(0));
        let ms = Duration::from_millis;
        assert_eq!(
            refused(Config::builder().date_period(Duration::ZERO)).to_string(),
            "--date-period must be from 10ms to 24h, not 0s"
        );
        ok(Config::builder().date_period(ms(10)));
        refused(Config::builder().date_period(Duration::MAX));
        refused(Config::builder().handshake_timeout(ms(9)));
        refused(Config::builder().write_timeout(Duration::from_nanos(1)));
        refused(Config::builder().shutdown_grace(Duration::from_secs(61)));
        ok(Config::builder()
            .max_line_bytes(*crate::MAX_LINE_BYTES_RANGE.end())
            .write_timeout(ms(10))
            .handshake_timeout(ms(10))
            .shutdown_grace(ms(10)));
    }
}
