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
//!
//! Every `clientcli` on the machine trusts this CA, so it is kept as
//! narrow as it can be:
//! - **Ten years** for the CA, **one year** for the server certificate,
//!   from an hour before creation (a clock a little behind still accepts
//!   them). The server renews its certificate itself (`renew_if_expiring`)
//!   when fewer than `RENEW_WITHIN` (30 days) are left: at start, when a
//!   reload puts such a certificate in use, and when the certificate in
//!   use reaches that point. The key is kept, so a client
//!   that pins it (its SPKI hash) is not affected; only `server.pem`
//!   changes, renamed into place. A CA that is itself that close to its
//!   end is replaced by a new set: clients on this machine read the new
//!   `ca.pem` at their next start, and clients that were given a copy of
//!   the old one must be given the new one.
//! - **Name constraints**: the CA may only vouch for `localhost` (and names
//!   under it), `127.0.0.0/8` and `::1`. A certificate for any other name
//!   signed by its key (stolen, say) is refused by every client that
//!   enforces them, rustls/webpki included. The machine's host name is not
//!   among them: it changes and is not unique across networks; a client
//!   on another machine is better served by a certificate for the
//!   server's real name.
//! - A directory made by an older version (a CA valid until 4096, with no
//!   name constraints) is kept and used as it is, with a warning at each
//!   start (`DevCertificates::unconstrained`): replacing it would break
//!   every client that was given a copy of its `ca.pem`. Deleting the
//!   directory makes a new, constrained set.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls::pki_types::CertificateDer;

use crate::error::DevCaError;
use crate::pem_files;

/// Environment variable that overrides `default_dir` (tests use it).
pub(crate) const DEV_DIR_ENV: &str = "NEA_DEV_DIR";

/// File names inside the development directory.
const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server-key.pem";

/// The names the development server certificate is valid for.
pub(crate) const DEV_SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How long the development CA is valid: ten years.
const CA_VALIDITY: SignedDuration = SignedDuration::from_hours(3652 * 24);

/// How long a development server certificate is valid: one year, and never
/// past its CA's end.
const SERVER_VALIDITY: SignedDuration = SignedDuration::from_hours(365 * 24);

/// How far before now a validity starts, for a clock a little behind.
const BACKDATE: SignedDuration = SignedDuration::from_hours(1);

/// A development server certificate with less than this left is renewed
/// (and a CA with less than this left is replaced).
pub(crate) const RENEW_WITHIN: SignedDuration = SignedDuration::from_hours(30 * 24);

/// What the development CA may vouch for: `localhost` and the loopback
/// addresses, the names its server certificate holds.
fn local_names_only() -> NameConstraints {
    NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".to_owned()),
            GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([127, 0, 0, 0], 8)),
            GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix(
                std::net::Ipv6Addr::LOCALHOST.octets(),
                128,
            )),
        ],
        excluded_subtrees: Vec::new(),
    }
}

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
    /// True if the CA has no name constraints (made by an older version,
    /// valid until 4096): it is used as it is, and the server says so.
    pub(crate) unconstrained: bool,
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
        unconstrained: false,
    };
    if found.server_cert.exists() {
        if !found.server_key.exists() || !found.ca_cert.exists() {
            return Err(DevCaError::Incomplete {
                dir: dir.to_path_buf(),
            });
        }
        let ca = pem_files::certificates(&found.ca_cert)?;
        return Ok(DevCertificates {
            unconstrained: !has_name_constraints(&ca[0]),
            ..found
        });
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
    for (name, contents, mode) in new_set(Timestamp::now())? {
        write_file(&staging.join(name), &contents, mode)?;
    }
    Ok(())
}

