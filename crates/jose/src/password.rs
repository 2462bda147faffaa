//! User passwords: argon2id at OWASP's minimum (m=19 MiB, t=2, p=1).

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use crate::JoseError;

fn hasher() -> Result<Argon2<'static>, JoseError> {
    let params =
        Params::new(19 * 1024, 2, 1, None).map_err(|e| JoseError::PasswordHash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

pub fn hash(password: &str) -> Result<String, JoseError> {
    hasher()?
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| JoseError::PasswordHash(e.to_string()))
}

pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = argon2::password_hash::phc::PasswordHash::new(phc) else {
        return false;
    };
    hasher()
        .map(|h| h.verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// Spend the same time for an unknown user as for a wrong password (no user enumeration).
pub fn verify_dummy(password: &str) {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Vq8d2mEGLlOGhd9SlxEe9oq6w4ZQmUuZ+jx6A3bP3eE";
    let _ = verify(password, DUMMY);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owasp_params_and_round_trip() {
        let h = hash("P@ssw0rd!").unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("P@ssw0rd!", &h));
        assert!(!verify("P@ssw0rd?", &h));
        assert!(!verify("x", "not a phc string"));
    }
}
