//! The server: [`run`] serves TLS clients on a bound listener until a
//! shutdown future completes.
//!
//! - `listener` owns accepting, the handshake cap and deadline, and each
//!   connection's steps (SPEC §1, §6).
//! - `admission` owns the client slots and the rejections.
//! - `identity` owns the certificate files and the TLS configuration read
//!   from them.
//! - `conn` owns one client's session: lines in, frames out, its date
//!   deadlines, its bounded queue and write timeout, and the shutdown drain
//!   (SPEC §2–5, §7, §8).

use std::time::Duration;

mod admission;
mod conn;
mod identity;
mod listener;

use crate::error::ServerError;
use identity::IdentityFiles;
pub use listener::run;

/// The server's limits and periods, validated (every field is non-zero).
#[derive(Debug, Clone)]
pub struct Config {
    /// Most clients connected at once; one slot is held from the end of a
    /// client's TLS handshake until its connection closes.
    pub max_clients: usize,
    /// Time between two `date` frames to one client.
    pub date_period: Duration,
    /// Deadline for a TLS handshake, from the TCP accept.
    pub handshake_timeout: Duration,
    /// Most TLS handshakes in progress at once.
    pub max_handshakes: usize,
    /// Longest line accepted, in bytes, terminator excluded.
    pub max_line_bytes: usize,
    /// Longest a client's socket may take none of the frames waiting for
    /// it before the client is dropped as a slow reader.
    pub write_timeout: Duration,
    /// Encoded frames, in bytes, waiting to be written to one client at
    /// which the server stops reading that client's lines.
    pub queue_bytes: usize,
    /// After shutdown starts, how long a connection gets to finish.
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_clients: crate::DEFAULT_MAX_CLIENTS,
            date_period: crate::DEFAULT_DATE_PERIOD,
            handshake_timeout: crate::DEFAULT_HANDSHAKE_TIMEOUT,
            max_handshakes: crate::DEFAULT_MAX_HANDSHAKES,
            max_line_bytes: crate::DEFAULT_MAX_LINE_BYTES,
            write_timeout: crate::DEFAULT_WRITE_TIMEOUT,
            queue_bytes: crate::DEFAULT_QUEUE_BYTES,
            shutdown_grace: crate::DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// Everything `servercli` needs to start, after its flags are validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address and port to listen on (port 0 picks a free port).
    pub listen: std::net::SocketAddr,
    /// Certificate chain and key files; `None` uses the development CA.
    pub identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// CA file whose certificates clients must present (mutual TLS).
    pub client_ca: Option<std::path::PathBuf>,
    /// File to write the listening port to once the server accepts
    /// connections (for a supervisor or test that started it on port 0).
    pub port_file: Option<std::path::PathBuf>,
    /// Limits and periods.
    pub config: Config,
}

/// Loads (or creates) the certificates, binds the listener, logs where it
/// listens, and serves until `shutdown` completes.
pub async fn start(
    settings: Settings,
    shutdown: impl std::future::Future,
) -> Result<(), ServerError> {
    let identity = IdentityFiles::locate(settings.identity, settings.client_ca)?;
    let tls_config = identity.load()?;
    warn_if_too_few_files(&settings.config);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
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
    tracing::info!(
        max_clients = settings.config.max_clients,
        date_period = ?settings.config.date_period,
        mutual_tls = identity.mutual(),
        "listening on {local}"
    );
    run(listener, tls_config, settings.config, shutdown).await;
    Ok(())
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
