//! `POST /{tenant}/oauth2/v2.0/token`: a thin dispatcher. It parses the form, finds the
//! tenant and the client, checks the presented credential, and hands over to the grant.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod on_behalf_of;
pub mod password;
pub mod refresh_token;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gatehouse_engine::token::{
    self, ClientAuthMethod, GrantKind, PresentedCredential, SecretCheck,
};
use gatehouse_engine::{Denial, RequestContext};
use gatehouse_jose::assertion::{RegisteredCert, verify_client_assertion};
use gatehouse_model::{Application, Directory, ServicePrincipal};
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::context::request_context;
use crate::discovery::{TenantRef, resolve_tenant};
use crate::render;
use crate::state::AppState;

pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The form body. Parameters must not repeat (RFC 6749 §3.1).
pub struct Form {
    params: Vec<(String, String)>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Result<Form, String> {
        let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        for (i, (k, _)) in params.iter().enumerate() {
            if params.iter().skip(i + 1).any(|(k2, _)| k2 == k) {
                return Err(format!("the parameter '{k}' appears more than once"));
            }
        }
        Ok(Form { params })
    }

    /// A parameter, treating an empty value as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, Denial> {
        self.get(name).ok_or_else(|| token::missing_parameter(name))
    }
}

/// Everything a grant needs once the client is known and authenticated.
pub struct TokenCall<'a> {
    pub state: &'a AppState,
    pub dir: Arc<Directory>,
    pub ctx: &'a RequestContext,
    pub form: &'a Form,
    pub tenant: TenantRef,
    pub app: &'a Application,
    pub client_sp: &'a ServicePrincipal,
    pub method: ClientAuthMethod,
    pub now: i64,
}

impl TokenCall<'_> {
    pub fn issuer_base(&self) -> &str {
        &self.state.config.public_base
    }
}

/// Basic credentials, each half form-urlencoded before base64 (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

fn grant_kind(grant_type: &str) -> Option<GrantKind> {
    Some(match grant_type {
        "authorization_code" => GrantKind::AuthorizationCode,
        "refresh_token" => GrantKind::RefreshToken,
        "client_credentials" => GrantKind::ClientCredentials,
        "password" => GrantKind::Password,
        "urn:ietf:params:oauth:grant-type:device_code" | "device_code" => GrantKind::DeviceCode,
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => GrantKind::OnBehalfOf,
        _ => return None,
    })
}

pub async fn token_handler(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query_correlation = query.as_deref().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "client-request-id")
            .map(|(_, v)| v.into_owned())
    });
    let form = Form::parse(&body);
    let form_correlation = form
        .as_ref()
        .ok()
        .and_then(|f| f.get("client-request-id").map(str::to_owned));
    let ctx = request_context(
        &state,
        &headers,
        form_correlation.as_deref().or(query_correlation.as_deref()),
    );
    let used_basic = headers.get("authorization").is_some();
    match token_inner(&state, &tenant, &headers, form, &ctx).await {
        Ok(body) => {
            let headers = render::token_headers(&ctx);
            (StatusCode::OK, headers, body.to_string()).into_response()
        }
        Err(denial) => render::token_error(&state, &denial, &ctx, "token", used_basic).await,
    }
}

async fn token_inner(
    state: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    form: Result<Form, String>,
    ctx: &RequestContext,
) -> Result<Value, Denial> {
    let form = form.map_err(|e| token::malformed_request(&e))?;
    let dir = state.directory();
    let tenant_ref = resolve_tenant(&dir, tenant).ok_or_else(|| token::tenant_unknown(tenant))?;
    let grant_type = form.require("grant_type")?;
    let grant = grant_kind(grant_type).ok_or_else(|| token::unsupported_grant_type(grant_type))?;

    let basic = basic_credentials(headers);
    let body_secret = form.get("client_secret");
    let client_id = match (&basic, form.get("client_id")) {
        (Some((id, _)), Some(form_id)) if id != form_id => {
            return Err(token::malformed_request(
                "client_id in the Basic header and in the body differ",
            ));
        }
        (Some((id, _)), _) => id.clone(),
        (None, Some(id)) => id.to_owned(),
        (None, None) => return Err(token::missing_parameter("client_id")),
    };
    let app = client_id
        .parse()
        .ok()
        .and_then(|id| dir.application_by_app_id(id))
        .ok_or_else(|| token::client_unknown(&client_id, &dir))?;
    let client_sp = dir
        .service_principal_by_app_id(app.app_id)
        .ok_or_else(|| token::client_unknown(&client_id, &dir))?;

    let now = ctx.unix();
    let assertion = form.get("client_assertion");
    let presented = match (
        basic.as_ref().map(|(_, s)| s.as_str()),
        body_secret,
        assertion,
    ) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            PresentedCredential::Several
        }
        (Some(secret), None, None) | (None, Some(secret), None) => {
            PresentedCredential::Secret(check_secret(state, app, secret, now))
        }
        (None, None, Some(a)) => {
            if form.get("client_assertion_type") != Some(JWT_BEARER_ASSERTION_TYPE) {
                return Err(token::missing_parameter("client_assertion_type"));
            }
            PresentedCredential::Assertion(check_assertion(state, app, &dir, tenant, a, now).await)
        }
        (None, None, None) => PresentedCredential::None,
    };
    let method = token::authenticate_client(app, &presented, grant, false)?;
    let call = TokenCall {
        state,
        dir: dir.clone(),
        ctx,
        form: &form,
        tenant: tenant_ref,
        app,
        client_sp,
        method,
        now,
    };
    match grant {
        GrantKind::ClientCredentials => client_credentials::grant(&call).await,
        GrantKind::Password => password::grant(&call).await,
        GrantKind::AuthorizationCode => authorization_code::grant(&call).await,
        GrantKind::RefreshToken => refresh_token::grant(&call).await,
        GrantKind::DeviceCode => device_code::grant(&call).await,
        GrantKind::OnBehalfOf => on_behalf_of::grant(&call).await,
    }
}

