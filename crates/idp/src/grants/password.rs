//! `grant_type=password` (ROPC): only for apps that allow public client flows, or
//! confidential clients presenting their credential, as Entra.

use gatehouse_engine::Denial;
use gatehouse_engine::scope;
use gatehouse_engine::token::{self, ConsentOutcome, GrantKind, SignInChannel};
use serde_json::Value;

use super::TokenCall;
use crate::grants::user_tokens;
use crate::issue::AuthFacts;
use crate::pages::flow::check_password;

pub async fn grant(call: &TokenCall<'_>) -> Result<Value, Denial> {
    token::require_public_flows(call.app, call.method, GrantKind::Password)?;
    let username = call.form.require("username")?;
    let password = call.form.require("password")?;
    let scopes = scope::resolve(
        &call.dir,
        call.form
            .get("scope")
            .unwrap_or("openid profile offline_access"),
        false,
    )?;
    let user = check_password(
        call.state,
        &call.dir,
        username,
        password,
        call.now,
        SignInChannel::TokenEndpoint,
    )
    .await?;
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
    let auth = AuthFacts {
        amr: vec!["pwd".into()],
        auth_time: call.now,
        session_id: None,
    };
    user_tokens(call, &scopes, &user, &auth, granted, None, None, None).await
}
