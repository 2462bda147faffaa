//! Minting tokens as Entra does: v1 Microsoft Graph tokens, v2 tokens for tenant APIs,
//! id tokens, refresh tokens, `client_info`, and the response body around them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_engine::scope::ScopeRequest;
use gatehouse_engine::token::ClientAuthMethod;
use gatehouse_jose::{jws, random, secrets::handle_digest};
use gatehouse_model::directory::ResourceKind;
use gatehouse_model::ids::MICROSOFT_GRAPH_APP_ID;
use gatehouse_model::{Application, Directory, ServicePrincipal, User};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::state::AppState;

/// Refresh tokens last 90 days of inactivity, as Entra.
pub const REFRESH_LIFETIME: i64 = 90 * 86_400;
/// App-only tokens: 3599 s, as observed.
pub const APP_TOKEN_LIFETIME: i64 = 3599;
/// CAE-capable tokens (xms_cc cp1): Entra issues 20-28 h; the recording shows 70000 s.
pub const CAE_TOKEN_LIFETIME: i64 = 70_000;

/// How the user authenticated, carried from sign-in into tokens and refresh tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthFacts {
    pub amr: Vec<String>,
    pub auth_time: i64,
    pub session_id: Option<String>,
}

pub enum Subject<'a> {
    App,
    User { user: &'a User, auth: &'a AuthFacts },
}

pub struct IssueRequest<'a> {
    pub app: &'a Application,
    pub client_sp: &'a ServicePrincipal,
    pub method: ClientAuthMethod,
    pub scopes: &'a ScopeRequest,
    pub subject: Subject<'a>,
    /// `scp` values (delegated) or `roles` values (app-only).
    pub granted: Vec<String>,
    pub nonce: Option<String>,
    pub client_info: bool,
    /// Client capabilities (`xms_cc`) the request declared, e.g. `cp1`.
    pub capabilities: Vec<String>,
    /// Authentication contexts satisfied (`acrs`).
    pub acrs: Vec<String>,
    pub now: i64,
    /// Refresh-token family to continue (rotation), or None for a new one.
    pub family: Option<String>,
}

/// What the refresh token remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub client_id: Uuid,
    pub user_id: Uuid,
    pub scope: String,
    pub issued_at: i64,
    pub auth: AuthFacts,
    pub capabilities: Vec<String>,
}

pub struct Issued {
    pub body: Value,
    pub access_token_uti: String,
    pub refresh_family: Option<String>,
}

fn opaque(n: usize) -> String {
    random::token().chars().take(n).collect()
}

/// Pairwise `sub`: stable per (app, user), different across apps.
fn pairwise_sub(tid: Uuid, app_id: Uuid, oid: Uuid) -> String {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{tid}|{app_id}|{oid}").as_bytes(),
    );
    URL_SAFE_NO_PAD
        .encode(d.as_ref())
        .chars()
        .take(43)
        .collect()
}

fn token_version(dir: &Directory, scopes: &ScopeRequest) -> u8 {
    match scopes.resource_kind {
        ResourceKind::MicrosoftGraph | ResourceKind::AadGraph => 1,
        ResourceKind::TenantApi => dir
            .application_by_app_id(scopes.resource.app_id)
            .and_then(|a| a.api.requested_access_token_version)
            .unwrap_or(1),
    }
}

/// `aud` of a v1 token is the resource as requested (URI or GUID); bare Graph scopes give the GUID.
fn audience(scopes: &ScopeRequest, version: u8) -> String {
    let written = scopes.resource_as_written.as_str();
    if version == 2 || written.is_empty() || written.parse::<Uuid>().is_ok() {
        return scopes.resource.app_id.to_string();
    }
    written.to_owned()
}

pub fn client_info(user: &User, tid: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(json!({"uid": user.id.to_string(), "utid": tid.to_string()}).to_string())
}

fn insert(m: &mut Map<String, Value>, k: &str, v: impl Into<Value>) {
    m.insert(k.to_owned(), v.into());
}

