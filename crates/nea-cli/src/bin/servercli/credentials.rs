//! The certificate files a service manager passes as credentials.
//!
//! systemd's `LoadCredential=NAME:PATH` copies a file the service user
//! could not read (a key owned by root, mode 0600) into a directory only
//! the service can read, named by `$CREDENTIALS_DIRECTORY`. The shipped
//! unit passes the certificate chain as `cert.pem`, its key as `key.pem`
//! and, for mutual TLS, the client CA as `client-ca.pem`. Flags (or their
//! environment variables) win: the credentials are used only for what no
//! flag names.

use std::path::{Path, PathBuf};

/// The credential names the server looks for.
const CERT: &str = "cert.pem";
const KEY: &str = "key.pem";
const CLIENT_CA: &str = "client-ca.pem";

/// Certificate files found in a credentials directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    /// The certificate chain and its key; `None` unless both are there.
    pub(crate) identity: Option<(PathBuf, PathBuf)>,
    /// The client CA, if passed.
    pub(crate) client_ca: Option<PathBuf>,
}

impl Credentials {
    /// The credentials in `$CREDENTIALS_DIRECTORY`, if it is set.
    pub(crate) fn from_env() -> Option<Self> {
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
        Some(Self::in_dir(Path::new(&dir)))
    }

    /// The credentials found in `dir`.
    fn in_dir(dir: &Path) -> Self {
        let file = |name: &str| Some(dir.join(name)).filter(|path| path.is_file());
        Self {
            identity: file(CERT).zip(file(KEY)),
            client_ca: file(CLIENT_CA),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_used_only_with_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = Credentials::in_dir(dir.path());
        assert_eq!(empty.identity, None);
        assert_eq!(empty.client_ca, None);
        std::fs::write(dir.path().join(CERT), "c").expect("write");
        assert_eq!(Credentials::in_dir(dir.path()).identity, None);
        std::fs::write(dir.path().join(KEY), "k").expect("write");
        std::fs::write(dir.path().join(CLIENT_CA), "ca").expect("write");
        let passed = Credentials::in_dir(dir.path());
        assert_eq!(
            passed.identity,
            Some((dir.path().join(CERT), dir.path().join(KEY)))
        );
        assert_eq!(passed.client_ca, Some(dir.path().join(CLIENT_CA)));
    }
}
