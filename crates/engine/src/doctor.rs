//! `gatehouse doctor`: the same rules, run offline on a real token, request and
//! response. The directory is unknown, so it is reconstructed from what the token
//! says (tenant, user or app, `wids`), and the engine's Graph rules run against it.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gatehouse_catalog::Catalog;
use gatehouse_model::ids::{MICROSOFT_GRAPH_APP_ID, roles, skus};
use gatehouse_model::*;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::cause::Cause;
use crate::denial::{Denial, Fact, Step};
use crate::graph::{self, RequestFacts, TokenFacts};

#[derive(Debug, Clone)]
pub enum TokenInput {
    Absent,
    /// As sent: may be empty or not a JWT at all.
    Raw(String),
    /// Header and claims given directly (a case file).
    Parsed {
        header: Map<String, Value>,
        claims: Map<String, Value>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signature {
    NotChecked,
    Valid,
    Invalid(String),
}

#[derive(Debug, Clone, Default)]
pub struct RequestInput {
    pub method: String,
    pub url: String,
    pub body: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct ResponseInput {
    pub status: Option<u16>,
    pub www_authenticate: Option<String>,
    pub body: Option<Value>,
    /// A token-endpoint error: JSON body or an `AADSTS…` message.
    pub token_endpoint_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub token: TokenInput,
    pub signature: Signature,
    pub request: Option<RequestInput>,
    pub response: Option<ResponseInput>,
    pub now: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Info,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allowed,
    Denied,
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    /// A guide section, or `allowed`.
    pub guide: String,
    /// Our stable cause code (null when allowed or unknown).
    pub cause: Option<&'static str>,
    pub summary: String,
    pub signature: Signature,
    pub token: Option<TokenSummary>,
    pub checks: Vec<Check>,
    pub evidence: Vec<Fact>,
    pub fix: Vec<Step>,
}

/// The token, described without its signature.
#[derive(Debug, Clone, Serialize)]
pub struct TokenSummary {
    pub version: String,
    pub kind: &'static str,
    pub aud: String,
    pub iss: String,
    pub tid: String,
    pub appid: String,
    pub oid: String,
    pub scp: Option<String>,
    pub roles: Vec<String>,
    pub wids: Vec<String>,
    pub exp: Option<i64>,
    pub xms_cc: Vec<String>,
    pub acrs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error("nothing to judge: give a token, a request, or an error")]
    NothingToJudge,
}

fn check(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
    }
}

fn strs(claims: &Map<String, Value>, k: &str) -> Vec<String> {
    crate::strings(claims.get(k))
}

fn s(claims: &Map<String, Value>, k: &str) -> String {
    claims
        .get(k)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// Which API a URL calls.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Api {
    MicrosoftGraph,
    AadGraph,
    Outlook,
    SharePoint,
    Other(String),
}

fn api_of(url: &str) -> (Api, String) {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let (host, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    };
    let host = host.to_ascii_lowercase();
    let api = if host.starts_with("graph.microsoft.")
        || host == "graph.microsoft.com"
        || host.starts_with("localhost")
    {
        Api::MicrosoftGraph
    } else if host == "graph.windows.net" {
        Api::AadGraph
    } else if host.starts_with("outlook.office") {
        Api::Outlook
    } else if host.ends_with(".sharepoint.com") {
        Api::SharePoint
    } else {
        Api::Other(host.clone())
    };
    (api, path.to_owned())
}

fn aud_matches(api: &Api, aud: &str) -> bool {
    let a = aud.trim_end_matches('/').to_ascii_lowercase();
    match api {
        Api::MicrosoftGraph => graph::is_graph_audience(aud),
        Api::AadGraph => {
            a == "https://graph.windows.net" || a == "00000002-0000-0000-c000-000000000000"
        }
        Api::Outlook => {
            a.starts_with("https://outlook.office") || a == "00000002-0000-0ff1-ce00-000000000000"
        }
        Api::SharePoint => {
            a.ends_with(".sharepoint.com") || a == "00000003-0000-0ff1-ce00-000000000000"
        }
        Api::Other(host) => {
            // A Microsoft Graph or Azure AD Graph token is never for someone else's API.
            let microsoft = graph::is_graph_audience(aud)
                || a == "https://graph.windows.net"
                || a == "00000002-0000-0000-c000-000000000000";
            !microsoft
                && (a.contains(host.as_str())
                    || a.parse::<Uuid>().is_ok()
                    || a.starts_with("api://"))
        }
    }
}

/// Reconstruct the part of the directory the token speaks for.
fn directory_from_token(
    claims: &Map<String, Value>,
    target_ids: &[String],
    response_says_no_mailbox: bool,
) -> Directory {
    let tid: Uuid = s(claims, "tid").parse().unwrap_or_default();
    let mut dir = Directory::empty(Tenant {
        id: tid,
        display_name: "the token's tenant".into(),
        domain: "tenant.onmicrosoft.com".into(),
    });
    dir.subscribed_skus = tenant_file::known_skus();
    let licences = if response_says_no_mailbox {
        Vec::new()
    } else {
        vec![AssignedLicense {
            sku_id: skus::SPE_E3,
            disabled_plans: Vec::new(),
        }]
    };
    let graph_sp = ServicePrincipal {
        id: Uuid::from_u128(3),
        app_id: MICROSOFT_GRAPH_APP_ID,
        display_name: "Microsoft Graph".into(),
        app_owner_organization_id: None,
        service_principal_names: vec![],
        app_roles: vec![],
        oauth2_permission_scopes: vec![],
        app_role_assignment_required: false,
        account_enabled: true,
        service_principal_type: "Application".into(),
    };
    dir.service_principals.push(graph_sp);
    let oid: Uuid = s(claims, "oid").parse().unwrap_or_default();
    let wids: Vec<Uuid> = strs(claims, "wids")
        .iter()
        .filter_map(|w| w.parse().ok())
        .filter(|w| *w != roles::DEFAULT_MEMBER_USER)
        .collect();
    let app_only = s(claims, "idtyp") == "app"
        || (claims.get("scp").is_none() && s(claims, "idtyp") != "user");
    let user = |id: Uuid, upn: String, licensed: bool| User {
        id,
        user_principal_name: upn,
        display_name: "user".into(),
        given_name: None,
        surname: None,
        mail: None,
        account_enabled: true,
        assigned_licenses: if licensed {
            licences.clone()
        } else {
            vec![AssignedLicense {
                sku_id: skus::SPE_E3,
                disabled_plans: vec![],
            }]
        },
        gatehouse_password_hash: None,
        sign_in_sessions_valid_from: None,
        gatehouse_totp_secret: None,
    };
    if app_only {
        let app_id: Uuid = s(claims, "appid")
            .parse()
            .or_else(|_| s(claims, "azp").parse())
            .unwrap_or_default();
        dir.service_principals.push(ServicePrincipal {
            id: oid,
            app_id,
            display_name: s(claims, "app_displayname"),
            app_owner_organization_id: None,
            service_principal_names: vec![],
            app_roles: vec![],
            oauth2_permission_scopes: vec![],
            app_role_assignment_required: false,
            account_enabled: true,
            service_principal_type: "Application".into(),
        });
    } else {
        let upn = [
            s(claims, "upn"),
            s(claims, "preferred_username"),
            s(claims, "unique_name"),
        ]
        .into_iter()
        .find(|x| !x.is_empty())
        .unwrap_or_default();
        dir.users.push(user(oid, upn, true));
    }
    for (i, w) in wids.iter().enumerate() {
        dir.role_assignments.push(DirectoryRoleAssignment {
            id: Uuid::from_u128(100 + i as u128),
            principal_id: oid,
            role_definition_id: *w,
            directory_scope_id: "/".into(),
        });
    }
    // Other users the path names exist, as ordinary licensed members, unless the response says otherwise.
    for (i, t) in target_ids.iter().enumerate() {
        let id: Uuid = t.parse().unwrap_or(Uuid::from_u128(1000 + i as u128));
        if id != oid {
            dir.users.push(user(
                id,
                if t.contains('@') {
                    t.clone()
                } else {
                    format!("{id}@tenant")
                },
                true,
            ));
        }
    }
    if response_says_no_mailbox {
        for u in &mut dir.users {
            u.assigned_licenses.clear();
        }
    }
    dir
}

/// AADSTS codes of the reference: cause, what it means, what to do.
fn aadsts(code: u32) -> Option<(Cause, &'static str, &'static str)> {
    use Cause::*;
    Some(match code {
        65001 => (
            ConsentMissing,
            "The user or an administrator has not consented to the permissions this app asks for.",
            "Send an interactive request so the user consents (acquire_token_interactive / auth code flow), or have an admin grant consent: {consent_url}",
        ),
        65004 => (
            ConsentDeclined,
            "The user pressed Cancel on the consent page.",
            "Ask the user to accept, or have an admin consent for the organisation: {consent_url}",
        ),
        90094 | 90095 => (
            AdminConsentRequired,
            "A permission requested needs admin consent and the user is not an administrator.",
            "Have an administrator grant consent for the organisation: {consent_url}; or request only user-consentable permissions.",
        ),
        50076 => (
            CaMfaRequired,
            "A conditional access policy requires MFA and this sign-in did not do it.",
            "Go interactive and pass the returned claims (MSAL: claims_challenge=<claims>) so the user completes MFA; refresh and password grants can't.",
        ),
        50079 => (
            CaMfaRegistrationRequired,
            "A conditional access policy requires MFA and the user has not registered an authenticator.",
            "Sign the user in interactively so they register MFA, then retry with the returned claims.",
        ),
        53000..=53003 => (
            CaBlocked,
            "Conditional access blocks this sign-in (or requires a compliant/joined device or approved app).",
            "Check the sign-in logs for the policy named in capolids; an administrator must exclude the user/app or the device must comply.",
        ),
        50173 | 700082 => (
            GrantRevoked,
            "The refresh token was revoked or expired (password change, revokeSignInSessions, 90 days inactive).",
            "Sign the user in again; clear the cached account's refresh token.",
        ),
        50105 => (
            AppAssignmentRequired,
            "The resource requires assignment and the user/app is not assigned to it.",
            "Assign the user (or the app) to the enterprise application (appRoleAssignedTo), or turn off 'Assignment required'.",
        ),
        700016 | 70001 | 700011 => (
            ClientUnknown,
            "The client id is not an application in this tenant (or is disabled).",
            "Check the client id and the tenant in the authority; for a multi-tenant app, an admin must consent in this tenant first.",
        ),
        7000215 => (
            ClientSecretInvalid,
            "The client secret is wrong (often the secret's ID was sent instead of its value).",
            "Send the secret's Value (shown once when created), or create a new secret.",
        ),
        7000222 => (
            ClientSecretExpired,
            "The client secret has expired.",
            "Create a new client secret (or use a certificate) and update the app's configuration.",
        ),
        7000218 | 7000216 => (
            ClientCredentialMissing,
            "A confidential client sent neither client_secret nor client_assertion.",
            "Send the client secret/certificate; or, for a public client, enable 'Allow public client flows'.",
        ),
        700025 => (
            PublicClientSentCredential,
            "A public client sent a secret or assertion.",
            "Don't send credentials from a public client, or register it as confidential.",
        ),
        50011 => (
            RedirectUriMismatch,
            "The redirect URI is not registered on the app (exact match).",
            "Register this exact redirect URI on the app registration (scheme, host, port, path, trailing slash).",
        ),
        70011 | 28002 | 28003 | 700022 | 700023 => (
            ScopeInvalid,
            "The scope parameter is not valid (empty, malformed, or several resources).",
            "Send scopes for one resource: e.g. https://graph.microsoft.com/User.Read, or https://graph.microsoft.com/.default for app-only.",
        ),
        28000 => (
            ScopeMultipleResources,
            "The scopes name more than one resource.",
            "Request one resource per token.",
        ),
        1002012 => (
            ScopeNotDefaultForAppOnly,
            "Client credentials were used with a named scope.",
            "Request https://graph.microsoft.com/.default; an app-only token carries all granted application permissions.",
        ),
        70008 => (
            GrantExpired,
            "The authorization code or refresh token expired.",
            "Redeem codes within 10 minutes; sign in again for a new refresh token.",
        ),
        54005 => (
            CodeAlreadyRedeemed,
            "The authorization code was already redeemed.",
            "Redeem each code once; use the refresh token (acquire_token_silent) for new tokens.",
        ),
        50126 | 50056 => (
            UserBadPassword,
            "Invalid user name or password.",
            "Check the password; federated or MFA-only accounts can't use ROPC.",
        ),
        50034 => (
            UserNotFound,
            "The user does not exist in this tenant.",
            "Check the user name and the tenant in the authority.",
        ),
        50020 => (
            UserFromOtherTenant,
            "The user is from another tenant and is not a guest here.",
            "Invite the user as a guest, or sign in to their home tenant.",
        ),
        50053 => (
            UserLockedOut,
            "The account is locked after repeated wrong passwords (or sign-ins from a malicious IP).",
            "Wait for the lockout to end, then use the right password.",
        ),
        50055 => (
            UserPasswordExpired,
            "The user's password has expired.",
            "The user must change the password interactively.",
        ),
        50057 => (
            UserDisabled,
            "The user account is disabled.",
            "An administrator must enable the account (accountEnabled true).",
        ),
        50058 | 700020 | 50072 | 50074 | 50078 | 50131 | 530035 => (
            InteractionRequired,
            "The request needs user interaction (no session, MFA or registration interrupt, security defaults).",
            "Retry interactively (without prompt=none).",
        ),
        9002313 => (
            GrantMalformed,
            "The code or refresh token is malformed (truncated, double-encoded, or from another app).",
            "Send the code/refresh token exactly as received, once URL-decoded.",
        ),
        500011 => (
            ResourceNotFound,
            "The resource in the scope does not exist in this tenant.",
            "Fix the resource part of the scope (application ID URI); for a multi-tenant API, an admin must consent to it in this tenant.",
        ),
        650057 => (
            ResourceNotInRequiredAccess,
            "The app asks for a resource that its registration does not list under API permissions.",
            "Add the API and permission to the app registration's required permissions, then consent.",
        ),
        650053 => (
            ScopeUnknownPermission,
            "The scope names a permission the resource does not offer.",
            "Check the permission name against the API's published scopes.",
        ),
        650056 | 650052 => (
            ConsentMissing,
            "The app is misconfigured or not consented for the resource in this tenant.",
            "Add the permissions to the app registration and grant admin consent: {consent_url}",
        ),
        90009 | 90008 => (
            TokenForItself,
            "The app requested a token for itself using its URI.",
            "Request the token by the app's GUID (api://{client-id}/.default or {client-id}/.default).",
        ),
        900144 => (
            RequestMissingParameter,
            "A required parameter is missing from the request body.",
            "Send the named parameter in the x-www-form-urlencoded body.",
        ),
        70003 => (
            GrantTypeUnsupported,
            "The grant type is not supported for this app/endpoint.",
            "Use a supported grant type.",
        ),
        70043 => (
            GrantExpired,
            "The refresh token expired because of a sign-in frequency policy.",
            "Sign the user in again interactively.",
        ),
        90002 | 901002 | 50059 => (
            TenantUnknown,
            "The tenant in the authority does not exist, or none was given for an app-only flow.",
            "Use the tenant GUID or domain in the authority (not /common for client credentials).",
        ),
        501481 | 50148 => (
            PkceMismatch,
            "The code_verifier does not match the code_challenge.",
            "Send the code_verifier of the same authorization request (keep it per login attempt).",
        ),
        _ => return None,
    })
}

fn codes_in(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("AADSTS") {
        let after = rest.get(i + 6..).unwrap_or("");
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(c) = digits.parse() {
            out.push(c);
        }
        rest = after;
    }
    if out.is_empty()
        && let Ok(v) = serde_json::from_str::<Value>(text)
    {
        out = v
            .get("error_codes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_u64())
                    .filter_map(|c| u32::try_from(c).ok())
                    .collect()
            })
            .unwrap_or_default();
    }
    out
}

