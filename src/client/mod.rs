//! The client side (SPEC §9–10): whom to trust, connecting with a deadline
//! for every phase, and turning TLS failures into sentences a person can act
//! on.
//!
//! - `connect`: resolving, the TCP connect and the TLS handshake, each
//!   under its deadline, and TLS failures in words ([`connect()`]).
//! - `happy_eyeballs`: several addresses raced as RFC 8305 does, so that
//!   one that does not answer costs a fraction of a second.
//! - [`session`]: one client session, front-end independent: lines in,
//!   events out, reconnection; `link` is one of its connections (frames
//!   in, lines out, a server that stopped answering noticed) and `lines`
//!   its lines across connections, each matched to its own answer.
//! - `backoff`: when a reconnecting session tries again, and after which
//!   failures ([`Backoff`], [`is_retried`]).
//!
//! How events are shown (the terminal and pipe front ends) is the
//! program's: `clientcli`'s, in `crates/nea-cli`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::ServerName;

use crate::error::{ClientError, ConfigError};
use crate::{devca, tls};

mod backoff;
mod connect;
mod happy_eyeballs;
mod lines;
mod link;
pub mod session;

pub use backoff::{Backoff, SERVED_FOR, is_retried};
pub use connect::connect;
pub use lines::Tally;

/// What to connect to, whom to trust, and how to behave.
///
/// Built only through [`Options::new`], which checks the host and port, and
/// its setters (the server name is checked too), so a session never starts
/// from a value it cannot use.
#[derive(Debug, Clone)]
pub struct Options {
    /// Host name or address of the server, without brackets around an
    /// IPv6 address. Never empty, never with white space or control
    /// characters.
    pub(crate) host: String,
    /// TCP port of the server; never 0.
    pub(crate) port: u16,
    /// Name to verify in the server's certificate; defaults to `host`.
    /// A valid DNS name or IP address.
    pub(crate) server_name: Option<String>,
    /// Extra CA files to trust, on top of the system roots and the
    /// development CA.
    pub(crate) extra_cas: Vec<PathBuf>,
    /// Public keys to trust exactly (`--pin`): when there are any, the
    /// server is trusted if and only if its key is one of them, with no CA
    /// and no name checked.
    pub(crate) pins: Vec<crate::pin::Pin>,
    /// The development CA file, trusted when it exists
    /// ([`development_ca_file`] is where `servercli` makes it).
    pub(crate) dev_ca: Option<PathBuf>,
    /// Client certificate chain and key, for mutual TLS.
    pub(crate) identity: Option<(PathBuf, PathBuf)>,
    /// Print the server's frames as NDJSON instead of text.
    pub(crate) json: bool,
    /// Reconnect, with backoff, after a lost connection or a shutdown.
    pub(crate) reconnect: bool,
    /// Deadline for each connection phase: the TCP connect, then the TLS
    /// handshake. Inside `CONNECT_TIMEOUT_RANGE`.
    pub(crate) connect_timeout: Duration,
    /// Delay before the first reconnection attempt; doubles up to
    /// `backoff::MAX_BACKOFF`.
    pub(crate) first_backoff: Duration,
    /// How long the server may stop answering (at the TCP level, or with
    /// lines waiting for replies) before it is given up. Inside
    /// `DEAD_PEER_TIMEOUT_RANGE`.
    pub(crate) dead_peer_timeout: Duration,
}

