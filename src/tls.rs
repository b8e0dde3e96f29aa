//! rustls configurations for both ends, and PEM loading (SPEC §1).
//!
//! One crypto provider for everything: aws-lc-rs, named explicitly through
//! `builder_with_provider`, so the process never depends on a global default
//! being installed. TLS 1.3 and 1.2 are offered (rustls' safe defaults).
//! PEM files are read by `pem_files` (regular files of bounded size only)
//! and parsed by `rustls-pki-types`' `PemObject`.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::pki_types::{ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};

use crate::error::TlsSetupError;
use crate::pem_files;

/// The crypto provider used by every configuration in this crate.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads every certificate from a PEM file; at least one must be present.
///
/// The file is read as the server reads its own (`pem_files`): only a
/// regular file, of at most 1 MiB, so that a FIFO, a device or a huge file
/// given by mistake is an error at once rather than a hang or an
/// exhausted memory.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    pem_files::certificates(path)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) from a PEM file,
/// under the same rules as [`load_certs`].
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    pem_files::key(path)
}

/// A root store holding `certs`; certificates it cannot parse are an error.
pub fn root_store(certs: Vec<CertificateDer<'static>>) -> Result<RootCertStore, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// The server's configuration: it always presents `chain`; with `client_ca`
/// it requires every client to present a certificate signed by one of those
/// CAs (mutual TLS), and otherwise asks for none.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Option<Vec<CertificateDer<'static>>>,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        Some(cas) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(cas)?), provider)
                    .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    // Connections are long-lived and clients rarely reconnect, so session
    // tickets would only cost a round of work per handshake.
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// A client's configuration: it verifies the server against `roots` as
/// webpki does (a name mismatch says which names the certificate is valid
/// for: [`NameMismatch`]) and presents `identity` (a certificate chain and
/// key) if given.
pub fn client_config(
    roots: RootCertStore,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let provider = provider();
    let webpki =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    client_config_trusting(Trust::Roots(webpki), provider, identity)
}

/// A client's configuration that trusts exactly the servers whose public
/// key is one of `pins` (`--pin`), whatever signed their certificate and
/// whatever names it holds, and presents `identity` if given.
pub fn pinned_client_config(
    pins: Vec<crate::pin::Pin>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    client_config_trusting(Trust::Pins { pins, algorithms }, provider, identity)
}

/// A client's configuration with `trust`.
fn client_config_trusting(
    trust: Trust,
    provider: Arc<rustls::crypto::CryptoProvider>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerVerifier { trust }));
    let config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Verifies a server's certificate exactly as webpki does (a chain to a
/// trusted root, valid now, for the name asked), and says more when the
/// name is wrong: the error then carries a [`NameMismatch`] with the names
/// the certificate lists, read from its subject alternative names, so the
/// client can tell a person which name to use. Nothing is accepted that
/// webpki refuses.
#[derive(Debug)]
pub(crate) struct ServerVerifier {
    trust: Trust,
}

/// Whom a client trusts.
#[derive(Debug)]
enum Trust {
    /// Certificates that chain to these roots, for the name asked.
    Roots(Arc<WebPkiServerVerifier>),
    /// Exactly the servers whose public key is one of these (`--pin`): no
    /// chain and no name is checked, only the key, and the handshake's
    /// signatures made with it.
    Pins {
        pins: Vec<crate::pin::Pin>,
        algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
    },
}

/// A server whose public key matches none of the pins: the pin it has, and
/// those asked for.
///
/// Its `Debug` is its sentence: rustls shows the error it carries in its
/// debug form.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "its public key is {presented}, not {}",
    expected.iter().map(ToString::to_string).collect::<Vec<_>>().join(" or ")
)]
pub struct PinMismatch {
    /// The pin of the key the server presented.
    pub presented: crate::pin::Pin,
    /// The pins the client was given.
    pub expected: Vec<crate::pin::Pin>,
}

impl std::fmt::Debug for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A server certificate that is trusted but not valid for the name asked:
/// the names it is valid for (DNS names and IP addresses, as written).
///
/// Its `Debug` is its sentence: rustls shows the error it carries in its
/// debug form.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("certificate not valid for name {expected}; it is valid for {}", valid_for.join(", "))]
pub struct NameMismatch {
    /// The name asked for.
    pub expected: String,
    /// The certificate's subject alternative names.
    pub valid_for: Vec<String>,
}

impl std::fmt::Debug for NameMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let webpki = match &self.trust {
            Trust::Roots(webpki) => webpki,
            Trust::Pins { pins, .. } => return verify_pinned(end_entity, pins),
        };
        webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|err| match err {
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => other_certificate_error(NameMismatch {
                    expected: server_name.to_str().into_owned(),
                    valid_for: subject_alt_names(end_entity),
                }),
                other => other,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match &self.trust {
            Trust::Roots(webpki) => webpki.verify_tls12_signature(message, cert, dss),
            Trust::Pins { algorithms, .. } => {
                rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
            }
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match &self.trust {
            Trust::Roots(webpki) => webpki.verify_tls13_signature(message, cert, dss),
            Trust::Pins { algorithms, .. } => {
                rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
            }
        }
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        match &self.trust {
            Trust::Roots(webpki) => webpki.supported_verify_schemes(),
            Trust::Pins { algorithms, .. } => algorithms.supported_schemes(),
        }
    }
}

