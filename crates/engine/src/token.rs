//! Token-endpoint and authorize-endpoint rules: tenant, client authentication, user
//! sign-in, codes, refresh tokens, device codes and consent.

use std::collections::BTreeSet;

use gatehouse_model::directory::OfferedPermission;
use gatehouse_model::{Application, Directory, ServicePrincipal, User};
use uuid::Uuid;

use crate::cause::Cause;
use crate::denial::Denial;
use crate::scope::ScopeRequest;
use crate::wire::{AadError, WireError};

fn token(status: u16, error: &'static str, code: u32, message: impl Into<String>) -> WireError {
    WireError::Token(AadError::new(status, error, code, message))
}

pub fn missing_parameter(name: &str) -> Denial {
    Denial::new(
        Cause::RequestMissingParameter,
        token(
            400,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        ),
    )
    .fact("missing", name)
    .fix(format!("Send the '{name}' parameter in the form body."))
}

pub fn unsupported_grant_type(grant_type: &str) -> Denial {
    Denial::new(
        Cause::GrantTypeUnsupported,
        token(400, "unsupported_grant_type", 70003, format!("The app requested an unsupported grant type '{grant_type}'.")),
    )
    .fact("grant_type", grant_type)
    .fix("Use authorization_code, refresh_token, client_credentials, password, urn:ietf:params:oauth:grant-type:device_code or urn:ietf:params:oauth:grant-type:jwt-bearer.")
}

pub fn malformed_request(detail: &str) -> Denial {
    Denial::new(
        Cause::RequestMalformed,
        token(
            400,
            "invalid_request",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        ),
    )
    .fact("problem", detail)
}

/// Our own failure (storage); Entra's shape for it.
pub fn server_error(detail: &str) -> Denial {
    Denial::new(
        Cause::ServerUnavailable,
        token(
            500,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
        ),
    )
    .fact("internal", detail)
}

/// A code or refresh token that is not ours at all: `invalid_grant`, as Entra.
pub fn malformed_grant(detail: &str) -> Denial {
    Denial::new(
        Cause::GrantMalformed,
        token(
            400,
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        ),
    )
    .fact("problem", detail)
}

/// The user a code or refresh token was issued to no longer exists (deleted).
pub fn grant_user_deleted(user: Uuid) -> Denial {
    Denial::new(
        Cause::GrantRevoked,
        token(400, "invalid_grant", 50034, "The user account {EmailHidden} does not exist in the directory. To sign into this application, the account must be added to the directory."),
    )
    .fact("user", format!("{user} (deleted)"))
    .fix("The grant's user was deleted; sign in with an existing account.")
}

pub fn tenant_unknown(segment: &str) -> Denial {
    Denial::new(
        Cause::TenantUnknown,
        token(400, "invalid_tenant", 90002, format!("Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.")),
    )
    .fact("tenant", segment)
    .fix("Use the tenant GUID or domain printed by `gatehouse demo --json` in the authority.")
}

/// Client credentials and on-behalf-of need to know the tenant; `common` says nothing.
pub fn tenant_required(segment: &str) -> Denial {
    Denial::new(
        Cause::TenantRequired,
        token(400, "invalid_request", 50059, "No tenant-identifying information found in either the request or implied by any provided credentials."),
    )
    .fact("tenant", segment)
    .fix("Use a tenant-specific authority (https://{host}/{tenant-id}) for app-only flows.")
}

pub fn client_unknown(client_id: &str, dir: &Directory) -> Denial {
    Denial::new(
        Cause::ClientUnknown,
        token(400, "unauthorized_client", 700016, format!("Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", dir.tenant.display_name)),
    )
    .fact("client_id", client_id)
    .fact("tenant", dir.tenant.id.to_string())
    .fix("Check the client id (Application (client) ID of the app registration) and the tenant in the authority.")
}

/// What the caller found when it checked the presented credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedCredential {
    None,
    Secret(SecretCheck),
    Assertion(Result<(), String>),
    /// Basic and body, or secret and assertion, together.
    Several,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretCheck {
    Matched,
    MatchedExpired,
    NoMatch,
}

/// How the client authenticated, for `appidacr`/`azpacr`: 0 public, 1 secret, 2 certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    Public,
    Secret,
    Certificate,
}