/// A new development CA and server certificate valid from `now`: each
/// file's name, contents and mode, keys before certificates.
fn new_set(now: Timestamp) -> Result<[(&'static str, String, u32); 4], DevCaError> {
    let ca = CertificateAuthority::development(now)?;
    let server = ca.issue_server_valid(
        &DEV_SERVER_NAMES,
        backdated(now),
        later(now, SERVER_VALIDITY),
    )?;
    Ok([
        (SERVER_KEY, server.key_pem, 0o600),
        (SERVER_CERT, server.cert_pem, 0o644),
        (CA_KEY, ca.key_pem(), 0o600),
        (CA_CERT, ca.cert_pem(), 0o644),
    ])
}

/// `now` less [`BACKDATE`].
fn backdated(now: Timestamp) -> Timestamp {
    now.checked_sub(BACKDATE).unwrap_or(now)
}

/// `now` plus `span`, or the latest time there is.
fn later(now: Timestamp, span: SignedDuration) -> Timestamp {
    now.checked_add(span).unwrap_or(Timestamp::MAX)
}

/// Whether a CA certificate carries name constraints.
fn has_name_constraints(cert: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(cert.as_ref())
        .is_ok_and(|(_, parsed)| matches!(parsed.name_constraints(), Ok(Some(_))))
}

/// What [`renew_if_expiring`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renewal {
    /// The server certificate has more than [`RENEW_WITHIN`] left.
    NotDue,
    /// A new server certificate (same key, same CA) replaced one that
    /// expires (or expired) at `was`; it is valid until `until`.
    Renewed {
        /// When the old certificate expires.
        was: Timestamp,
        /// When the new one does.
        until: Timestamp,
    },
    /// The CA itself was within [`RENEW_WITHIN`] of its end (at `was`): a
    /// new CA and server certificate replaced the set. Clients that were
    /// given a copy of the old `ca.pem` must be given the new one.
    NewAuthority {
        /// When the old CA expires.
        was: Timestamp,
    },
}

/// Renews the development server certificate in `dir` if it has less than
/// [`RENEW_WITHIN`] left at `now`: a new certificate for the same key from
/// the same CA, valid for [`SERVER_VALIDITY`] (never past the CA's end),
/// renamed over `server.pem`. A CA that is itself that close to its end
/// is replaced with the whole set. Reads with the bounds of [`pem_files`].
pub(crate) fn renew_if_expiring(dir: &Path, now: Timestamp) -> Result<Renewal, DevCaError> {
    let due = later(now, RENEW_WITHIN);
    let server = expiry_of(&dir.join(SERVER_CERT))?;
    if server > due {
        return Ok(Renewal::NotDue);
    }
    let ca_expiry = expiry_of(&dir.join(CA_CERT))?;
    if ca_expiry <= due {
        replace_files(dir, &new_set(now)?)?;
        return Ok(Renewal::NewAuthority { was: ca_expiry });
    }
    let text = |name: &str, what| -> Result<String, DevCaError> {
        let bytes = pem_files::read_regular(&dir.join(name), pem_files::MAX_FILE_BYTES, what)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let ca = CertificateAuthority::from_pem(
        &text(CA_CERT, "certificates")?,
        &text(CA_KEY, "a private key")?,
    )?;
    let key = KeyPair::from_pem(&text(SERVER_KEY, "a private key")?)?;
    let until = later(now, SERVER_VALIDITY).min(ca_expiry);
    let cert = ca.sign_server(&DEV_SERVER_NAMES, &key, (backdated(now), until))?;
    replace_files(dir, &[(SERVER_CERT, cert, 0o644)])?;
    Ok(Renewal::Renewed { was: server, until })
}

/// When the first certificate in `path` expires.
fn expiry_of(path: &Path) -> Result<Timestamp, DevCaError> {
    let certs = pem_files::certificates(path)?;
    crate::tls::expiry(&certs[0]).ok_or_else(|| DevCaError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            "its certificate cannot be parsed",
        ),
    })
}