pub fn access_token_claims(
    state: &AppState,
    dir: &Directory,
    req: &IssueRequest<'_>,
    lifetime: i64,
) -> (Map<String, Value>, u8, String) {
    let tid = dir.tenant.id;
    let version = token_version(dir, req.scopes);
    let v1_issuer = format!("https://sts.windows.net/{tid}/");
    let v2_issuer = format!("{}/{tid}/v2.0", state.config.public_base);
    let uti = opaque(22);
    let mut c = Map::new();
    insert(&mut c, "aud", audience(req.scopes, version));
    insert(
        &mut c,
        "iss",
        if version == 1 {
            v1_issuer.clone()
        } else {
            v2_issuer
        },
    );
    insert(&mut c, "iat", req.now);
    insert(&mut c, "nbf", req.now);
    insert(&mut c, "exp", req.now + lifetime);
    match &req.subject {
        Subject::App => {
            insert(&mut c, "aio", opaque(56));
            if version == 1 {
                insert(&mut c, "app_displayname", req.app.display_name.clone());
                insert(&mut c, "appid", req.app.app_id.to_string());
                insert(&mut c, "appidacr", req.method.acr());
                insert(&mut c, "idp", v1_issuer);
            } else {
                insert(&mut c, "azp", req.app.app_id.to_string());
                insert(&mut c, "azpacr", req.method.acr());
            }
            insert(&mut c, "idtyp", "app");
            insert(&mut c, "oid", req.client_sp.id.to_string());
            insert(&mut c, "rh", format!("1.{}.", opaque(40)));
            if !req.granted.is_empty() {
                insert(&mut c, "roles", req.granted.clone());
            }
            insert(&mut c, "sub", req.client_sp.id.to_string());
            insert(&mut c, "tenant_region_scope", "NA");
            insert(&mut c, "tid", tid.to_string());
            insert(&mut c, "uti", uti.clone());
            insert(&mut c, "ver", if version == 1 { "1.0" } else { "2.0" });
            let wids = dir.directory_roles_of(req.client_sp.id);
            if !wids.is_empty() {
                insert(
                    &mut c,
                    "wids",
                    wids.iter().map(Uuid::to_string).collect::<Vec<_>>(),
                );
            }
            if !req.capabilities.is_empty() {
                insert(&mut c, "xms_cc", req.capabilities.clone());
            }
            insert(&mut c, "xms_tcdt", 1_700_000_000);
        }
        Subject::User { user, auth } => {
            if version == 1 {
                insert(&mut c, "acct", 0);
                insert(&mut c, "acr", "1");
            }
            insert(&mut c, "aio", opaque(56));
            if version == 1 {
                insert(&mut c, "amr", auth.amr.clone());
                insert(&mut c, "app_displayname", req.app.display_name.clone());
                insert(&mut c, "appid", req.app.app_id.to_string());
                insert(&mut c, "appidacr", req.method.acr());
                if let Some(f) = &user.surname {
                    insert(&mut c, "family_name", f.clone());
                }
                if let Some(g) = &user.given_name {
                    insert(&mut c, "given_name", g.clone());
                }
                insert(&mut c, "idtyp", "user");
                insert(&mut c, "ipaddr", "127.0.0.1");
            } else {
                insert(&mut c, "azp", req.app.app_id.to_string());
                insert(&mut c, "azpacr", req.method.acr());
            }
            insert(&mut c, "name", user.display_name.clone());
            insert(&mut c, "oid", user.id.to_string());
            if version == 2 {
                insert(
                    &mut c,
                    "preferred_username",
                    user.user_principal_name.clone(),
                );
            }
            insert(&mut c, "rh", format!("1.{}.", opaque(40)));
            let user_roles = dir.user_app_roles(user.id, &req.scopes.resource);
            if !user_roles.is_empty() {
                insert(&mut c, "roles", user_roles);
            }
            if !req.acrs.is_empty() {
                insert(&mut c, "acrs", req.acrs.clone());
            }
            insert(&mut c, "scp", req.granted.join(" "));
            if let Some(sid) = &auth.session_id {
                insert(&mut c, "sid", sid.clone());
            }
            insert(&mut c, "sub", pairwise_sub(tid, req.app.app_id, user.id));
            if version == 1 {
                insert(&mut c, "tenant_region_scope", "NA");
            }
            insert(&mut c, "tid", tid.to_string());
            if version == 1 {
                insert(&mut c, "unique_name", user.user_principal_name.clone());
                insert(&mut c, "upn", user.user_principal_name.clone());
            }
            insert(&mut c, "uti", uti.clone());
            insert(&mut c, "ver", if version == 1 { "1.0" } else { "2.0" });
            insert(
                &mut c,
                "wids",
                dir.wids_of_user(user.id)
                    .iter()
                    .map(Uuid::to_string)
                    .collect::<Vec<_>>(),
            );
            if !req.capabilities.is_empty() {
                insert(&mut c, "xms_cc", req.capabilities.clone());
            }
            if version == 1 {
                insert(&mut c, "xms_tcdt", 1_700_000_000);
            }
        }
    }
    (c, version, uti)
}

