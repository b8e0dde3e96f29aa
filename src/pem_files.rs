//! Reading PEM files without letting a file stall or swamp the program
//! (SPEC §11 v3): only regular files, of bounded size, and a certificate
//! chain of bounded length. The server reads its certificate, key and
//! client CA with these; the client its `--ca`, `--cert` and `--key`
//! (through [`crate::tls::load_certs`] and [`crate::tls::load_key`]).
//!
//! A certificate path is whatever the operator (or a secret manager, or
//! anyone who can write to its directory) put there. A FIFO blocks
//! `open(2)` until a writer comes; `/dev/zero` and `/dev/urandom` never
//! end; a chain of 10,000 certificates makes every handshake send
//! megabytes. So a file is opened with `O_NONBLOCK` (opening a FIFO then
//! returns at once), judged by the metadata of the descriptor opened
//! (`fstat`, so no rename between a check and the open can slip another
//! file in), and read up to its bound plus one byte: more than the bound
//! is refused without reading further. Symbolic links are followed, as
//! secret managers use them (Kubernetes' `..data`); what is judged is the
//! file they lead to.
//!
//! These functions block on the file system; the server calls them off the
//! threads that serve clients, with a deadline (`server::blocking_read`);
//! the client reads its files once, before it connects.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::TlsSetupError;

/// The largest certificate, key or CA file read: 1 MiB. A chain of ten
/// certificates with 4096-bit RSA keys is about 20 KiB; a CA bundle of
/// every public root is about 220 KiB.
pub(crate) const MAX_FILE_BYTES: u64 = 1 << 20;

/// The most certificates a server's chain may hold: a leaf and its
/// intermediates are rarely more than four, and every handshake sends
/// them all.
pub(crate) const MAX_CHAIN: usize = 10;

