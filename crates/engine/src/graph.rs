//! Microsoft Graph's authorization rules: token validity, audience, token type,
//! permission per method and path (from the catalog), the signed-in user's own
//! privileges, directory roles of service principals for privileged operations,
//! licences, and continuous access evaluation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gatehouse_catalog::{Catalog, TokenKind};
use gatehouse_model::ids::{MICROSOFT_GRAPH_APP_ID, roles, skus};
use gatehouse_model::{Directory, ServicePrincipal, User};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::cause::Cause;
use crate::denial::Denial;
use crate::wire::{GraphError, GraphFlavour, WireError, graph_www_authenticate};

/// Microsoft.IdentityModel's default clock skew.
pub const CLOCK_SKEW: i64 = 300;

/// What the caller found when it looked at the bearer token.
#[derive(Debug, Clone)]
pub enum TokenFacts {
    Missing,
    NotJwt,
    /// Parsed, but the signature or key did not verify (reason).
    BadSignature(String, Map<String, Value>),
    Verified(Map<String, Value>),
}

/// Who is calling, once the token is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Delegated {
        user: Uuid,
        app_id: String,
        scopes: Vec<String>,
    },
    App {
        service_principal: Uuid,
        app_id: String,
        roles: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct GraphCall {
    pub caller: Caller,
    pub claims: Map<String, Value>,
}

impl GraphCall {
    pub fn kind(&self) -> TokenKind {
        match self.caller {
            Caller::Delegated { .. } => TokenKind::Delegated,
            Caller::App { .. } => TokenKind::Application,
        }
    }
    pub fn app_id(&self) -> &str {
        match &self.caller {
            Caller::Delegated { app_id, .. } | Caller::App { app_id, .. } => app_id,
        }
    }
}

fn err401(cause: Cause, message: &str) -> Denial {
    Denial::new(
        cause,
        WireError::Graph(GraphError::new(401, "InvalidAuthenticationToken", message)),
    )
}

fn s<'a>(claims: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    claims.get(k).and_then(Value::as_str)
}

fn num(claims: &Map<String, Value>, k: &str) -> Option<i64> {
    claims
        .get(k)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}

pub fn is_graph_audience(aud: &str) -> bool {
    let a = aud.trim_end_matches('/');
    a.eq_ignore_ascii_case("https://graph.microsoft.com")
        || a.eq_ignore_ascii_case(&MICROSOFT_GRAPH_APP_ID.to_string())
}