/// The claims of a `WWW-Authenticate` challenge, decoded.
pub fn decode_challenge(www: &str) -> Option<String> {
    let b64 = www.split("claims=\"").nth(1)?.split('"').next()?;
    let bytes = STANDARD
        .decode(b64)
        .or_else(|_| URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')))
        .ok()?;
    String::from_utf8(bytes).ok()
}

fn finish(mut r: Report, d: Option<Denial>) -> Report {
    if let Some(d) = d {
        r.verdict = Verdict::Denied;
        r.guide = d.guide.as_str().to_owned();
        r.cause = Some(d.cause.code());
        r.summary = d.cause.summary().to_owned();
        r.evidence.extend(d.evidence);
        r.fix.extend(d.fix);
    }
    r
}

pub fn diagnose(case: &Case) -> Result<Report, DoctorError> {
    let mut report = Report {
        verdict: Verdict::Unknown,
        guide: "allowed".into(),
        cause: None,
        summary: String::new(),
        signature: case.signature.clone(),
        token: None,
        checks: Vec::new(),
        evidence: Vec::new(),
        fix: Vec::new(),
    };
    let response = case.response.clone().unwrap_or_default();

    // A token-endpoint error names its cause directly.
    if let Some(err) = &response.token_endpoint_error {
        let codes = codes_in(err);
        let Some(code) = codes
            .iter()
            .copied()
            .find(|c| aadsts(*c).is_some())
            .or(codes.first().copied())
        else {
            report.checks.push(check(
                "token endpoint error",
                Status::Warn,
                "no AADSTS code found in the error",
            ));
            return Ok(report);
        };
        let Some((cause, meaning, todo)) = aadsts(code) else {
            report.checks.push(check(
                "token endpoint error",
                Status::Warn,
                format!("AADSTS{code} is not in Gatehouse's catalogue"),
            ));
            report.verdict = Verdict::Denied;
            return Ok(report);
        };
        let (tid, appid) = match &case.token {
            TokenInput::Parsed { claims, .. } => (s(claims, "tid"), s(claims, "appid")),
            _ => (String::new(), String::new()),
        };
        let consent_url = format!(
            "https://login.microsoftonline.com/{}/v2.0/adminconsent?client_id={}&scope=https://graph.microsoft.com/.default",
            if tid.is_empty() { "{tenant}" } else { &tid },
            if appid.is_empty() {
                "{client-id}"
            } else {
                &appid
            }
        );
        report.checks.push(check(
            "token endpoint error",
            Status::Fail,
            format!("AADSTS{code}: {meaning}"),
        ));
        let mut d = Denial::new(
            cause,
            crate::wire::WireError::Token(crate::wire::AadError::new(400, "error", code, meaning)),
        )
        .fact("AADSTS", code.to_string())
        .fix(todo.replace("{consent_url}", &consent_url));
        if let Some(claims) = serde_json::from_str::<Value>(err)
            .ok()
            .and_then(|v| v.get("claims").and_then(Value::as_str).map(str::to_owned))
        {
            d = d
                .fact("claims", claims.clone())
                .fix(format!("Send back claims={claims}"));
        }
        return Ok(finish(report, Some(d)));
    }

    // The token.
    let (header, claims) = match &case.token {
        TokenInput::Absent => {
            report
                .checks
                .push(check("token present", Status::Fail, "no token"));
            if case.request.is_none() {
                return Err(DoctorError::NothingToJudge);
            }
            let d = graph::authenticate(
                &Directory::empty(Tenant {
                    id: Uuid::nil(),
                    display_name: String::new(),
                    domain: String::new(),
                }),
                TokenFacts::Missing,
                false,
                "",
                case.now,
            )
            .err();
            return Ok(finish(report, d));
        }
        TokenInput::Raw(raw) => match gatehouse_decode(raw) {
            Some((h, c)) => (h, c),
            None => {
                let empty = raw.trim().is_empty();
                report.checks.push(check(
                    "well-formed JWT",
                    Status::Fail,
                    if empty {
                        "the token is empty"
                    } else {
                        "not a compact JWS (header.payload.signature)"
                    },
                ));
                let facts = if empty {
                    TokenFacts::Missing
                } else {
                    TokenFacts::NotJwt
                };
                let d = graph::authenticate(
                    &Directory::empty(Tenant {
                        id: Uuid::nil(),
                        display_name: String::new(),
                        domain: String::new(),
                    }),
                    facts,
                    false,
                    "",
                    case.now,
                )
                .err();
                return Ok(finish(report, d));
            }
        },
        TokenInput::Parsed { header, claims } => (header.clone(), claims.clone()),
    };
    report.checks.push(check(
        "well-formed JWT",
        Status::Pass,
        format!(
            "alg {}",
            header.get("alg").and_then(Value::as_str).unwrap_or("?")
        ),
    ));
    report.checks.push(match &case.signature {
        Signature::NotChecked => check("signature", Status::Info, "not checked (no --jwks given)"),
        Signature::Valid => check("signature", Status::Pass, "verified with the given JWKS"),
        Signature::Invalid(r) => check("signature", Status::Fail, r.clone()),
    });
    let ver = s(&claims, "ver");
    let iss = s(&claims, "iss");
    let tid = s(&claims, "tid");
    report.checks.push(check(
        "version",
        Status::Info,
        if ver.is_empty() {
            "unknown".to_owned()
        } else {
            format!("v{ver}")
        },
    ));
    let iss_ok = iss == format!("https://sts.windows.net/{tid}/")
        || iss.ends_with(&format!("/{tid}/v2.0"))
        || iss.contains(&tid);
    report.checks.push(check(
        "tenant and issuer",
        if iss_ok { Status::Pass } else { Status::Fail },
        format!("iss {iss}, tid {tid}"),
    ));
    let app_only = s(&claims, "idtyp") == "app"
        || (claims.get("scp").is_none() && s(&claims, "idtyp") != "user");
    report.token = Some(TokenSummary {
        version: ver.clone(),
        kind: if app_only { "app-only" } else { "delegated" },
        aud: match claims.get("aud") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            _ => s(&claims, "aud"),
        },
        iss: iss.clone(),
        tid: tid.clone(),
        appid: [s(&claims, "appid"), s(&claims, "azp")]
            .into_iter()
            .find(|x| !x.is_empty())
            .unwrap_or_default(),
        oid: s(&claims, "oid"),
        scp: claims.get("scp").and_then(Value::as_str).map(str::to_owned),
        roles: strs(&claims, "roles"),
        wids: strs(&claims, "wids"),
        exp: claims.get("exp").and_then(Value::as_i64),
        xms_cc: strs(&claims, "xms_cc"),
        acrs: strs(&claims, "acrs"),
    });
    report.checks.push(check(
        "token type",
        Status::Info,
        if app_only {
            "app-only (roles; by idtyp/scp)"
        } else {
            "delegated (scp)"
        },
    ));
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let expired = exp + graph::CLOCK_SKEW <= case.now;
    report.checks.push(check(
        "lifetime",
        if expired { Status::Fail } else { Status::Pass },
        format!(
            "exp {exp}, now {}{}",
            case.now,
            if expired { " (expired)" } else { "" }
        ),
    ));
    if !report.token.as_ref().is_some_and(|t| t.xms_cc.is_empty()) {
        report.checks.push(check(
            "client capabilities",
            Status::Info,
            "xms_cc cp1: CAE-capable, claims challenges are sent to this client",
        ));
    }
    if let Some(www) = &response.www_authenticate
        && let Some(challenge) = decode_challenge(www)
    {
        report
            .checks
            .push(check("claims challenge", Status::Fail, challenge.clone()));
        let cause = if challenge.contains("\"acrs\"") {
            Cause::AuthContextRequired
        } else {
            Cause::CaeRevoked
        };
        let d = Denial::new(cause, crate::wire::WireError::Graph(crate::wire::GraphError::new(401, "InvalidAuthenticationToken", "claims challenge")))
            .fact("claims challenge", challenge.clone())
            .fix(format!("Acquire a new token passing claims={challenge} (MSAL claims_challenge=, azure-identity get_token(claims=...)); declare client capability CP1."));
        return Ok(finish(report, Some(d)));
    }

    let expired_denial = || {
        Denial::new(Cause::GraphTokenExpired, crate::wire::WireError::Graph(crate::wire::GraphError::new(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")))
            .fact("exp", exp.to_string())
            .fact("now", case.now.to_string())
            .fix("Get a new token (MSAL acquire_token_silent refreshes it); never reuse an access token past expires_in.")
    };
    let Some(req) = &case.request else {
        if expired {
            return Ok(finish(report, Some(expired_denial())));
        }
        report.checks.push(check(
            "request",
            Status::Skipped,
            "no request given: only the token was judged",
        ));
        return Ok(report);
    };
    let (api, path) = api_of(&req.url);
    let aud = report
        .token
        .as_ref()
        .map(|t| t.aud.clone())
        .unwrap_or_default();
    let aud_ok = aud_matches(&api, &aud);
    report.checks.push(check(
        "audience",
        if aud_ok { Status::Pass } else { Status::Fail },
        format!("aud {aud} for {api:?}"),
    ));
    if expired {
        return Ok(finish(report, Some(expired_denial())));
    }
    let www_says_audience = response.www_authenticate.as_deref().is_some_and(|w| {
        let w = w.to_ascii_lowercase();
        w.contains("audience") && w.contains("invalid")
    });
    if api != Api::MicrosoftGraph {
        if !aud_ok || www_says_audience {
            let d = Denial::new(Cause::WrongApiForToken, crate::wire::WireError::Graph(crate::wire::GraphError::new(401, "InvalidAuthenticationToken", "Invalid audience")))
                .fact("aud", aud.clone())
                .fact("API called", req.url.clone())
                .fix(match api {
                    Api::AadGraph => "Request https://graph.windows.net/.default for Azure AD Graph (retired): better, call Microsoft Graph with a https://graph.microsoft.com token.".to_owned(),
                    _ => "Request a token whose scope names this API (its application ID URI + /.default or a permission).".to_owned(),
                });
            return Ok(finish(report, Some(d)));
        }
        report.verdict = Verdict::Unknown;
        report.checks.push(check(
            "permissions",
            Status::Skipped,
            "not a Microsoft Graph call: Gatehouse knows Graph's permission table only",
        ));
        return Ok(report);
    }
    let body_keys: Vec<String> = req
        .body
        .as_ref()
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let graph_path = graph::graph_path(&path).to_owned();
    let targets: Vec<String> = {
        let mut segs = graph_path.trim_start_matches('/').split('/');
        match (segs.next(), segs.next()) {
            (Some(u), Some(id)) if u.eq_ignore_ascii_case("users") => vec![
                percent_encoding::percent_decode_str(id)
                    .decode_utf8_lossy()
                    .into_owned(),
            ],
            _ => Vec::new(),
        }
    };
    let no_mailbox = response
        .body
        .as_ref()
        .and_then(|b| b.pointer("/error/code"))
        .and_then(Value::as_str)
        == Some("MailboxNotEnabledForRESTAPI");
    let dir = directory_from_token(&claims, &targets, no_mailbox);
    let issuer_v2 = format!("https://login.microsoftonline.com/{tid}/v2.0");
    let facts = RequestFacts { body_keys };
    let decided = graph::authenticate(
        &dir,
        TokenFacts::Verified(claims.clone()),
        false,
        &issuer_v2,
        case.now,
    )
    .and_then(|call| {
        let kind = call.kind();
        let accepted = Catalog::embedded().accepted(&req.method, &graph_path, kind);
        let names: Vec<String> = accepted
            .iter()
            .map(|a| {
                format!(
                    "{}{}",
                    a.permission,
                    if a.least_privileged {
                        " (least privileged)"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        report.checks.push(check(
            "permissions accepted",
            Status::Info,
            if names.is_empty() {
                format!("none for {kind:?} tokens")
            } else {
                names.join(", ")
            },
        ));
        graph::authorize(
            &dir,
            &call,
            &req.method,
            &graph_path,
            &facts,
            "https://login.microsoftonline.com",
        )
        .map(|()| call)
    });
    let denial = match decided {
        Ok(_) => {
            report.checks.push(check(
                "authorization",
                Status::Pass,
                "the token carries a permission this method and path accept",
            ));
            // What Graph answered may still say no, for reasons the token can't show.
            match response.status {
                Some(st) if st >= 400 => {
                    let code = response
                        .body
                        .as_ref()
                        .and_then(|b| b.pointer("/error/code"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    report.checks.push(check("response", Status::Warn, format!("Graph answered {st} {code} although the token's permissions allow this call")));
                    let message = response
                        .body
                        .as_ref()
                        .and_then(|b| b.pointer("/error/message"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let cause = if st == 401 && message.contains("Continuous access evaluation") {
                        Cause::CaeRevoked
                    } else if st == 401 && message.contains("expired") {
                        Cause::GraphTokenExpired
                    } else if st == 401 {
                        Cause::GraphTokenSignature
                    } else if code == "MailboxNotEnabledForRESTAPI" {
                        Cause::UserUnlicensed
                    } else if body_keys_password(&facts) && app_only {
                        Cause::AppDirectoryRoleMissing
                    } else if app_only {
                        Cause::AppPermissionNotConsented
                    } else {
                        Cause::UserRoleMissing
                    };
                    let d = Denial::new(cause, crate::wire::WireError::Graph(crate::wire::GraphError::new(st, code, "")))
                        .fact("response", format!("{st} {code}"))
                        .fix(if app_only { "The app's service principal may need a directory role for this operation (e.g. User Administrator), or the permission was granted after this token was issued: get a new token." } else { "Delegated calls are limited to what the signed-in user may do: the user needs a directory role (or licence) for this operation." });
                    Some(d)
                }
                _ => {
                    report.verdict = Verdict::Allowed;
                    report.summary = "The request would be allowed.".into();
                    None
                }
            }
        }
        Err(d)
            if d.cause == Cause::PermissionMissing
                && app_only
                && report.token.as_ref().is_some_and(|t| t.roles.is_empty()) =>
        {
            // No roles claim at all: no application permission was ever granted to the app.
            let appid = report
                .token
                .as_ref()
                .map(|t| t.appid.clone())
                .unwrap_or_default();
            let mut n = Denial::new(Cause::AppPermissionNotConsented, d.wire.clone())
                .fact("roles", "absent: the app holds no granted application permission")
                .fix("Add the application permission to the app registration and grant admin consent (only then does a client-credentials token carry roles); then get a new token.")
                .fix_link("Admin consent URL", format!("https://login.microsoftonline.com/{tid}/v2.0/adminconsent?client_id={appid}&scope=https://graph.microsoft.com/.default"));
            n.evidence.extend(d.evidence);
            Some(n)
        }
        Err(d) => Some(d),
    };
    Ok(finish(report, denial))
}

fn body_keys_password(f: &RequestFacts) -> bool {
    f.body_keys
        .iter()
        .any(|k| k.eq_ignore_ascii_case("passwordProfile"))
}

fn gatehouse_decode(raw: &str) -> Option<(Map<String, Value>, Map<String, Value>)> {
    let t = raw.trim();
    let t = t.strip_prefix("Bearer ").unwrap_or(t).trim();
    let mut parts = t.split('.');
    let (h, c) = (parts.next()?, parts.next()?);
    parts.next()?;
    let dec = |p: &str| -> Option<Map<String, Value>> {
        match serde_json::from_slice::<Value>(
            &URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok()?,
        )
        .ok()?
        {
            Value::Object(m) => Some(m),
            _ => None,
        }
    };
    Some((dec(h)?, dec(c)?))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(c: Value) -> TokenInput {
        TokenInput::Parsed {
            header: Map::new(),
            claims: c.as_object().cloned().unwrap_or_default(),
        }
    }

    fn graph_case(claims: Value, method: &str, url: &str) -> Case {
        Case {
            token: parsed(claims),
            signature: Signature::NotChecked,
            request: Some(RequestInput {
                method: method.into(),
                url: url.into(),
                body: None,
            }),
            response: None,
            now: 1_700_000_000,
        }
    }

    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn app_token(roles: &[&str]) -> Value {
        json!({"aud": "https://graph.microsoft.com", "iss": format!("https://sts.windows.net/{TID}/"), "tid": TID, "idtyp": "app", "appid": "11111111-2222-3333-4444-555555555555", "oid": "99999999-2222-3333-4444-555555555555", "roles": roles, "exp": 1_700_003_600, "ver": "1.0"})
    }

    #[test]
    fn me_with_app_token() {
        let r = diagnose(&graph_case(
            app_token(&["User.Read.All"]),
            "GET",
            "https://graph.microsoft.com/v1.0/me",
        ))
        .unwrap_or_else(|_| unreachable_report());
        assert_eq!(r.cause, Some("GH-ME-APP-ONLY"));
        assert_eq!(r.verdict, Verdict::Denied);
        assert_eq!(r.guide, "token-type");
    }

    #[test]
    fn allowed_with_the_right_role() {
        let r = diagnose(&graph_case(
            app_token(&["User.Read.All"]),
            "GET",
            "https://graph.microsoft.com/v1.0/users/adele@contoso.com",
        ))
        .unwrap_or_else(|_| unreachable_report());
        assert_eq!(r.verdict, Verdict::Allowed, "{:?}", r.checks);
    }

    #[test]
    fn aad_graph_token_at_graph() {
        let mut t = app_token(&["Directory.Read.All"]);
        t["aud"] = json!("https://graph.windows.net");
        let r = diagnose(&graph_case(
            t,
            "GET",
            "https://graph.microsoft.com/v1.0/users",
        ))
        .unwrap_or_else(|_| unreachable_report());
        assert_eq!(r.cause, Some("GH-AUD-WRONG-RESOURCE"));
    }

    #[test]
    fn token_endpoint_error_by_code() {
        let case = Case {
            token: TokenInput::Absent,
            signature: Signature::NotChecked,
            request: None,
            response: Some(ResponseInput {
                token_endpoint_error: Some("AADSTS7000215: Invalid client secret provided.".into()),
                ..Default::default()
            }),
            now: 0,
        };
        assert_eq!(
            diagnose(&case).map(|r| r.cause).ok().flatten(),
            Some("GH-CLIENT-SECRET-INVALID")
        );
    }

    fn unreachable_report() -> Report {
        Report {
            verdict: Verdict::Unknown,
            guide: String::new(),
            cause: None,
            summary: String::new(),
            signature: Signature::NotChecked,
            token: None,
            checks: vec![],
            evidence: vec![],
            fix: vec![],
        }
    }
}