impl ClientAuthMethod {
    pub fn acr(self) -> &'static str {
        match self {
            ClientAuthMethod::Public => "0",
            ClientAuthMethod::Secret => "1",
            ClientAuthMethod::Certificate => "2",
        }
    }
}

/// Which grant is being asked for, as far as client authentication cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    Password,
    DeviceCode,
    OnBehalfOf,
}

impl GrantKind {
    /// Grants a public client may use when the app allows public client flows.
    fn allows_public(self) -> bool {
        matches!(
            self,
            GrantKind::AuthorizationCode
                | GrantKind::RefreshToken
                | GrantKind::Password
                | GrantKind::DeviceCode
        )
    }
}

pub fn authenticate_client(
    app: &Application,
    presented: &PresentedCredential,
    grant: GrantKind,
    redeemed_for_public_redirect: bool,
) -> Result<ClientAuthMethod, Denial> {
    let app_id = app.app_id.to_string();
    match presented {
        PresentedCredential::Several => Err(Denial::new(
            Cause::ClientAuthAmbiguous,
            token(400, "invalid_request", 9002313, "Invalid request. Request is malformed or invalid."),
        )
        .fact("client_id", app_id)
        .fact("problem", "more than one client authentication method (e.g. Basic header and client_secret in the body)")
        .fix("Send the client secret once: either client_secret in the body or HTTP Basic, not both.")),
        PresentedCredential::Secret(_) | PresentedCredential::Assertion(_) if app.password_credentials.is_empty() && app.key_credentials.is_empty() => Err(Denial::new(
            Cause::PublicClientSentCredential,
            token(401, "invalid_client", 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented."),
        )
        .fact("client_id", app_id)
        .fact("registered credentials", "none (public client)")
        .fix("Don't send a secret from a public client, or add a client secret to the app registration.")),
        PresentedCredential::Secret(SecretCheck::Matched) => Ok(ClientAuthMethod::Secret),
        PresentedCredential::Secret(SecretCheck::MatchedExpired) => Err(Denial::new(
            Cause::ClientSecretExpired,
            token(401, "invalid_client", 7000222, format!("The provided client secret keys for app '{app_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.")),
        )
        .fact("client_id", app_id)
        .fix("Add a new client secret (POST /applications/{id}/addPassword) and use it.")),
        PresentedCredential::Secret(SecretCheck::NoMatch) => Err(Denial::new(
            Cause::ClientSecretInvalid,
            token(401, "invalid_client", 7000215, format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{app_id}'.")),
        )
        .fact("client_id", app_id)
        .fact("secrets registered", app.password_credentials.iter().map(|p| format!("{}… (keyId {})", p.hint, p.key_id)).collect::<Vec<_>>().join(", "))
        .fix("Send the secret's value (shown once when it was created), not its id; or create a new secret.")),
        PresentedCredential::Assertion(Ok(())) => Ok(ClientAuthMethod::Certificate),
        PresentedCredential::Assertion(Err(reason)) => Err(Denial::new(
            Cause::ClientAssertionInvalid,
            token(401, "invalid_client", 700027, format!("Client assertion failed signature validation. {reason}")),
        )
        .fact("client_id", app_id)
        .fact("problem", reason.clone())
        .fix("Sign the assertion with the private key of a certificate uploaded to the app; aud must be the token endpoint, iss and sub the client id.")),
        PresentedCredential::None => {
            let public_ok = grant.allows_public()
                && (app.is_public_client() || app.is_fallback_public_client || redeemed_for_public_redirect);
            if public_ok {
                Ok(ClientAuthMethod::Public)
            } else {
                Err(Denial::new(
                    Cause::ClientCredentialMissing,
                    token(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."),
                )
                .fact("client_id", app_id)
                .fact("grant", format!("{grant:?}"))
                .fact("allow public client flows", app.is_fallback_public_client.to_string())
                .fix("Send client_secret (or a client_assertion) for this confidential app, or enable 'Allow public client flows' on the app registration if it really is a public client."))
            }
        }
    }
}

/// ROPC and device code need "allow public client flows" unless the client authenticated.
pub fn require_public_flows(
    app: &Application,
    method: ClientAuthMethod,
    grant: GrantKind,
) -> Result<(), Denial> {
    if method != ClientAuthMethod::Public || app.is_fallback_public_client || app.is_public_client()
    {
        return Ok(());
    }
    Err(Denial::new(
        Cause::PublicClientFlowsDisabled,
        token(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."),
    )
    .fact("client_id", app.app_id.to_string())
    .fact("grant", format!("{grant:?}"))
    .fix("Enable 'Allow public client flows' (isFallbackPublicClient) on the app registration."))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutState {
    pub locked: bool,
}

/// Where sign-in happens decides how a failure is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInChannel {
    TokenEndpoint,
    Page,
}

fn sign_in_wire(channel: SignInChannel, code: u32, message: String) -> WireError {
    let e = AadError::new(400, "invalid_grant", code, message);
    match channel {
        SignInChannel::TokenEndpoint => WireError::Token(e),
        SignInChannel::Page => WireError::Page(AadError { status: 200, ..e }),
    }
}

/// The user-name and password check, once the caller verified the password (or not).
pub fn sign_in<'d>(
    dir: &'d Directory,
    username: &str,
    password_ok: bool,
    lockout: LockoutState,
    channel: SignInChannel,
) -> Result<&'d User, Denial> {
    let Some(user) = dir.user_by_upn(username) else {
        return Err(Denial::new(
            Cause::UserNotFound,
            sign_in_wire(channel, 50034, format!("The user account {{EmailHidden}} does not exist in the '{}' directory. To sign into this application, the account must be added to the directory.", dir.tenant.id)),
        )
        .fact("username", username)
        .fix("Check the user name; users are listed by `gatehouse demo --json` or GET /v1.0/users."));
    };
    if lockout.locked {
        return Err(Denial::new(
            Cause::UserLockedOut,
            sign_in_wire(channel, 50053, "Your account is locked because you've tried to sign in too many times with an incorrect user ID or password.".to_owned()),
        )
        .fact("user", user.user_principal_name.clone())
        .fix("Wait for the lockout to end (60 seconds, as Entra smart lockout) and use the right password."));
    }
    if !password_ok {
        return Err(Denial::new(
            Cause::UserBadPassword,
            sign_in_wire(
                channel,
                50126,
                "Error validating credentials due to invalid username or password.".to_owned(),
            ),
        )
        .fact("user", user.user_principal_name.clone())
        .fix("Use the user's current password (`gatehouse demo --json` shows the demo users')."));
    }
    if !user.account_enabled {
        return Err(Denial::new(
            Cause::UserDisabled,
            sign_in_wire(channel, 50057, "The user account is disabled.".to_owned()),
        )
        .fact("user", user.user_principal_name.clone())
        .fact("accountEnabled", "false")
        .fix("Enable the account: PATCH /v1.0/users/{id} {\"accountEnabled\": true}."));
    }
    Ok(user)
}

/// A stored authorization code, as the caller found it.
#[derive(Debug, Clone)]
pub struct CodeFacts {
    pub client_id: Uuid,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub expires_at: i64,
    pub redeemed: bool,
}

pub fn redeem_code(
    code: Option<&CodeFacts>,
    well_formed: bool,
    client_id: Uuid,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
    now: i64,
) -> Result<(), Denial> {
    let Some(c) = code else {
        return Err(if well_formed {
            Denial::new(
                Cause::GrantMalformed,
                token(
                    400,
                    "invalid_grant",
                    70000,
                    "The provided value for the 'code' parameter is not valid.",
                ),
            )
            .fact(
                "code",
                "not issued by this Gatehouse (or deleted after expiry)",
            )
            .fix("Start a new authorization request and redeem the code it returns.")
        } else {
            malformed_grant("the code is not an authorization code")
                .fix("Send the code exactly as it arrived on the redirect URI (URL-decoded once).")
        });
    };
    if c.redeemed {
        return Err(Denial::new(
            Cause::CodeAlreadyRedeemed,
            token(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."),
        )
        .fact("code", "already redeemed once; tokens issued from it were revoked")
        .fix("Redeem each code once; for new tokens use the refresh token (acquire_token_silent)."));
    }
    if now >= c.expires_at {
        return Err(Denial::new(
            Cause::GrantExpired,
            token(400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."),
        )
        .fact("expired at", c.expires_at.to_string())
        .fix("Redeem the code within 10 minutes of the redirect."));
    }
    if c.client_id != client_id {
        return Err(Denial::new(Cause::GrantClientMismatch, token(400, "invalid_grant", 70000, "The provided value for the 'code' parameter is not valid. The code was issued to a different client."))
            .fact("issued to", c.client_id.to_string())
            .fact("redeemed by", client_id.to_string()));
    }
    if let Some(r) = redirect_uri
        && r != c.redirect_uri
    {
        return Err(Denial::new(Cause::GrantRedirectMismatch, token(400, "invalid_grant", 70000, "The provided value for the 'redirect_uri' is not valid. The value must exactly match the redirect URI used to obtain the authorization code."))
            .fact("redirect_uri (authorize)", c.redirect_uri.clone())
            .fact("redirect_uri (token)", r)
            .fix("Send the same redirect_uri to the token endpoint as to the authorize endpoint."));
    }
    match (&c.code_challenge, code_verifier) {
        (None, None) => Ok(()),
        (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => Ok(()),
        (None, Some(_)) => Err(Denial::new(Cause::PkceMismatch, token(400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request."))
            .fact("code_challenge", "none was sent to the authorize endpoint")
            .fix("Send code_challenge (S256) on the authorize request when you send code_verifier here.")),
        (Some(_), _) => Err(Denial::new(Cause::PkceMismatch, token(400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request."))
            .fact("code_verifier", if code_verifier.is_some() { "does not hash to the code_challenge" } else { "missing" })
            .fix("Send the code_verifier whose S256 hash was the code_challenge of this authorization request.")),
    }
}

/// RFC 7636: 43-128 characters of [A-Za-z0-9-._~], BASE64URL(SHA256(verifier)) == challenge.
fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let valid_len = (43..=128).contains(&verifier.len());
    let valid_chars = verifier
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    valid_len && valid_chars && crate::pkce::s256_matches(challenge, verifier)
}

/// A stored refresh token, as the caller found it.
#[derive(Debug, Clone)]
pub struct RefreshFacts {
    pub client_id: Uuid,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked: bool,
    /// Presented again after it was exchanged (rotation reuse).
    pub reused: bool,
    /// The user's tokens-valid-from (revokeSignInSessions, password change), if later than issue.
    pub user_valid_from: Option<i64>,
}

pub fn redeem_refresh(rt: Option<&RefreshFacts>, client_id: Uuid, now: i64) -> Result<(), Denial> {
    let Some(r) = rt else {
        return Err(
            malformed_grant("the refresh token is not one this Gatehouse issued")
                .fix("Sign the user in again to get a new refresh token."),
        );
    };
    if r.client_id != client_id {
        return Err(Denial::new(Cause::GrantClientMismatch, token(400, "invalid_grant", 70000, "The provided value for the 'refresh_token' parameter is not valid. The refresh token was issued to a different client."))
            .fact("issued to", r.client_id.to_string()));
    }
    if let Some(valid_from) = r.user_valid_from
        && r.issued_at < valid_from
    {
        let iso = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .map(|d| {
                    d.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                })
                .unwrap_or_default()
        };
        return Err(Denial::new(
            Cause::GrantRevoked,
            WireError::Token(AadError::new(400, "invalid_grant", 50173, format!("The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.", iso(r.issued_at), iso(valid_from))).with_suberror("bad_token")),
        )
        .fact("issued at", r.issued_at.to_string())
        .fact("tokens valid from", valid_from.to_string())
        .fix("Sign the user in again interactively."));
    }
    if r.revoked || r.reused {
        return Err(Denial::new(Cause::GrantRevoked, WireError::Token(AadError::new(400, "invalid_grant", 70000, "The provided value for the 'refresh_token' parameter is not valid. The refresh token has been revoked.").with_suberror("bad_token")))
            .fact("refresh token", if r.reused { "already exchanged once (rotation reuse detected; the whole family was revoked)" } else { "revoked" })
            .fix("Always store and use the newest refresh token from each response; sign in again now."));
    }
    if now >= r.expires_at {
        return Err(Denial::new(
            Cause::GrantExpired,
            WireError::Token(AadError::new(400, "invalid_grant", 700082, format!("The refresh token has expired due to inactivity. The token was issued on {} and was inactive for 90.00:00:00.", r.issued_at)).with_suberror("bad_token")),
        )
        .fix("Sign the user in again."));
    }
    Ok(())
}

/// Outcome of checking delegated consent for one sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentOutcome {
    /// Scopes to put in `scp`.
    Granted(Vec<String>),
    /// Something is not consented yet.
    Missing {
        missing: Vec<OfferedPermission>,
        /// Some missing permission needs an admin, and this user cannot give it.
        needs_admin: bool,
    },
}

/// Delegated consent for `user` of `client` on the resource of `scopes`.
/// `.default` means every consented permission (and the app's required ones, if none).
pub fn delegated_consent(
    dir: &Directory,
    client: &ServicePrincipal,
    user: &User,
    scopes: &ScopeRequest,
) -> ConsentOutcome {
    let consented: BTreeSet<String> = dir.consented_scopes(client, &scopes.resource, user.id);
    let consented_lower: BTreeSet<String> =
        consented.iter().map(|s| s.to_ascii_lowercase()).collect();
    let wanted: Vec<String> = if scopes.default {
        if consented.is_empty() {
            required_delegated(dir, client, &scopes.resource)
        } else {
            consented.iter().cloned().collect()
        }
    } else {
        scopes.permissions.clone()
    };
    let missing: Vec<OfferedPermission> = wanted
        .iter()
        .filter(|w| !consented_lower.contains(&w.to_ascii_lowercase()))
        .filter_map(|w| dir.offered_scope(&scopes.resource, w))
        .collect();
    if missing.is_empty() {
        let mut granted: Vec<String> = if scopes.default {
            consented.into_iter().collect()
        } else {
            wanted
        };
        granted.sort_by_key(|s| s.to_ascii_lowercase());
        return ConsentOutcome::Granted(granted);
    }
    let needs_admin = missing.iter().any(|m| m.admin_consent_required)
        && !dir.is_admin_who_can_consent_for_all(user.id);
    ConsentOutcome::Missing {
        missing,
        needs_admin,
    }
}

/// The delegated permissions the app registration lists for this resource.
fn required_delegated(
    dir: &Directory,
    client: &ServicePrincipal,
    resource: &ServicePrincipal,
) -> Vec<String> {
    let Some(app) = dir.application_by_app_id(client.app_id) else {
        return Vec::new();
    };
    app.required_resource_access
        .iter()
        .filter(|r| r.resource_app_id == resource.app_id)
        .flat_map(|r| r.resource_access.iter())
        .filter(|a| a.kind == "Scope")
        .filter_map(|a| {
            dir.applications
                .iter()
                .find(|x| x.app_id == resource.app_id)
                .and_then(|api| {
                    api.api
                        .oauth2_permission_scopes
                        .iter()
                        .find(|s| s.id == a.id)
                        .map(|s| s.value.clone())
                })
                .or_else(|| {
                    gatehouse_catalog::Catalog::embedded()
                        .by_id(a.id)
                        .map(|(p, _)| p.name.clone())
                })
        })
        .collect()
}

/// The admin-consent URL for `client` in this tenant (a fix step in several denials).
pub fn admin_consent_url(issuer_base: &str, tenant: Uuid, client_id: Uuid) -> String {
    format!(
        "{issuer_base}/{tenant}/v2.0/adminconsent?client_id={client_id}&scope=https://graph.microsoft.com/.default"
    )
}

/// Non-interactive flows (ROPC, refresh, OBO) cannot show a consent page: AADSTS65001.
pub fn consent_missing(
    app: &Application,
    missing: &[OfferedPermission],
    issuer_base: &str,
    dir: &Directory,
) -> Denial {
    let names: Vec<&str> = missing.iter().map(|m| m.value.as_str()).collect();
    Denial::new(
        Cause::ConsentMissing,
        WireError::Token(AadError::new(400, "invalid_grant", 65001, format!("The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.", app.app_id, app.display_name)).with_suberror("consent_required")),
    )
    .fact("client", format!("{} ({})", app.display_name, app.app_id))
    .fact("not consented", names.join(" "))
    .fix("Send an interactive authorization request (the user consents on the consent page), or have an admin grant consent for all users:")
    .fix_link("Admin consent for the organisation", admin_consent_url(issuer_base, dir.tenant.id, app.app_id))
}

/// An interactive request for an admin-only permission by a non-admin: the 90094 page.
pub fn admin_consent_required(
    app: &Application,
    missing: &[OfferedPermission],
    user: &User,
    issuer_base: &str,
    dir: &Directory,
) -> Denial {
    let admin_only: Vec<&str> = missing
        .iter()
        .filter(|m| m.admin_consent_required)
        .map(|m| m.value.as_str())
        .collect();
    Denial::new(
        Cause::AdminConsentRequired,
        WireError::Page(AadError::new(200, "access_denied", 90094, "Admin consent is required for the permissions requested by this application. An admin consent request may be sent to the admin.")),
    )
    .fact("user", user.user_principal_name.clone())
    .fact("user is admin", "no (needs Global Administrator, Privileged Role Administrator, Application Administrator or Cloud Application Administrator)")
    .fact("admin-only permissions", admin_only.join(" "))
    .fix("Ask an administrator to grant consent for the organisation:")
    .fix_link("Admin consent URL", admin_consent_url(issuer_base, dir.tenant.id, app.app_id))
    .fix("Or request only permissions that users can consent to (e.g. User.Read instead of User.Read.All).")
}

/// The user pressed Cancel on the consent page.
pub fn consent_declined() -> Denial {
    Denial::new(
        Cause::ConsentDeclined,
        WireError::Redirect(AadError::new(
            302,
            "consent_required",
            65004,
            "User declined to consent to access the app.",
        )),
    )
    .fact("consent page", "Cancel pressed")
    .fix("Ask the user to accept, or ask an admin to consent for the organisation.")
}

pub fn redirect_uri_mismatch(app: &Application, redirect_uri: &str) -> Denial {
    let registered: Vec<&str> = app.all_redirect_uris().map(|(u, _)| u).collect();
    Denial::new(
        Cause::RedirectUriMismatch,
        WireError::Page(AadError::new(400, "invalid_request", 50011, format!("The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.", app.app_id))),
    )
    .fact("redirect_uri sent", redirect_uri)
    .fact("registered", registered.join(", "))
    .fix("Register this exact redirect URI on the app (web, spa or publicClient), or send one that is registered; the match is exact (scheme, host, port, path, trailing slash).")
}

/// Exact match, except that loopback IP/localhost redirects of public clients may use any port (RFC 8252 §7.3).
pub fn redirect_uri_registered(app: &Application, redirect_uri: &str) -> bool {
    app.all_redirect_uris().any(|(registered, kind)| {
        registered == redirect_uri
            || (kind == gatehouse_model::RedirectKind::PublicClient
                && loopback_any_port(registered, redirect_uri))
    })
}

fn loopback_any_port(registered: &str, sent: &str) -> bool {
    let strip = |u: &str| -> Option<(String, String)> {
        let rest = u.strip_prefix("http://")?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (rest.get(..i)?, rest.get(i..)?),
            None => (rest, ""),
        };
        let host = match authority.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => authority,
        };
        if ["127.0.0.1", "localhost", "[::1]"].contains(&host) {
            Some((host.to_owned(), path.to_owned()))
        } else {
            None
        }
    };
    match (strip(registered), strip(sent)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ports() {
        assert!(loopback_any_port(
            "http://localhost",
            "http://localhost:53211"
        ));
        assert!(loopback_any_port(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:9/cb"
        ));
        assert!(!loopback_any_port(
            "http://localhost/cb",
            "http://localhost:9/cb2"
        ));
        assert!(!loopback_any_port(
            "http://localhost",
            "http://localhost.evil.test"
        ));
        assert!(!loopback_any_port(
            "https://app.example.com",
            "https://app.example.com:8443"
        ));
    }

    #[test]
    fn pkce_rfc7636_appendix_b() {
        assert!(pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx"
        ));
        assert!(!pkce_matches("x", "short"));
    }
}
