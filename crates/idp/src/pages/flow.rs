//! The sign-in flow shared by authorize, device login and admin consent: user name,
//! password, "Stay signed in?", consent, then completion. State lives in the store
//! (so any node can serve the next step); each POST is bound to the browser by a
//! cookie and to the flow by a CSRF token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use gatehouse_engine::scope::{self, ScopeRequest};
use gatehouse_engine::token::{self, ConsentOutcome, LockoutState, SignInChannel};
use gatehouse_engine::wire::{AadError, WireError};
use gatehouse_engine::{Denial, RequestContext};
use gatehouse_jose::{password, random, secrets::handle_digest};
use gatehouse_model::directory::OfferedPermission;
use gatehouse_model::{Application, Directory, User};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{PermissionLine, StepForm};
use crate::context::request_context;
use crate::grants::Form;
use crate::grants::device_code::{DeviceRecord, DeviceStatus};
use crate::issue::AuthFacts;
use crate::render::{self, ReplyTo, html};
use crate::state::AppState;

pub const FLOW_LIFETIME: i64 = 900;
pub const CODE_LIFETIME: i64 = 600;
pub const SESSION_LIFETIME: i64 = 86_400;
pub const KMSI_LIFETIME: i64 = 90 * 86_400;
const BROWSER_COOKIE: &str = "gh_bsid";
const SESSION_COOKIE: &str = "gh_session";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum FlowKind {
    Authorize,
    Device { device_key: String },
    AdminConsent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginFlow {
    pub id: String,
    pub kind: FlowKind,
    pub tenant_segment: String,
    /// Digest of the browser-binding cookie that started the flow.
    pub browser: String,
    pub csrf: String,
    pub client_id: Uuid,
    pub reply: Option<ReplyTo>,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    pub claims: Option<String>,
    pub user_id: Option<Uuid>,
    pub auth: Option<AuthFacts>,
    pub kmsi_done: bool,
    pub kmsi: bool,
    pub device_confirmed: bool,
    pub consent_done: bool,
    /// A TOTP secret being registered during this sign-in.
    #[serde(default)]
    pub mfa_pending_secret: Option<String>,
    pub expires_at: i64,
}

/// What an authorization code stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeRecord {
    pub client_id: Uuid,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub user_id: Uuid,
    pub scope: String,
    pub nonce: Option<String>,
    pub auth: AuthFacts,
    pub expires_at: i64,
    /// The `claims` of the authorize request (acrs, xms_cc), applied at redemption.
    #[serde(default)]
    pub claims: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user_id: Uuid,
    pub auth: AuthFacts,
}

pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(r: &mut Response, name: &str, value: &str, max_age: Option<i64>) {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; Secure; SameSite=Lax{age}"
    )) {
        r.headers_mut().append("set-cookie", v);
    }
}

pub fn clear_session_cookie(r: &mut Response) {
    set_cookie(r, SESSION_COOKIE, "", Some(0));
}

/// The browser-binding cookie: reuse the browser's, or mint one.
pub fn browser_binding(headers: &HeaderMap) -> (String, Option<String>) {
    match cookie(headers, BROWSER_COOKIE).filter(|v| v.len() >= 43) {
        Some(v) => (handle_digest(v), None),
        None => {
            let fresh = random::token();
            (handle_digest(&fresh), Some(fresh))
        }
    }
}

pub fn with_browser_cookie(mut r: Response, fresh: Option<String>) -> Response {
    if let Some(v) = fresh {
        set_cookie(&mut r, BROWSER_COOKIE, &v, None);
    }
    r
}

/// The signed-in session this browser has, if still valid for its user.
pub async fn current_session(
    state: &AppState,
    dir: &Directory,
    headers: &HeaderMap,
    now: i64,
) -> Option<SessionRecord> {
    let raw = cookie(headers, SESSION_COOKIE)?;
    let h = state
        .store
        .get_handle("session", &handle_digest(raw))
        .await
        .ok()??;
    if h.revoked || h.expires_at <= now {
        return None;
    }
    let s: SessionRecord = serde_json::from_str(&h.body).ok()?;
    let user = dir.user(s.user_id)?;
    let valid = user.account_enabled
        && user
            .sign_in_sessions_valid_from
            .is_none_or(|from| s.auth.auth_time >= from);
    valid.then_some(s)
}

