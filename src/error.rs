//! Error types. Each `Display` is one sentence a person can act on, naming
//! the file or phase involved; the binaries print it after their name.
//!
//! Protocol rejections (a line too long, not UTF-8, a full server) are not
//! errors: they are [`crate::codec::Inbound`] values and
//! [`crate::protocol::ErrorCode`] frames.

use std::io;
use std::path::PathBuf;

/// Loading certificates and keys, or building a TLS configuration, failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {what} from {path}: {source}")]
    Pem {
        /// What was expected in the file ("certificates", "a private key").
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: rustls::pki_types::pem::Error,
    },
    /// A PEM file held no certificate.
    #[error("no certificate found in {path}")]
    NoCertificates {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the certificates or key (for example, a key that does
    /// not match the certificate).
    #[error("invalid TLS configuration: {}", in_words(.0))]
    Rustls(#[from] rustls::Error),
    /// The client CA could not be used to verify clients.
    #[error("invalid client CA: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    /// A file could not be opened or read.
    #[error("cannot read {what} from {path}: {source}")]
    Read {
        /// What was expected in the file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// The path leads to something other than a regular file (a FIFO, a
    /// device, a directory), which the server refuses to read.
    #[error("cannot read {what} from {path}: it is {kind}, not a regular file")]
    NotAFile {
        /// What was expected in the file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What it is instead ("a FIFO").
        kind: &'static str,
    },
    /// The file is larger than the server reads.
    #[error("cannot read {what} from {path}: it is larger than {}", in_bytes(*.limit))]
    TooLarge {
        /// What was expected in the file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The largest size read, in bytes.
        limit: u64,
    },
    /// The chain holds more certificates than the server presents.
    #[error("cannot use the certificates in {path}: a chain may hold at most {limit} certificates")]
    ChainTooLong {
        /// The file.
        path: PathBuf,
        /// The most certificates a chain may hold.
        limit: usize,
    },
    /// The certificate has expired: clients would refuse it.
    #[error("the certificate in {path} expired on {}; renew it", at.strftime("%Y-%m-%d %H:%M:%S UTC"))]
    Expired {
        /// The certificate file.
        path: PathBuf,
        /// When it expired.
        at: jiff::Timestamp,
    },
    /// Reading the files did not finish by the deadline.
    #[error("reading {files} did not finish within {}; is their file system hung?", crate::duration::written(*.after))]
    ReadTimedOut {
        /// The files, as a person names them.
        files: String,
        /// The deadline that passed.
        after: std::time::Duration,
    },
    /// A read given up at its deadline has still not returned: the files
    /// are not read again until it does.
    #[error("an earlier read of {files} has not returned yet; is their file system hung?")]
    ReadStuck {
        /// The files, as a person names them.
        files: String,
    },
}

/// A size in bytes as a person reads it: `1 MiB`, or `1000 bytes`.
fn in_bytes(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Creating or finding the development CA failed.
#[derive(Debug, thiserror::Error)]
pub enum DevCaError {
    /// A file or directory could not be created or written.
    #[error("cannot write the development certificates at {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// Generating a key or certificate failed.
    #[error("cannot generate the development certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// Some but not all of the files are present.
    #[error(
        "the development certificate directory {dir} is incomplete; delete it to create a new one"
    )]
    Incomplete {
        /// The directory.
        dir: PathBuf,
    },
    /// No per-user data directory is known.
    #[error("no per-user data directory is known; set NEA_DEV_DIR or pass --cert and --key")]
    NoHome,
    /// A file of the set could not be read (or is not a regular file).
    #[error(transparent)]
    Files(#[from] TlsSetupError),
}

/// A setting outside the range it accepts. A setting a program's flag sets
/// is named by that flag (`--max-clients`); one no flag sets, in words
/// (`the shutdown grace`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} must be {range}, not {value}")]
pub struct ConfigError {
    /// The setting: its flag (`--max-clients`), or its name in words.
    pub setting: &'static str,
    /// The range accepted, in words ("from 1 to 100").
    pub range: String,
    /// The value given.
    pub value: String,
}

/// A setting's value as its flag is written (`24h`, `250ms`, `100`).
pub(crate) trait AsFlag {
    fn as_flag(&self) -> String;
}

impl AsFlag for usize {
    fn as_flag(&self) -> String {
        self.to_string()
    }
}

impl AsFlag for u16 {
    fn as_flag(&self) -> String {
        self.to_string()
    }
}

impl AsFlag for std::time::Duration {
    fn as_flag(&self) -> String {
        crate::duration::written(*self)
    }
}

impl ConfigError {
    /// `value`, if `range` holds it; otherwise the error that names
    /// `setting`. Every validating constructor (the server's
    /// `ConfigBuilder::build`, the client's `Options`) checks through this.
    pub(crate) fn within<T>(
        setting: &'static str,
        value: T,
        range: &std::ops::RangeInclusive<T>,
    ) -> Result<T, Self>
    where
        T: PartialOrd + AsFlag,
    {
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(Self {
                setting,
                range: format!(
                    "from {} to {}",
                    range.start().as_flag(),
                    range.end().as_flag()
                ),
                value: value.as_flag(),
            })
        }
    }
}

/// The server could not start or stopped on an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why it failed.
        source: io::Error,
    },
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// The development CA could not be created or loaded.
    #[error(transparent)]
    DevCa(#[from] DevCaError),
    /// Another I/O failure, with the phase it happened in.
    #[error("{phase}: {source}")]
    Io {
        /// What the server was doing.
        phase: &'static str,
        /// Why it failed.
        source: io::Error,
    },
}

/// Why the client could not connect, or stopped. Each variant is one of the
/// failures SPEC §10 names, with its own exit status ([`Self::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A `--ca`, `--cert` or `--key` file could not be used.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// The host name did not resolve.
    #[error("host {host} is unknown: {source}")]
    UnknownHost {
        /// The name asked for.
        host: String,
        /// The resolver's answer.
        source: io::Error,
    },
    /// Nothing listens on the port.
    #[error("nothing is listening on {addr} (connection refused)")]
    Refused {
        /// Where we tried.
        addr: String,
    },
    /// The host could not be reached, or did not answer in time.
    #[error("cannot reach {addr}: {reason}")]
    Unreachable {
        /// Where we tried.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The server accepted the TCP connection but did not answer the TLS
    /// handshake in time: like a host that does not answer, nothing more
    /// can be learnt.
    #[error("{addr} accepted the connection but did not answer the TLS handshake within {after:?}")]
    HandshakeUnanswered {
        /// Where we tried.
        addr: String,
        /// The deadline that passed.
        after: std::time::Duration,
    },
    /// The connection was closed (or reset) before the TLS handshake was
    /// over, with no TLS alert to say why: what a load balancer does when
    /// the server behind it is stopping or gone, or a server that drops a
    /// handshake it has no room for. A reconnecting client tries again.
    #[error("{addr} closed the connection during the TLS handshake")]
    HandshakeClosed {
        /// Where we tried.
        addr: String,
    },
    /// The server's certificate chain does not lead to a trusted CA, or is
    /// not valid now.
    #[error("the server's certificate is not trusted: {reason}; {advice}")]
    NotTrusted {
        /// What is wrong with it, in words.
        reason: String,
        /// What to do about it.
        advice: &'static str,
    },
    /// The server's certificate is trusted but not for the name we asked for.
    #[error(
        "the server's certificate is not valid for the name {name}{}; connect by a name it lists, or pass --server-name",
        listed(.valid_for)
    )]
    NameMismatch {
        /// The name that was verified.
        name: String,
        /// The names the certificate is valid for, when rustls says.
        valid_for: Vec<String>,
    },
    /// The server's public key is not one of the pins (`--pin`).
    #[error("the server's key does not match --pin: {0}; refusing to send anything")]
    PinMismatch(crate::tls::PinMismatch),
    /// The server refused our client certificate (mutual TLS). With TLS 1.3
    /// this arrives as an alert on the first read, not at connect.
    #[error("{reason}; pass one signed by its client CA with --cert and --key")]
    ClientCertRejected {
        /// What the server's alert says, in words.
        reason: String,
    },
    /// Something answered, but not TLS: another protocol on that port.
    #[error("{addr} does not speak TLS: it answered with something that is not a TLS record")]
    NotTls {
        /// Where we tried.
        addr: String,
    },
    /// The TLS handshake failed for another reason.
    #[error("TLS handshake with {addr} failed: {reason}")]
    Handshake {
        /// Where we tried.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// Every client slot on the server is taken.
    #[error("the server is full; try again later")]
    ServerFull,
    /// The server holds every client it takes from this address
    /// (`address_limit`).
    #[error("the server takes no more clients from this address; try again later")]
    AddressLimit,
    /// The server said it is shutting down.
    #[error("the server shut down")]
    ServerShutDown,
    /// The server stopped answering: at the TCP level (its path died
    /// silently), or with lines waiting for replies, for the dead-peer
    /// timeout.
    #[error("the server stopped answering: nothing from it for {after:?}")]
    ServerSilent {
        /// The dead-peer timeout that passed.
        after: std::time::Duration,
    },
    /// The server sent something this client cannot take (a frame too
    /// large, not UTF-8, or not JSON).
    #[error("{reason}")]
    Protocol {
        /// What it sent, in words.
        reason: String,
    },
    /// The connection ended without the server saying why.
    #[error("connection to the server lost: {reason}")]
    ConnectionLost {
        /// What happened.
        reason: String,
    },
    /// Standard input or output failed.
    #[error("{phase}: {source}")]
    Io {
        /// What the client was doing.
        phase: &'static str,
        /// Why it failed.
        source: io::Error,
    },
}

