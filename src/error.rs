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
    #[error("invalid TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA could not be used to verify clients.
    #[error("invalid client CA: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
