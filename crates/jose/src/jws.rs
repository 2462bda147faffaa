//! Compact JWS: RS256 signing with a cached key, and strict validation.

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::JoseError;
use crate::keys::{Keyring, SigningKey};

/// Tokens larger than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Sign `claims` under a header whose members come in this order (Entra's order matters
/// to nobody's parser, but golden files compare bytes).
pub fn sign(
    key: &SigningKey,
    header: &Map<String, Value>,
    claims: &Value,
) -> Result<String, JoseError> {
    let h = serde_json::to_vec(header).map_err(|_| JoseError::Signing)?;
    let c = serde_json::to_vec(claims).map_err(|_| JoseError::Signing)?;
    let mut out = String::with_capacity(h.len() * 2 + c.len() * 2 + 400);
    URL_SAFE_NO_PAD.encode_string(&h, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&c, &mut out);
    let mut sig = vec![0u8; key.pair().public_modulus_len()];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    key.pair()
        .sign(&RSA_PKCS1_SHA256, &rng, out.as_bytes(), &mut sig)
        .map_err(|_| JoseError::Signing)?;
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&sig, &mut out);
    Ok(out)
}

/// The standard header of our tokens: `{"typ":"JWT","alg":"RS256","kid":…}`, plus
/// `x5t` (v1) and Graph's `nonce` where Entra puts them.
pub fn header(key: &SigningKey, x5t: bool, nonce: Option<&str>) -> Map<String, Value> {
    let mut h = Map::new();
    h.insert("typ".into(), "JWT".into());
    if let Some(n) = nonce {
        h.insert("nonce".into(), n.into());
    }
    h.insert("alg".into(), "RS256".into());
    if x5t {
        h.insert("x5t".into(), key.kid().into());
    }
    h.insert("kid".into(), key.kid().into());
    h
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is empty")]
    Empty,
    #[error("the token is larger than 16 KiB")]
    TooLarge,
    #[error("the token is not a compact JWS (three base64url parts)")]
    NotCompact,
    #[error("the token's {0} is not valid base64url JSON")]
    BadEncoding(&'static str),
    #[error("the token's algorithm {0} is not allowed (RS256 only)")]
    Algorithm(String),
    #[error("the token's kid {0} is not one of this issuer's keys")]
    UnknownKid(String),
    #[error("the token header carries {0}, which is never trusted")]
    ForbiddenHeader(&'static str),
    #[error("the signature is invalid")]
    Signature,
}

pub struct Decoded {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input_len: usize,
}

/// Split and parse without checking the signature (for `doctor` and error evidence).
pub fn decode_unverified(token: &str) -> Result<Decoded, JwtError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(JwtError::Empty);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(_s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::NotCompact);
    };
    let parse = |part: &str, what: &'static str| -> Result<Map<String, Value>, JwtError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwtError::BadEncoding(what))?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(JwtError::BadEncoding(what)),
        }
    };
    Ok(Decoded {
        header: parse(h, "header")?,
        claims: parse(c, "payload")?,
        signing_input_len: h.len() + 1 + c.len(),
    })
}

/// Verify a token we issued: RS256 only, `kid` from our keyring, no `jku`/`x5u`/`jwk`/`crit`.
/// Claims (aud, iss, exp) are judged by the caller, with the time it was given.
pub fn verify(keyring: &Keyring, token: &str) -> Result<Map<String, Value>, JwtError> {
    let decoded = decode_unverified(token)?;
    for forbidden in ["jku", "x5u", "jwk", "crit"] {
        if decoded.header.contains_key(forbidden) {
            return Err(JwtError::ForbiddenHeader(match forbidden {
                "jku" => "jku",
                "x5u" => "x5u",
                "jwk" => "jwk",
                _ => "crit",
            }));
        }
    }
    let alg = decoded
        .header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or("");
    if alg != "RS256" {
        return Err(JwtError::Algorithm(alg.to_owned()));
    }
    let kid = decoded
        .header
        .get("kid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let key = keyring
        .by_kid(kid)
        .ok_or_else(|| JwtError::UnknownKid(kid.chars().take(64).collect()))?;
    let token = token.trim();
    let signing_input = token
        .get(..decoded.signing_input_len)
        .ok_or(JwtError::NotCompact)?;
    let sig_b64 = token
        .get(decoded.signing_input_len + 1..)
        .ok_or(JwtError::NotCompact)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| JwtError::Signature)?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_pkcs1())
        .verify(signing_input.as_bytes(), &sig)
        .map_err(|_| JwtError::Signature)?;
    Ok(decoded.claims)
}