fn aud_of(claims: &Map<String, Value>) -> String {
    match claims.get("aud") {
        Some(Value::String(a)) => a.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

/// Token checks in Graph's order; `issuer_v2` is this Gatehouse's v2 issuer for the tenant.
pub fn authenticate(
    dir: &Directory,
    token: TokenFacts,
    revoked: bool,
    issuer_v2: &str,
    now: i64,
) -> Result<GraphCall, Denial> {
    let claims = match token {
        TokenFacts::Missing => {
            return Err(err401(Cause::GraphTokenMissing, "Access token is empty.")
                .fact("Authorization header", "absent or not 'Bearer <token>'")
                .fix("Send 'Authorization: Bearer <access token>'. With the Graph SDKs, pass allowed_hosts including this host and the scope https://graph.microsoft.com/.default to the auth provider, or no header is sent."));
        }
        TokenFacts::NotJwt => {
            return Err(err401(Cause::GraphTokenMalformed, "IDX14100: JWT is not well formed, there are no dots (.).\nThe token needs to be in JWS or JWE Compact Serialization Format. (JWS): 'EncodedHeader.EncodedPayload.EncodedSignature'. (JWE): 'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector.EncodedCiphertext.EncodedAuthenticationTag'.")
                .fact("token", "not a compact JWS")
                .fix("Send the access_token from the token response, not the id_token, refresh token or authorization code."));
        }
        TokenFacts::BadSignature(reason, claims) => {
            // Graph names the audience first: a token for another resource is the common case.
            let aud = aud_of(&claims);
            if !aud.is_empty() && !is_graph_audience(&aud) {
                return Err(wrong_audience(&aud));
            }
            return Err(err401(Cause::GraphTokenSignature, "Access token validation failure. Invalid signature.")
                .fact("signature", reason)
                .fix("Use a token issued by this tenant's authority (Gatehouse signs with the keys of its JWKS)."));
        }
        TokenFacts::Verified(c) => c,
    };
    let aud = aud_of(&claims);
    if !is_graph_audience(&aud) {
        return Err(wrong_audience(&aud));
    }
    let iss = s(&claims, "iss").unwrap_or("");
    let tid = dir.tenant.id;
    if iss != format!("https://sts.windows.net/{tid}/") && iss != issuer_v2 {
        return Err(err401(
            Cause::GraphWrongIssuer,
            "Access token validation failure. Invalid issuer.",
        )
        .fact("iss", iss)
        .fact("expected", format!("https://sts.windows.net/{tid}/"))
        .fix("Get the token from this tenant's authority."));
    }
    let exp = num(&claims, "exp").unwrap_or(0);
    if exp + CLOCK_SKEW <= now {
        return Err(err401(Cause::GraphTokenExpired, "Lifetime validation failed, the token is expired.")
            .fact("exp", exp.to_string())
            .fact("now", now.to_string())
            .fix("Get a new token (acquire_token_silent refreshes it); don't cache access tokens past expires_in."));
    }
    if let Some(nbf) = num(&claims, "nbf")
        && nbf - CLOCK_SKEW > now
    {
        return Err(err401(
            Cause::GraphTokenNotYetValid,
            "Lifetime validation failed, the token is not yet valid.",
        )
        .fact("nbf", nbf.to_string()));
    }
    if revoked {
        return Err(err401(Cause::GraphTokenRevoked, "Access token validation failure. The token has been revoked.")
            .fact("uti", s(&claims, "uti").unwrap_or(""))
            .fact("reason", "its authorization code was redeemed twice (RFC 6749 §4.1.2), so every token issued from it was revoked")
            .fix("Redeem each authorization code once; sign the user in again."));
    }
    let app_id = s(&claims, "appid")
        .or_else(|| s(&claims, "azp"))
        .unwrap_or("")
        .to_owned();
    let oid: Option<Uuid> = s(&claims, "oid").and_then(|o| o.parse().ok());
    let app_only = s(&claims, "idtyp") == Some("app")
        || (claims.get("scp").is_none() && s(&claims, "idtyp") != Some("user"));
    let caller = if app_only {
        Caller::App {
            service_principal: oid.unwrap_or_default(),
            app_id,
            roles: claims
                .get("roles")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }
    } else {
        let user = oid.unwrap_or_default();
        // Continuous access evaluation: CAE-capable tokens die with the session.
        let cae = claims
            .get("xms_cc")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter()
                    .any(|c| c.as_str().is_some_and(|c| c.eq_ignore_ascii_case("cp1")))
            });
        let iat = num(&claims, "iat").unwrap_or(0);
        if cae
            && let Some(from) = dir.user(user).and_then(|u| u.sign_in_sessions_valid_from)
            && iat < from
        {
            let challenge =
                format!(r#"{{"access_token":{{"nbf":{{"essential":true, "value":"{from}"}}}}}}"#);
            let b64 = STANDARD.encode(&challenge);
            let mut e = GraphError::new(
                401,
                "InvalidAuthenticationToken",
                "Continuous access evaluation resulted in claims challenge with result: InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp",
            );
            e.www_authenticate = Some(graph_www_authenticate(Some(&b64)));
            return Err(Denial::new(Cause::CaeRevoked, WireError::Graph(e))
                .fact("token issued (iat)", iat.to_string())
                .fact("sessions revoked at", from.to_string())
                .fact("claims challenge", challenge)
                .fix("Pass the decoded claims to the token request (claims_challenge= in MSAL, claims= in azure-identity) and sign the user in again."));
        }
        if cae && dir.user(user).is_none() {
            return Err(cae_challenge(Cause::CaeRevoked, "TokenIssuedBeforeRevocationTimestamp", true, now)
                .fact("user", format!("{user} no longer exists (deleted)"))
                .fix("The user was deleted: this CAE token is revoked. Sign in with an existing account."));
        }
        // A policy changed after the token was issued: CAE re-evaluates it now.
        if cae
            && let (Some(changed), Some(u)) = (dir.conditional_access_changed_at, dir.user(user))
            && iat < changed
        {
            let amr: Vec<String> = crate::strings(claims.get("amr"));
            let acrs: Vec<String> = crate::strings(claims.get("acrs"));
            let sign_in = crate::ca::SignIn {
                user: u,
                client_app_id: app_id.parse().unwrap_or_default(),
                resource_app_id: MICROSOFT_GRAPH_APP_ID,
                client_app_type: "browser",
                amr: &amr,
                acrs_requested: &acrs,
            };
            let verdict = crate::ca::evaluate(dir, &sign_in);
            if !matches!(verdict, crate::ca::Verdict::Allow { .. }) {
                let what = match &verdict {
                    crate::ca::Verdict::Block { policy } => {
                        format!("blocked by {} ({})", policy.display_name, policy.id)
                    }
                    crate::ca::Verdict::NeedMfa { policies } => format!(
                        "MFA required by {}",
                        policies
                            .iter()
                            .map(|p| p.display_name.clone())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    crate::ca::Verdict::Allow { .. } => String::new(),
                };
                return Err(cae_challenge(Cause::CaeRevoked, "TokenCreatedWithOutdatedPolicies", false, changed)
                    .fact("policies changed at", changed.to_string())
                    .fact("token issued (iat)", iat.to_string())
                    .fact("re-evaluation", what)
                    .fix("Acquire a new token with the claims challenge (interactively if MFA is now required)."));
            }
        }
        Caller::Delegated {
            user,
            app_id,
            scopes: s(&claims, "scp")
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        }
    };
    Ok(GraphCall { caller, claims })
}

/// A CAE 401 with Graph's challenge header (`nbf` claims request).
fn cae_challenge(cause: Cause, code: &str, claims_wording: bool, nbf: i64) -> Denial {
    let challenge =
        format!(r#"{{"access_token":{{"nbf":{{"essential":true, "value":"{nbf}"}}}}}}"#);
    let message = if claims_wording {
        format!(
            "Continuous access evaluation resulted in claims challenge with result: InteractionRequired and code: {code}"
        )
    } else {
        format!(
            "Continuous access evaluation resulted in challenge with result: InteractionRequired and code: {code}"
        )
    };
    let mut e = GraphError::new(401, "InvalidAuthenticationToken", message);
    e.www_authenticate = Some(graph_www_authenticate(Some(&STANDARD.encode(&challenge))));
    Denial::new(cause, WireError::Graph(e)).fact("claims challenge", challenge)
}

fn wrong_audience(aud: &str) -> Denial {
    let fix = if aud
        .trim_end_matches('/')
        .eq_ignore_ascii_case("https://graph.windows.net")
        || aud == "00000002-0000-0000-c000-000000000000"
    {
        "This is an Azure AD Graph token. Request https://graph.microsoft.com/.default (or Graph scopes such as User.Read) instead of https://graph.windows.net/.default."
    } else {
        "Request a token for Microsoft Graph: scope https://graph.microsoft.com/.default (app-only) or https://graph.microsoft.com/User.Read (delegated)."
    };
    err401(
        Cause::GraphWrongAudience,
        "Access token validation failure. Invalid audience.",
    )
    .fact("aud", aud)
    .fact(
        "expected",
        "https://graph.microsoft.com or 00000003-0000-0000-c000-000000000000",
    )
    .fix(fix)
}

/// Facts about the request that the rules look at.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    /// Top-level keys of the JSON body (PATCH /users: passwordProfile, accountEnabled…).
    pub body_keys: Vec<String>,
}

/// Exchange-backed routes answer with Exchange's error shape.
fn is_mail(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    [
        "/messages",
        "/mailfolders",
        "/sendmail",
        "/events",
        "/calendar",
        "/contacts",
    ]
    .iter()
    .any(|m| p.contains(m))
}

fn denied(path: &str, cause: Cause) -> Denial {
    let e = if is_mail(path) {
        GraphError {
            flavour: GraphFlavour::MicrosoftGraphNoInner,
            ..GraphError::new(
                403,
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            )
        }
    } else {
        GraphError::new(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    };
    Denial::new(cause, WireError::Graph(e))
}

/// Strip `/v1.0` or `/beta` and the query, keep the path.
pub fn graph_path(raw: &str) -> &str {
    let p = raw.split('?').next().unwrap_or(raw);
    p.strip_prefix("/v1.0")
        .or_else(|| p.strip_prefix("/beta"))
        .unwrap_or(p)
}

/// The user a `/me/...` or `/users/{id|upn}/...` path is about.
pub fn target_user<'d>(dir: &'d Directory, call: &GraphCall, path: &str) -> Option<&'d User> {
    let mut segs = graph_path(path).trim_start_matches('/').split('/');
    match segs.next()?.to_ascii_lowercase().as_str() {
        "me" => match &call.caller {
            Caller::Delegated { user, .. } => dir.user(*user),
            Caller::App { .. } => None,
        },
        "users" => {
            let raw = segs.next()?;
            let id = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
            let id = id.trim_matches(|c| c == '\'' || c == '(' || c == ')');
            id.parse::<Uuid>()
                .ok()
                .and_then(|u| dir.user(u))
                .or_else(|| dir.user_by_upn(id))
        }
        _ => None,
    }
}

/// Directory roles that may do privileged things to users, per Graph's "who can reset
/// passwords" and "sensitive actions" tables (reference E.5).
fn can_manage_user(actor_roles: &[Uuid], target_roles: &[Uuid], password_only: bool) -> bool {
    use roles::*;
    if actor_roles.contains(&GLOBAL_ADMINISTRATOR)
        || actor_roles.contains(&PRIVILEGED_AUTHENTICATION_ADMINISTRATOR)
    {
        return true;
    }
    let target_admin_roles: Vec<Uuid> = target_roles
        .iter()
        .copied()
        .filter(|r| *r != DEFAULT_MEMBER_USER)
        .collect();
    let allowed_for = |actor: Uuid| -> &'static [Uuid] {
        match actor {
            r if r == USER_ADMINISTRATOR => &[
                DIRECTORY_READERS,
                GROUPS_ADMINISTRATOR,
                HELPDESK_ADMINISTRATOR,
                PASSWORD_ADMINISTRATOR,
                USER_ADMINISTRATOR,
            ],
            r if r == HELPDESK_ADMINISTRATOR => &[
                DIRECTORY_READERS,
                HELPDESK_ADMINISTRATOR,
                PASSWORD_ADMINISTRATOR,
            ],
            r if r == PASSWORD_ADMINISTRATOR => &[DIRECTORY_READERS, PASSWORD_ADMINISTRATOR],
            r if r == AUTHENTICATION_ADMINISTRATOR => &[
                DIRECTORY_READERS,
                PASSWORD_ADMINISTRATOR,
                AUTHENTICATION_ADMINISTRATOR,
            ],
            _ => &[],
        }
    };
    actor_roles.iter().any(|a| {
        let strong = *a == USER_ADMINISTRATOR
            || *a == AUTHENTICATION_ADMINISTRATOR
            || (password_only && (*a == HELPDESK_ADMINISTRATOR || *a == PASSWORD_ADMINISTRATOR));
        strong
            && target_admin_roles
                .iter()
                .all(|t| allowed_for(*a).contains(t))
    })
}