pub async fn save_flow(state: &AppState, flow: &LoginFlow) -> Result<(), Denial> {
    let body = serde_json::to_string(flow).map_err(|e| token::server_error(&e.to_string()))?;
    state
        .store
        .put_handle("flow", &flow.id, &body, flow.expires_at, None)
        .await
        .map_err(|e| token::server_error(&e.to_string()))
}

pub fn new_flow(
    kind: FlowKind,
    tenant_segment: &str,
    browser: String,
    client_id: Uuid,
    now: i64,
) -> LoginFlow {
    LoginFlow {
        id: random::token(),
        kind,
        tenant_segment: tenant_segment.to_owned(),
        browser,
        csrf: random::token(),
        client_id,
        reply: None,
        scope: String::new(),
        nonce: None,
        code_challenge: None,
        prompt: None,
        login_hint: None,
        claims: None,
        user_id: None,
        auth: None,
        kmsi_done: false,
        kmsi: false,
        device_confirmed: false,
        consent_done: false,
        mfa_pending_secret: None,
        expires_at: now + FLOW_LIFETIME,
    }
}

/// Password check shared by ROPC and the password page: lockout, argon2id off the async
/// threads, the same work for unknown users, and the engine's verdict.
pub async fn check_password(
    state: &AppState,
    dir: &Directory,
    username: &str,
    password_given: &str,
    now: i64,
    channel: SignInChannel,
) -> Result<User, Denial> {
    let user = dir.user_by_upn(username).cloned();
    let locked = match &user {
        Some(u) => {
            state
                .store
                .locked_until(&u.id.to_string())
                .await
                .map_err(|e| token::server_error(&e.to_string()))?
                > now
        }
        None => false,
    };
    let hash = user
        .as_ref()
        .and_then(|u| u.gatehouse_password_hash.clone());
    let given = password_given.to_owned();
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) if !locked => password::verify(&given, &h),
        _ => {
            password::verify_dummy(&given);
            false
        }
    })
    .await
    .unwrap_or(false);
    if let Some(u) = &user
        && !locked
    {
        let id = u.id.to_string();
        let result = if ok {
            state.store.clear_sign_in_failures(&id).await
        } else {
            state
                .store
                .record_sign_in_failure(
                    &id,
                    now,
                    state.config.lockout_threshold,
                    state.config.lockout_seconds,
                )
                .await
                .map(|_| ())
        };
        result.map_err(|e| token::server_error(&e.to_string()))?;
    }
    token::sign_in(dir, username, ok, LockoutState { locked }, channel).cloned()
}

/// Authorize-endpoint denials travel back in the redirect, not as JSON.
pub fn to_redirect(mut d: Denial) -> Denial {
    if let WireError::Token(e) = d.wire {
        d.wire = WireError::Redirect(AadError { status: 302, ..e });
    }
    d
}

fn to_page(mut d: Denial) -> Denial {
    if let WireError::Token(e) | WireError::Redirect(e) = d.wire {
        d.wire = WireError::Page(AadError { status: 400, ..e });
    }
    d
}

fn lines(missing: &[OfferedPermission]) -> Vec<PermissionLine> {
    missing
        .iter()
        .map(|m| PermissionLine {
            value: m.value.clone(),
            display_name: m.display_name.clone(),
            description: m.description.clone(),
            admin: m.admin_consent_required,
        })
        .collect()
}

/// What the admin-consent page lists: every permission the app registration requires.
fn required_permissions(
    dir: &Directory,
    app: &Application,
) -> Vec<(Uuid, OfferedPermission, bool)> {
    let mut out = Vec::new();
    for rra in &app.required_resource_access {
        let Some(resource) = dir.service_principal_by_app_id(rra.resource_app_id) else {
            continue;
        };
        for ra in &rra.resource_access {
            let is_role = ra.kind == "Role";
            let offered = if is_role {
                dir.offered_app_role(resource, ra.id)
            } else {
                gatehouse_catalog::Catalog::embedded()
                    .by_id(ra.id)
                    .and_then(|(p, _)| dir.offered_scope(resource, &p.name))
                    .or_else(|| {
                        dir.application_by_app_id(resource.app_id)
                            .and_then(|a| {
                                a.api
                                    .oauth2_permission_scopes
                                    .iter()
                                    .find(|s| s.id == ra.id)
                            })
                            .and_then(|s| dir.offered_scope(resource, &s.value))
                    })
            };
            if let Some(o) = offered {
                out.push((resource.id, o, is_role));
            }
        }
    }
    out
}