/// The bytes of the regular file at `path` (after symbolic links), if it
/// is no larger than `limit`. `what` names the contents for the error
/// ("certificates", "a private key").
///
/// Invariant: never reads more than `limit + 1` bytes, and never blocks on
/// a FIFO or a device: a file that is not regular is refused before its
/// first byte is read.
pub(crate) fn read_regular(
    path: &Path,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, TlsSetupError> {
    let read_error = |source| TlsSetupError::Read {
        what,
        path: path.to_path_buf(),
        source,
    };
    // Judged once before opening only so that a device is never opened
    // (some act on open, like a tape that rewinds); the descriptor's own
    // metadata below is what decides.
    if let Ok(metadata) = std::fs::metadata(path) {
        refuse_unless_regular(&metadata, path, what)?;
    }
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    refuse_unless_regular(&metadata, path, what)?;
    let hint = usize::try_from(metadata.len().min(limit)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(hint.saturating_add(1));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(TlsSetupError::TooLarge {
            what,
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

/// An error unless `metadata` is a regular file's.
fn refuse_unless_regular(
    metadata: &std::fs::Metadata,
    path: &Path,
    what: &'static str,
) -> Result<(), TlsSetupError> {
    let kind = metadata.file_type();
    let kind = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(TlsSetupError::NotAFile {
        what,
        path: path.to_path_buf(),
        kind,
    })
}

/// The certificate chain in `path`, leaf first: at least one certificate
/// and at most `max` (the server passes [`MAX_CHAIN`]).
pub(crate) fn chain(
    path: &Path,
    max: usize,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let bytes = read_regular(path, MAX_FILE_BYTES, "certificates")?;
    let certs = parse_certificates(&bytes, path, max)?;
    if certs.len() > max {
        return Err(TlsSetupError::ChainTooLong {
            path: path.to_path_buf(),
            limit: max,
        });
    }
    Ok(certs)
}

/// Every certificate in `path` (a CA bundle: bounded by its size only),
/// at least one.
pub(crate) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let bytes = read_regular(path, MAX_FILE_BYTES, "certificates")?;
    parse_certificates(&bytes, path, usize::MAX)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in `path`.
pub(crate) fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    let bytes = read_regular(path, MAX_FILE_BYTES, "a private key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|source| TlsSetupError::Pem {
        what: "a private key",
        path: path.to_path_buf(),
        source,
    })
}

/// The certificates in `bytes`, at most `max + 1` of them (one more than
/// allowed is enough to refuse); an error if there is none.
fn parse_certificates(
    bytes: &[u8],
    path: &Path,
    max: usize,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .take(max.saturating_add(1))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsSetupError::Pem {
            what: "certificates",
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificates {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devca::CertificateAuthority;
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("written");
        path
    }

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
    }

    #[test]
    fn only_regular_files_are_read_and_symbolic_links_lead_to_them() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let regular = write(tmp.path(), "regular.pem", b"text");
        let link = tmp.path().join("link.pem");
        std::os::unix::fs::symlink(&regular, &link).expect("symlink");
        assert_eq!(
            read_regular(&link, 10, "certificates").expect("read"),
            b"text"
        );

        let fifo = tmp.path().join("fifo.pem");
        mkfifo(&fifo);
        let to_zero = tmp.path().join("zero.pem");
        std::os::unix::fs::symlink("/dev/zero", &to_zero).expect("symlink");
        let to_urandom = tmp.path().join("urandom.pem");
        std::os::unix::fs::symlink("/dev/urandom", &to_urandom).expect("symlink");
        for (path, kind) in [
            (fifo.as_path(), "a FIFO"),
            (to_zero.as_path(), "a character device"),
            (to_urandom.as_path(), "a character device"),
            (Path::new("/dev/null"), "a character device"),
            (tmp.path(), "a directory"),
        ] {
            // A FIFO with no writer would block a plain open for ever.
            let err = read_regular(path, MAX_FILE_BYTES, "certificates").expect_err("refused");
            let text = err.to_string();
            assert_eq!(
                text,
                format!(
                    "cannot read certificates from {}: it is {kind}, not a regular file",
                    path.display()
                )
            );
        }
    }

    #[test]
    fn the_size_cap_is_exact() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let limit = MAX_FILE_BYTES;
        let at = write(tmp.path(), "at.pem", &vec![b'a'; 1 << 20]);
        assert_eq!(
            read_regular(&at, limit, "certificates")
                .expect("read")
                .len(),
            1 << 20
        );
        let over = write(tmp.path(), "over.pem", &vec![b'a'; (1 << 20) + 1]);
        let err = read_regular(&over, limit, "certificates").expect_err("refused");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot read certificates from {}: it is larger than 1 MiB",
                over.display()
            )
        );
        let empty = write(tmp.path(), "empty.pem", b"");
        assert!(
            read_regular(&empty, limit, "certificates")
                .expect("read")
                .is_empty()
        );
    }

    #[test]
    fn the_chain_cap_is_exact() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::new("test CA").expect("ca");
        let leaf = ca.issue_server(&["localhost"]).expect("leaf").cert_pem;
        let at = write(tmp.path(), "at.pem", leaf.repeat(MAX_CHAIN).as_bytes());
        assert_eq!(chain(&at, MAX_CHAIN).expect("ten").len(), MAX_CHAIN);
        let over = write(
            tmp.path(),
            "over.pem",
            leaf.repeat(MAX_CHAIN + 1).as_bytes(),
        );
        let err = chain(&over, MAX_CHAIN).expect_err("eleven");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot use the certificates in {}: a chain may hold at most 10 certificates",
                over.display()
            )
        );
        // A CA bundle is bounded by its size only.
        assert_eq!(certificates(&over).expect("bundle").len(), MAX_CHAIN + 1);
    }

    #[test]
    fn what_is_not_pem_is_said_as_before() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let text = write(tmp.path(), "text.pem", b"no pem here\n");
        assert_eq!(
            chain(&text, MAX_CHAIN).expect_err("none").to_string(),
            format!("no certificate found in {}", text.display())
        );
        let err = key(&text).expect_err("no key");
        assert!(
            err.to_string()
                .starts_with("cannot read a private key from"),
            "{err}"
        );
        let missing = tmp.path().join("missing.pem");
        let err = chain(&missing, MAX_CHAIN).expect_err("missing");
        assert!(
            err.to_string().starts_with("cannot read certificates from"),
            "{err}"
        );
    }
}
