//! Public-key pins (SPEC §10, "Connecting from another machine is one
//! command"): the SHA-256 of a certificate's SubjectPublicKeyInfo, written
//! as curl's `--pinnedpubkey` and HPKP write it (`sha256//BASE64` there;
//! `sha256:BASE64` here), so that `openssl x509 -pubkey -noout | openssl
//! pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`
//! computes the same value. A pin names a key, not a certificate: it
//! survives a renewal that keeps the key.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::CertificateDer;

/// The SHA-256 of a certificate's SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pin([u8; 32]);

impl Pin {
    /// The pin of `cert`'s public key, or `None` if the certificate cannot
    /// be parsed.
    pub fn of(cert: &CertificateDer<'_>) -> Option<Self> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
        let spki = parsed.tbs_certificate.subject_pki.raw;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki);
        digest.as_ref().try_into().ok().map(Self)
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", STANDARD.encode(self.0))
    }
}

/// Why a text is not a pin; its `Display` is one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a pin: give sha256: and the SHA-256 of the server's public key, in base64 (44 characters) or hex (64 digits)"
)]
pub struct PinError(String);

impl FromStr for Pin {
    type Err = PinError;

    /// `sha256:` (or curl's `sha256//`) and the digest in base64, or in
    /// hex; the prefix may be left out.
    fn from_str(text: &str) -> Result<Self, PinError> {
        let digest = text
            .strip_prefix("sha256:")
            .or_else(|| text.strip_prefix("sha256//"))
            .unwrap_or(text);
        let bytes = if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex(digest)
        } else {
            STANDARD.decode(digest).ok()
        };
        bytes
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .map(Self)
            .ok_or_else(|| PinError(text.to_owned()))
    }
}

/// The bytes of 64 hex digits.
fn hex(digits: &str) -> Option<Vec<u8>> {
    (0..digits.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(digits.get(at..at + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devca::CertificateAuthority;

    fn certificate() -> CertificateDer<'static> {
        let ca = CertificateAuthority::new("pin test CA").expect("ca");
        let issued = ca.issue_server(&["localhost"]).expect("cert");
        rustls::pki_types::pem::PemObject::from_pem_slice(issued.cert_pem.as_bytes())
            .expect("a certificate")
    }

    #[test]
    fn a_pin_is_written_and_read_back_in_every_form() {
        let pin = Pin::of(&certificate()).expect("a pin");
        let written = pin.to_string();
        assert!(
            written.starts_with("sha256:") && written.len() == 7 + 44,
            "{written}"
        );
        assert_eq!(written.parse(), Ok(pin));
        let base64 = &written["sha256:".len()..];
        assert_eq!(base64.parse(), Ok(pin));
        assert_eq!(format!("sha256//{base64}").parse(), Ok(pin));
        let hex: String = pin.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex.parse(), Ok(pin));
        assert_eq!(format!("sha256:{}", hex.to_uppercase()).parse(), Ok(pin));
    }

    #[test]
    fn two_keys_have_two_pins() {
        assert_ne!(Pin::of(&certificate()), Pin::of(&certificate()));
        assert_eq!(Pin::of(&CertificateDer::from(vec![1, 2, 3])), None);
    }

    #[test]
    fn anything_else_is_refused_in_one_sentence() {
        for bad in [
            "",
            "sha256:",
            "sha256:abc",
            "md5:AAAA",
            &"0".repeat(63),
            &"g".repeat(64),
        ] {
            let err = bad.parse::<Pin>().expect_err(bad);
            assert!(
                err.to_string()
                    .starts_with(&format!("'{bad}' is not a pin")),
                "{err}"
            );
        }
    }
}