/// Accepts `end_entity` if its public key is one of `pins`.
fn verify_pinned(
    end_entity: &CertificateDer<'_>,
    pins: &[crate::pin::Pin],
) -> Result<ServerCertVerified, rustls::Error> {
    match crate::pin::Pin::of(end_entity) {
        Some(pin) if pins.contains(&pin) => Ok(ServerCertVerified::assertion()),
        Some(presented) => Err(other_certificate_error(PinMismatch {
            presented,
            expected: pins.to_vec(),
        })),
        None => Err(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        )),
    }
}

/// A certificate error that carries one of ours, for the client to read
/// back (`CertificateError::Other`).
fn other_certificate_error(error: impl std::error::Error + Send + Sync + 'static) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(error))))
}

/// The DNS names and IP addresses a DER certificate's subject alternative
/// name extension lists, in order; none if it has none or cannot be
/// parsed.
pub(crate) fn subject_alt_names(cert: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(names)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    names
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|ip| std::net::IpAddr::from(ip).to_string()),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|ip| std::net::IpAddr::from(ip).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// SHA-256 fingerprint of a DER certificate, as colon-separated hex (the form
/// `openssl x509 -fingerprint -sha256` prints).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.as_ref());
    digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The negotiated protocol version (`TLSv1.3`) and cipher suite of a
/// session, for log lines and the client's "connected" line.
///
/// The two versions rustls negotiates are named without an allocation:
/// the server names one in every client's log line.
pub(crate) fn negotiated(
    session: &rustls::CommonState,
) -> (std::borrow::Cow<'static, str>, &'static str) {
    use rustls::ProtocolVersion;
    // rustls names versions "TLSv1_3"; people write "TLSv1.3".
    let version = match session.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
        other => other
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .replace('_', ".")
            .into(),
    };
    let cipher = session
        .negotiated_cipher_suite()
        .and_then(|suite| suite.suite().as_str())
        .unwrap_or("unknown");
    (version, cipher)
}

/// The key exchange group a session agreed on (`X25519MLKEM768`), for the
/// client's verbose log.
pub(crate) fn key_exchange(session: &rustls::CommonState) -> String {
    session.negotiated_key_exchange_group().map_or_else(
        || "unknown".to_owned(),
        |group| format!("{:?}", group.name()),
    )
}

/// When a DER certificate expires (its `notAfter`), or `None` if it cannot
/// be parsed.
pub fn expiry(cert: &CertificateDer<'_>) -> Option<jiff::Timestamp> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    jiff::Timestamp::from_second(parsed.validity().not_after.timestamp()).ok()
}

/// The subject of a DER certificate (`CN=…, O=…`), or `None` if it cannot be
/// parsed. Used for log lines only.
pub(crate) fn subject(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.subject().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devca::CertificateAuthority;
    use rustls::pki_types::pem::PemObject;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("written");
        path
    }

    #[test]
    fn loads_pem_and_builds_both_configs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::new("test CA").expect("ca");
        let server = ca.issue_server(&["localhost"]).expect("server cert");
        let cert = write(tmp.path(), "cert.pem", &server.cert_pem);
        let key = write(tmp.path(), "key.pem", &server.key_pem);
        let ca_path = write(tmp.path(), "ca.pem", &ca.cert_pem());

        let chain = load_certs(&cert).expect("certs");
        assert_eq!(chain.len(), 1);
        assert_eq!(fingerprint(&chain[0]).len(), 32 * 3 - 1);
        assert_eq!(subject(&chain[0]).as_deref(), Some("CN=localhost"));
        assert_eq!(subject_alt_names(&chain[0]), ["localhost"]);
        let key = load_key(&key).expect("key");
        let cas = load_certs(&ca_path).expect("ca");
        server_config(chain.clone(), key.clone_key(), Some(cas.clone())).expect("mTLS config");
        server_config(chain, key, None).expect("plain config");
        client_config(root_store(cas).expect("roots"), None).expect("client config");
    }

    #[test]
    fn bad_files_name_the_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let empty = write(tmp.path(), "empty.pem", "no pem here\n");
        let err = load_certs(&empty).expect_err("no certs");
        assert_eq!(
            err.to_string(),
            format!("no certificate found in {}", empty.display())
        );
        let err = load_key(&empty).expect_err("no key");
        assert!(err.to_string().contains("empty.pem"), "{err}");
        let missing = tmp.path().join("missing.pem");
        let err = load_certs(&missing).expect_err("missing");
        assert!(
            err.to_string().starts_with("cannot read certificates from"),
            "{err}"
        );
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_refused() {
        let ca = CertificateAuthority::new("test CA").expect("ca");
        let one = ca.issue_server(&["localhost"]).expect("one");
        let other = ca.issue_server(&["localhost"]).expect("other");
        let chain = vec![CertificateDer::from_pem_slice(one.cert_pem.as_bytes()).expect("cert")];
        let key = PrivateKeyDer::from_pem_slice(other.key_pem.as_bytes()).expect("key");
        let err = server_config(chain, key, None).expect_err("mismatch");
        assert!(
            err.to_string().starts_with("invalid TLS configuration"),
            "{err}"
        );
    }
}
