//! Client assertions (private_key_jwt with a certificate, RFC 7523), and the
//! certificates apps register for them.

use aws_lc_rs::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::JoseError;
use crate::jws::decode_unverified;
use crate::keys::sha1_thumbprint;

/// A registered certificate: DER and its thumbprints.
pub struct RegisteredCert<'a> {
    pub der_base64: &'a str,
}

/// What a valid assertion told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionClaims {
    pub jti: Option<String>,
    pub exp: i64,
}

/// Five minutes either way, as Microsoft.IdentityModel.
const SKEW: i64 = 300;

/// Validate a client assertion for `client_id` against the app's certificates.
/// `audiences` are the accepted `aud` values (the token endpoint URL(s) and the issuer).
pub fn verify_client_assertion(
    token: &str,
    certs: &[RegisteredCert<'_>],
    client_id: &str,
    audiences: &[String],
    now: i64,
) -> Result<AssertionClaims, String> {
    let decoded = decode_unverified(token).map_err(|e| e.to_string())?;
    let alg = decoded
        .header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or("");
    let algorithm: &'static dyn aws_lc_rs::signature::VerificationAlgorithm = match alg {
        "RS256" => &RSA_PKCS1_2048_8192_SHA256,
        "PS256" => &RSA_PSS_2048_8192_SHA256,
        other => {
            return Err(format!(
                "The assertion's alg '{other}' is not supported (RS256 or PS256)."
            ));
        }
    };
    let x5t = decoded.header.get("x5t").and_then(Value::as_str);
    let x5t256 = decoded.header.get("x5t#S256").and_then(Value::as_str);
    let cert_der = certs
        .iter()
        .filter_map(|c| STANDARD.decode(c.der_base64).ok())
        .find(|der| {
            // MSAL Python pads x5t with `=`; compare the decoded bytes.
            let decode = |v: Option<&str>| v.and_then(|t| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')).ok());
            let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
            decode(x5t).as_deref() == Some(sha1_thumbprint(der).as_slice()) || decode(x5t256).as_deref() == Some(sha256.as_ref())
        })
        .ok_or_else(|| format!("The key used to sign the assertion (x5t '{}') is not registered on application '{client_id}'.", x5t.or(x5t256).unwrap_or("")))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der)
        .map_err(|_| "The registered certificate cannot be parsed.".to_owned())?;
    let public = cert
        .tbs_certificate
        .subject_pki
        .subject_public_key
        .data
        .to_vec();
    let token = token.trim();
    let (signing_input, sig_b64) = token
        .rsplit_once('.')
        .ok_or("The assertion is not a compact JWS.")?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| "The assertion's signature is not base64url.".to_owned())?;
    UnparsedPublicKey::new(algorithm, &public)
        .verify(signing_input.as_bytes(), &sig)
        .map_err(|_| {
            "The assertion's signature does not verify with the registered certificate.".to_owned()
        })?;

    let claims = &decoded.claims;
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    if s("iss") != Some(client_id) || s("sub") != Some(client_id) {
        return Err("The assertion's iss and sub must both be the client id.".into());
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => audiences.iter().any(|x| x == a),
        Some(Value::Array(list)) => {
            list.len() == 1
                && list
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|a| audiences.iter().any(|x| x == a))
        }
        _ => false,
    };
    if !aud_ok {
        return Err(format!(
            "The assertion's aud must be the token endpoint ({}).",
            audiences.first().map(String::as_str).unwrap_or("")
        ));
    }
    // NumericDate may carry a fraction (MSAL Python sends floats).
    let numeric = |k: &str| {
        claims
            .get(k)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    };
    let exp = numeric("exp").ok_or("The assertion has no exp.")?;
    if exp + SKEW < now {
        return Err("The assertion has expired.".into());
    }
    if let Some(nbf) = numeric("nbf")
        && nbf - SKEW > now
    {
        return Err("The assertion is not valid yet (nbf).".into());
    }
    Ok(AssertionClaims {
        jti: s("jti").map(str::to_owned),
        exp,
    })
}

/// A certificate an app can register, with its private key, for tenant files and demos.
pub struct ClientCertificate {
    pub der_base64: String,
    pub thumbprint_sha1_b64url: String,
    pub thumbprint_sha1_hex: String,
    pub certificate_pem: String,
    pub private_key_pem: String,
}

pub fn generate_client_certificate(subject: &str) -> Result<ClientCertificate, JoseError> {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
        .map_err(|e| JoseError::KeyGeneration(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| JoseError::KeyGeneration(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, subject);
    let cert = params
        .self_signed(&kp)
        .map_err(|e| JoseError::KeyGeneration(e.to_string()))?;
    let der = cert.der().to_vec();
    let thumb = sha1_thumbprint(&der);
    Ok(ClientCertificate {
        der_base64: STANDARD.encode(&der),
        thumbprint_sha1_b64url: URL_SAFE_NO_PAD.encode(&thumb),
        thumbprint_sha1_hex: thumb.iter().map(|b| format!("{b:02X}")).collect(),
        certificate_pem: cert.pem(),
        private_key_pem: kp.serialize_pem(),
    })
}