/// Decide and render the next step of `flow`.
pub async fn advance(
    state: &AppState,
    mut flow: LoginFlow,
    ctx: &RequestContext,
    after_post: bool,
) -> Response {
    let dir = state.directory();
    let Some(app) = dir.application_by_app_id(flow.client_id).cloned() else {
        let d = token::client_unknown(&flow.client_id.to_string(), &dir);
        return render::error_page(state, &to_page(d), ctx, "authorize").await;
    };
    let action = format!("{}/{}/login", state.config.public_base, flow.tenant_segment);
    let save = |f: &LoginFlow| {
        let f = f.clone();
        let state = state.clone();
        async move { save_flow(&state, &f).await }
    };
    let step_form = |f: &LoginFlow, step: &'static str| (f.id.clone(), f.csrf.clone(), step);

    let Some(user_id) = flow.user_id else {
        if let Err(d) = save(&flow).await {
            return render::error_page(state, &d, ctx, "authorize").await;
        }
        let (id, csrf, step) = step_form(&flow, "username");
        let f = StepForm {
            action: &action,
            flow: &id,
            csrf: &csrf,
            step,
        };
        return html(
            StatusCode::OK,
            state.pages.username(
                &f,
                &app.display_name,
                flow.login_hint.as_deref().unwrap_or(""),
                None,
            ),
        );
    };
    let Some(user) = dir.user(user_id).cloned() else {
        flow.user_id = None;
        return Box::pin(advance(state, flow, ctx, after_post)).await;
    };
    if flow.auth.is_none() {
        if let Err(d) = save(&flow).await {
            return render::error_page(state, &d, ctx, "authorize").await;
        }
        let (id, csrf, step) = step_form(&flow, "password");
        let f = StepForm {
            action: &action,
            flow: &id,
            csrf: &csrf,
            step,
        };
        return html(
            StatusCode::OK,
            state.pages.password(&f, &user.user_principal_name, None),
        );
    }
    // Conditional access, once the password is known: block, or MFA before anything else.
    if flow.kind != FlowKind::AdminConsent
        && let Ok(scopes) = scope::resolve(&dir, &flow.scope, false)
    {
        let amr = flow
            .auth
            .as_ref()
            .map(|a| a.amr.clone())
            .unwrap_or_default();
        let acrs = crate::issue::acrs_from_claims(flow.claims.as_deref());
        let sign_in = gatehouse_engine::ca::SignIn {
            user: &user,
            client_app_id: app.app_id,
            resource_app_id: scopes.resource.app_id,
            client_app_type: "browser",
            amr: &amr,
            acrs_requested: &acrs,
        };
        match gatehouse_engine::ca::evaluate(&dir, &sign_in) {
            verdict @ gatehouse_engine::ca::Verdict::Block { .. } => {
                if let Some(d) = gatehouse_engine::ca::token_denial(&sign_in, &verdict, false) {
                    return render::error_page(state, &to_page(d), ctx, "authorize").await;
                }
            }
            gatehouse_engine::ca::Verdict::NeedMfa { .. } => {
                let registration = match &user.gatehouse_totp_secret {
                    Some(_) => None,
                    None => Some(
                        flow.mfa_pending_secret
                            .get_or_insert_with(gatehouse_jose::totp::new_secret)
                            .clone(),
                    ),
                };
                if let Err(d) = save(&flow).await {
                    return render::error_page(state, &d, ctx, "authorize").await;
                }
                let (id, csrf, step) = step_form(&flow, "mfa");
                let f = StepForm {
                    action: &action,
                    flow: &id,
                    csrf: &csrf,
                    step,
                };
                let uri = registration.as_deref().map(|s| {
                    gatehouse_jose::totp::otpauth_uri(
                        s,
                        &dir.tenant.display_name,
                        &user.user_principal_name,
                    )
                });
                let reg = registration.as_deref().zip(uri.as_deref());
                return html(
                    StatusCode::OK,
                    state.pages.mfa(&f, &user.user_principal_name, reg, None),
                );
            }
            gatehouse_engine::ca::Verdict::Allow { .. } => {}
        }
    }
    if !flow.kmsi_done {
        if let Err(d) = save(&flow).await {
            return render::error_page(state, &d, ctx, "authorize").await;
        }
        let (id, csrf, step) = step_form(&flow, "kmsi");
        let f = StepForm {
            action: &action,
            flow: &id,
            csrf: &csrf,
            step,
        };
        return with_session(
            state,
            html(
                StatusCode::OK,
                state.pages.kmsi(&f, &user.user_principal_name),
            ),
            &flow,
            ctx.unix(),
        )
        .await;
    }
    if let FlowKind::Device { .. } = flow.kind
        && !flow.device_confirmed
    {
        if let Err(d) = save(&flow).await {
            return render::error_page(state, &d, ctx, "authorize").await;
        }
        let (id, csrf, step) = step_form(&flow, "device_confirm");
        let f = StepForm {
            action: &action,
            flow: &id,
            csrf: &csrf,
            step,
        };
        return with_session(
            state,
            html(
                StatusCode::OK,
                state
                    .pages
                    .device_confirm(&f, &user.user_principal_name, &app.display_name),
            ),
            &flow,
            ctx.unix(),
        )
        .await;
    }

    // Consent.
    if flow.kind == FlowKind::AdminConsent {
        if !dir.is_admin_who_can_consent_for_all(user.id) {
            let d = token::admin_consent_required(
                &app,
                &required_permissions(&dir, &app)
                    .into_iter()
                    .map(|(_, o, _)| o)
                    .collect::<Vec<_>>(),
                &user,
                &state.config.public_base,
                &dir,
            );
            return with_session(
                state,
                render::error_page(state, &d, ctx, "adminconsent").await,
                &flow,
                ctx.unix(),
            )
            .await;
        }
        if !flow.consent_done {
            if let Err(d) = save(&flow).await {
                return render::error_page(state, &d, ctx, "adminconsent").await;
            }
            let perms: Vec<OfferedPermission> = required_permissions(&dir, &app)
                .into_iter()
                .map(|(_, o, _)| o)
                .collect();
            let (id, csrf, step) = step_form(&flow, "consent");
            let f = StepForm {
                action: &action,
                flow: &id,
                csrf: &csrf,
                step,
            };
            let page = state.pages.consent(
                &f,
                &user.user_principal_name,
                &app.display_name,
                &dir.tenant.display_name,
                &lines(&perms),
                true,
                true,
            );
            return with_session(state, html(StatusCode::OK, page), &flow, ctx.unix()).await;
        }
        return complete(state, &dir, &app, &user, flow, ctx, after_post).await;
    }
    let scopes = match scope::resolve(&dir, &flow.scope, false) {
        Ok(s) => s,
        Err(d) => {
            return render::denial(state, &to_redirect(d), ctx, flow.reply.as_ref(), after_post)
                .await;
        }
    };
    let Some(client_sp) = dir.service_principal_by_app_id(app.app_id).cloned() else {
        return render::error_page(
            state,
            &to_page(token::client_unknown(&app.app_id.to_string(), &dir)),
            ctx,
            "authorize",
        )
        .await;
    };
    let outcome = token::delegated_consent(&dir, &client_sp, &user, &scopes);
    let force = flow.prompt.as_deref() == Some("consent") && !flow.consent_done;
    let missing = match outcome {
        ConsentOutcome::Granted(_) if !force => {
            return complete(state, &dir, &app, &user, flow, ctx, after_post).await;
        }
        ConsentOutcome::Granted(g) => g
            .iter()
            .filter_map(|s| dir.offered_scope(&scopes.resource, s))
            .collect(),
        ConsentOutcome::Missing {
            needs_admin: true,
            missing,
        } => {
            let d = token::admin_consent_required(
                &app,
                &missing,
                &user,
                &state.config.public_base,
                &dir,
            );
            return with_session(
                state,
                render::error_page(state, &d, ctx, "authorize").await,
                &flow,
                ctx.unix(),
            )
            .await;
        }
        ConsentOutcome::Missing { missing, .. } => missing,
    };
    if flow.prompt.as_deref() == Some("none") {
        let d = Denial::new(gatehouse_engine::Cause::ConsentMissing, WireError::Redirect(AadError::new(302, "consent_required", 65001, format!("The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.", app.app_id, app.display_name))))
            .fact("prompt", "none")
            .fix("Send the request without prompt=none so the user can consent.");
        return render::denial(state, &d, ctx, flow.reply.as_ref(), after_post).await;
    }
    if let Err(d) = save(&flow).await {
        return render::error_page(state, &d, ctx, "authorize").await;
    }
    let (id, csrf, step) = step_form(&flow, "consent");
    let f = StepForm {
        action: &action,
        flow: &id,
        csrf: &csrf,
        step,
    };
    let can_org = dir.is_admin_who_can_consent_for_all(user.id);
    let page = state.pages.consent(
        &f,
        &user.user_principal_name,
        &app.display_name,
        &dir.tenant.display_name,
        &lines(&missing),
        can_org,
        false,
    );
    with_session(state, html(StatusCode::OK, page), &flow, ctx.unix()).await
}

