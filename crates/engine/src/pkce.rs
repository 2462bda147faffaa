//! RFC 7636 S256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

pub fn s256(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

pub fn s256_matches(challenge: &str, verifier: &str) -> bool {
    s256(verifier).as_bytes().ct_eq(challenge.as_bytes()).into()
}
