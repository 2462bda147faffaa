//! `GET|POST /{tenant}/oauth2/v2.0/authorize`: validate the request in Entra's order
//! (client, redirect URI, then everything that can be reported back to it), start a
//! flow, reuse the browser's session when allowed, and advance.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use gatehouse_engine::token;
use gatehouse_engine::wire::{AadError, WireError};
use gatehouse_engine::{Cause, Denial, scope};
use http::HeaderMap;

use super::flow::{
    FlowKind, advance, browser_binding, current_session, new_flow, to_redirect, with_browser_cookie,
};
use crate::context::request_context;
use crate::discovery::resolve_tenant;
use crate::grants::Form;
use crate::render::{self, ReplyTo};
use crate::state::AppState;

pub async fn authorize_get(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    authorize(
        state,
        tenant,
        query.unwrap_or_default().into_bytes(),
        headers,
    )
    .await
}

pub async fn authorize_post(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorize(state, tenant, body.to_vec(), headers).await
}

fn redirect_error(error: &'static str, code: u32, message: String, cause: Cause) -> Denial {
    Denial::new(
        cause,
        WireError::Redirect(AadError::new(302, error, code, message)),
    )
}

fn page(d: Denial) -> Denial {
    let mut d = d;
    if let WireError::Token(e) | WireError::Redirect(e) = d.wire {
        d.wire = WireError::Page(AadError { status: 400, ..e });
    }
    d
}

async fn authorize(state: AppState, tenant: String, raw: Vec<u8>, headers: HeaderMap) -> Response {
    let form = Form::parse(&raw);
    let corr = form
        .as_ref()
        .ok()
        .and_then(|f| f.get("client-request-id").map(str::to_owned));
    let ctx = request_context(&state, &headers, corr.as_deref());
    let now = ctx.unix();
    let form = match form {
        Ok(f) => f,
        Err(e) => {
            return render::error_page(
                &state,
                &page(token::malformed_request(&e)),
                &ctx,
                "authorize",
            )
            .await;
        }
    };
    let dir = state.directory();
    if resolve_tenant(&dir, &tenant).is_none() {
        return render::error_page(
            &state,
            &page(token::tenant_unknown(&tenant)),
            &ctx,
            "authorize",
        )
        .await;
    }
    let Some(client_id) = form.get("client_id") else {
        return render::error_page(
            &state,
            &page(token::missing_parameter("client_id")),
            &ctx,
            "authorize",
        )
        .await;
    };
    let Some(app) = client_id
        .parse()
        .ok()
        .and_then(|id| dir.application_by_app_id(id))
        .cloned()
    else {
        return render::error_page(
            &state,
            &page(token::client_unknown(client_id, &dir)),
            &ctx,
            "authorize",
        )
        .await;
    };
    // The redirect URI must be trusted before anything is sent to it (RFC 6749 §4.1.2.1).
    let redirect_uri = match form.get("redirect_uri") {
        Some(r) => r.to_owned(),
        None => match app.all_redirect_uris().next() {
            Some((u, _)) => u.to_owned(),
            None => {
                return render::error_page(
                    &state,
                    &token::redirect_uri_mismatch(&app, ""),
                    &ctx,
                    "authorize",
                )
                .await;
            }
        },
    };
    if !token::redirect_uri_registered(&app, &redirect_uri) {
        return render::error_page(
            &state,
            &token::redirect_uri_mismatch(&app, &redirect_uri),
            &ctx,
            "authorize",
        )
        .await;
    }
    let response_mode = match form.get("response_mode") {
        None => "query",
        Some(m @ ("query" | "fragment" | "form_post")) => m,
        Some(_) => "query",
    };
    let reply = ReplyTo {
        redirect_uri,
        response_mode: response_mode.to_owned(),
        state: form.get("state").map(str::to_owned),
    };

    match form.get("response_type") {
        Some("code") => {}
        None => {
            return render::denial(
                &state,
                &to_redirect(token::missing_parameter("response_type")),
                &ctx,
                Some(&reply),
                false,
            )
            .await;
        }
        Some(other) => {
            let d = redirect_error(
                "unsupported_response_type",
                700054,
                format!("response_type '{other}' is not enabled for the application."),
                Cause::ResponseTypeUnsupported,
            )
            .fact("response_type", other)
            .fix("Use response_type=code (with PKCE); the implicit grant is not offered.");
            return render::denial(&state, &d, &ctx, Some(&reply), false).await;
        }
    }
    let scope_raw = form.get("scope").unwrap_or("openid profile").to_owned();
    if let Err(d) = scope::resolve(&dir, &scope_raw, false) {
        return render::denial(&state, &to_redirect(d), &ctx, Some(&reply), false).await;
    }
    let challenge = form.get("code_challenge").map(str::to_owned);
    if challenge.is_some() && form.get("code_challenge_method").unwrap_or("plain") != "S256" {
        let d = redirect_error("invalid_request", 50149, "Invalid Code_Challenge_method parameter. Only S256 is supported.".into(), Cause::PkceMethodUnsupported)
            .fact("code_challenge_method", form.get("code_challenge_method").unwrap_or("plain (default)"))
            .fix("Send code_challenge_method=S256 with code_challenge = BASE64URL(SHA256(code_verifier)).");
        return render::denial(&state, &d, &ctx, Some(&reply), false).await;
    }
    if challenge.is_none() && app.is_public_client() {
        let d = redirect_error("invalid_request", 9002325, "Proof Key for Code Exchange is required for cross-origin authorization code redemption.".into(), Cause::PkceRequired)
            .fact("client", "public (no client secret or certificate)")
            .fix("Send code_challenge and code_challenge_method=S256 (MSAL does this by itself).");
        return render::denial(&state, &d, &ctx, Some(&reply), false).await;
    }

    let (browser, fresh) = browser_binding(&headers);
    let mut flow = new_flow(FlowKind::Authorize, &tenant, browser, app.app_id, now);
    flow.reply = Some(reply.clone());
    flow.scope = scope_raw;
    flow.nonce = form.get("nonce").map(str::to_owned);
    flow.code_challenge = challenge;
    flow.prompt = form.get("prompt").map(str::to_owned);
    flow.claims = form.get("claims").map(str::to_owned);
    flow.login_hint = form.get("login_hint").map(str::to_owned);

    let hinted = flow
        .login_hint
        .as_deref()
        .and_then(|h| dir.user_by_upn(h))
        .map(|u| u.id);
    let forced_login = matches!(
        flow.prompt.as_deref(),
        Some("login") | Some("select_account")
    );
    if !forced_login
        && let Some(session) = current_session(&state, &dir, &headers, now).await
        && hinted.is_none_or(|h| h == session.user_id)
    {
        flow.user_id = Some(session.user_id);
        flow.auth = Some(session.auth);
        flow.kmsi_done = true;
    }
    if flow.auth.is_none() && flow.prompt.as_deref() == Some("none") {
        let d = redirect_error(
            "login_required",
            50058,
            "A silent sign-in request was sent but no user is signed in.".into(),
            Cause::InteractionRequired,
        )
        .fact("prompt", "none")
        .fix("Send the request without prompt=none so the user can sign in.");
        return render::denial(&state, &d, &ctx, Some(&reply), false).await;
    }
    if flow.user_id.is_none() {
        flow.user_id = hinted;
    }
    with_browser_cookie(advance(&state, flow, &ctx, false).await, fresh)
}
