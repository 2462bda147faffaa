//! `grant_type=refresh_token`: rotating refresh tokens. Public clients get strict
//! rotation (RFC 9700 §4.14: reuse revokes the family); confidential clients keep
//! Entra's behaviour (an old refresh token stays usable until it expires).

use gatehouse_engine::Denial;
use gatehouse_engine::scope;
use gatehouse_engine::token::{self, ClientAuthMethod, RefreshFacts};
use gatehouse_jose::secrets::handle_digest;
use gatehouse_store::Consumed;
use serde_json::Value;

use super::{TokenCall, user_tokens};
use crate::issue::RefreshRecord;

pub async fn grant(call: &TokenCall<'_>) -> Result<Value, Denial> {
    let presented = call.form.require("refresh_token")?;
    let key = handle_digest(presented);
    let strict = call.method == ClientAuthMethod::Public;
    let handle = if strict {
        match call
            .state
            .store
            .consume_handle("rt", &key, call.now)
            .await
            .map_err(|e| token::server_error(&e.to_string()))?
        {
            Consumed::First(h) => Some((h, false)),
            Consumed::Again(h) => Some((h, true)),
            Consumed::Missing => None,
        }
    } else {
        call.state
            .store
            .get_handle("rt", &key)
            .await
            .map_err(|e| token::server_error(&e.to_string()))?
            .map(|h| (h, false))
    };
    let parsed = handle.as_ref().and_then(|(h, reused)| {
        serde_json::from_str::<RefreshRecord>(&h.body)
            .ok()
            .map(|r| (r, h.clone(), *reused))
    });
    if let Some((_, h, true)) = &parsed
        && let Some(f) = &h.family
    {
        call.state
            .store
            .revoke_family(f)
            .await
            .map_err(|e| token::server_error(&e.to_string()))?;
    }
    let facts = parsed.as_ref().map(|(r, h, reused)| RefreshFacts {
        client_id: r.client_id,
        issued_at: r.issued_at,
        expires_at: h.expires_at,
        revoked: h.revoked,
        reused: *reused,
        user_valid_from: call
            .dir
            .user(r.user_id)
            .and_then(|u| u.sign_in_sessions_valid_from),
    });
    token::redeem_refresh(facts.as_ref(), call.app.app_id, call.now)?;
    let Some((record, handle, _)) = parsed else {
        return Err(token::malformed_request("refresh token unreadable"));
    };
    let user = call
        .dir
        .user(record.user_id)
        .cloned()
        .ok_or_else(|| token::grant_user_deleted(record.user_id))?;
    if !user.account_enabled {
        return Err(token::sign_in(
            &call.dir,
            &user.user_principal_name,
            true,
            token::LockoutState { locked: false },
            token::SignInChannel::TokenEndpoint,
        )
        .err()
        .unwrap_or_else(|| token::malformed_request("account disabled")));
    }
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
        None,
        handle.family.clone(),
        None,
    )
    .await
}