/// Once authenticated, the browser gets a session (persistent if "Stay signed in").
async fn with_session(state: &AppState, mut r: Response, flow: &LoginFlow, now: i64) -> Response {
    let (Some(user_id), Some(auth)) = (flow.user_id, flow.auth.clone()) else {
        return r;
    };
    if !flow.kmsi_done {
        return r;
    }
    let handle = random::token();
    let record = SessionRecord { user_id, auth };
    let lifetime = if flow.kmsi {
        KMSI_LIFETIME
    } else {
        SESSION_LIFETIME
    };
    let Ok(body) = serde_json::to_string(&record) else {
        return r;
    };
    if state
        .store
        .put_handle(
            "session",
            &handle_digest(&handle),
            &body,
            now + lifetime,
            None,
        )
        .await
        .is_ok()
    {
        set_cookie(
            &mut r,
            SESSION_COOKIE,
            &handle,
            flow.kmsi.then_some(lifetime),
        );
    }
    r
}

async fn complete(
    state: &AppState,
    dir: &Arc<Directory>,
    app: &Application,
    user: &User,
    flow: LoginFlow,
    ctx: &RequestContext,
    after_post: bool,
) -> Response {
    let now = ctx.unix();
    let _ = state.store.delete_handle("flow", &flow.id).await;
    let auth = flow.auth.clone().unwrap_or(AuthFacts {
        amr: vec!["pwd".into()],
        auth_time: now,
        session_id: None,
    });
    match &flow.kind {
        FlowKind::Authorize => {
            let Some(reply) = flow.reply.clone() else {
                return render::error_page(
                    state,
                    &to_page(token::malformed_request("no redirect")),
                    ctx,
                    "authorize",
                )
                .await;
            };
            let code = format!("1.A{}{}", random::token(), random::token());
            let record = CodeRecord {
                client_id: app.app_id,
                redirect_uri: reply.redirect_uri.clone(),
                code_challenge: flow.code_challenge.clone(),
                user_id: user.id,
                scope: flow.scope.clone(),
                nonce: flow.nonce.clone(),
                auth,
                expires_at: now + CODE_LIFETIME,
                claims: flow.claims.clone(),
            };
            let family = random::token();
            let stored = match serde_json::to_string(&record) {
                Ok(body) => state
                    .store
                    .put_handle(
                        "code",
                        &handle_digest(&code),
                        &body,
                        now + CODE_LIFETIME,
                        Some(&family),
                    )
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = stored {
                return render::error_page(
                    state,
                    &to_page(token::server_error(&e)),
                    ctx,
                    "authorize",
                )
                .await;
            }
            let r = render::reply(
                state,
                &reply,
                vec![
                    ("code", code),
                    (
                        "client_info",
                        crate::issue::client_info(user, dir.tenant.id),
                    ),
                ],
                after_post,
            );
            with_session(state, r, &flow, now).await
        }
        FlowKind::Device { device_key } => {
            let updated = match state.store.get_handle("device", device_key).await {
                Ok(Some(h)) => match serde_json::from_str::<DeviceRecord>(&h.body) {
                    Ok(mut rec) => {
                        rec.status = DeviceStatus::Approved {
                            user_id: user.id,
                            auth,
                        };
                        match serde_json::to_string(&rec) {
                            Ok(b) => state
                                .store
                                .update_handle_body("device", device_key, &b)
                                .await
                                .unwrap_or(false),
                            Err(_) => false,
                        }
                    }
                    Err(_) => false,
                },
                _ => false,
            };
            let page = if updated {
                state.pages.message(&app.display_name, &format!("You have signed in to the {} application on your device. You may now close this window.", app.display_name))
            } else {
                state.pages.message(
                    "Code expired",
                    "That code has expired or was already used. Start again on your device.",
                )
            };
            with_session(state, html(StatusCode::OK, page), &flow, now).await
        }
        FlowKind::AdminConsent => {
            let perms = required_permissions(dir, app);
            let Some(client_sp) = dir.service_principal_by_app_id(app.app_id).cloned() else {
                return render::error_page(
                    state,
                    &to_page(token::client_unknown(&app.app_id.to_string(), dir)),
                    ctx,
                    "adminconsent",
                )
                .await;
            };
            let created = ctx
                .now
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let result = state
                .update_directory(|d| {
                    for (resource_id, o, is_role) in &perms {
                        let Some(resource) = d.service_principal(*resource_id).cloned() else {
                            continue;
                        };
                        if *is_role {
                            d.add_app_role_assignment(
                                &client_sp,
                                &resource,
                                o.id,
                                random::token(),
                                created.clone(),
                            );
                        } else {
                            d.add_delegated_grant(
                                client_sp.id,
                                resource.id,
                                None,
                                std::slice::from_ref(&o.value),
                                random::token,
                            );
                        }
                    }
                })
                .await;
            if let Err(e) = result {
                return render::error_page(
                    state,
                    &to_page(token::server_error(&e.to_string())),
                    ctx,
                    "adminconsent",
                )
                .await;
            }
            let Some(reply) = flow.reply.clone() else {
                return html(
                    StatusCode::OK,
                    state.pages.message(
                        "Permissions granted",
                        "The permissions were granted for your organization.",
                    ),
                );
            };
            let r = render::reply(
                state,
                &reply,
                vec![
                    ("admin_consent", "True".into()),
                    ("tenant", dir.tenant.id.to_string()),
                    ("scope", flow.scope.clone()),
                ],
                after_post,
            );
            with_session(state, r, &flow, now).await
        }
    }
}

/// `POST /{tenant}/login`: every step's form comes here.
pub async fn login_post(
    State(state): State<AppState>,
    Path(_tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = request_context(&state, &headers, None);
    let now = ctx.unix();
    let Ok(form) = Form::parse(&body) else {
        return render::error_page(
            &state,
            &to_page(token::malformed_request("form fields repeat")),
            &ctx,
            "login",
        )
        .await;
    };
    let Some(flow) = load_checked_flow(&state, &headers, &form, now).await else {
        let d = to_page(token::malformed_request(
            "the sign-in page expired or was not opened in this browser",
        ))
        .fix("Start the sign-in again from the application.");
        return render::error_page(&state, &d, &ctx, "login").await;
    };
    step(&state, flow, &form, &ctx).await
}

/// The flow named by the form, if this browser started it and the CSRF token matches.
async fn load_checked_flow(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
    now: i64,
) -> Option<LoginFlow> {
    if let Some(origin) = headers.get("origin").and_then(|o| o.to_str().ok())
        && origin != "null"
        && !origin.eq_ignore_ascii_case(&state.config.public_base)
    {
        return None;
    }
    let id = form.get("flow")?;
    let h = state.store.get_handle("flow", id).await.ok()??;
    if h.expires_at <= now {
        return None;
    }
    let flow: LoginFlow = serde_json::from_str(&h.body).ok()?;
    let csrf_ok: bool = form
        .get("csrf")
        .unwrap_or("")
        .as_bytes()
        .ct_eq(flow.csrf.as_bytes())
        .into();
    let browser = cookie(headers, BROWSER_COOKIE)
        .map(handle_digest)
        .unwrap_or_default();
    let browser_ok: bool = browser.as_bytes().ct_eq(flow.browser.as_bytes()).into();
    (csrf_ok && browser_ok).then_some(flow)
}

async fn step(
    state: &AppState,
    mut flow: LoginFlow,
    form: &Form,
    ctx: &RequestContext,
) -> Response {
    let now = ctx.unix();
    let dir = state.directory();
    let action = format!("{}/{}/login", state.config.public_base, flow.tenant_segment);
    let app_name = dir
        .application_by_app_id(flow.client_id)
        .map(|a| a.display_name.clone())
        .unwrap_or_default();
    match form.get("step").unwrap_or("") {
        "username" => {
            let login = form.get("login").unwrap_or("").trim().to_owned();
            if dir.user_by_upn(&login).is_none() {
                let d = token::sign_in(
                    &dir,
                    &login,
                    false,
                    LockoutState { locked: false },
                    SignInChannel::Page,
                )
                .err();
                if let Some(d) = &d {
                    render::record(state, d, ctx, "login").await;
                }
                let message = "This username may be incorrect. Make sure you typed it correctly. Otherwise, contact your admin. (AADSTS50034)";
                let f = StepForm {
                    action: &action,
                    flow: &flow.id,
                    csrf: &flow.csrf,
                    step: "username",
                };
                return html(
                    StatusCode::OK,
                    state.pages.username(&f, &app_name, &login, Some(message)),
                );
            }
            flow.user_id = dir.user_by_upn(&login).map(|u| u.id);
            flow.auth = None;
            advance(state, flow, ctx, true).await
        }
        "password" => {
            let Some(user) = flow.user_id.and_then(|id| dir.user(id)).cloned() else {
                flow.user_id = None;
                return advance(state, flow, ctx, true).await;
            };
            match check_password(
                state,
                &dir,
                &user.user_principal_name,
                form.get("passwd").unwrap_or(""),
                now,
                SignInChannel::Page,
            )
            .await
            {
                Ok(_) => {
                    flow.auth = Some(AuthFacts {
                        amr: vec!["pwd".into()],
                        auth_time: now,
                        session_id: Some(Uuid::new_v4().to_string()),
                    });
                    advance(state, flow, ctx, true).await
                }
                Err(d) => {
                    render::record(state, &d, ctx, "login").await;
                    let message = match render::aad_of(&d).codes.first() {
                        Some(50053) => "Your account is locked because you've tried to sign in too many times with an incorrect user ID or password. (AADSTS50053)".to_owned(),
                        Some(50057) => "Your account has been disabled. Contact your admin. (AADSTS50057)".to_owned(),
                        _ => "Your account or password is incorrect. If you don't remember your password, reset it now. (AADSTS50126)".to_owned(),
                    };
                    let f = StepForm {
                        action: &action,
                        flow: &flow.id,
                        csrf: &flow.csrf,
                        step: "password",
                    };
                    html(
                        StatusCode::OK,
                        state
                            .pages
                            .password(&f, &user.user_principal_name, Some(&message)),
                    )
                }
            }
        }
        "mfa" if flow.auth.is_some() => {
            let Some(user) = flow.user_id.and_then(|id| dir.user(id)).cloned() else {
                return advance(state, flow, ctx, true).await;
            };
            let secret = user
                .gatehouse_totp_secret
                .clone()
                .or_else(|| flow.mfa_pending_secret.clone())
                .unwrap_or_default();
            if !gatehouse_jose::totp::verify(&secret, form.get("otc").unwrap_or(""), now) {
                let d = Denial::new(
                    gatehouse_engine::Cause::MfaCodeInvalid,
                    WireError::Page(AadError::new(
                        200,
                        "invalid_grant",
                        50125,
                        "The verification code is not valid.",
                    )),
                )
                .fact("user", user.user_principal_name.clone())
                .fix(
                    "Type the current 6-digit code of the authenticator registered for this user.",
                );
                render::record(state, &d, ctx, "login").await;
                let f = StepForm {
                    action: &action,
                    flow: &flow.id,
                    csrf: &flow.csrf,
                    step: "mfa",
                };
                let pending = flow.mfa_pending_secret.clone();
                let uri = pending.as_deref().map(|s| {
                    gatehouse_jose::totp::otpauth_uri(
                        s,
                        &dir.tenant.display_name,
                        &user.user_principal_name,
                    )
                });
                let reg = pending.as_deref().zip(uri.as_deref());
                return html(
                    StatusCode::OK,
                    state.pages.mfa(
                        &f,
                        &user.user_principal_name,
                        reg,
                        Some("You didn't enter the expected verification code. Please try again."),
                    ),
                );
            }
            if user.gatehouse_totp_secret.is_none()
                && let Some(new_secret) = flow.mfa_pending_secret.take()
            {
                let id = user.id;
                if let Err(e) = state
                    .update_directory(|d| {
                        if let Some(u) = d.users.iter_mut().find(|u| u.id == id) {
                            u.gatehouse_totp_secret = Some(new_secret);
                        }
                    })
                    .await
                {
                    return render::error_page(
                        state,
                        &to_page(token::server_error(&e.to_string())),
                        ctx,
                        "login",
                    )
                    .await;
                }
            }
            if let Some(auth) = flow.auth.as_mut()
                && !auth.amr.iter().any(|m| m == "mfa")
            {
                auth.amr.push("mfa".into());
            }
            advance(state, flow, ctx, true).await
        }
        "kmsi" if flow.auth.is_some() => {
            flow.kmsi = form.get("kmsi") == Some("Yes");
            flow.kmsi_done = true;
            advance(state, flow, ctx, true).await
        }
        "device_confirm" if flow.auth.is_some() => {
            if form.get("action") == Some("Continue") {
                flow.device_confirmed = true;
                return advance(state, flow, ctx, true).await;
            }
            decline(state, flow, ctx).await
        }
        "consent" if flow.auth.is_some() => {
            if form.get("action") != Some("Accept") {
                return decline(state, flow, ctx).await;
            }
            if flow.kind != FlowKind::AdminConsent
                && let Err(d) = record_consent(
                    state,
                    &dir,
                    &flow,
                    form.get("ConsentForOrganization") == Some("true"),
                )
                .await
            {
                return render::denial(state, &d, ctx, flow.reply.as_ref(), true).await;
            }
            flow.consent_done = true;
            advance(state, flow, ctx, true).await
        }
        _ => advance(state, flow, ctx, true).await,
    }
}

/// Cancel on consent or device confirmation.
async fn decline(state: &AppState, flow: LoginFlow, ctx: &RequestContext) -> Response {
    let _ = state.store.delete_handle("flow", &flow.id).await;
    match &flow.kind {
        FlowKind::Device { device_key } => {
            if let Ok(Some(h)) = state.store.get_handle("device", device_key).await
                && let Ok(mut rec) = serde_json::from_str::<DeviceRecord>(&h.body)
            {
                rec.status = DeviceStatus::Declined;
                if let Ok(b) = serde_json::to_string(&rec) {
                    let _ = state
                        .store
                        .update_handle_body("device", device_key, &b)
                        .await;
                }
            }
            html(
                StatusCode::OK,
                state.pages.message(
                    "Sign-in cancelled",
                    "You cancelled the sign-in. You may now close this window.",
                ),
            )
        }
        FlowKind::Authorize => {
            render::denial(
                state,
                &token::consent_declined(),
                ctx,
                flow.reply.as_ref(),
                true,
            )
            .await
        }
        FlowKind::AdminConsent => {
            let mut d = token::consent_declined();
            if let WireError::Redirect(e) = &mut d.wire {
                e.error = "access_denied";
            }
            match &flow.reply {
                Some(reply) => {
                    render::record(state, &d, ctx, "adminconsent").await;
                    let mut params = render::aad_of(&d).redirect_params(ctx);
                    params.push(("admin_consent", "True".into()));
                    render::reply(state, reply, params, true)
                }
                None => render::error_page(state, &d, ctx, "adminconsent").await,
            }
        }
    }
}

/// The user (or an admin for everyone) accepted: record the oAuth2PermissionGrant.
async fn record_consent(
    state: &AppState,
    dir: &Directory,
    flow: &LoginFlow,
    for_org: bool,
) -> Result<(), Denial> {
    let user_id = flow
        .user_id
        .ok_or_else(|| token::malformed_request("no user"))?;
    let scopes: ScopeRequest = scope::resolve(dir, &flow.scope, false)?;
    let client = dir
        .service_principal_by_app_id(flow.client_id)
        .cloned()
        .ok_or_else(|| token::client_unknown(&flow.client_id.to_string(), dir))?;
    let user = dir
        .user(user_id)
        .cloned()
        .ok_or_else(|| token::malformed_request("no user"))?;
    let mut wanted: Vec<String> = match token::delegated_consent(dir, &client, &user, &scopes) {
        ConsentOutcome::Missing {
            missing,
            needs_admin,
        } => {
            if needs_admin {
                return Err(token::admin_consent_required(
                    dir.application_by_app_id(flow.client_id)
                        .ok_or_else(|| token::malformed_request("no app"))?,
                    &missing,
                    &user,
                    &state.config.public_base,
                    dir,
                ));
            }
            missing.into_iter().map(|m| m.value).collect()
        }
        ConsentOutcome::Granted(g) => g,
    };
    // OIDC scopes are Graph's delegated permissions too; Entra records them in the grant.
    for o in &scopes.oidc {
        if scopes.resource_kind == gatehouse_model::directory::ResourceKind::MicrosoftGraph
            && !wanted.contains(o)
        {
            wanted.push(o.clone());
        }
    }
    let for_org = for_org && dir.is_admin_who_can_consent_for_all(user_id);
    let resource_id = scopes.resource.id;
    state
        .update_directory(|d| {
            d.add_delegated_grant(
                client.id,
                resource_id,
                if for_org { None } else { Some(user_id) },
                &wanted,
                random::token,
            )
        })
        .await
        .map_err(|e| token::server_error(&e.to_string()))?;
    Ok(())
}