/// Replaces `files` (name, contents, mode) in `dir`: each is written to a
/// new file beside it first, then all are renamed over the old ones, in
/// order, so that a reader sees either an old file or a whole new one.
fn replace_files(dir: &Path, files: &[(&str, String, u32)]) -> Result<(), DevCaError> {
    let staged = |name: &str| dir.join(format!(".{name}.new.{}", std::process::id()));
    let written = files.iter().try_for_each(|(name, contents, mode)| {
        let _ = fs::remove_file(staged(name));
        write_file(&staged(name), contents, *mode)
    });
    let renamed = written.and_then(|()| {
        files.iter().try_for_each(|(name, _, _)| {
            fs::rename(staged(name), dir.join(name)).map_err(|source| DevCaError::Io {
                path: dir.join(name),
                source,
            })
        })
    });
    for (name, _, _) in files {
        let _ = fs::remove_file(staged(name));
    }
    renamed
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
    issuer: Issuer<'static, KeyPair>,
    /// The CA's own certificate, PEM.
    cert_pem: String,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new self-signed CA whose subject is `common_name` (ECDSA P-256),
    /// with no name constraints and rcgen's default validity (1975 to
    /// 4096): for tests.
    pub fn new(common_name: &str) -> Result<Self, rcgen::Error> {
        Self::self_signed(common_name, |_| {})
    }

    /// A new development CA: valid for ten years from an hour before
    /// `now`, and limited by name constraints to `localhost` and the
    /// loopback addresses.
    pub fn development(now: Timestamp) -> Result<Self, rcgen::Error> {
        Self::self_signed("nea development CA", |params| {
            set_validity(params, backdated(now), later(now, CA_VALIDITY));
            params.name_constraints = Some(local_names_only());
        })
    }

    /// A self-signed CA, its parameters adjusted by `adjust`.
    fn self_signed(
        common_name: &str,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> Result<Self, rcgen::Error> {
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
        adjust(&mut params);
        let key = KeyPair::generate()?;
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_pem,
        })
    }

    /// The CA whose certificate and private key are these PEM texts (the
    /// development CA's files).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, rcgen::Error> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(Self {
            issuer: Issuer::from_ca_cert_pem(cert_pem, key)?,
            cert_pem: cert_pem.to_owned(),
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
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
    /// tests; the development server certificate).
    pub fn issue_server_valid(
        &self,
        names: &[&str],
        not_before: Timestamp,
        not_after: Timestamp,
    ) -> Result<IssuedCertificate, rcgen::Error> {
        let mut params = server_params(names)?;
        set_validity(&mut params, not_before, not_after);
        self.issue(params, names.first().copied().unwrap_or_default())
    }

    /// A server certificate (PEM) for `names` and an existing `key`, valid
    /// from and until `validity`.
    fn sign_server(
        &self,
        names: &[&str],
        key: &KeyPair,
        validity: (Timestamp, Timestamp),
    ) -> Result<String, rcgen::Error> {
        let mut params = server_params(names)?;
        set_validity(&mut params, validity.0, validity.1);
        Ok(self
            .sign(params, names.first().copied().unwrap_or_default(), key)?
            .pem())
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
        params: CertificateParams,
        common_name: &str,
    ) -> Result<IssuedCertificate, rcgen::Error> {
        let key = KeyPair::generate()?;
        let cert = self.sign(params, common_name, &key)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    fn sign(
        &self,
        mut params: CertificateParams,
        common_name: &str,
        key: &KeyPair,
    ) -> Result<rcgen::Certificate, rcgen::Error> {
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.signed_by(key, &self.issuer)
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
fn set_validity(params: &mut CertificateParams, not_before: Timestamp, not_after: Timestamp) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let since_epoch =
        |at: Timestamp| std::time::Duration::from_secs(u64::try_from(at.as_second()).unwrap_or(0));
    params.not_before = epoch + since_epoch(not_before);
    params.not_after = epoch + since_epoch(not_after);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
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

    /// The first certificate in `path`, parsed, handed to `check`.
    fn with_parsed<T>(
        path: &Path,
        check: impl FnOnce(&x509_parser::certificate::X509Certificate<'_>) -> T,
    ) -> T {
        let certs = pem_files::certificates(path).expect("certificates");
        let (_, parsed) = x509_parser::parse_x509_certificate(certs[0].as_ref()).expect("parsed");
        check(&parsed)
    }

    /// How long a certificate is valid, and when it ends.
    fn validity(
        parsed: &x509_parser::certificate::X509Certificate<'_>,
    ) -> (SignedDuration, Timestamp) {
        let validity = parsed.validity();
        let (from, until) = (
            validity.not_before.timestamp(),
            validity.not_after.timestamp(),
        );
        (
            SignedDuration::from_secs(until - from),
            Timestamp::from_second(until).expect("in range"),
        )
    }

    #[test]
    fn the_ca_lasts_ten_years_and_vouches_for_local_names_only() {
        use x509_parser::extensions::GeneralName;
        let tmp = tempfile::tempdir().expect("tempdir");
        let set = load_or_create(&tmp.path().join("nea")).expect("created");
        assert!(!set.unconstrained);
        let before = Timestamp::now();
        let (ca_span, ca_end) = with_parsed(&set.ca_cert, validity);
        assert_eq!(ca_span, CA_VALIDITY + BACKDATE);
        let permitted = with_parsed(&set.ca_cert, |ca| {
            let constraints = ca.name_constraints().expect("parsed").expect("present");
            // RFC 5280: a CA's name constraints are critical.
            assert!(constraints.critical);
            let subtrees = constraints
                .value
                .permitted_subtrees
                .clone()
                .expect("permitted");
            assert!(constraints.value.excluded_subtrees.is_none());
            subtrees
                .iter()
                .map(|subtree| match &subtree.base {
                    GeneralName::DNSName(name) => format!("dns:{name}"),
                    GeneralName::IPAddress(bytes) => format!("ip:{bytes:02x?}"),
                    other => format!("other:{other:?}"),
                })
                .collect::<Vec<_>>()
        });
        let mut v6 = vec![0u8; 15];
        v6.push(1);
        v6.extend([0xff; 16]);
        assert_eq!(
            permitted,
            [
                "dns:localhost".to_owned(),
                format!("ip:{:02x?}", [127u8, 0, 0, 0, 255, 0, 0, 0]),
                format!("ip:{v6:02x?}"),
            ]
        );

        let (server_span, server_end) = with_parsed(&set.server_cert, validity);
        assert_eq!(server_span, SERVER_VALIDITY + BACKDATE);
        assert!(server_end < ca_end);
        assert!(server_end > later(before, SERVER_VALIDITY - BACKDATE));
        let names = crate::tls::subject_alt_names(
            &pem_files::certificates(&set.server_cert).expect("cert")[0],
        );
        assert_eq!(names, DEV_SERVER_NAMES);
    }

    #[tokio::test]
    async fn a_client_that_trusts_the_ca_refuses_its_certificates_for_other_names() {
        let ca = CertificateAuthority::development(Timestamp::now()).expect("ca");
        let ca_cert = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).expect("ca cert");
        let roots = crate::tls::root_store(vec![ca_cert]).expect("roots");
        let client = crate::tls::client_config(roots, None).expect("client config");
        for (name, allowed) in [
            ("localhost", true),
            ("127.0.0.2", true),
            ("::1", true),
            ("example.com", false),
            ("localhost.example.com", false),
            ("10.1.2.3", false),
            ("::2", false),
        ] {
            let issued = ca.issue_server(&[name]).expect("issued");
            let handshake = handshake(&issued, name, client.clone()).await;
            assert_eq!(handshake.is_ok(), allowed, "{name}: {handshake:?}");
            if let Err(err) = handshake {
                assert!(
                    err.starts_with("its certificate authority may not vouch for that name"),
                    "{name}: {err}"
                );
            }
        }
    }

    /// A real TLS handshake over loopback: a server presenting `issued`, a
    /// client with `config` asking for `name`. The client's error, if any,
    /// in words.
    async fn handshake(
        issued: &IssuedCertificate,
        name: &str,
        config: std::sync::Arc<rustls::ClientConfig>,
    ) -> Result<(), String> {
        use rustls::pki_types::{PrivateKeyDer, ServerName};
        let chain = vec![CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).expect("cert")];
        let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).expect("key");
        let server = crate::tls::server_config(chain, key, None).expect("server config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let serving = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let _ = tokio_rustls::TlsAcceptor::from(server).accept(tcp).await;
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from(name.to_owned()).expect("a name");
        // The client's refusal as clientcli words it.
        let result = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map(drop)
            .map_err(|err| {
                match err
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<rustls::Error>())
                {
                    Some(rustls::Error::InvalidCertificate(problem)) => {
                        crate::error::certificate_problem(problem)
                    }
                    _ => format!("{err:?}"),
                }
            });
        let _ = serving.await;
        result
    }

    #[test]
    fn an_expiring_server_certificate_is_renewed_with_the_same_key() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let set = load_or_create(&tmp.path().join("nea")).expect("created");
        let now = Timestamp::now();
        assert_eq!(
            renew_if_expiring(&set.dir, now).expect("checked"),
            Renewal::NotDue
        );

        // Five days left.
        let read = |path: &Path| fs::read_to_string(path).expect("readable");
        let ca = CertificateAuthority::from_pem(&read(&set.ca_cert), &read(&set.dir.join(CA_KEY)))
            .expect("the CA from its files");
        let key = KeyPair::from_pem(&read(&set.server_key)).expect("key");
        let ending = later(now, SignedDuration::from_hours(5 * 24));
        let short = ca
            .sign_server(&DEV_SERVER_NAMES, &key, (backdated(now), ending))
            .expect("signed");
        replace_files(&set.dir, &[(SERVER_CERT, short, 0o644)]).expect("replaced");
        let ca_before = read(&set.ca_cert);

        let renewal = renew_if_expiring(&set.dir, now).expect("renewed");
        let Renewal::Renewed { was, until } = renewal else {
            panic!("{renewal:?}");
        };
        assert_eq!(was.as_second(), ending.as_second());
        let (span, end) = with_parsed(&set.server_cert, validity);
        assert_eq!(
            (span, end.as_second()),
            (SERVER_VALIDITY + BACKDATE, until.as_second())
        );
        // Same key (a pin on it holds), same CA, same modes, no leftovers.
        let spki = with_parsed(&set.server_cert, |cert| cert.public_key().raw.to_vec());
        assert_eq!(spki, rcgen::PublicKeyData::subject_public_key_info(&key));
        assert_eq!(read(&set.ca_cert), ca_before);
        assert_eq!(mode(&set.server_cert), 0o644);
        assert_eq!(fs::read_dir(&set.dir).expect("listable").count(), 4);
        // And it verifies against the CA, for the same names.
        let roots = crate::tls::root_store(pem_files::certificates(&set.ca_cert).expect("ca"))
            .expect("roots");
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            crate::tls::provider(),
        )
        .build()
        .expect("verifier");
        let chain = pem_files::certificates(&set.server_cert).expect("cert");
        rustls::client::danger::ServerCertVerifier::verify_server_cert(
            verifier.as_ref(),
            &chain[0],
            &[],
            &rustls::pki_types::ServerName::try_from("localhost").expect("name"),
            &[],
            rustls::pki_types::UnixTime::now(),
        )
        .expect("the renewed certificate verifies");
    }

    #[test]
    fn a_ca_near_its_own_end_is_replaced_with_the_whole_set() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let set = load_or_create(&tmp.path().join("nea")).expect("created");
        let now = Timestamp::now();
        // A set made ten years ago, less ten days: the CA has ten days left.
        let long_ago = now
            .checked_sub(CA_VALIDITY - SignedDuration::from_hours(10 * 24))
            .expect("in range");
        replace_files(&set.dir, &new_set(long_ago).expect("old set")).expect("replaced");
        let old_ca = fs::read_to_string(&set.ca_cert).expect("readable");

        let renewal = renew_if_expiring(&set.dir, now).expect("renewed");
        assert!(
            matches!(renewal, Renewal::NewAuthority { .. }),
            "{renewal:?}"
        );
        assert_ne!(fs::read_to_string(&set.ca_cert).expect("readable"), old_ca);
        let (_, ca_end) = with_parsed(&set.ca_cert, validity);
        assert!(ca_end > later(now, CA_VALIDITY - BACKDATE));
        assert_eq!(mode(&set.dir.join(CA_KEY)), 0o600);
        assert_eq!(mode(&set.server_key), 0o600);
        assert_eq!(
            renew_if_expiring(&set.dir, now).expect("checked"),
            Renewal::NotDue
        );
    }

    #[test]
    fn a_directory_from_an_older_version_is_kept_as_it_is_and_flagged() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("nea");
        fs::create_dir(&dir).expect("dir");
        // What older versions made: rcgen's defaults, 1975 to 4096, no
        // name constraints.
        let ca = CertificateAuthority::new("nea development CA").expect("ca");
        let server = ca.issue_server(&DEV_SERVER_NAMES).expect("server");
        for (name, contents) in [
            (CA_CERT, ca.cert_pem()),
            (CA_KEY, ca.key_pem()),
            (SERVER_CERT, server.cert_pem.clone()),
            (SERVER_KEY, server.key_pem),
        ] {
            fs::write(dir.join(name), contents).expect("written");
        }
        let set = load_or_create(&dir).expect("reused");
        assert!(set.unconstrained && !set.created);
        assert_eq!(
            renew_if_expiring(&dir, Timestamp::now()).expect("checked"),
            Renewal::NotDue
        );
        assert_eq!(fs::read_to_string(&set.ca_cert).expect("ca"), ca.cert_pem());
        assert_eq!(
            fs::read_to_string(&set.server_cert).expect("cert"),
            server.cert_pem
        );
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
