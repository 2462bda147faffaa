//! A minimal Azure AD Graph (`graph.windows.net`, retired but still issuable) so that
//! a Microsoft Graph token sent there fails as it did, in Azure AD Graph's own shape.

use axum::extract::{Path, State};
use axum::response::Response;
use gatehouse_engine::wire::{GraphError, GraphFlavour, WireError};
use gatehouse_engine::{Cause, Denial};
use gatehouse_idp::AppState;
use gatehouse_idp::context::request_context;
use gatehouse_jose::jws;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::reply;

fn aad_error(status: u16, code: &str, message: &str, cause: Cause, realm: &str) -> Denial {
    let mut e = GraphError::new(status, code, message);
    e.flavour = GraphFlavour::AadGraph;
    e.www_authenticate = (status == 401).then(|| format!(r#"Bearer realm="{realm}", error="invalid_token", error_description="{message}", authorization_uri="https://login.windows.net/{realm}/oauth2/authorize", client_id="00000002-0000-0000-c000-000000000000""#));
    Denial::new(cause, WireError::Graph(e))
}

pub async fn dispatch(
    State(state): State<AppState>,
    Path((tenant, rest)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let ctx = request_context(&state, &headers, None);
    let dir = state.directory();
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let decision = match jws::verify(&state.keyring, token) {
        Err(_) => Err(aad_error(
            401,
            "Authentication_MissingOrMalformed",
            "Access Token missing or malformed.",
            Cause::GraphTokenMalformed,
            &dir.tenant.domain,
        )
        .fix("Send an Azure AD Graph token (scope https://graph.windows.net/.default).")),
        Ok(claims) => {
            let aud = claims.get("aud").and_then(Value::as_str).unwrap_or("");
            let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
            if !(aud
                .trim_end_matches('/')
                .eq_ignore_ascii_case("https://graph.windows.net")
                || aud == "00000002-0000-0000-c000-000000000000")
            {
                Err(aad_error(401, "Authentication_MissingOrMalformed", "Access Token missing or malformed.", Cause::GraphWrongAudience, &dir.tenant.domain)
                    .fact("aud", aud)
                    .fact("expected", "https://graph.windows.net or 00000002-0000-0000-c000-000000000000")
                    .fix("This is a token for another resource (a Microsoft Graph token at Azure AD Graph?). Request https://graph.windows.net/.default for Azure AD Graph, or better, call Microsoft Graph: Azure AD Graph is retired."))
            } else if exp + 300 <= ctx.unix() {
                Err(aad_error(
                    401,
                    "Authentication_ExpiredToken",
                    "Your access token has expired. Please renew it before submitting the request.",
                    Cause::GraphTokenExpired,
                    &dir.tenant.domain,
                ))
            } else if !dir.names_tenant(&tenant) {
                Err(aad_error(
                    404,
                    "Request_BadRequest",
                    "Invalid domain name in the request url.",
                    Cause::TenantUnknown,
                    &dir.tenant.domain,
                ))
            } else {
                Ok(claims)
            }
        }
    };
    match decision {
        Err(d) => reply::denial(&state, &d, &ctx, "aadgraph").await,
        Ok(_) if rest.eq_ignore_ascii_case("users") => {
            let users: Vec<Value> = dir.users.iter().map(|u| json!({"odata.type": "Microsoft.DirectoryServices.User", "objectType": "User", "objectId": u.id.to_string(), "displayName": u.display_name, "userPrincipalName": u.user_principal_name, "accountEnabled": u.account_enabled})).collect();
            reply::json(
                &ctx,
                StatusCode::OK,
                json!({"odata.metadata": format!("https://graph.windows.net/{tenant}/$metadata#directoryObjects"), "value": users}),
            )
        }
        Ok(_) => reply::json(
            &ctx,
            StatusCode::NOT_FOUND,
            json!({"odata.error": {"code": "Request_ResourceNotFound", "message": {"lang": "en", "value": format!("Resource '{rest}' does not exist.")}}}),
        ),
    }
}
