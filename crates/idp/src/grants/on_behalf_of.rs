//! On-behalf-of (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
//! `requested_token_use=on_behalf_of`): a middle-tier API trades the user's token for
//! it into a token for a downstream API (Graph), within what the user consented to.

use gatehouse_engine::token::{self, ClientAuthMethod, ConsentOutcome};
use gatehouse_engine::wire::{AadError, WireError};
use gatehouse_engine::{Cause, Denial, scope};
use gatehouse_jose::jws;
use serde_json::Value;
use uuid::Uuid;

use super::{TokenCall, user_tokens};
use crate::issue::AuthFacts;

fn invalid_assertion(reason: &str) -> Denial {
    Denial::new(
        Cause::AssertionInvalid,
        WireError::Token(AadError::new(
            400,
            "invalid_grant",
            50013,
            format!("Assertion failed signature validation. [Reason - {reason}]"),
        )),
    )
    .fact("assertion", reason)
    .fix("Pass the access token your API received (aud = your API), unchanged and unexpired.")
}

pub async fn grant(call: &TokenCall<'_>) -> Result<Value, Denial> {
    if call.method == ClientAuthMethod::Public {
        return Err(token::authenticate_client(
            call.app,
            &token::PresentedCredential::None,
            token::GrantKind::OnBehalfOf,
            false,
        )
        .err()
        .unwrap_or_else(|| token::missing_parameter("client_secret")));
    }
    if call.form.get("requested_token_use") != Some("on_behalf_of") {
        return Err(token::missing_parameter("requested_token_use"));
    }
    let assertion = call.form.require("assertion")?;
    let claims = jws::verify(&call.state.keyring, assertion)
        .map_err(|e| invalid_assertion(&e.to_string()))?;
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp <= call.now {
        return Err(Denial::new(Cause::AssertionInvalid, WireError::Token(AadError::new(400, "invalid_grant", 500133, "Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token."))).fact("exp", exp.to_string()));
    }
    let me = call.app.app_id.to_string();
    let aud = s("aud").unwrap_or("");
    let for_me = aud == me || call.app.identifier_uris.iter().any(|u| u == aud);
    if !for_me {
        return Err(
            invalid_assertion("the assertion's audience is not this application")
                .fact("aud", aud)
                .fact("client_id", me),
        );
    }
    let user_id: Uuid = s("oid")
        .and_then(|o| o.parse().ok())
        .ok_or_else(|| invalid_assertion("the assertion is not a user token (no oid)"))?;
    if s("idtyp") == Some("app") || claims.get("scp").is_none() {
        return Err(invalid_assertion(
            "an app-only token cannot be exchanged on behalf of a user",
        ));
    }
    let user = call
        .dir
        .user(user_id)
        .cloned()
        .ok_or_else(|| invalid_assertion("the user no longer exists"))?;
    let scopes = scope::resolve(&call.dir, call.form.get("scope").unwrap_or(""), false)?;
    let granted = match token::delegated_consent(&call.dir, call.client_sp, &user, &scopes) {
        ConsentOutcome::Granted(g) => g,
        ConsentOutcome::Missing { missing, .. } => {
            return Err(token::consent_missing(
                call.app,
                &missing,
                call.issuer_base(),
                &call.dir,
            ));
        }
    };
    let amr = Some(gatehouse_engine::strings(claims.get("amr")))
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| vec!["pwd".to_owned()]);
    let auth = AuthFacts {
        amr,
        auth_time: claims
            .get("iat")
            .and_then(Value::as_i64)
            .unwrap_or(call.now),
        session_id: s("sid").map(str::to_owned),
    };
    user_tokens(call, &scopes, &user, &auth, granted, None, None, None).await
}