fn role_names(ids: &[Uuid]) -> String {
    let names: Vec<&str> = ids.iter().filter_map(|r| roles::display_name(*r)).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The admin-consent URL for the app in this tenant.
fn admin_consent_url(base: &str, dir: &Directory, app_id: &str) -> String {
    format!(
        "{base}/{}/v2.0/adminconsent?client_id={app_id}&scope=https://graph.microsoft.com/.default",
        dir.tenant.id
    )
}

/// Permission, token type, user privilege, privileged-operation and licence rules.
pub fn authorize(
    dir: &Directory,
    call: &GraphCall,
    method: &str,
    raw_path: &str,
    facts: &RequestFacts,
    base: &str,
) -> Result<(), Denial> {
    let path = graph_path(raw_path);
    let lower = path.to_ascii_lowercase();
    let kind = call.kind();
    if (lower == "/me" || lower.starts_with("/me/")) && kind == TokenKind::Application {
        let e = GraphError::new(
            400,
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        );
        return Err(Denial::new(Cause::MeWithAppToken, WireError::Graph(e))
            .fact("token", "app-only (idtyp app, roles, no scp)")
            .fact("path", path)
            .fix("Call /users/{id or userPrincipalName} with an app-only token, or sign a user in (delegated token) to use /me."));
    }
    let catalog = Catalog::embedded();
    let accepted = catalog.accepted(method, path, kind);
    let held: Vec<String> = match &call.caller {
        Caller::Delegated { scopes, .. } => scopes.clone(),
        Caller::App { roles, .. } => roles.clone(),
    };
    let holds = |name: &str| held.iter().any(|h| h.eq_ignore_ascii_case(name));
    let least: Vec<&str> = {
        let mut l: Vec<&str> = accepted
            .iter()
            .filter(|a| a.least_privileged)
            .map(|a| a.permission.as_str())
            .collect();
        if l.is_empty() {
            l = accepted
                .iter()
                .take(1)
                .map(|a| a.permission.as_str())
                .collect();
        }
        // A read needs no write permission: name read-only ones first, then by privilege.
        let privilege = |name: &str| {
            accepted
                .iter()
                .find(|a| a.permission == name)
                .and_then(|a| a.privilege_level)
                .unwrap_or(u8::MAX)
        };
        let reads = method.eq_ignore_ascii_case("GET");
        l.sort_by_key(|n| (reads && n.contains("Write"), privilege(n)));
        l
    };
    let token_kind_name = if kind == TokenKind::Application {
        "app-only (application permissions, roles claim)"
    } else {
        "delegated (scp claim)"
    };

    // changePassword is self-service only.
    if method.eq_ignore_ascii_case("POST")
        && lower.ends_with("/changepassword")
        && !lower.starts_with("/me/")
    {
        let is_self = match (&call.caller, target_user(dir, call, path)) {
            (Caller::Delegated { user, .. }, Some(t)) => t.id == *user,
            _ => false,
        };
        if !is_self {
            let e = GraphError::new(
                403,
                "Authorization_RequestDenied",
                "Access to change password operation is denied.",
            );
            return Err(Denial::new(Cause::ChangePasswordOtherUser, WireError::Graph(e))
                .fact("path", path)
                .fix("Users change their own password with POST /me/changePassword; admins reset others' with PATCH /users/{id} passwordProfile or the authentication method resetPassword."));
        }
    }

    if accepted.is_empty() {
        let other = match kind {
            TokenKind::Application => catalog.accepted(method, path, TokenKind::Delegated),
            TokenKind::Delegated => catalog.accepted(method, path, TokenKind::Application),
        };
        if kind == TokenKind::Application && !other.is_empty() {
            let names: Vec<&str> = other.iter().map(|a| a.permission.as_str()).collect();
            return Err(denied(path, Cause::DelegatedOnlyOperation)
                .fact("token", token_kind_name)
                .fact("operation", format!("{method} {path}"))
                .fact("application permissions for it", "none exist")
                .fix(format!("Call it with a delegated token of a signed-in administrator holding {}.", names.join(" or ")))
                .fix("Guide: 'Resetting password or adding a user to a directory role' — these APIs are only supported with interactive delegated flows."));
        }
        if catalog.match_route(method, path).is_none() {
            // Not a Graph operation the catalog knows: nothing to enforce beyond the token.
            return Ok(());
        }
        return Err(denied(path, Cause::PermissionMissing)
            .fact("operation", format!("{method} {path}"))
            .fact("accepted permissions", "none for this token type"));
    }

    // Some permissions count only together with another (catalog `AlsoRequires`).
    if let Some(a) = accepted.iter().find(|a| holds(&a.permission))
        && !accepted.iter().filter(|x| holds(&x.permission)).any(|x| {
            x.also_requires
                .iter()
                .all(|r| holds(r) || holds(&r.replace(".Read.", ".ReadWrite.")))
        })
    {
        return Err(denied(path, Cause::PermissionMissing)
            .fact("operation", format!("{method} {path}"))
            .fact("held", a.permission.clone())
            .fact("also required", a.also_requires.join(", "))
            .fix(format!(
                "{} works for this operation only together with {}: add and consent it too.",
                a.permission,
                a.also_requires.join(" and ")
            )));
    }
    if !accepted.iter().any(|a| holds(&a.permission)) {
        return Err(permission_denial(
            dir, call, method, path, &accepted, &least, &held, base,
        ));
    }

    // Authentication context (protected operations): step-up through a claims challenge.
    if let Some(route) = catalog.match_route(method, path)
        && let Some(op) = dir.protected_operations.iter().find(|o| {
            o.method.eq_ignore_ascii_case(method) && o.path.eq_ignore_ascii_case(&route.template)
        })
    {
        let acrs: Vec<&str> = call
            .claims
            .get("acrs")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !acrs
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&op.authentication_context))
        {
            let cae = call
                .claims
                .get("xms_cc")
                .and_then(Value::as_array)
                .is_some_and(|a| {
                    a.iter()
                        .any(|c| c.as_str().is_some_and(|c| c.eq_ignore_ascii_case("cp1")))
                });
            let challenge = format!(
                r#"{{"access_token":{{"acrs":{{"essential":true,"value":"{}"}}}}}}"#,
                op.authentication_context
            );
            let d = if cae {
                let mut e = GraphError::new(
                    401,
                    "InvalidAuthenticationToken",
                    "Continuous access evaluation resulted in challenge with result: InteractionRequired and code: AuthenticationContextRequired",
                );
                e.www_authenticate =
                    Some(graph_www_authenticate(Some(&STANDARD.encode(&challenge))));
                Denial::new(Cause::AuthContextRequired, WireError::Graph(e))
            } else {
                denied(path, Cause::AuthContextRequired)
            };
            return Err(d
                .fact("operation", format!("{method} {}", route.template))
                .fact("authentication context required", op.authentication_context.clone())
                .fact("acrs in token", if acrs.is_empty() { "none".to_owned() } else { acrs.join(" ") })
                .fact("client capabilities (xms_cc)", if cae { "cp1" } else { "none: Graph sends the claims challenge only to clients that declare cp1" })
                .fix(format!("Request a token with claims={challenge} at the authorize endpoint (MSAL: claims_challenge), which runs the policies of context {} (e.g. MFA).", op.authentication_context))
                .fix("Declare the client capability cp1 (MSAL client_capabilities=[\"CP1\"], azure-identity enable_cae=True) so Graph answers with a claims challenge the SDK can follow."));
        }
    }

    // Effective permissions: a delegated call never exceeds the signed-in user's rights.
    let target = target_user(dir, call, path);
    let m = method.to_ascii_uppercase();
    let privileged_props = [
        "passwordprofile",
        "accountenabled",
        "userprincipalname",
        "mobilephone",
        "businessphones",
        "othermails",
    ];
    let touches_sensitive = facts
        .body_keys
        .iter()
        .any(|k| privileged_props.contains(&k.to_ascii_lowercase().as_str()));
    let password_only = facts
        .body_keys
        .iter()
        .all(|k| k.eq_ignore_ascii_case("passwordProfile"));
    match &call.caller {
        Caller::Delegated { user, .. } => {
            let actor_roles = dir.directory_roles_of(*user);
            let need = |ok: bool, what: &str, roles_needed: &str| -> Result<(), Denial> {
                if ok {
                    return Ok(());
                }
                Err(denied(path, Cause::UserRoleMissing)
                    .fact("signed-in user", dir.user(*user).map(|u| u.user_principal_name.clone()).unwrap_or_default())
                    .fact("user's directory roles", role_names(&actor_roles))
                    .fact("operation", what.to_owned())
                    .fix(format!("The token's permission is not enough: delegated calls are limited to what the user may do. Sign in as a user holding {roles_needed}, or assign that role to this user.")))
            };
            let is_user_item = lower.starts_with("/users/") && lower.matches('/').count() == 2;
            if m == "POST" && lower == "/users" {
                need(
                    actor_roles.iter().any(|r| {
                        [roles::USER_ADMINISTRATOR, roles::GLOBAL_ADMINISTRATOR].contains(r)
                    }),
                    "create a user",
                    "User Administrator or Global Administrator",
                )?;
            }
            if let Some(t) = target
                && t.id != *user
            {
                let target_roles = dir.directory_roles_of(t.id);
                if (m == "PATCH" && is_user_item && touches_sensitive)
                    || (m == "DELETE" && is_user_item)
                {
                    need(
                        can_manage_user(&actor_roles, &target_roles, password_only && m == "PATCH"),
                        &format!("{m} {path} ({})", facts.body_keys.join(", ")),
                        "a role that may manage this user (User Administrator for non-admins; Privileged Authentication Administrator or Global Administrator for admins)",
                    )?;
                } else if m == "PATCH" && is_user_item {
                    need(
                        actor_roles.iter().any(|r| {
                            [
                                roles::USER_ADMINISTRATOR,
                                roles::GLOBAL_ADMINISTRATOR,
                                roles::PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
                            ]
                            .contains(r)
                        }),
                        &format!("update another user ({path})"),
                        "User Administrator or Global Administrator",
                    )?;
                } else if lower.ends_with("/resetpassword") {
                    need(
                        can_manage_user(&actor_roles, &target_roles, true),
                        "reset another user's password",
                        "Authentication Administrator, Privileged Authentication Administrator, or (for non-admins) Helpdesk, Password or User Administrator",
                    )?;
                } else if lower.ends_with("/assignlicense") {
                    need(
                        actor_roles.iter().any(|r| {
                            [
                                roles::LICENSE_ADMINISTRATOR,
                                roles::USER_ADMINISTRATOR,
                                roles::GLOBAL_ADMINISTRATOR,
                            ]
                            .contains(r)
                        }),
                        "assign licences",
                        "License Administrator, User Administrator or Global Administrator",
                    )?;
                } else if lower.ends_with("/revokesigninsessions") {
                    need(
                        can_manage_user(&actor_roles, &target_roles, false),
                        "revoke another user's sessions",
                        "User Administrator or Global Administrator",
                    )?;
                }
            } else if lower.ends_with("/resetpassword") {
                need(
                    false,
                    "reset your own password through the admin API",
                    "another administrator (this API can't be used on your own account; use changePassword)",
                )?;
            }
            if (lower.starts_with("/directoryroles") || lower.starts_with("/rolemanagement"))
                && m != "GET"
            {
                need(
                    actor_roles.iter().any(|r| {
                        [
                            roles::PRIVILEGED_ROLE_ADMINISTRATOR,
                            roles::GLOBAL_ADMINISTRATOR,
                        ]
                        .contains(r)
                    }),
                    "manage directory role assignments",
                    "Privileged Role Administrator or Global Administrator",
                )?;
            }
            if (lower.contains("/approleassignedto")
                || lower.contains("/approleassignments")
                || lower.starts_with("/oauth2permissiongrants"))
                && m != "GET"
            {
                need(
                    actor_roles.iter().any(|r| {
                        [
                            roles::PRIVILEGED_ROLE_ADMINISTRATOR,
                            roles::GLOBAL_ADMINISTRATOR,
                            roles::APPLICATION_ADMINISTRATOR,
                            roles::CLOUD_APPLICATION_ADMINISTRATOR,
                        ]
                        .contains(r)
                    }),
                    "grant permissions (consent)",
                    "Global Administrator, Privileged Role Administrator, Application Administrator or Cloud Application Administrator",
                )?;
            }
        }
        Caller::App {
            service_principal, ..
        } => {
            let is_user_item = lower.starts_with("/users/") && lower.matches('/').count() == 2;
            if m == "PATCH"
                && is_user_item
                && facts
                    .body_keys
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case("passwordProfile"))
            {
                let sp_roles = dir.directory_roles_of(*service_principal);
                let target_roles = target
                    .map(|t| dir.directory_roles_of(t.id))
                    .unwrap_or_default();
                if !can_manage_user(&sp_roles, &target_roles, false) {
                    let sp_name = dir
                        .service_principal(*service_principal)
                        .map(|s| s.display_name.clone())
                        .unwrap_or_default();
                    return Err(denied(path, Cause::AppDirectoryRoleMissing)
                        .fact("service principal", format!("{sp_name} ({service_principal})"))
                        .fact("its directory roles", role_names(&sp_roles))
                        .fact("target's roles", role_names(&target_roles))
                        .fact("body", "passwordProfile")
                        .fix(format!("Assign the User Administrator role to the app's service principal (Privileged Authentication Administrator if the target is an admin): POST /roleManagement/directory/roleAssignments {{\"principalId\":\"{service_principal}\",\"roleDefinitionId\":\"{}\",\"directoryScopeId\":\"/\"}}", roles::USER_ADMINISTRATOR))
                        .fix("Docs: 'In application-only access, the calling app must be assigned the User.ReadWrite.All application permission and at least the User Administrator Microsoft Entra role.'"));
                }
            }
        }
    }
    if is_mail(path)
        && let Some(t) = target
        && !has_mailbox(dir, t)
    {
        let e = GraphError {
            flavour: GraphFlavour::MicrosoftGraph,
            ..GraphError::new(
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            )
        };
        return Err(Denial::new(Cause::UserUnlicensed, WireError::Graph(e))
            .fact("user", t.user_principal_name.clone())
            .fact("assigned licences", if t.assigned_licenses.is_empty() { "none".to_owned() } else { t.assigned_licenses.iter().map(|l| l.sku_id.to_string()).collect::<Vec<_>>().join(", ") })
            .fix(format!("Assign a licence that includes Exchange Online: POST /users/{}/assignLicense {{\"addLicenses\":[{{\"skuId\":\"{}\"}}],\"removeLicenses\":[]}}", t.id, skus::SPE_E3)));
    }
    Ok(())
}

