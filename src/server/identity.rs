//! The server's identity when it comes from files: which certificate and
//! key files it presents (given, or the development CA's), and the TLS
//! configuration read from them. Reading is a function of its own so that
//! a reload can call it again with the same files.
//!
//! The files are read as `pem_files` allows (regular files of bounded size,
//! a chain of bounded length), off the threads that serve clients and with
//! a deadline (`blocking_read`). An expired certificate is refused: every
//! client would refuse it anyway, and one clear sentence at start (or an
//! ERROR line at reload, the old certificate kept) beats every client
//! failing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use super::blocking_read::{BlockingReads, READ_DEADLINE};
use super::expiry;
use crate::error::{ServerError, TlsSetupError};
use crate::pem_files::{self, MAX_CHAIN};
use crate::{devca, tls};

/// One read of the identity files: the TLS configuration built from them,
/// and what the log and the metrics say about its leaf certificate.
#[derive(Debug, Clone)]
pub(super) struct LoadedCertificate {
    /// The configuration new handshakes use.
    pub(super) config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate, colon-separated hex.
    pub(super) fingerprint: String,
    /// When the leaf certificate expires, if it can be read.
    pub(super) expiry: Option<jiff::Timestamp>,
    /// The pin of the leaf certificate's public key, if it can be read.
    pub(super) pin: Option<crate::pin::Pin>,
    /// The files as they were just before they were read.
    pub(super) stamps: FileStamps,
}

/// The identity files as `stat` sees them through any symlink, in the
/// order of [`IdentityFiles::files`]. A directory watch reports every
/// file of the directory; only a difference here (a new inode, as a
/// rename or a Kubernetes `..data` swap makes; a new size, modification
/// or status-change time, as a write in place or a `chmod` makes) is a
/// change of the identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct FileStamps(Vec<Option<FileStamp>>);

