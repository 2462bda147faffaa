//! The device authorization grant (RFC 8628): `POST …/devicecode` starts it, the
//! user finishes on `/devicelogin`, the client polls `grant_type=device_code`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use gatehouse_engine::scope;
use gatehouse_engine::token::{self, ConsentOutcome, GrantKind, PresentedCredential};
use gatehouse_engine::wire::{AadError, WireError};
use gatehouse_engine::{Cause, Denial};
use gatehouse_jose::{random, secrets::handle_digest};
use gatehouse_store::Consumed;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Form, TokenCall, user_tokens};
use crate::context::request_context;
use crate::discovery::resolve_tenant;
use crate::issue::AuthFacts;
use crate::render;
use crate::state::AppState;

pub const DEVICE_CODE_LIFETIME: i64 = 900;
pub const POLL_INTERVAL: i64 = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DeviceStatus {
    Pending,
    Approved { user_id: Uuid, auth: AuthFacts },
    Declined,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub client_id: Uuid,
    pub scope: String,
    pub user_code: String,
    pub device_key: String,
    pub expires_at: i64,
    pub status: DeviceStatus,
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
pub async fn devicecode_handler(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let corr = form
        .as_ref()
        .ok()
        .and_then(|f| f.get("client-request-id").map(str::to_owned));
    let ctx = request_context(&state, &headers, corr.as_deref());
    match start(&state, &tenant, form, ctx.unix()).await {
        Ok(v) => (StatusCode::OK, render::token_headers(&ctx), v.to_string()).into_response(),
        Err(d) => render::token_error(&state, &d, &ctx, "devicecode", false).await,
    }
}

async fn start(
    state: &AppState,
    tenant: &str,
    form: Result<Form, String>,
    now: i64,
) -> Result<Value, Denial> {
    let form = form.map_err(|e| token::malformed_request(&e))?;
    let dir = state.directory();
    resolve_tenant(&dir, tenant).ok_or_else(|| token::tenant_unknown(tenant))?;
    let client_id = form.require("client_id")?;
    let app = client_id
        .parse()
        .ok()
        .and_then(|id| dir.application_by_app_id(id))
        .ok_or_else(|| token::client_unknown(client_id, &dir))?;
    let method = token::authenticate_client(
        app,
        &PresentedCredential::None,
        GrantKind::DeviceCode,
        false,
    )?;
    token::require_public_flows(app, method, GrantKind::DeviceCode)?;
    let scopes = scope::resolve(
        &dir,
        form.get("scope").unwrap_or("openid profile offline_access"),
        false,
    )?;
    let device_code = format!("DAQABAAEAAA{}", random::token());
    let user_code = random::user_code();
    let record = DeviceRecord {
        client_id: app.app_id,
        scope: scopes.raw.clone(),
        user_code: user_code.clone(),
        device_key: handle_digest(&device_code),
        expires_at: now + DEVICE_CODE_LIFETIME,
        status: DeviceStatus::Pending,
    };
    let body = serde_json::to_string(&record).map_err(|e| token::server_error(&e.to_string()))?;
    let store = &state.store;
    store
        .put_handle("device", &record.device_key, &body, record.expires_at, None)
        .await
        .map_err(|e| token::server_error(&e.to_string()))?;
    store
        .put_handle(
            "usercode",
            &user_code,
            &record.device_key,
            record.expires_at,
            None,
        )
        .await
        .map_err(|e| token::server_error(&e.to_string()))?;
    let uri = format!("{}/devicelogin", state.config.public_base);
    Ok(json!({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": uri,
        "expires_in": DEVICE_CODE_LIFETIME,
        "interval": POLL_INTERVAL,
        "message": format!("To sign in, use a web browser to open the page {uri} and enter the code {user_code} to authenticate."),
    }))
}

fn poll_error(cause: Cause, error: &'static str, code: u32, message: &str) -> Denial {
    Denial::new(
        cause,
        WireError::Token(AadError::new(400, error, code, message)),
    )
}

pub async fn grant(call: &TokenCall<'_>) -> Result<Value, Denial> {
    token::require_public_flows(call.app, call.method, GrantKind::DeviceCode)?;
    let device_code = call.form.require("device_code")?;
    let key = handle_digest(device_code);
    let store = &call.state.store;
    let Some(handle) = store
        .get_handle("device", &key)
        .await
        .map_err(|e| token::server_error(&e.to_string()))?
    else {
        return Err(poll_error(
            Cause::GrantMalformed,
            "invalid_grant",
            70000,
            "The provided value for the 'device_code' parameter is not valid.",
        )
        .fix("Start a new device code flow."));
    };
    let record: DeviceRecord =
        serde_json::from_str(&handle.body).map_err(|e| token::server_error(&e.to_string()))?;
    if record.client_id != call.app.app_id {
        return Err(poll_error(
            Cause::GrantClientMismatch,
            "invalid_grant",
            70000,
            "The provided value for the 'device_code' parameter is not valid. It was issued to a different client.",
        ));
    }
    if call.now >= record.expires_at {
        return Err(poll_error(Cause::DeviceCodeExpired, "expired_token", 70020, "The provided value for the input parameter 'device_code' is not valid. This device code has expired.").fix("Start a new device code flow and finish it within 15 minutes."));
    }
    match &record.status {
        DeviceStatus::Pending => Err(poll_error(
            Cause::DeviceCodePending,
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )
        .fix(format!(
            "Open {}/devicelogin and enter the code {}.",
            call.issuer_base(),
            record.user_code
        ))),
        DeviceStatus::Declined => Err(poll_error(
            Cause::DeviceCodeDeclined,
            "authorization_declined",
            70000,
            "The user has declined the authentication request.",
        )),
        DeviceStatus::Approved { user_id, auth } => {
            // One token response per device code.
            match store
                .consume_handle("device", &key, call.now)
                .await
                .map_err(|e| token::server_error(&e.to_string()))?
            {
                Consumed::First(_) => {}
                _ => {
                    return Err(poll_error(
                        Cause::CodeAlreadyRedeemed,
                        "invalid_grant",
                        70000,
                        "The provided value for the 'device_code' parameter is not valid. It was already redeemed.",
                    ));
                }
            }
            let user = call
                .dir
                .user(*user_id)
                .cloned()
                .ok_or_else(|| token::malformed_request("user vanished"))?;
            let scopes = scope::resolve(&call.dir, &record.scope, false)?;
            let granted = match token::delegated_consent(&call.dir, call.client_sp, &user, &scopes)
            {
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
            user_tokens(call, &scopes, &user, auth, granted, None, None, None).await
        }
    }
}
