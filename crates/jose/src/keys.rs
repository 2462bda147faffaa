//! RSA-2048 signing keys with a self-signed certificate each (for `x5c`/`x5t`, as
//! Entra publishes), and the keyring the JWKS is served from.

use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::JoseError;

/// What the store keeps for one key (private key as PKCS#8 DER).
#[derive(Clone)]
pub struct KeyMaterial {
    pub kid: String,
    pub pkcs8_der: Vec<u8>,
    pub cert_der: Vec<u8>,
    pub created_at: i64,
}

pub struct SigningKey {
    kid: String,
    pair: RsaKeyPair,
    cert_der: Vec<u8>,
    n: String,
    e: String,
    created_at: i64,
}

/// `x5t`: base64url of the certificate's SHA-1, which Entra also uses as `kid`.
pub fn sha1_thumbprint(cert_der: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, cert_der)
        .as_ref()
        .to_vec()
}

impl SigningKey {
    pub fn generate(created_at: i64) -> Result<(SigningKey, KeyMaterial), JoseError> {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .map_err(|e| JoseError::KeyGeneration(e.to_string()))?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| JoseError::KeyGeneration(e.to_string()))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Gatehouse token signing");
        let cert = params
            .self_signed(&kp)
            .map_err(|e| JoseError::KeyGeneration(e.to_string()))?;
        let cert_der = cert.der().to_vec();
        let material = KeyMaterial {
            kid: URL_SAFE_NO_PAD.encode(sha1_thumbprint(&cert_der)),
            pkcs8_der: kp.serialize_der(),
            cert_der,
            created_at,
        };
        Ok((SigningKey::from_material(&material)?, material))
    }

    pub fn from_material(m: &KeyMaterial) -> Result<SigningKey, JoseError> {
        let pair = RsaKeyPair::from_pkcs8(&m.pkcs8_der)
            .map_err(|e| JoseError::InvalidKey(e.to_string()))?;
        if pair.public_modulus_len() < 256 {
            return Err(JoseError::InvalidKey(
                "RSA keys must be at least 2048 bits".into(),
            ));
        }
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        Ok(SigningKey {
            kid: m.kid.clone(),
            pair,
            cert_der: m.cert_der.clone(),
            n,
            e,
            created_at: m.created_at,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn created_at(&self) -> i64 {
        self.created_at
    }

    pub(crate) fn pair(&self) -> &RsaKeyPair {
        &self.pair
    }

    /// PKCS#1 RSAPublicKey DER, what aws-lc-rs verifies with.
    pub(crate) fn public_pkcs1(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    pub fn jwk(&self, issuer: &str) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": self.n,
            "e": self.e,
            "x5c": [STANDARD.encode(&self.cert_der)],
            "issuer": issuer,
        })
    }
}

/// The active key signs; every key in the ring validates (rotation overlap).
pub struct Keyring {
    keys: Vec<SigningKey>,
}

impl Keyring {
    /// The newest key is the active one.
    pub fn new(mut keys: Vec<SigningKey>) -> Option<Keyring> {
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        if keys.is_empty() {
            None
        } else {
            Some(Keyring { keys })
        }
    }

    pub fn active(&self) -> &SigningKey {
        // `new` refuses an empty ring, so the first key exists.
        #[allow(clippy::indexing_slicing)]
        &self.keys[0]
    }

    pub fn by_kid(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn jwks(&self, issuer: &str) -> Value {
        json!({ "keys": self.keys.iter().map(|k| k.jwk(issuer)).collect::<Vec<_>>() })
    }
}
