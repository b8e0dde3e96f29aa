//! The local development CA (SPEC §9), and certificate issuing for tests.
//!
//! `servercli` without `--cert`/`--key` calls `load_or_create`: the first
//! run makes a CA and a server certificate for `localhost`, `127.0.0.1` and
//! `::1`, stores them in `default_dir`, and later runs reuse them. The
//! client trusts `ca_cert_path` when that file exists, so a server and a
//! client on one machine work together with no other step, fully verified.
//!
//! The directory is created with mode 0700 and private keys with mode 0600,
//! both at creation (never widened then narrowed). Everything is written into
//! a fresh sibling directory first and renamed into place, so a second
//! server starting at the same moment either sees the finished set or none.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::error::DevCaError;

/// Environment variable that overrides `default_dir` (tests use it).
pub(crate) const DEV_DIR_ENV: &str = "NEA_DEV_DIR";

/// File names inside the development directory.
const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server-key.pem";

/// The names the development server certificate is valid for.
pub(crate) const DEV_SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Where the development CA lives: `$NEA_DEV_DIR` if set, otherwise `nea`
/// in the per-user data directory (`$XDG_DATA_HOME/nea`, usually
/// `~/.local/share/nea`). `None` only if no home directory is known.
pub fn default_dir() -> Option<PathBuf> {
    match std::env::var_os(DEV_DIR_ENV) {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => dirs::data_dir().map(|data| data.join("nea")),
    }
}

/// The development CA certificate inside `dir`, which clients trust.
pub(crate) fn ca_cert_path(dir: &Path) -> PathBuf {
    dir.join(CA_CERT)
}

/// The development files, as found or created by `load_or_create`.
#[derive(Debug, Clone)]
pub(crate) struct DevCertificates {
    /// The directory holding them.
    pub(crate) dir: PathBuf,
    /// The CA certificate (PEM), for clients to trust.
    pub(crate) ca_cert: PathBuf,
    /// The server certificate (PEM), signed by the CA.
    pub(crate) server_cert: PathBuf,
    /// The server's private key (PKCS#8 PEM, mode 0600).
    pub(crate) server_key: PathBuf,
    /// True if this call created them; false if they were reused.
    pub(crate) created: bool,
}

/// Returns the development CA and server certificate in `dir`, creating
/// them first if `dir` does not hold them yet.
pub(crate) fn load_or_create(dir: &Path) -> Result<DevCertificates, DevCaError> {
    let found = DevCertificates {
        dir: dir.to_path_buf(),
        ca_cert: dir.join(CA_CERT),
        server_cert: dir.join(SERVER_CERT),
        server_key: dir.join(SERVER_KEY),
        created: false,
    };
    if found.server_cert.exists() {
        if !found.server_key.exists() || !found.ca_cert.exists() {
            return Err(DevCaError::Incomplete {
                dir: dir.to_path_buf(),
            });
        }
        return Ok(found);
    }
    create_in(dir)?;
    Ok(DevCertificates {
        created: true,
        ..found
    })
}

/// Writes a new CA and server certificate into a temporary sibling of `dir`
/// and renames it into place. If another process won the race, its set is
/// kept and ours is discarded.
fn create_in(dir: &Path) -> Result<(), DevCaError> {
    let io_err = |source: io::Error| DevCaError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        fs::create_dir_all(parent).map_err(io_err)?;
    }
    let name = dir
        .file_name()
        .map_or_else(|| "nea".into(), |name| name.to_string_lossy().into_owned());
    let staging = dir.with_file_name(format!(".{name}.new.{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(io_err)?;

    let written = write_set(&staging);
    let result = written.and_then(|()| match fs::rename(&staging, dir) {
        Ok(()) => Ok(()),
        // Another server created the set first: use theirs.
        Err(_) if dir.join(SERVER_CERT).exists() => Ok(()),
        Err(source) => Err(DevCaError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    });
    let _ = fs::remove_dir_all(&staging);
    result
}

fn write_set(staging: &Path) -> Result<(), DevCaError> {
    let ca = CertificateAuthority::new("nea development CA")?;
    let server = ca.issue_server(&DEV_SERVER_NAMES)?;
    write_file(&staging.join(CA_CERT), &ca.cert_pem(), 0o644)?;
    write_file(&staging.join(CA_KEY), &ca.key_pem(), 0o600)?;
    write_file(&staging.join(SERVER_CERT), &server.cert_pem, 0o644)?;
    write_file(&staging.join(SERVER_KEY), &server.key_pem, 0o600)?;
    Ok(())
}

/// Creates `path` (which must not exist) with `mode` and writes `contents`.
pub(crate) fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), DevCaError> {
    let io_err = |source: io::Error| DevCaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_err)?;
    file.write_all(contents.as_bytes()).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
}

