//! Keys and tokens: RS256 signing with cached keys, the JWKS, strict validation of
//! our own tokens and of client assertions, client-secret and password hashing.
//!
//! JWS framing is done here on top of aws-lc-rs primitives so that the parsed private
//! key is reused for every signature (re-parsing per token costs ~60%, see
//! perf-anchors) and so that validation is strict by construction: RS256 only, `kid`
//! only from our keyring, no key material taken from the token.

pub mod assertion;
pub mod jws;
pub mod keys;
pub mod password;
pub mod random;
pub mod secrets;
pub mod totp;

pub use jws::{JwtError, decode_unverified};
pub use keys::{KeyMaterial, Keyring, SigningKey};

#[derive(Debug, thiserror::Error)]
pub enum JoseError {
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    #[error("invalid key material: {0}")]
    InvalidKey(String),
    #[error("signing failed")]
    Signing,
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
}
