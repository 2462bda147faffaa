//! A minimal Azure AD Graph (`graph.windows.net`, retired but still issuable) so that
//! a Microsoft Graph token sent there fails as it did, in Azure AD Graph's own shape.
//! Decisions: `gatehouse_engine::graph::aad_graph_authorize`.

use axum::extract::{Path, State};
use axum::response::Response;
use gatehouse_engine::graph;
use gatehouse_idp::AppState;
use gatehouse_idp::context::request_context;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::enforce::token_facts;
use crate::reply;

pub async fn dispatch(
    State(state): State<AppState>,
    Path((tenant, rest)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let ctx = request_context(&state, &headers, None);
    let dir = state.directory();
    let decided =
        graph::aad_graph_authorize(&dir, &token_facts(&state, &headers), &tenant, ctx.unix())
            .and_then(|()| {
                if rest.eq_ignore_ascii_case("users") {
                    Ok(())
                } else {
                    Err(graph::aad_graph_not_found(&rest, &dir.tenant.domain))
                }
            });
    if let Err(d) = decided {
        return reply::denial(&state, &d, &ctx, "aadgraph").await;
    }
    let users: Vec<Value> = dir
        .users
        .iter()
        .map(|u| json!({"odata.type": "Microsoft.DirectoryServices.User", "objectType": "User", "objectId": u.id.to_string(), "displayName": u.display_name, "userPrincipalName": u.user_principal_name, "accountEnabled": u.account_enabled}))
        .collect();
    reply::json(
        &ctx,
        StatusCode::OK,
        json!({"odata.metadata": format!("https://graph.windows.net/{tenant}/$metadata#directoryObjects"), "value": users}),
    )
}
