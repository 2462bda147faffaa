//! `grant_type=client_credentials`: an app-only token carrying every application
//! permission an admin granted on the resource, and nothing else.

use gatehouse_engine::Denial;
use gatehouse_engine::scope;
use gatehouse_engine::token::tenant_required;
use serde_json::Value;

use super::TokenCall;
use crate::discovery::TenantRef;
use crate::issue::{IssueRequest, Subject, capabilities_from_claims, issue};

pub async fn grant(call: &TokenCall<'_>) -> Result<Value, Denial> {
    if call.tenant == TenantRef::Multi {
        return Err(tenant_required(if call.form.get("tenant").is_some() {
            "common"
        } else {
            "common/organizations"
        }));
    }
    let scopes = scope::resolve(&call.dir, call.form.get("scope").unwrap_or(""), true)?;
    let roles = call.dir.granted_app_roles(call.client_sp, &scopes.resource);
    let issued = issue(
        call.state,
        &call.dir,
        IssueRequest {
            app: call.app,
            client_sp: call.client_sp,
            method: call.method,
            scopes: &scopes,
            subject: Subject::App,
            granted: roles,
            nonce: None,
            client_info: false,
            capabilities: capabilities_from_claims(call.form.get("claims")),
            acrs: Vec::new(),
            now: call.now,
            family: None,
        },
    )
    .await
    .map_err(|e| gatehouse_engine::token::server_error(&e.to_string()))?;
    Ok(issued.body)
}
