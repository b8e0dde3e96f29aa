//! The client side (SPEC §9–10): whom to trust, connecting with a deadline
//! for every phase, and turning TLS failures into sentences a person can act
//! on.
//!
//! - [`session`]: one client session, front-end independent: lines in,
//!   events out, replies matched to lines, reconnection.
//! - `display`: how events are shown: local-time dates, escaped server
//!   text.
//! - `pipe` and `term`: the two front ends, for standard input that is a
//!   pipe or file, and for an interactive terminal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{CertificateError, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::{ClientError, ConfigError};
use crate::{devca, tls};

mod display;
// The two front ends of `clientcli`, public for that binary only.
#[doc(hidden)]
pub mod pipe;
pub mod session;
#[doc(hidden)]
pub mod term;

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
    /// The development CA file, trusted when it exists.
    pub(crate) dev_ca: Option<PathBuf>,
    /// Client certificate chain and key, for mutual TLS.
    pub(crate) identity: Option<(PathBuf, PathBuf)>,
    /// Print the server's frames as NDJSON instead of text.
    pub(crate) json: bool,
    /// Reconnect, with backoff, after a lost connection or a shutdown.
    pub(crate) reconnect: bool,
    /// Where the line editor keeps its history across sessions; `None`
    /// keeps none.
    pub(crate) history: Option<PathBuf>,
    /// Deadline for each connection phase: the TCP connect, then the TLS
    /// handshake. Inside `CONNECT_TIMEOUT_RANGE`.
    pub(crate) connect_timeout: Duration,
    /// Delay before the first reconnection attempt; doubles up to
    /// `session::MAX_BACKOFF`.
    pub(crate) first_backoff: Duration,
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
                setting: "host",
                range: "a host name or an address".to_owned(),
                value: format!("{host:?}"),
            });
        }
        let port = ConfigError::within("port", port, &(1..=u16::MAX))?;
        Ok(Self {
            host: host.to_owned(),
            port,
            server_name: None,
            extra_cas: Vec::new(),
            dev_ca: development_ca_file(),
            identity: None,
            json: false,
            reconnect: false,
            connect_timeout: crate::DEFAULT_CONNECT_TIMEOUT,
            history: default_history_file(),
            first_backoff: session::FIRST_BACKOFF,
        })
    }

    /// Verify `name` in the server's certificate instead of the host.
    pub fn server_name(mut self, name: &str) -> Result<Self, ConfigError> {
        if ServerName::try_from(name).is_err() {
            return Err(ConfigError {
                setting: "server-name",
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

    /// Keep the interactive history in this file (`None`: keep none).
    #[must_use]
    pub fn history(mut self, file: Option<PathBuf>) -> Self {
        self.history = file;
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
            ConfigError::within("connect-timeout", timeout, &crate::CONNECT_TIMEOUT_RANGE)?;
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

/// Where the interactive history is kept by default, as shells keep theirs:
/// `$XDG_STATE_HOME/nea/history` (`~/.local/state/nea/history`).
pub fn default_history_file() -> Option<PathBuf> {
    dirs::state_dir().map(|dir| dir.join("nea").join("history"))
}

/// The TLS configuration: system roots, plus the development CA if its file
/// exists, plus every `--ca`; and the client certificate if one is given.
pub fn tls_config(options: &Options) -> Result<Arc<rustls::ClientConfig>, ClientError> {
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
    let identity = match &options.identity {
        Some((cert, key)) => Some((tls::load_certs(cert)?, tls::load_key(key)?)),
        None => None,
    };
    Ok(tls::client_config(roots, identity)?)
}

/// Resolves, connects and completes the TLS handshake, each phase under the
/// connect timeout; failures become the [`ClientError`] a person needs.
pub async fn connect(
    options: &Options,
    config: Arc<rustls::ClientConfig>,
) -> Result<TlsStream<TcpStream>, ClientError> {
    let target = options.target();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((options.host.as_str(), options.port))
        .await
        .map_err(|source| ClientError::UnknownHost {
            host: options.host.clone(),
            source,
        })?
        .collect();
    tracing::debug!(host = %options.host, port = options.port, addresses = ?addrs, "resolved");
    let mut failure = ClientError::UnknownHost {
        host: options.host.clone(),
        source: std::io::Error::other("no address found"),
    };
    let mut tcp = None;
    for addr in addrs {
        match tokio::time::timeout(options.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                tracing::debug!(%addr, "TCP connected");
                tcp = Some(stream);
                break;
            }
            Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
                tracing::debug!(%addr, "TCP connection refused");
                failure = ClientError::Refused {
                    addr: target.clone(),
                };
            }
            Ok(Err(err)) => {
                tracing::debug!(%addr, error = %err, "TCP connect failed");
                failure = ClientError::Unreachable {
                    addr: target.clone(),
                    reason: err.to_string(),
                };
            }
            Err(_) => {
                tracing::debug!(%addr, "TCP connect timed out");
                failure = ClientError::Unreachable {
                    addr: target.clone(),
                    reason: format!("no answer within {:?}", options.connect_timeout),
                };
            }
        }
    }
    let tcp = tcp.ok_or(failure)?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(options.verified_name().to_owned()).map_err(|_| {
        ClientError::Handshake {
            addr: target.clone(),
            reason: format!("{:?} is not a valid server name", options.verified_name()),
        }
    })?;
    match tokio::time::timeout(
        options.connect_timeout,
        TlsConnector::from(config).connect(name, tcp),
    )
    .await
    {
        Ok(Ok(stream)) => {
            log_session(&stream);
            Ok(stream)
        }
        Ok(Err(err)) => Err(
            match classify_tls_error(&err, options.verified_name(), &target) {
                Some(classified) => classified,
                None if closed_by_peer(&err) => ClientError::HandshakeClosed { addr: target },
                None => ClientError::Handshake {
                    addr: target,
                    reason: err.to_string(),
                },
            },
        ),
        Err(_) => Err(ClientError::HandshakeUnanswered {
            addr: target,
            after: options.connect_timeout,
        }),
    }
}

/// Whether a handshake failed because the peer closed or reset the
/// connection, rather than for a reason TLS gives.
fn closed_by_peer(err: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        err.kind(),
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe
    )
}

/// The verbose log of an established session: what was negotiated, and the
/// server's certificate chain, each with its subject and expiry.
fn log_session(stream: &TlsStream<TcpStream>) {
    let (_, session) = stream.get_ref();
    let (version, cipher) = tls::negotiated(session);
    tracing::debug!(
        tls = %version,
        cipher,
        key_exchange = %tls::key_exchange(session),
        "TLS handshake done"
    );
    for (position, cert) in session
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        tracing::debug!(
            position,
            subject = %tls::subject(cert).unwrap_or_else(|| "?".to_owned()),
            expires = %tls::expiry(cert).map_or_else(|| "?".to_owned(), |at| at.to_string()),
            sha256 = %tls::fingerprint(cert),
            "server certificate"
        );
    }
}

/// Names the TLS failures a person can fix: an untrusted chain, a name
/// mismatch, or our client certificate refused by the server. `None` for
/// anything else.
pub(crate) fn classify_tls_error(
    err: &std::io::Error,
    verified_name: &str,
    addr: &str,
) -> Option<ClientError> {
    let tls_error = err.get_ref()?.downcast_ref::<rustls::Error>()?;
    match tls_error {
        rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => {
            Some(ClientError::NameMismatch {
                name: verified_name.to_owned(),
                valid_for: Vec::new(),
            })
        }
        rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            presented,
            ..
        }) => Some(ClientError::NameMismatch {
            name: verified_name.to_owned(),
            valid_for: presented.clone(),
        }),
        rustls::Error::InvalidCertificate(problem) => Some(ClientError::NotTrusted {
            reason: crate::error::certificate_problem(problem),
            advice: if matches!(
                problem,
                CertificateError::UnknownIssuer | CertificateError::BadSignature
            ) {
                "pass the CA that signed it with --ca"
            } else {
                "the server's operator must replace it"
            },
        }),
        rustls::Error::InvalidMessage(_) => Some(ClientError::NotTls {
            addr: addr.to_owned(),
        }),
        rustls::Error::AlertReceived(alert) => {
            use rustls::AlertDescription as A;
            matches!(
                alert,
                A::CertificateRequired
                    | A::UnknownCA
                    | A::BadCertificate
                    | A::UnsupportedCertificate
                    | A::CertificateRevoked
                    | A::CertificateExpired
                    | A::CertificateUnknown
                    | A::AccessDenied
            )
            .then(|| ClientError::ClientCertRejected {
                reason: crate::error::client_cert_alert(*alert),
            })
        }
        _ => None,
    }
}

/// "TLSv1.3, TLS13_AES_256_GCM_SHA384" for a connected stream.
pub(crate) fn describe(stream: &TlsStream<TcpStream>) -> String {
    let (version, cipher) = tls::negotiated(stream.get_ref().1);
    format!("{version}, {cipher}")
}
