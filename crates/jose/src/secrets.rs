//! Client secrets are generated with 256 bits of entropy, so a keyed fast hash
//! (HMAC-SHA256 with a server key) is as strong as a slow one and keeps the token
//! endpoint fast. Comparison is constant-time.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

#[derive(Clone)]
pub struct SecretHasher {
    key: hmac::Key,
}

impl SecretHasher {
    pub fn new(key_bytes: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key_bytes),
        }
    }

    pub fn hash(&self, secret: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, secret.as_bytes()).as_ref())
    }

    pub fn matches(&self, secret: &str, stored: &str) -> bool {
        self.hash(secret).as_bytes().ct_eq(stored.as_bytes()).into()
    }
}

/// Opaque handles (codes, refresh tokens, sessions) are stored by SHA-256, so a leaked
/// database does not leak live credentials.
pub fn handle_digest(handle: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, handle.as_bytes());
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_hash_round_trip_and_key_matters() {
        let a = SecretHasher::new(b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1");
        let b = SecretHasher::new(b"k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2");
        let h = a.hash("s3cret");
        assert!(a.matches("s3cret", &h));
        assert!(!a.matches("s3cres", &h));
        assert!(!b.matches("s3cret", &h));
    }
}
