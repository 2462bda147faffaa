//! OpenID discovery, JWKS and MSAL's instance discovery, in Entra's shapes.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use gatehouse_engine::token::tenant_unknown;
use gatehouse_model::Directory;
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::context::request_context;
use crate::render;
use crate::state::AppState;

/// What a `{tenant}` path segment names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantRef {
    /// The tenant's GUID or domain.
    Specific,
    /// `common` or `organizations`: resolved to the tenant when the user signs in.
    Multi,
}

pub fn resolve_tenant(dir: &Directory, segment: &str) -> Option<TenantRef> {
    if dir.names_tenant(segment) {
        Some(TenantRef::Specific)
    } else if segment.eq_ignore_ascii_case("common")
        || segment.eq_ignore_ascii_case("organizations")
    {
        Some(TenantRef::Multi)
    } else {
        None
    }
}

pub fn openid_configuration(base: &str, dir: &Directory, segment: &str, kind: TenantRef) -> Value {
    let tid = dir.tenant.id;
    // Tenant-specific: the concrete issuer (openid-client compares it to the URL it fetched).
    // common/organizations: the literal {tenantid} placeholder, as Entra.
    let issuer = match kind {
        TenantRef::Specific => format!("{base}/{tid}/v2.0"),
        TenantRef::Multi => format!("{base}/{{tenantid}}/v2.0"),
    };
    let t = segment;
    json!({
        "token_endpoint": format!("{base}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{t}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{base}/{t}/kerberos"),
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": false,
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"
    })
}

fn discovery_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        "cache-control",
        HeaderValue::from_static("max-age=86400, private"),
    );
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, OPTIONS"),
    );
    h.insert(
        "strict-transport-security",
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
}

async fn unknown_tenant(state: &AppState, headers: &HeaderMap, segment: &str) -> Response {
    let ctx = request_context(state, headers, None);
    let denial = tenant_unknown(segment);
    render::token_error(state, &denial, &ctx, "discovery", false).await
}

pub async fn openid_configuration_handler(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let dir = state.directory();
    let Some(kind) = resolve_tenant(&dir, &tenant) else {
        return unknown_tenant(&state, &headers, &tenant).await;
    };
    let mut r = Json(openid_configuration(
        &state.config.public_base,
        &dir,
        &tenant,
        kind,
    ))
    .into_response();
    discovery_headers(&mut r);
    r
}

pub async fn jwks_handler(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let dir = state.directory();
    if resolve_tenant(&dir, &tenant).is_none() {
        return unknown_tenant(&state, &headers, &tenant).await;
    }
    let issuer = format!("{}/{}/v2.0", state.config.public_base, dir.tenant.id);
    let mut r = Json(state.keyring.jwks(&issuer)).into_response();
    discovery_headers(&mut r);
    r
}

/// MSAL's instance discovery (`instance_discovery=<this URL>` in MSAL Python,
/// `cloudDiscoveryMetadata` in msal-node).
pub async fn instance_discovery_handler(State(state): State<AppState>) -> Response {
    let base = &state.config.public_base;
    let host = state.config.login_host();
    let dir = state.directory();
    let mut r = Json(json!({
        "tenant_discovery_endpoint": format!("{base}/{}/v2.0/.well-known/openid-configuration", dir.tenant.id),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]
    }))
    .into_response();
    discovery_headers(&mut r);
    r
}
