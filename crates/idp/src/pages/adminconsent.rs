//! `GET /{tenant}/v2.0/adminconsent`: an administrator grants everything the app
//! registration requires, for the whole organisation.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use gatehouse_engine::token;
use gatehouse_engine::wire::{AadError, WireError};
use gatehouse_engine::{Cause, Denial};
use http::HeaderMap;

use super::flow::{
    FlowKind, advance, browser_binding, current_session, new_flow, with_browser_cookie,
};
use crate::context::request_context;
use crate::discovery::{TenantRef, resolve_tenant};
use crate::grants::Form;
use crate::render::{self, ReplyTo};
use crate::state::AppState;

pub async fn adminconsent_get(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let ctx = request_context(&state, &headers, None);
    let now = ctx.unix();
    let page = |d: Denial| {
        let mut d = d;
        if let WireError::Token(e) = d.wire {
            d.wire = WireError::Page(AadError { status: 400, ..e });
        }
        d
    };
    let form = match Form::parse(query.unwrap_or_default().as_bytes()) {
        Ok(f) => f,
        Err(e) => {
            return render::error_page(
                &state,
                &page(token::malformed_request(&e)),
                &ctx,
                "adminconsent",
            )
            .await;
        }
    };
    let dir = state.directory();
    match resolve_tenant(&dir, &tenant) {
        Some(TenantRef::Specific) => {}
        _ if tenant.eq_ignore_ascii_case("organizations") => {}
        _ => {
            let d = Denial::new(Cause::TenantRequired, WireError::Page(AadError::new(400, "invalid_request", 90130, "The admin consent endpoint needs a tenant-specific or /organizations authority, not /common.")))
                .fact("tenant", tenant.clone());
            return render::error_page(&state, &d, &ctx, "adminconsent").await;
        }
    }
    let Some(client_id) = form.get("client_id") else {
        return render::error_page(
            &state,
            &page(token::missing_parameter("client_id")),
            &ctx,
            "adminconsent",
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
            "adminconsent",
        )
        .await;
    };
    let reply = match form.get("redirect_uri") {
        Some(r) if token::redirect_uri_registered(&app, r) => Some(ReplyTo {
            redirect_uri: r.to_owned(),
            response_mode: "query".into(),
            state: form.get("state").map(str::to_owned),
        }),
        Some(r) => {
            return render::error_page(
                &state,
                &token::redirect_uri_mismatch(&app, r),
                &ctx,
                "adminconsent",
            )
            .await;
        }
        None => None,
    };
    let (browser, fresh) = browser_binding(&headers);
    let mut flow = new_flow(
        FlowKind::AdminConsent,
        &dir.tenant.id.to_string(),
        browser,
        app.app_id,
        now,
    );
    flow.reply = reply;
    flow.scope = form
        .get("scope")
        .unwrap_or("https://graph.microsoft.com/.default")
        .to_owned();
    if let Some(session) = current_session(&state, &dir, &headers, now).await {
        flow.user_id = Some(session.user_id);
        flow.auth = Some(session.auth);
        flow.kmsi_done = true;
    }
    with_browser_cookie(advance(&state, flow, &ctx, false).await, fresh)
}