/// One file's identity and times; `None` in [`FileStamps`] when it cannot
/// be read (a missing file, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    device: u64,
    inode: u64,
    len: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            device: meta.dev(),
            inode: meta.ino(),
            len: meta.len(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

impl LoadedCertificate {
    /// Logs the certificate in force: its file, fingerprint and expiry;
    /// at WARN, with the days left, when it expires within
    /// [`expiry::WARN_WITHIN`]. One line: `what` says what happened.
    pub(super) fn log(&self, files: &IdentityFiles, what: &str) {
        let expires = self
            .expiry
            .map_or_else(|| "unknown".to_owned(), |at| at.to_string());
        let cert = files.cert.display().to_string();
        match expiry::days_left_if_soon(self.expiry, Timestamp::now()) {
            Some(days_left) => tracing::warn!(
                cert = cert.as_str(),
                sha256 = %self.fingerprint,
                expires = %expires,
                days_left,
                "{what}; it expires soon: renew it"
            ),
            None => tracing::info!(
                cert = cert.as_str(),
                sha256 = %self.fingerprint,
                expires = %expires,
                "{what}"
            ),
        }
    }
}

/// The files the server's identity is read from.
#[derive(Debug, Clone)]
pub(super) struct IdentityFiles {
    /// Certificate chain, PEM.
    pub(super) cert: PathBuf,
    /// Private key, PEM.
    pub(super) key: PathBuf,
    /// CA certificates clients must present a certificate from (mutual TLS).
    pub(super) client_ca: Option<PathBuf>,
    /// The development CA's certificate, when the identity is the
    /// development CA's: what other clients must trust.
    pub(super) dev_ca: Option<PathBuf>,
}

impl IdentityFiles {
    /// The given certificate and key files.
    pub(super) fn given(cert: PathBuf, key: PathBuf, client_ca: Option<PathBuf>) -> Self {
        Self {
            cert,
            key,
            client_ca,
            dev_ca: None,
        }
    }

    /// The development CA's server certificate in `dir`, creating the CA
    /// there on first use, and renewing the certificate if it is near its
    /// end (a renewal that fails is a warning: the certificate in use is
    /// kept, and refused only if it has expired).
    pub(super) fn development(dir: &Path, client_ca: Option<PathBuf>) -> Result<Self, ServerError> {
        let dev = devca::load_or_create(dir)?;
        let what = if dev.created {
            "created development certificates"
        } else {
            "using development certificates"
        };
        tracing::info!(
            dir = dev.dir.display().to_string().as_str(),
            ca = dev.ca_cert.display().to_string().as_str(),
            "{what}"
        );
        if dev.unconstrained {
            tracing::warn!(
                ca = dev.ca_cert.display().to_string().as_str(),
                "the development CA was made by an older version: it is valid for centuries and \
                 for every host name; delete {} to make one limited to this machine's local names \
                 (clients given a copy of ca.pem then need the new one)",
                dev.dir.display()
            );
        }
        log_renewal(
            &dev.dir,
            devca::renew_if_expiring(&dev.dir, Timestamp::now()),
        );
        Ok(Self {
            cert: dev.server_cert,
            key: dev.server_key,
            client_ca,
            dev_ca: Some(dev.ca_cert),
        })
    }

    /// Reads the files into a server TLS configuration, on a thread of
    /// its own with [`READ_DEADLINE`]. Nothing is logged: the caller says
    /// whether this is the start or a reload.
    pub(super) async fn load(
        &self,
        reads: &mut BlockingReads,
    ) -> Result<LoadedCertificate, ServerError> {
        let files = self.clone();
        let loaded = reads
            .run(&self.names(), READ_DEADLINE, move || files.read())
            .await?;
        Ok(loaded)
    }

    /// Reads the files: blocks, so never on a thread that serves clients.
    fn read(&self) -> Result<LoadedCertificate, TlsSetupError> {
        let stamps = self.stamps_now();
        let chain = pem_files::chain(&self.cert, MAX_CHAIN)?;
        let key = pem_files::key(&self.key)?;
        let fingerprint = tls::fingerprint(&chain[0]);
        let expiry = tls::expiry(&chain[0]);
        if let Some(at) = expiry.filter(|at| *at <= Timestamp::now()) {
            return Err(TlsSetupError::Expired {
                path: self.cert.clone(),
                at,
            });
        }
        let client_ca = self
            .client_ca
            .as_deref()
            .map(pem_files::certificates)
            .transpose()?;
        let pin = crate::pin::Pin::of(&chain[0]);
        Ok(LoadedCertificate {
            config: tls::server_config(chain, key, client_ca)?,
            fingerprint,
            expiry,
            pin,
            stamps,
        })
    }

    /// The files as they are now: a `stat` of each, so it blocks too.
    fn stamps_now(&self) -> FileStamps {
        FileStamps(self.files().map(FileStamp::of).collect())
    }

    /// The files as they are now, found off the threads that serve
    /// clients with [`READ_DEADLINE`], as a read is.
    pub(super) async fn stamps(
        &self,
        reads: &mut BlockingReads,
    ) -> Result<FileStamps, ServerError> {
        let files = self.clone();
        reads
            .run(&self.names(), READ_DEADLINE, move || {
                Ok::<_, ServerError>(files.stamps_now())
            })
            .await
    }

    /// The files, as a person names them in a sentence.
    fn names(&self) -> String {
        let names: Vec<String> = self.files().map(|f| f.display().to_string()).collect();
        names.join(", ")
    }

    /// The development directory, when the identity is the development
    /// CA's: where its certificate is renewed.
    pub(super) fn development_dir(&self) -> Option<&Path> {
        self.dev_ca.as_deref().and_then(Path::parent)
    }

    /// How long before its end the certificate in use is checked daily:
    /// the warning's 14 days, or the development certificate's renewal
    /// window.
    pub(super) fn expiry_window(&self) -> SignedDuration {
        if self.dev_ca.is_some() {
            devca::RENEW_WITHIN.max(expiry::WARN_WITHIN)
        } else {
            expiry::WARN_WITHIN
        }
    }

    /// The files to watch for a change: the certificate, the key and the
    /// client CA.
    pub(super) fn files(&self) -> impl Iterator<Item = &std::path::Path> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
    }

    /// How a person connects to a server listening on `local` whose key
    /// is `pin`, from any machine: a `clientcli` command that trusts
    /// exactly that key (no CA file to copy, no name to match), for the
    /// address it listens on (the machine's host name when it listens on
    /// every address).
    pub(super) fn how_to_connect(
        &self,
        local: std::net::SocketAddr,
        pin: crate::pin::Pin,
    ) -> String {
        let host = if local.ip().is_unspecified() {
            nix::unistd::gethostname()
                .ok()
                .and_then(|name| name.into_string().ok())
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| "localhost".to_owned())
        } else if local.is_ipv6() {
            format!("[{}]", local.ip())
        } else {
            local.ip().to_string()
        };
        let mut command = format!(
            "clientcli --host {host} --port {} --pin {pin}",
            local.port()
        );
        if self.mutual() {
            command.push_str(" --cert <PEM> --key <PEM>");
        }
        command
    }

    /// Whether clients must present a certificate.
    pub(super) fn mutual(&self) -> bool {
        self.client_ca.is_some()
    }
}

/// Logs what renewing the development certificate in `dir` did: INFO for
/// a new certificate, WARN for a new CA (clients given a copy of the old
/// one must be given the new one) or a renewal that failed.
pub(super) fn log_renewal(dir: &Path, renewal: Result<devca::Renewal, crate::error::DevCaError>) {
    let dir = dir.display().to_string();
    match renewal {
        Ok(devca::Renewal::NotDue) => {}
        Ok(devca::Renewal::Renewed { was, until }) => tracing::info!(
            dir = dir.as_str(),
            was = %was,
            expires = %until,
            "renewed the development server certificate"
        ),
        Ok(devca::Renewal::NewAuthority { was }) => tracing::warn!(
            dir = dir.as_str(),
            was = %was,
            "the development CA was near its end: made a new one; clients on this machine use it \
             from their next start, and clients given a copy of ca.pem need the new one"
        ),
        Err(err) => tracing::warn!(
            dir = dir.as_str(),
            "cannot renew the development server certificate, keeping the one in use: {err}"
        ),
    }
}
