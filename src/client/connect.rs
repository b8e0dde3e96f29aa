//! Connecting (SPEC §10): resolving the host, the TCP connect and the TLS
//! handshake, each under the connect timeout, and every failure turned
//! into the [`ClientError`] a person can act on.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::CertificateError;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{Options, happy_eyeballs};
use crate::error::ClientError;
use crate::tls;

/// Resolves, connects and completes the TLS handshake; failures become
/// the [`ClientError`] a person needs. The TCP connect (to whichever
/// resolved address answers first, see `happy_eyeballs`) and the
/// handshake each have the connect timeout.
pub async fn connect(
    options: &Options,
    config: Arc<rustls::ClientConfig>,
) -> Result<TlsStream<TcpStream>, ClientError> {
    let addrs = resolve(options).await?;
    let tcp = tcp_connect(options, addrs).await?;
    let _ = tcp.set_nodelay(true);
    crate::dead_peer::watch(&tcp, options.dead_peer_timeout);
    tls_handshake(options, config, tcp).await
}

/// The host's addresses, in the order they are tried.
async fn resolve(options: &Options) -> Result<Vec<SocketAddr>, ClientError> {
    let unknown = |source| ClientError::UnknownHost {
        host: options.host.clone(),
        source,
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((options.host.as_str(), options.port))
        .await
        .map_err(unknown)?
        .collect();
    tracing::debug!(host = %options.host, port = options.port, addresses = ?addrs, "resolved");
    if addrs.is_empty() {
        return Err(unknown(std::io::Error::other("no address found")));
    }
    Ok(happy_eyeballs::attempt_order(&addrs))
}

/// A TCP connection to the first of `addrs` that answers, within the
/// connect timeout.
async fn tcp_connect(options: &Options, addrs: Vec<SocketAddr>) -> Result<TcpStream, ClientError> {
    let target = options.target();
    let race = happy_eyeballs::first_to_connect(addrs, happy_eyeballs::ATTEMPT_DELAY, |addr| {
        TcpStream::connect(addr)
    });
    let failures = match tokio::time::timeout(options.connect_timeout, race).await {
        Ok(Ok((tcp, addr))) => {
            tracing::debug!(%addr, "TCP connected");
            return Ok(tcp);
        }
        Ok(Err(failures)) => failures,
        Err(_) => {
            tracing::debug!(timeout = ?options.connect_timeout, "no address answered");
            return Err(ClientError::Unreachable {
                addr: target,
                reason: format!("no answer within {:?}", options.connect_timeout),
            });
        }
    };
    for (addr, err) in &failures {
        tracing::debug!(%addr, error = %err, "TCP connect failed");
    }
    // Refused by one address says that host is up and has nothing there;
    // otherwise the last error says why none could be reached.
    let refused = failures
        .iter()
        .any(|(_, err)| err.kind() == std::io::ErrorKind::ConnectionRefused);
    Err(match failures.into_iter().next_back() {
        Some(_) if refused => ClientError::Refused { addr: target },
        Some((_, err)) => ClientError::Unreachable {
            addr: target,
            reason: err.to_string(),
        },
        None => ClientError::Unreachable {
            addr: target,
            reason: "no address to try".to_owned(),
        },
    })
}

/// The TLS handshake over `tcp`, within the connect timeout.
async fn tls_handshake(
    options: &Options,
    config: Arc<rustls::ClientConfig>,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, ClientError> {
    let target = options.target();
    let name = ServerName::try_from(options.verified_name().to_owned()).map_err(|_| {
        ClientError::Handshake {
            addr: target.clone(),
            reason: format!("{:?} is not a valid server name", options.verified_name()),
        }
    })?;
    let handshake = TlsConnector::from(config).connect(name, tcp);
    match tokio::time::timeout(options.connect_timeout, handshake).await {
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
        rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
            Some(ClientError::NameMismatch {
                name: verified_name.to_owned(),
                valid_for: Vec::new(),
            })
        }
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if other.0.downcast_ref::<tls::PinMismatch>().is_some() =>
        {
            let mismatch = other.0.downcast_ref::<tls::PinMismatch>()?;
            Some(ClientError::PinMismatch(mismatch.clone()))
        }
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if other.0.downcast_ref::<tls::NameMismatch>().is_some() =>
        {
            let mismatch = other.0.downcast_ref::<tls::NameMismatch>()?;
            Some(ClientError::NameMismatch {
                name: verified_name.to_owned(),
                valid_for: mismatch.valid_for.clone(),
            })
        }
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
        rustls::Error::AlertReceived(alert) => client_cert_rejected(*alert),
        _ => None,
    }
}

/// The server's refusal of our client certificate, if `alert` is one.
fn client_cert_rejected(alert: rustls::AlertDescription) -> Option<ClientError> {
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
        reason: crate::error::client_cert_alert(alert),
    })
}

/// "TLSv1.3, TLS13_AES_256_GCM_SHA384" for a connected stream.
pub(crate) fn describe(stream: &TlsStream<TcpStream>) -> String {
    let (version, cipher) = tls::negotiated(stream.get_ref().1);
    format!("{version}, {cipher}")
}
