//! Per-request context: trace id, correlation id (echoing `client-request-id`), time.

use gatehouse_engine::RequestContext;
use gatehouse_engine::wire::new_trace_id;
use http::HeaderMap;
use uuid::Uuid;

use crate::state::AppState;

/// `client-request-id` may come as a header (MSAL Python), a query parameter or a form
/// field (msal-node puts its telemetry in the body).
pub fn correlation_id(headers: &HeaderMap, extra: Option<&str>) -> Uuid {
    headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .or(extra)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(Uuid::new_v4)
}

pub fn request_context(
    state: &AppState,
    headers: &HeaderMap,
    extra_correlation: Option<&str>,
) -> RequestContext {
    RequestContext {
        now: state.clock.now(),
        trace_id: new_trace_id(),
        correlation_id: correlation_id(headers, extra_correlation),
        login_host: state.config.login_host().to_owned(),
    }
}
