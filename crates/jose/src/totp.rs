//! TOTP authenticators (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), on the same
//! crypto backend as everything else.

use aws_lc_rs::hmac;

const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        buffer = (buffer << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            let idx = ((buffer >> (bits - 5)) & 31) as usize;
            out.push(char::from(*BASE32.get(idx).unwrap_or(&b'A')));
            bits -= 5;
        }
    }
    if bits > 0 {
        let idx = ((buffer << (5 - bits)) & 31) as usize;
        out.push(char::from(*BASE32.get(idx).unwrap_or(&b'A')));
    }
    out
}

pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in s
        .trim_end_matches('=')
        .chars()
        .filter(|c| !c.is_whitespace())
    {
        let v = BASE32
            .iter()
            .position(|b| char::from(*b) == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push(((buffer >> (bits - 8)) & 0xff) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

/// A new 160-bit secret, base32.
pub fn new_secret() -> String {
    base32_encode(&crate::random::bytes::<20>())
}

/// The code for the 30-second step containing `unix`.
pub fn code_at(secret_b32: &str, unix: i64) -> Option<String> {
    let key = base32_decode(secret_b32)?;
    let counter = (unix.max(0) / 30) as u64;
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key),
        &counter.to_be_bytes(),
    );
    let t = tag.as_ref();
    let offset = usize::from(t.last()? & 0x0f);
    let slice = t.get(offset..offset + 4)?;
    let value = u32::from_be_bytes([
        slice.first()? & 0x7f,
        *slice.get(1)?,
        *slice.get(2)?,
        *slice.get(3)?,
    ]);
    Some(format!("{:06}", value % 1_000_000))
}

/// Accept the current step and one either side (clock drift), constant time per step.
pub fn verify(secret_b32: &str, code: &str, unix: i64) -> bool {
    use subtle::ConstantTimeEq;
    let code = code.trim();
    [-30, 0, 30].iter().fold(false, |ok, d| {
        let expected = code_at(secret_b32, unix + d).unwrap_or_default();
        ok | bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
    })
}

pub fn otpauth_uri(secret_b32: &str, issuer: &str, account: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 seed "12345678901234567890".
    #[test]
    fn rfc6238_vectors() {
        let secret = base32_encode(b"12345678901234567890");
        for (t, want) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(&secret, t).as_deref(), Some(want), "t={t}");
        }
        assert!(verify(&secret, "287082", 59 + 25));
        assert!(!verify(&secret, "287083", 59));
        assert_eq!(
            base32_decode(&secret).as_deref(),
            Some(&b"12345678901234567890"[..])
        );
    }
}
