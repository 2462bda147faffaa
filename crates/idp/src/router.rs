//! Routes of the identity platform, and Gatehouse's own `/_gatehouse` endpoints.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::discovery::{instance_discovery_handler, jwks_handler, openid_configuration_handler};
use crate::grants::device_code::devicecode_handler;
use crate::grants::token_handler;
use crate::pages::adminconsent::adminconsent_get;
use crate::pages::authorize::{authorize_get, authorize_post};
use crate::pages::device::{devicelogin_get, devicelogin_post};
use crate::pages::flow::login_post;
use crate::pages::logout::logout_get;
use crate::render::html;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration_handler),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(jwks_handler))
        .route("/{tenant}/discovery/keys", get(jwks_handler))
        .route(
            "/common/discovery/instance",
            get(instance_discovery_handler),
        )
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize_get).post(authorize_post),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(token_handler))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(devicecode_handler))
        .route("/{tenant}/oauth2/v2.0/logout", get(logout_get))
        .route("/{tenant}/v2.0/adminconsent", get(adminconsent_get))
        .route("/{tenant}/login", post(login_post))
        .route("/devicelogin", get(devicelogin_get).post(devicelogin_post))
        .route("/error", get(error_code_page))
        .route("/_gatehouse/explain/{request_id}", get(explain))
        .route("/_gatehouse/clock", post(advance_clock))
        .with_state(state)
}

/// The explanation kept for a request id (trace id), as JSON.
async fn explain(State(state): State<AppState>, Path(request_id): Path<String>) -> Response {
    match state.store.denial(&request_id).await {
        Ok(Some(body)) => match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(v) => Json(v).into_response(),
            Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "stored explanation unreadable").into_response(),
        },
        Ok(None) => (StatusCode::NOT_FOUND, Json(json!({"error": "not_found", "message": format!("No denial was recorded with request id {request_id}.")}))).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "unavailable", "message": e.to_string()}))).into_response(),
    }
}

#[derive(Deserialize)]
struct CodeQuery {
    code: Option<u32>,
}

/// `error_uri` targets: what an AADSTS code means, offline.
async fn error_code_page(State(state): State<AppState>, Query(q): Query<CodeQuery>) -> Response {
    let code = q.code.unwrap_or_default();
    let text = gatehouse_engine::wire::describe_code(code)
        .unwrap_or("Gatehouse has no description for this code.");
    html(
        StatusCode::OK,
        state.pages.message(&format!("AADSTS{code}"), text),
    )
}

#[derive(Deserialize)]
struct ClockChange {
    advance_seconds: i64,
}

/// Tests move time instead of sleeping; only with `gatehouse serve --test-clock`.
async fn advance_clock(State(state): State<AppState>, Json(change): Json<ClockChange>) -> Response {
    if !state.clock.advance(change.advance_seconds) {
        return (StatusCode::NOT_FOUND, "").into_response();
    }
    Json(json!({"now": state.clock.now().unix_timestamp()})).into_response()
}