fn id_token(
    state: &AppState,
    dir: &Directory,
    req: &IssueRequest<'_>,
    user: &User,
    auth: &AuthFacts,
) -> Result<String, gatehouse_jose::JoseError> {
    let tid = dir.tenant.id;
    let mut c = Map::new();
    insert(&mut c, "aud", req.app.app_id.to_string());
    insert(
        &mut c,
        "iss",
        format!("{}/{tid}/v2.0", state.config.public_base),
    );
    insert(&mut c, "iat", req.now);
    insert(&mut c, "nbf", req.now);
    insert(&mut c, "exp", req.now + 3600);
    insert(&mut c, "aio", opaque(56));
    insert(&mut c, "auth_time", auth.auth_time);
    if req.scopes.oidc.iter().any(|s| s == "email")
        && let Some(m) = &user.mail
    {
        insert(&mut c, "email", m.clone());
    }
    insert(&mut c, "name", user.display_name.clone());
    if let Some(n) = &req.nonce {
        insert(&mut c, "nonce", n.clone());
    }
    insert(&mut c, "oid", user.id.to_string());
    insert(
        &mut c,
        "preferred_username",
        user.user_principal_name.clone(),
    );
    insert(&mut c, "rh", format!("1.{}.", opaque(40)));
    if let Some(sid) = &auth.session_id {
        insert(&mut c, "sid", sid.clone());
    }
    insert(&mut c, "sub", pairwise_sub(tid, req.app.app_id, user.id));
    insert(&mut c, "tid", tid.to_string());
    insert(&mut c, "uti", opaque(22));
    insert(&mut c, "ver", "2.0");
    let key = state.keyring.active();
    jws::sign(key, &jws::header(key, false, None), &Value::Object(c))
}