/// Verify an RS256 token against a published JWKS (for `doctor --jwks`): the key is
/// chosen by `kid` (or `x5t`), the algorithm is pinned.
pub fn verify_with_jwks(token: &str, jwks: &Value) -> Result<(), String> {
    let decoded = decode_unverified(token).map_err(|e| e.to_string())?;
    let alg = decoded
        .header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or("");
    if alg != "RS256" {
        return Err(format!("algorithm {alg} is not RS256"));
    }
    let kid = decoded
        .header
        .get("kid")
        .or_else(|| decoded.header.get("x5t"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let key = jwks
        .get("keys")
        .and_then(Value::as_array)
        .and_then(|keys| {
            keys.iter()
                .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        })
        .ok_or_else(|| format!("kid {kid} is not in the JWKS"))?;
    let part = |k: &str| {
        key.get(k)
            .and_then(Value::as_str)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).ok())
    };
    let (Some(n), Some(e)) = (part("n"), part("e")) else {
        return Err("the JWK has no RSA n/e".into());
    };
    let token = token.trim();
    let signing_input = token
        .get(..decoded.signing_input_len)
        .ok_or("not compact")?;
    let sig = URL_SAFE_NO_PAD
        .decode(token.get(decoded.signing_input_len + 1..).unwrap_or(""))
        .map_err(|_| "signature is not base64url".to_owned())?;
    aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, signing_input.as_bytes(), &sig)
        .map_err(|_| "the signature does not verify with the JWKS key".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ring() -> (Keyring, Keyring) {
        let (a, _) = SigningKey::generate(1).unwrap();
        let (b, _) = SigningKey::generate(2).unwrap();
        (
            Keyring::new(vec![a]).unwrap(),
            Keyring::new(vec![b]).unwrap(),
        )
    }

    #[test]
    fn sign_verify_and_attacks() {
        let (ours, theirs) = ring();
        let key = ours.active();
        let t = sign(key, &header(key, true, None), &json!({"aud":"x","n":1})).unwrap();
        assert_eq!(verify(&ours, &t).unwrap()["aud"], "x");
        // Another issuer's key: unknown kid.
        assert!(matches!(verify(&theirs, &t), Err(JwtError::UnknownKid(_))));
        // alg none / HS256 with our kid.
        let parts: Vec<&str> = t.split('.').collect();
        for alg in ["none", "None", "HS256", "PS256"] {
            let h = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, key.kid()));
            let forged = format!("{h}.{}.", parts[1]);
            assert!(
                matches!(verify(&ours, &forged), Err(JwtError::Algorithm(_))),
                "{alg}"
            );
        }
        // Stripped and truncated signatures, swapped payload.
        assert_eq!(
            verify(&ours, &format!("{}.{}.", parts[0], parts[1])),
            Err(JwtError::Signature)
        );
        assert_eq!(
            verify(
                &ours,
                &format!("{}.{}.{}", parts[0], parts[1], &parts[2][..20])
            ),
            Err(JwtError::Signature)
        );
        let other = URL_SAFE_NO_PAD.encode(r#"{"aud":"y","n":1}"#);
        assert_eq!(
            verify(&ours, &format!("{}.{other}.{}", parts[0], parts[2])),
            Err(JwtError::Signature)
        );
        // Embedded jwk / jku.
        let h = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"RS256","kid":"{}","jku":"https://evil.test"}}"#,
            key.kid()
        ));
        assert_eq!(
            verify(&ours, &format!("{h}.{}.{}", parts[1], parts[2])),
            Err(JwtError::ForbiddenHeader("jku"))
        );
        // kid injection.
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"../../../../dev/null"}"#);
        assert!(matches!(
            verify(&ours, &format!("{h}.{}.{}", parts[1], parts[2])),
            Err(JwtError::UnknownKid(_))
        ));
        // Size cap.
        assert_eq!(
            verify(&ours, &"a".repeat(MAX_TOKEN_BYTES + 1)),
            Err(JwtError::TooLarge)
        );
        assert_eq!(verify(&ours, "a.b"), Err(JwtError::NotCompact));
    }

    #[test]
    fn jwks_has_entra_members() {
        let (ours, _) = ring();
        let jwks = ours.jwks("https://i/");
        let k = &jwks["keys"][0];
        for m in ["kty", "use", "kid", "x5t", "n", "e", "x5c", "issuer"] {
            assert!(k.get(m).is_some(), "{m}");
        }
        assert_eq!(k["e"], "AQAB");
    }
}
