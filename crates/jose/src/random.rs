//! Unguessable strings (RFC 6749 §10.10: at least 128 bits; we use 256).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // aws-lc's RNG only fails if the OS entropy source is gone; then nothing is safe anyway,
    // and an all-zero value would be caught by the uniqueness constraints downstream.
    let _ = aws_lc_rs::rand::fill(&mut out);
    out
}

/// 256 bits, base64url without padding (43 characters).
pub fn token() -> String {
    URL_SAFE_NO_PAD.encode(bytes::<32>())
}

/// A client secret in Entra's style: 40 characters, with a `~` in it.
pub fn client_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.~";
    let raw = bytes::<40>();
    let mut s: String = raw
        .iter()
        .map(|b| {
            char::from(
                *ALPHABET
                    .get(usize::from(*b) % ALPHABET.len())
                    .unwrap_or(&b'A'),
            )
        })
        .collect();
    s.replace_range(3..4, "~");
    s
}

/// A password that satisfies Entra's complexity rules.
pub fn password() -> String {
    let raw = bytes::<12>();
    format!("Gh-{}!9a", URL_SAFE_NO_PAD.encode(raw))
}

/// A user code for the device flow: 9 characters from an unambiguous alphabet.
pub fn user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    bytes::<9>()
        .iter()
        .map(|b| {
            char::from(
                *ALPHABET
                    .get(usize::from(*b) % ALPHABET.len())
                    .unwrap_or(&b'A'),
            )
        })
        .collect()
}