impl ClientError {
    /// The exit status for this failure, after the BSD sysexits convention.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Tls(_) => 66,                                                // EX_NOINPUT
            Self::UnknownHost { .. } => 68,                                    // EX_NOHOST
            Self::Refused { .. } | Self::HandshakeClosed { .. } => 69,         // EX_UNAVAILABLE
            Self::Unreachable { .. } | Self::HandshakeUnanswered { .. } => 71, // EX_OSERR
            Self::ServerShutDown | Self::ConnectionLost { .. } | Self::ServerSilent { .. } => 74, // EX_IOERR
            Self::ServerFull | Self::AddressLimit => 75, // EX_TEMPFAIL
            Self::ClientCertRejected { .. }
            | Self::Handshake { .. }
            | Self::NotTls { .. }
            | Self::Protocol { .. } => 76, // EX_PROTOCOL
            Self::NotTrusted { .. } | Self::PinMismatch(_) => 77, // EX_NOPERM
            Self::NameMismatch { .. } => 78,             // EX_CONFIG
            Self::Io { .. } => 74,                       // EX_IOERR
        }
    }

    /// True for failures that a reconnecting client retries: the server went
    /// away, or was full after it came back.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::ServerShutDown
                | Self::ConnectionLost { .. }
                | Self::ServerSilent { .. }
                | Self::Refused { .. }
                | Self::Unreachable { .. }
                | Self::HandshakeUnanswered { .. }
                | Self::HandshakeClosed { .. }
                | Self::ServerFull
                | Self::AddressLimit
        )
    }
}