/// Compare against every secret of the app (constant time each); report expiry.
fn check_secret(state: &AppState, app: &Application, secret: &str, now: i64) -> SecretCheck {
    let mut result = SecretCheck::NoMatch;
    for cred in &app.password_credentials {
        let Some(stored) = &cred.gatehouse_secret_hash else {
            continue;
        };
        if state.secrets.matches(secret, stored) {
            result = if cred.gatehouse_expires.is_some_and(|exp| exp <= now) {
                SecretCheck::MatchedExpired
            } else {
                SecretCheck::Matched
            };
            if result == SecretCheck::Matched {
                break;
            }
        }
    }
    result
}

async fn check_assertion(
    state: &AppState,
    app: &Application,
    dir: &Directory,
    tenant: &str,
    assertion: &str,
    now: i64,
) -> Result<(), String> {
    let base = &state.config.public_base;
    let audiences = vec![
        format!("{base}/{tenant}/oauth2/v2.0/token"),
        format!("{base}/{}/oauth2/v2.0/token", dir.tenant.id),
        format!("{base}/{}/oauth2/v2.0/token", dir.tenant.domain),
        format!("{base}/{}/v2.0", dir.tenant.id),
    ];
    let certs: Vec<RegisteredCert<'_>> = app
        .key_credentials
        .iter()
        .map(|k| RegisteredCert { der_base64: &k.key })
        .collect();
    let claims =
        verify_client_assertion(assertion, &certs, &app.app_id.to_string(), &audiences, now)?;
    if let Some(jti) = claims.jti {
        let first = state
            .store
            .insert_unique("jti", &format!("{}:{jti}", app.app_id), claims.exp + 600)
            .await
            .map_err(|_| "The assertion could not be checked for replay.".to_owned())?;
        if !first {
            return Err("The assertion's jti was already used (replay).".into());
        }
    }
    Ok(())
}

/// Issue delegated tokens for a signed-in user (shared by every user grant).
#[allow(clippy::too_many_arguments)]
pub async fn user_tokens(
    call: &TokenCall<'_>,
    scopes: &gatehouse_engine::scope::ScopeRequest,
    user: &gatehouse_model::User,
    auth: &crate::issue::AuthFacts,
    granted: Vec<String>,
    nonce: Option<String>,
    family: Option<String>,
    stored_claims: Option<&str>,
) -> Result<Value, Denial> {
    let claims = call.form.get("claims").or(stored_claims);
    let capabilities = crate::issue::capabilities_from_claims(claims);
    // Conditional access is evaluated at every issuance to a user.
    let grant_type = call.form.get("grant_type").unwrap_or("");
    let acrs_requested = crate::issue::acrs_from_claims(claims);
    let sign_in = gatehouse_engine::ca::SignIn {
        user,
        client_app_id: call.app.app_id,
        resource_app_id: scopes.resource.app_id,
        client_app_type: if grant_type == "authorization_code" {
            "browser"
        } else {
            "mobileAppsAndDesktopClients"
        },
        amr: &auth.amr,
        acrs_requested: &acrs_requested,
    };
    let verdict = gatehouse_engine::ca::evaluate(&call.dir, &sign_in);
    if let Some(d) = gatehouse_engine::ca::token_denial(
        &sign_in,
        &verdict,
        grant_type == "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ) {
        return Err(d);
    }
    let acrs = match verdict {
        gatehouse_engine::ca::Verdict::Allow { report_only, acrs } => {
            for (policy, would) in report_only {
                tracing::info!(target: "gatehouse::ca", %policy, would, user = %user.user_principal_name, "report-only conditional access policy");
            }
            acrs
        }
        _ => Vec::new(),
    };
    let issued = crate::issue::issue(
        call.state,
        &call.dir,
        crate::issue::IssueRequest {
            app: call.app,
            client_sp: call.client_sp,
            method: call.method,
            scopes,
            subject: crate::issue::Subject::User { user, auth },
            granted,
            nonce,
            client_info: call.form.get("client_info") == Some("1"),
            capabilities,
            acrs,
            now: call.now,
            family,
        },
    )
    .await
    .map_err(|e| token::server_error(&e.to_string()))?;
    Ok(issued.body)
}