/// Mint the tokens and build the token response; stores the refresh token.
pub async fn issue(
    state: &AppState,
    dir: &Directory,
    req: IssueRequest<'_>,
) -> Result<Issued, IssueError> {
    let cae = req
        .capabilities
        .iter()
        .any(|c| c.eq_ignore_ascii_case("cp1"));
    let lifetime = match (&req.subject, cae) {
        (_, true) => CAE_TOKEN_LIFETIME,
        (Subject::App, false) => APP_TOKEN_LIFETIME,
        // Entra picks 60-90 minutes at random.
        (Subject::User { .. }, false) => {
            3600 + i64::from(u16::from_le_bytes(random::bytes::<2>()) % 1800)
        }
    };
    let (claims, version, uti) = access_token_claims(state, dir, &req, lifetime);
    let key = state.keyring.active();
    let graph_nonce = (req.scopes.resource.app_id == MICROSOFT_GRAPH_APP_ID).then(|| opaque(43));
    let header = jws::header(key, version == 1, graph_nonce.as_deref());
    let access_token =
        jws::sign(key, &header, &Value::Object(claims)).map_err(|_| IssueError::Signing)?;
    if let Some(family) = &req.family {
        // Tokens of a code's family die with it when the code is replayed.
        state
            .store
            .put_handle("at", &uti, "", req.now + lifetime, Some(family))
            .await
            .map_err(IssueError::Store)?;
    }

    let mut body = Map::new();
    insert(&mut body, "token_type", "Bearer");
    let mut refresh_family = None;
    match &req.subject {
        Subject::App => {
            insert(&mut body, "expires_in", lifetime);
            insert(&mut body, "ext_expires_in", lifetime);
            insert(&mut body, "access_token", access_token);
        }
        Subject::User { user, auth } => {
            let mut scope: Vec<String> =
                req.granted.iter().map(|g| req.scopes.qualify(g)).collect();
            // Entra lists `.default` too when it was requested, so MSAL's cache finds the token.
            if req.scopes.default {
                scope.push(req.scopes.qualify(".default"));
            }
            scope.extend(req.scopes.oidc.iter().cloned());
            insert(&mut body, "scope", scope.join(" "));
            insert(&mut body, "expires_in", lifetime);
            insert(&mut body, "ext_expires_in", lifetime);
            insert(&mut body, "access_token", access_token);
            if req.scopes.wants_refresh_token() {
                let handle = format!("1.A{}", random::token());
                let family = req.family.clone().unwrap_or_else(random::token);
                let record = RefreshRecord {
                    client_id: req.app.app_id,
                    user_id: user.id,
                    scope: req.scopes.raw.clone(),
                    issued_at: req.now,
                    auth: (*auth).clone(),
                    capabilities: req.capabilities.clone(),
                };
                let json = serde_json::to_string(&record).map_err(|_| IssueError::Signing)?;
                state
                    .store
                    .put_handle(
                        "rt",
                        &handle_digest(&handle),
                        &json,
                        req.now + REFRESH_LIFETIME,
                        Some(&family),
                    )
                    .await
                    .map_err(IssueError::Store)?;
                insert(&mut body, "refresh_token", handle);
                refresh_family = Some(family);
            }
            if req.scopes.wants_id_token() {
                let id = id_token(state, dir, &req, user, auth).map_err(|_| IssueError::Signing)?;
                insert(&mut body, "id_token", id);
            }
            if req.client_info {
                insert(&mut body, "client_info", client_info(user, dir.tenant.id));
            }
        }
    }
    Ok(Issued {
        body: Value::Object(body),
        access_token_uti: uti,
        refresh_family,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("signing failed")]
    Signing,
    #[error(transparent)]
    Store(gatehouse_store::StoreError),
}

/// Authentication contexts a `claims` parameter asks for
/// (`{"access_token":{"acrs":{"essential":true,"value":"c1"}}}` or `"values":[…]`).
pub fn acrs_from_claims(claims: Option<&str>) -> Vec<String> {
    let Some(raw) = claims else { return Vec::new() };
    let Ok(v) = serde_json::from_str::<Value>(raw) else {
        return Vec::new();
    };
    let Some(acrs) = v.pointer("/access_token/acrs") else {
        return Vec::new();
    };
    let mut out: Vec<String> = gatehouse_engine::strings(acrs.get("values"));
    if let Some(one) = acrs.get("value").and_then(Value::as_str) {
        out.push(one.to_owned());
    }
    out
}

/// Client capabilities from a `claims` request parameter
/// (`{"access_token":{"xms_cc":{"values":["cp1"]}}}`).
pub fn capabilities_from_claims(claims: Option<&str>) -> Vec<String> {
    let Some(raw) = claims else { return Vec::new() };
    let Ok(v) = serde_json::from_str::<Value>(raw) else {
        return Vec::new();
    };
    v.pointer("/access_token/xms_cc/values")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default()
}