pub fn has_mailbox(dir: &Directory, user: &User) -> bool {
    user.assigned_licenses.iter().any(|l| {
        !l.disabled_plans.contains(&skus::EXCHANGE_S_ENTERPRISE_PLAN)
            && dir.subscribed_skus.iter().any(|s| {
                s.sku_id == l.sku_id
                    && s.service_plans
                        .iter()
                        .any(|p| p.service_plan_name.starts_with("EXCHANGE"))
            })
    })
}

#[allow(clippy::too_many_arguments)]
fn permission_denial(
    dir: &Directory,
    call: &GraphCall,
    method: &str,
    path: &str,
    accepted: &[gatehouse_catalog::Accepted],
    least: &[&str],
    held: &[String],
    base: &str,
) -> Denial {
    let catalog = Catalog::embedded();
    let app_id = call.app_id().to_owned();
    let client: Option<&ServicePrincipal> = app_id
        .parse()
        .ok()
        .and_then(|id| dir.service_principal_by_app_id(id));
    let graph = dir.service_principal_by_app_id(MICROSOFT_GRAPH_APP_ID);
    let names = |list: &[gatehouse_catalog::Accepted]| {
        list.iter()
            .map(|a| a.permission.clone())
            .collect::<Vec<_>>()
    };
    let held_text = if held.is_empty() {
        "none".to_owned()
    } else {
        held.join(" ")
    };
    let accepted_text = names(accepted).join(", ");
    match call.kind() {
        TokenKind::Delegated => {
            // The app holds an application permission this route accepts, but called with a user token.
            let app_accepted = catalog.accepted(method, path, TokenKind::Application);
            let granted_roles = match (client, graph) {
                (Some(c), Some(g)) => dir.granted_app_roles(c, g),
                _ => Vec::new(),
            };
            if let Some(r) = app_accepted.iter().find(|a| {
                granted_roles
                    .iter()
                    .any(|g| g.eq_ignore_ascii_case(&a.permission))
            }) {
                return denied(path, Cause::DelegatedTokenForAppPermission)
                    .fact("token", "delegated (scp)")
                    .fact("scp", held_text)
                    .fact("application permission the app holds", r.permission.clone())
                    .fact("accepted delegated permissions", accepted_text)
                    .fix("Application permissions appear only in app-only tokens: use the client credentials flow (scope https://graph.microsoft.com/.default).")
                    .fix(format!("Or, to act as the user, request the delegated permission {} and get it consented.", least.join(" or ")));
            }
            let best = least.first().copied().unwrap_or("");
            let admin = accepted
                .iter()
                .any(|a| a.permission == best && a.requires_admin_consent);
            let mut d = denied(path, Cause::PermissionMissing)
                .fact("token", "delegated (scp)")
                .fact("scp", held_text)
                .fact("operation", format!("{method} {path}"))
                .fact(
                    "accepted delegated permissions (least privileged first)",
                    accepted_text,
                )
                .fix(format!(
                    "Request the scope https://graph.microsoft.com/{best} and have it consented{}.",
                    if admin {
                        " by an administrator (it needs admin consent)"
                    } else {
                        " (the user can consent)"
                    }
                ));
            d = d.fix("If the app was given an application permission for this instead: application permissions reach only app-only tokens (client credentials), never a user's token.");
            if admin {
                d = d.fix_link("Admin consent URL", admin_consent_url(base, dir, &app_id));
            }
            d
        }
        TokenKind::Application => {
            let requested_roles: Vec<String> = app_id
                .parse()
                .ok()
                .and_then(|id| dir.application_by_app_id(id))
                .map(|a| {
                    a.required_resource_access
                        .iter()
                        .filter(|r| r.resource_app_id == MICROSOFT_GRAPH_APP_ID)
                        .flat_map(|r| r.resource_access.iter())
                        .filter(|ra| ra.kind == "Role")
                        .filter_map(|ra| catalog.by_id(ra.id).map(|(p, _)| p.name.clone()))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(r) = accepted.iter().find(|a| {
                requested_roles
                    .iter()
                    .any(|q| q.eq_ignore_ascii_case(&a.permission))
            }) {
                return denied(path, Cause::AppPermissionNotConsented)
                    .fact("token", "app-only (roles)")
                    .fact("roles", held_text)
                    .fact("requested but not granted", r.permission.clone())
                    .fix("An administrator must grant the application permission (admin consent); then get a new token.")
                    .fix_link("Admin consent URL", admin_consent_url(base, dir, &app_id));
            }
            let delegated_accepted = catalog.accepted(method, path, TokenKind::Delegated);
            let delegated_granted: Vec<String> = match (client, graph) {
                (Some(c), Some(g)) => dir
                    .oauth2_permission_grants
                    .iter()
                    .filter(|x| x.client_id == c.id && x.resource_id == g.id)
                    .flat_map(|x| x.scopes().map(str::to_owned).collect::<Vec<_>>())
                    .collect(),
                _ => Vec::new(),
            };
            if let Some(dp) = delegated_accepted.iter().find(|a| {
                delegated_granted
                    .iter()
                    .any(|g| g.eq_ignore_ascii_case(&a.permission))
            }) {
                return denied(path, Cause::AppTokenForDelegatedPermission)
                    .fact("token", "app-only (client credentials)")
                    .fact("roles", held_text)
                    .fact("delegated permission the app holds", dp.permission.clone())
                    .fix("Delegated permissions appear only in user tokens: sign a user in (authorization code, device code) to use them.")
                    .fix(format!("Or add the application permission {} to the app and have an admin consent.", least.join(" or ")))
                    .fix_link("Admin consent URL", admin_consent_url(base, dir, &app_id));
            }
            denied(path, Cause::PermissionMissing)
                .fact("token", "app-only (roles)")
                .fact("roles", held_text)
                .fact("operation", format!("{method} {path}"))
                .fact("accepted application permissions (least privileged first)", accepted_text)
                .fix(format!("Add the application permission {} (Microsoft Graph) to the app registration and grant admin consent; then get a new token.", least.first().copied().unwrap_or("")))
                .fix_link("Admin consent URL", admin_consent_url(base, dir, &app_id))
        }
    }
}

/// `GET /users/{id}` for an id that is not there.
pub fn not_found(id: &str) -> Denial {
    Denial::new(
        Cause::ResourceNotFoundGraph,
        WireError::Graph(GraphError::new(404, "Request_ResourceNotFound", format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."))),
    )
    .fact("id", id)
    .fix("Check the id or userPrincipalName (GET /v1.0/users lists them).")
}

/// Gatehouse could not save or read its state: Graph's 503.
pub fn service_unavailable(detail: &str) -> Denial {
    Denial::new(
        Cause::ServerUnavailable,
        WireError::Graph(GraphError::new(
            503,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
        )),
    )
    .fact("internal", detail)
    .fix("Retry; check the data directory's disk and database.")
}

/// A request Graph cannot read (body, OData options).
pub fn bad_request(message: &str) -> Denial {
    Denial::new(
        Cause::GraphBadRequest,
        WireError::Graph(GraphError::new(400, "Request_BadRequest", message)),
    )
    .fact("problem", message)
}

/// A route Gatehouse does not serve: Graph's own answer for unknown segments.
pub fn unsupported_route(method: &str, path: &str) -> Denial {
    Denial::new(
        Cause::GraphBadRequest,
        WireError::Graph(GraphError::new(400, "BadRequest", format!("Resource not found for the segment '{}'.", path.rsplit('/').next().unwrap_or(path)))),
    )
    .fact("operation", format!("{method} {path}"))
    .fix("Gatehouse serves the directory part of Graph v1.0 (users, groups, applications, service principals, grants, roles, licences, messages).")
}

fn aad_graph_error(status: u16, code: &str, message: &str, cause: Cause, realm: &str) -> Denial {
    let mut e = GraphError::new(status, code, message);
    e.flavour = GraphFlavour::AadGraph;
    e.www_authenticate = (status == 401).then(|| {
        format!(r#"Bearer realm="{realm}", error="invalid_token", error_description="{message}", authorization_uri="https://login.windows.net/{realm}/oauth2/authorize", client_id="00000002-0000-0000-c000-000000000000""#)
    });
    Denial::new(cause, WireError::Graph(e))
}

/// Azure AD Graph (`graph.windows.net`): its own audience and error shape, so that a
/// Microsoft Graph token sent there fails as it did.
pub fn aad_graph_authorize(
    dir: &Directory,
    token: &TokenFacts,
    tenant_segment: &str,
    now: i64,
) -> Result<(), Denial> {
    let realm = dir.tenant.domain.as_str();
    let TokenFacts::Verified(claims) = token else {
        return Err(aad_graph_error(401, "Authentication_MissingOrMalformed", "Access Token missing or malformed.", Cause::GraphTokenMalformed, realm)
            .fix("Send an Azure AD Graph token (scope https://graph.windows.net/.default) issued by this tenant."));
    };
    let aud = aud_of(claims);
    let a = aud.trim_end_matches('/');
    if !(a.eq_ignore_ascii_case("https://graph.windows.net")
        || a == "00000002-0000-0000-c000-000000000000")
    {
        return Err(aad_graph_error(401, "Authentication_MissingOrMalformed", "Access Token missing or malformed.", Cause::GraphWrongAudience, realm)
            .fact("aud", aud.clone())
            .fact("expected", "https://graph.windows.net or 00000002-0000-0000-c000-000000000000")
            .fix("This token is for another resource (a Microsoft Graph token at Azure AD Graph?). Request https://graph.windows.net/.default for Azure AD Graph, or better, call Microsoft Graph: Azure AD Graph is retired."));
    }
    if num(claims, "exp").unwrap_or(0) + CLOCK_SKEW <= now {
        return Err(aad_graph_error(
            401,
            "Authentication_ExpiredToken",
            "Your access token has expired. Please renew it before submitting the request.",
            Cause::GraphTokenExpired,
            realm,
        )
        .fix("Get a new token."));
    }
    if !dir.names_tenant(tenant_segment) {
        return Err(aad_graph_error(
            400,
            "Request_BadRequest",
            "Invalid domain name in the request url.",
            Cause::TenantUnknown,
            realm,
        )
        .fact("tenant", tenant_segment));
    }
    Ok(())
}

/// An Azure AD Graph resource Gatehouse does not serve.
pub fn aad_graph_not_found(resource: &str, realm: &str) -> Denial {
    aad_graph_error(404, "Request_ResourceNotFound", &format!("Resource '{resource}' does not exist."), Cause::ResourceNotFoundGraph, realm)
        .fix("Gatehouse's Azure AD Graph serves /{tenant}/users only, enough to show the wrong-audience case.")
}
