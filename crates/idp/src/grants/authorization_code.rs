//! `grant_type=authorization_code`: single-use codes bound to client, redirect URI and
//! PKCE challenge. A replayed code revokes everything the first redemption issued.

use gatehouse_engine::Denial;
use gatehouse_engine::scope;
use gatehouse_engine::token::{self, CodeFacts};
use gatehouse_jose::secrets::handle_digest;
use gatehouse_store::Consumed;
use serde_json::Value;

use super::{TokenCall, user_tokens};
use crate::pages::flow::CodeRecord;

/// Codes look like Entra's (`1.A…`); anything else is malformed rather than unknown.
pub fn well_formed_code(code: &str) -> bool {
    code.starts_with("1.A")
        && code.len() > 40
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

pub async fn grant(call: &TokenCall<'_>) -> Result<Value, Denial> {
    let code = call.form.require("code")?;
    let key = handle_digest(code);
    let consumed = call
        .state
        .store
        .consume_handle("code", &key, call.now)
        .await
        .map_err(|e| token::server_error(&e.to_string()))?;
    let (record, redeemed, family) = match consumed {
        Consumed::First(h) => (
            serde_json::from_str::<CodeRecord>(&h.body).ok(),
            false,
            h.family,
        ),
        Consumed::Again(h) => (
            serde_json::from_str::<CodeRecord>(&h.body).ok(),
            true,
            h.family,
        ),
        Consumed::Missing => (None, false, None),
    };
    if redeemed && let Some(f) = &family {
        // RFC 6749 §4.1.2: a replayed code revokes the tokens issued from it.
        call.state
            .store
            .revoke_family(f)
            .await
            .map_err(|e| token::server_error(&e.to_string()))?;
    }
    let facts = record.as_ref().map(|r| CodeFacts {
        client_id: r.client_id,
        redirect_uri: r.redirect_uri.clone(),
        code_challenge: r.code_challenge.clone(),
        expires_at: r.expires_at,
        redeemed,
    });
    token::redeem_code(
        facts.as_ref(),
        well_formed_code(code),
        call.app.app_id,
        call.form.get("redirect_uri"),
        call.form.get("code_verifier"),
        call.now,
    )?;
    let Some(record) = record else {
        return Err(token::malformed_request("code record unreadable"));
    };
    let user = call
        .dir
        .user(record.user_id)
        .cloned()
        .ok_or_else(|| token::grant_user_deleted(record.user_id))?;
    // The token request may narrow the scopes; it defaults to those of the authorize request.
    let scopes = scope::resolve(
        &call.dir,
        call.form.get("scope").unwrap_or(&record.scope),
        false,
    )?;
    let granted = match token::delegated_consent(&call.dir, call.client_sp, &user, &scopes) {
        token::ConsentOutcome::Granted(g) => g,
        token::ConsentOutcome::Missing { missing, .. } => {
            return Err(token::consent_missing(
                call.app,
                &missing,
                call.issuer_base(),
                &call.dir,
            ));
        }
    };
    user_tokens(
        call,
        &scopes,
        &user,
        &record.auth,
        granted,
        record.nonce.clone(),
        family,
        record.claims.as_deref(),
    )
    .await
}
