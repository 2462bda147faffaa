//! Rendering a Denial on the wire. No decisions here: status, error and body all come
//! from the engine's `WireError`; this adds Entra's headers and our diagnosis header,
//! logs the explanation and keeps it for `explain`.

use axum::response::{Html, IntoResponse, Response};
use gatehouse_engine::{Denial, RequestContext, WireError};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::state::AppState;

pub const DIAGNOSIS_HEADER: &str = "x-gatehouse-diagnosis";

/// The Entra error of an identity-platform denial (they all carry one; a Graph-shaped
/// denial here would be a wiring mistake, answered as a server error rather than a panic).
pub fn aad_of(denial: &Denial) -> gatehouse_engine::wire::AadError {
    denial.wire.aad().cloned().unwrap_or_else(|| {
        gatehouse_engine::wire::AadError::new(
            500,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
        )
    })
}

/// Entra's headers on token-endpoint JSON (success and error).
pub fn token_headers(ctx: &RequestContext) -> HeaderMap {
    let mut h = HeaderMap::new();
    let pairs: [(&str, String); 8] = [
        ("cache-control", "no-store, no-cache".into()),
        ("pragma", "no-cache".into()),
        ("content-type", "application/json; charset=utf-8".into()),
        ("expires", "-1".into()),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains".into(),
        ),
        ("x-content-type-options", "nosniff".into()),
        ("x-ms-request-id", ctx.trace_id.to_string()),
        ("client-request-id", ctx.correlation_id.to_string()),
    ];
    for (k, v) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.insert(name, value);
        }
    }
    h.insert(
        "x-ms-ests-server",
        HeaderValue::from_static("2.1.gatehouse - localhost"),
    );
    h
}

pub fn diagnosis_value(state: &AppState, denial: &Denial, ctx: &RequestContext) -> String {
    format!(
        "{}; explain={}/_gatehouse/explain/{}",
        denial.cause.code(),
        state.config.public_base,
        ctx.trace_id
    )
}

/// Log the denial (one structured line) and keep its explanation by trace id.
pub async fn record(state: &AppState, denial: &Denial, ctx: &RequestContext, endpoint: &str) {
    let mut explanation = denial.explanation();
    if let Some(obj) = explanation.as_object_mut() {
        obj.insert("request_id".into(), ctx.trace_id.to_string().into());
        obj.insert(
            "correlation_id".into(),
            ctx.correlation_id.to_string().into(),
        );
        obj.insert("endpoint".into(), endpoint.into());
        obj.insert("at".into(), ctx.unix().into());
    }
    tracing::info!(
        target: "gatehouse::denial",
        request_id = %ctx.trace_id,
        correlation_id = %ctx.correlation_id,
        cause = denial.cause.code(),
        endpoint,
        explanation = %explanation,
        "denied"
    );
    if let Err(e) = state
        .store
        .record_denial(
            &ctx.trace_id.to_string(),
            ctx.unix(),
            &explanation.to_string(),
        )
        .await
    {
        tracing::warn!(error = %e, "could not keep the explanation");
    }
}

/// A token-endpoint error as JSON.
pub async fn token_error(
    state: &AppState,
    denial: &Denial,
    ctx: &RequestContext,
    endpoint: &str,
    used_basic: bool,
) -> Response {
    record(state, denial, ctx, endpoint).await;
    let aad = aad_of(denial);
    let status = StatusCode::from_u16(aad.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut headers = token_headers(ctx);
    if let Ok(v) = HeaderValue::from_str(&diagnosis_value(state, denial, ctx)) {
        headers.insert(DIAGNOSIS_HEADER, v);
    }
    if status == StatusCode::UNAUTHORIZED && used_basic {
        headers.insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"gatehouse\""),
        );
    }
    (status, headers, aad.to_json(ctx)).into_response()
}

/// Security headers of every HTML page: no framing, no referrer (codes in URLs), no caching.
pub fn page_headers(headers: &mut HeaderMap) {
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action *"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
}

pub fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, Html(body)).into_response();
    page_headers(r.headers_mut());
    r
}

/// A denial shown on Entra's error page (never redirected).
pub async fn error_page(
    state: &AppState,
    denial: &Denial,
    ctx: &RequestContext,
    endpoint: &str,
) -> Response {
    record(state, denial, ctx, endpoint).await;
    let aad = aad_of(denial);
    let body = state.pages.error(denial, ctx, &state.config.public_base);
    let status = StatusCode::from_u16(aad.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = html(status, body);
    if let Ok(v) = HeaderValue::from_str(&diagnosis_value(state, denial, ctx)) {
        r.headers_mut().insert(DIAGNOSIS_HEADER, v);
    }
    r
}

/// Where and how an authorization response goes back to the client.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReplyTo {
    pub redirect_uri: String,
    pub response_mode: String,
    pub state: Option<String>,
}

/// Send parameters back to the client: query or fragment redirect, or form_post page.
pub fn reply(
    state: &AppState,
    to: &ReplyTo,
    mut params: Vec<(&'static str, String)>,
    after_post: bool,
) -> Response {
    if let Some(s) = &to.state {
        params.push(("state", s.clone()));
    }
    if to.response_mode == "form_post" {
        return html(
            StatusCode::OK,
            state.pages.form_post(&to.redirect_uri, &params),
        );
    }
    let encoded = gatehouse_engine::wire::entra_urlencode(&params);
    let sep = if to.response_mode == "fragment" {
        "#"
    } else if to.redirect_uri.contains('?') {
        "&"
    } else {
        "?"
    };
    let location = format!("{}{sep}{encoded}", to.redirect_uri);
    let status = if after_post {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    let mut r = (status, "").into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert("location", v);
    }
    page_headers(r.headers_mut());
    r
}

/// A denial sent back to the redirect URI.
pub async fn error_redirect(
    state: &AppState,
    denial: &Denial,
    ctx: &RequestContext,
    to: &ReplyTo,
    after_post: bool,
) -> Response {
    record(state, denial, ctx, "authorize").await;
    let mut r = reply(state, to, aad_of(denial).redirect_params(ctx), after_post);
    if let Ok(v) = HeaderValue::from_str(&diagnosis_value(state, denial, ctx)) {
        r.headers_mut().insert(DIAGNOSIS_HEADER, v);
    }
    r
}

/// Render whichever way the engine said.
pub async fn denial(
    state: &AppState,
    denial: &Denial,
    ctx: &RequestContext,
    to: Option<&ReplyTo>,
    after_post: bool,
) -> Response {
    match (&denial.wire, to) {
        (WireError::Token(_), _) => token_error(state, denial, ctx, "token", false).await,
        (WireError::Redirect(_), Some(to)) => {
            error_redirect(state, denial, ctx, to, after_post).await
        }
        _ => error_page(state, denial, ctx, "authorize").await,
    }
}