/// " (it is valid for a, b)", or nothing when no names are known.
fn listed(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (it is valid for {})", names.join(", "))
    }
}

/// A rustls failure in words, for the ones a person meets; rustls' own
/// text (which names enum variants) for the rest.
pub(crate) fn in_words(err: &rustls::Error) -> String {
    use rustls::{Error, InconsistentKeys};
    match err {
        Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
            "the private key does not match the certificate".to_owned()
        }
        Error::InvalidCertificate(problem) => certificate_problem(problem),
        other => other.to_string(),
    }
}

/// What is wrong with a certificate, in words.
pub(crate) fn certificate_problem(problem: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    let date = |t: &rustls::pki_types::UnixTime| {
        i64::try_from(t.as_secs())
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map_or_else(
                || "?".to_owned(),
                |ts| ts.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            )
    };
    match problem {
        C::UnknownIssuer => {
            "it is not signed by a certificate authority this client trusts".to_owned()
        }
        C::Expired => "it has expired".to_owned(),
        C::ExpiredContext { not_after, .. } => format!("it expired on {}", date(not_after)),
        C::NotValidYet => "it is not valid yet".to_owned(),
        C::NotValidYetContext { not_before, .. } => {
            format!("it is not valid before {}", date(not_before))
        }
        C::Revoked => "it has been revoked".to_owned(),
        C::BadSignature => "it is signed by a certificate authority this client does not trust \
             (its signature does not verify against the one of that name it trusts)"
            .to_owned(),
        C::BadEncoding => "it cannot be parsed".to_owned(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "it is not meant for a TLS server".to_owned()
        }
        // webpki's error has no variant of its own in rustls; its text is
        // its name.
        C::Other(other) if other.to_string() == "NameConstraintViolation" => {
            "its certificate authority may not vouch for that name \
             (the authority's name constraints exclude it)"
                .to_owned()
        }
        other => format!("it cannot be verified ({other:?})"),
    }
}

