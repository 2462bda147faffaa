//! Graph's response shapes and headers.

use axum::response::{IntoResponse, Response};
use gatehouse_engine::{Denial, RequestContext, WireError};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

use gatehouse_idp::AppState;
use gatehouse_idp::render::{DIAGNOSIS_HEADER, diagnosis_value, record};

pub const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";
pub const GRAPH_CONTEXT_BASE: &str = "https://graph.microsoft.com/v1.0/$metadata";

pub fn headers(ctx: &RequestContext, content_type: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert("content-type", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ctx.trace_id.to_string()) {
        h.insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ctx.correlation_id.to_string()) {
        h.insert("client-request-id", v);
    }
    h.insert("odata-version", HeaderValue::from_static("4.0"));
    h.insert(
        "strict-transport-security",
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert("x-ms-ags-diagnostic", HeaderValue::from_static(r#"{"ServerInfo":{"DataCenter":"Gatehouse","Slice":"E","Ring":"1","ScaleUnit":"000","RoleInstance":"localhost"}}"#));
    h
}

pub fn json(ctx: &RequestContext, status: StatusCode, body: Value) -> Response {
    (status, headers(ctx, ODATA_JSON), body.to_string()).into_response()
}

pub fn no_content(ctx: &RequestContext) -> Response {
    let mut h = headers(ctx, ODATA_JSON);
    h.remove("content-type");
    (StatusCode::NO_CONTENT, h).into_response()
}

/// A Graph denial: the engine's bytes, the diagnosis header, the record for `explain`.
pub async fn denial(
    state: &AppState,
    d: &Denial,
    ctx: &RequestContext,
    endpoint: &str,
) -> Response {
    record(state, d, ctx, endpoint).await;
    let WireError::Graph(g) = &d.wire else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
    };
    let content_type = match g.flavour {
        gatehouse_engine::wire::GraphFlavour::AadGraph => {
            "application/json; odata=minimalmetadata; streaming=true; charset=utf-8"
        }
        _ => "application/json; charset=utf-8",
    };
    let mut h = headers(ctx, content_type);
    h.remove("odata-version");
    if let Some(w) = &g.www_authenticate
        && let Ok(v) = HeaderValue::from_str(w)
    {
        h.insert("www-authenticate", v);
    }
    if let Ok(v) = HeaderValue::from_str(&diagnosis_value(state, d, ctx)) {
        h.insert(DIAGNOSIS_HEADER, v);
    }
    let status = StatusCode::from_u16(g.status).unwrap_or(StatusCode::FORBIDDEN);
    (status, h, g.to_json(ctx)).into_response()
}