/// A certificate authority held in memory: the development CA, and the CAs
/// that tests make for themselves.
pub struct CertificateAuthority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new self-signed CA whose subject is `common_name` (ECDSA P-256).
    pub fn new(common_name: &str) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "nea");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { issuer })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA's private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Issues a server certificate for `names` (DNS names or IP addresses).
    pub fn issue_server(&self, names: &[&str]) -> Result<IssuedCertificate, rcgen::Error> {
        self.issue(
            server_params(names)?,
            names.first().copied().unwrap_or_default(),
        )
    }

    /// Issues a server certificate for `names` valid from `not_before`
    /// until `not_after` (an expired one, or one about to expire, for
    /// tests).
    pub fn issue_server_valid(
        &self,
        names: &[&str],
        not_before: jiff::Timestamp,
        not_after: jiff::Timestamp,
    ) -> Result<IssuedCertificate, rcgen::Error> {
        let mut params = server_params(names)?;
        set_validity(&mut params, not_before, not_after);
        self.issue(params, names.first().copied().unwrap_or_default())
    }

    /// Issues a client certificate (for mutual TLS) whose subject is
    /// `common_name`.
    pub fn issue_client(&self, common_name: &str) -> Result<IssuedCertificate, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, common_name)
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        common_name: &str,
    ) -> Result<IssuedCertificate, rcgen::Error> {
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A server certificate's parameters for `names`.
fn server_params(names: &[&str]) -> Result<CertificateParams, rcgen::Error> {
    let names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
    let mut params = CertificateParams::new(names)?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// Sets the validity of `params`. rcgen takes `time`'s type, which this
/// crate does not name: it is reached from rcgen's own epoch. A timestamp
/// before 1970 is taken as 1970; jiff's latest (the year 9999) is within
/// `time`'s range, so the sum cannot overflow.
fn set_validity(
    params: &mut CertificateParams,
    not_before: jiff::Timestamp,
    not_after: jiff::Timestamp,
) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let since_epoch = |at: jiff::Timestamp| {
        std::time::Duration::from_secs(u64::try_from(at.as_second()).unwrap_or(0))
    };
    params.not_before = epoch + since_epoch(not_before);
    params.not_after = epoch + since_epoch(not_after);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("exists").permissions().mode() & 0o777
    }

    #[test]
    fn creates_once_with_private_modes_then_reuses() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("deep").join("nea");
        let first = load_or_create(&dir).expect("created");
        assert!(first.created);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&first.server_key), 0o600);
        assert_eq!(mode(&dir.join(CA_KEY)), 0o600);
        assert_eq!(mode(&first.server_cert), 0o644);
        let cert = fs::read(&first.server_cert).expect("readable");

        let second = load_or_create(&dir).expect("reused");
        assert!(!second.created);
        assert_eq!(fs::read(&second.server_cert).expect("readable"), cert);
        assert_eq!(ca_cert_path(&dir), second.ca_cert);
        // No staging directory is left behind.
        let leftovers: Vec<_> = fs::read_dir(tmp.path().join("deep"))
            .expect("listable")
            .collect();
        assert_eq!(leftovers.len(), 1);
    }

    #[test]
    fn an_incomplete_directory_is_reported_not_overwritten() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("nea");
        let set = load_or_create(&dir).expect("created");
        fs::remove_file(&set.server_key).expect("removed");
        let err = load_or_create(&dir).expect_err("incomplete");
        assert!(err.to_string().contains("incomplete"), "{err}");
    }
}