/// What a server's TLS alert after our certificate means, in words.
pub(crate) fn client_cert_alert(alert: rustls::AlertDescription) -> String {
    use rustls::AlertDescription as A;
    match alert {
        A::CertificateRequired => "the server requires a client certificate".to_owned(),
        A::UnknownCA => {
            "the server does not trust the authority that signed our client certificate".to_owned()
        }
        A::CertificateExpired => "the server says our client certificate has expired".to_owned(),
        A::CertificateRevoked => "the server says our client certificate is revoked".to_owned(),
        other => format!("the server rejected our client certificate (TLS alert {other:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_mismatch_lists_the_names_it_is_valid_for() {
        let err = ClientError::NameMismatch {
            name: "example.com".into(),
            valid_for: vec!["localhost".into(), "127.0.0.1".into()],
        };
        assert!(
            err.to_string()
                .contains("example.com (it is valid for localhost, 127.0.0.1);"),
            "{err}"
        );
        let unknown = ClientError::NameMismatch {
            name: "example.com".into(),
            valid_for: Vec::new(),
        };
        assert!(
            unknown
                .to_string()
                .contains("valid for the name example.com; connect"),
            "{unknown}"
        );
    }

    #[test]
    fn messages_are_one_line_and_name_the_subject() {
        let errors: Vec<Box<dyn std::error::Error>> = vec![
            Box::new(TlsSetupError::NoCertificates {
                path: "/x/cert.pem".into(),
            }),
            Box::new(DevCaError::Incomplete {
                dir: "/x/nea".into(),
            }),
            Box::new(DevCaError::NoHome),
            Box::new(ServerError::Bind {
                addr: "0.0.0.0:3443".into(),
                source: io::Error::from(io::ErrorKind::AddrInUse),
            }),
            Box::new(ClientError::HandshakeUnanswered {
                addr: "localhost:3443".into(),
                after: std::time::Duration::from_secs(10),
            }),
            Box::new(ClientError::HandshakeClosed {
                addr: "localhost:3443".into(),
            }),
        ];
        for err in errors {
            let text = err.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(!text.ends_with('.'), "{text}");
        }
        let bind = ServerError::Bind {
            addr: "0.0.0.0:3443".into(),
            source: io::Error::from(io::ErrorKind::AddrInUse),
        };
        assert!(
            bind.to_string()
                .starts_with("cannot listen on 0.0.0.0:3443: ")
        );
    }

    #[test]
    fn certificate_file_refusals_are_one_sentence() {
        let errors: Vec<Box<dyn std::error::Error>> = vec![
            Box::new(TlsSetupError::NotAFile {
                what: "certificates",
                path: "/x/cert.pem".into(),
                kind: "a FIFO",
            }),
            Box::new(TlsSetupError::TooLarge {
                what: "a private key",
                path: "/x/key.pem".into(),
                limit: 1 << 20,
            }),
            Box::new(TlsSetupError::ChainTooLong {
                path: "/x/cert.pem".into(),
                limit: 10,
            }),
            Box::new(TlsSetupError::Expired {
                path: "/x/cert.pem".into(),
                at: jiff::Timestamp::UNIX_EPOCH,
            }),
            Box::new(TlsSetupError::ReadTimedOut {
                files: "/x/cert.pem, /x/key.pem".into(),
                after: std::time::Duration::from_secs(5),
            }),
            Box::new(TlsSetupError::ReadStuck {
                files: "/x/cert.pem, /x/key.pem".into(),
            }),
        ];
        for err in errors {
            let text = err.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(!text.ends_with('.'), "{text}");
        }
        let expired = TlsSetupError::Expired {
            path: "/x/cert.pem".into(),
            at: jiff::Timestamp::UNIX_EPOCH,
        };
        assert_eq!(
            expired.to_string(),
            "the certificate in /x/cert.pem expired on 1970-01-01 00:00:00 UTC; renew it"
        );
        let large = TlsSetupError::TooLarge {
            what: "certificates",
            path: "/x/cert.pem".into(),
            limit: 1000,
        };
        assert!(
            large.to_string().ends_with("larger than 1000 bytes"),
            "{large}"
        );
    }
}