impl Options {
    /// Options for `host:port` with the defaults of `clientcli`. `host` is
    /// a name or an address; an IPv6 address may be written in brackets
    /// (`[::1]`), as in a URL.
    pub fn new(host: &str, port: u16) -> Result<Self, ConfigError> {
        let host = host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError {
                setting: "--host",
                range: "a host name or an address".to_owned(),
                value: format!("{host:?}"),
            });
        }
        let port = ConfigError::within("--port", port, &(1..=u16::MAX))?;
        Ok(Self {
            host: host.to_owned(),
            port,
            server_name: None,
            extra_cas: Vec::new(),
            pins: Vec::new(),
            dev_ca: None,
            identity: None,
            json: false,
            reconnect: false,
            connect_timeout: crate::DEFAULT_CONNECT_TIMEOUT,
            first_backoff: backoff::FIRST_BACKOFF,
            dead_peer_timeout: crate::DEFAULT_DEAD_PEER_TIMEOUT,
        })
    }

    /// Verify `name` in the server's certificate instead of the host.
    pub fn server_name(mut self, name: &str) -> Result<Self, ConfigError> {
        if ServerName::try_from(name).is_err() {
            return Err(ConfigError {
                setting: "--server-name",
                range: "a DNS name or an IP address".to_owned(),
                value: format!("{name:?}"),
            });
        }
        self.server_name = Some(name.to_owned());
        Ok(self)
    }

    /// Also trust the CA certificates in this PEM file.
    #[must_use]
    pub fn trust(mut self, ca: PathBuf) -> Self {
        self.extra_cas.push(ca);
        self
    }

    /// Present this certificate chain and key (mutual TLS).
    #[must_use]
    pub fn identity(mut self, cert: PathBuf, key: PathBuf) -> Self {
        self.identity = Some((cert, key));
        self
    }

    /// Trust exactly a server whose public key is `pin` (or another pin
    /// given): no CA, no name check.
    #[must_use]
    pub fn pin(mut self, pin: crate::pin::Pin) -> Self {
        self.pins.push(pin);
        self
    }

    /// Also trust the development CA in this file, if it exists when the
    /// TLS configuration is made ([`tls_config`]); `None` for no such CA.
    #[must_use]
    pub fn development_ca(mut self, file: Option<PathBuf>) -> Self {
        self.dev_ca = file;
        self
    }

    /// Report the server's frames exactly as received (NDJSON).
    #[must_use]
    pub fn json(mut self, json: bool) -> Self {
        self.json = json;
        self
    }

    /// Reconnect after a lost connection or a shutdown, and re-send the
    /// lines not yet answered.
    #[must_use]
    pub fn reconnect(mut self, reconnect: bool) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// The deadline for each connection phase (`CONNECT_TIMEOUT_RANGE`).
    pub fn connect_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        self.connect_timeout =
            ConfigError::within("--connect-timeout", timeout, &crate::CONNECT_TIMEOUT_RANGE)?;
        Ok(self)
    }

    /// How long the server may stop answering before it is given up
    /// (`DEAD_PEER_TIMEOUT_RANGE`): at the TCP level (a path that died),
    /// or with lines waiting for their replies.
    pub fn dead_peer_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        self.dead_peer_timeout = ConfigError::within(
            "--dead-peer-timeout",
            timeout,
            &crate::DEAD_PEER_TIMEOUT_RANGE,
        )?;
        Ok(self)
    }

    /// `host:port`, as shown in messages.
    pub(crate) fn target(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The name the server's certificate must be valid for.
    pub(crate) fn verified_name(&self) -> &str {
        self.server_name.as_deref().unwrap_or(&self.host)
    }
}

/// The development CA's certificate file that `servercli` creates on its
/// first run without `--cert` (whether or not it exists yet): what
/// `clientcli` trusts by default besides the system's roots.
pub fn development_ca_file() -> Option<PathBuf> {
    devca::default_dir().map(|dir| devca::ca_cert_path(&dir))
}

/// The TLS configuration: exactly the pinned keys if there are pins;
/// otherwise the system roots, plus the development CA if its file exists,
/// plus every `--ca`. And the client certificate if one is given.
pub fn tls_config(options: &Options) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let identity = match &options.identity {
        Some((cert, key)) => Some((tls::load_certs(cert)?, tls::load_key(key)?)),
        None => None,
    };
    if !options.pins.is_empty() {
        return Ok(tls::pinned_client_config(options.pins.clone(), identity)?);
    }
    let mut roots = RootCertStore::empty();
    // Certificates the system store holds but rustls cannot parse are
    // skipped, as are errors reading parts of the store: trust is only ever
    // narrowed by them, never widened.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(dev_ca) = options.dev_ca.as_ref().filter(|path| path.exists()) {
        roots.add_parsable_certificates(tls::load_certs(dev_ca)?);
    }
    for ca in &options.extra_cas {
        for cert in tls::load_certs(ca)? {
            roots.add(cert).map_err(crate::error::TlsSetupError::from)?;
        }
    }
    Ok(tls::client_config(roots, identity)?)
}
