//! `/devicelogin`: the page where the user types the device code, then signs in.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use subtle::ConstantTimeEq;

use super::flow::{
    FlowKind, advance, browser_binding, current_session, new_flow, with_browser_cookie,
};
use crate::context::request_context;
use crate::grants::Form;
use crate::grants::device_code::DeviceRecord;
use crate::render::html;
use crate::state::AppState;

/// The code form; its CSRF token is the browser-binding digest's own value.
pub async fn devicelogin_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (browser, fresh) = browser_binding(&headers);
    let action = format!("{}/devicelogin", state.config.public_base);
    with_browser_cookie(
        html(
            StatusCode::OK,
            state.pages.device_code(&action, &csrf_for(&browser), None),
        ),
        fresh,
    )
}

fn csrf_for(browser_digest: &str) -> String {
    gatehouse_jose::secrets::handle_digest(&format!("devicelogin|{browser_digest}"))
}

pub async fn devicelogin_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = request_context(&state, &headers, None);
    let now = ctx.unix();
    let action = format!("{}/devicelogin", state.config.public_base);
    let (browser, fresh) = browser_binding(&headers);
    let form = Form::parse(&body).ok();
    let csrf_ok: bool = form
        .as_ref()
        .and_then(|f| f.get("csrf"))
        .map(|c| c.as_bytes().ct_eq(csrf_for(&browser).as_bytes()).into())
        .unwrap_or(false);
    let retry = |msg: &str| {
        with_browser_cookie(
            html(
                StatusCode::OK,
                state
                    .pages
                    .device_code(&action, &csrf_for(&browser), Some(msg)),
            ),
            fresh.clone(),
        )
    };
    if !csrf_ok || fresh.is_some() {
        return retry("Your session expired. Enter the code again.");
    }
    let code = form
        .as_ref()
        .and_then(|f| f.get("otc"))
        .unwrap_or("")
        .trim()
        .to_ascii_uppercase();
    let device_key = match state.store.get_handle("usercode", &code).await {
        Ok(Some(h)) if h.expires_at > now => h.body,
        _ => return retry("That code didn't work. Check the code and try again."),
    };
    let record = match state.store.get_handle("device", &device_key).await {
        Ok(Some(h)) if h.consumed_at.is_none() => {
            serde_json::from_str::<DeviceRecord>(&h.body).ok()
        }
        _ => None,
    };
    let Some(record) = record else {
        return retry("That code has expired. Start again on your device.");
    };
    let dir = state.directory();
    let tenant = dir.tenant.id.to_string();
    let mut flow = new_flow(
        FlowKind::Device { device_key },
        &tenant,
        browser,
        record.client_id,
        now,
    );
    flow.scope = record.scope.clone();
    if let Some(session) = current_session(&state, &dir, &headers, now).await {
        flow.user_id = Some(session.user_id);
        flow.auth = Some(session.auth);
        flow.kmsi_done = true;
    }
    advance(&state, flow, &ctx, true).await
}
