//! Exactly what Entra sends when it says no: status, `error`, AADSTS codes, the
//! description lines with Trace ID / Correlation ID / Timestamp, `error_uri`.

use serde::Serialize;
use time::OffsetDateTime;
use time::macros::format_description;
use uuid::Uuid;

/// Per-request facts every rendering needs. Time is passed in, never read here.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub now: OffsetDateTime,
    pub trace_id: Uuid,
    /// The client's `client-request-id` when it sent one, else a fresh id.
    pub correlation_id: Uuid,
    /// `host[:port]` the client used, for `error_uri` (Entra mirrors its login host).
    pub login_host: String,
}

impl RequestContext {
    /// `2023-05-06 06:03:00Z`, Entra's timestamp shape.
    pub fn entra_timestamp(&self) -> String {
        let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
        self.now
            .to_offset(time::UtcOffset::UTC)
            .format(&fmt)
            .unwrap_or_default()
    }

    pub fn unix(&self) -> i64 {
        self.now.unix_timestamp()
    }
}

/// A token-endpoint error (JSON) or an authorize-endpoint error (redirect or page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// JSON body at the token or device-code endpoint.
    Token(AadError),
    /// Sent back to the registered redirect URI (query, fragment or form_post).
    Redirect(AadError),
    /// Rendered on Entra's error page; never redirected (untrusted redirect URI, unknown app).
    Page(AadError),
    /// A Microsoft Graph (or Azure AD Graph) error response.
    Graph(GraphError),
}

impl WireError {
    /// The Entra error, for the identity-platform variants.
    pub fn aad(&self) -> Option<&AadError> {
        match self {
            WireError::Token(e) | WireError::Redirect(e) | WireError::Page(e) => Some(e),
            WireError::Graph(_) => None,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            WireError::Token(e) | WireError::Redirect(e) | WireError::Page(e) => e.status,
            WireError::Graph(g) => g.status,
        }
    }

    /// `error` (Entra) or `error.code` (Graph).
    pub fn code(&self) -> &str {
        match self {
            WireError::Token(e) | WireError::Redirect(e) | WireError::Page(e) => e.error,
            WireError::Graph(g) => &g.code,
        }
    }

    pub fn message(&self) -> String {
        match self {
            WireError::Token(e) | WireError::Redirect(e) | WireError::Page(e) => e.headline(),
            WireError::Graph(g) => g.message.clone(),
        }
    }
}

/// Which service's error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFlavour {
    /// `{"error":{"code","message","innerError":{…}}}`
    MicrosoftGraph,
    /// Exchange-backed errors without innerError.
    MicrosoftGraphNoInner,
    /// `{"odata.error":{"code","message":{"lang","value"}}}`
    AadGraph,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub flavour: GraphFlavour,
    /// Full `WWW-Authenticate` value, on 401s.
    pub www_authenticate: Option<String>,
}

/// Graph's `WWW-Authenticate` on every 401 (B.1), optionally with a claims challenge.
pub fn graph_www_authenticate(claims_b64: Option<&str>) -> String {
    let base = r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#;
    match claims_b64 {
        Some(c) => format!(r#"{base}, error="insufficient_claims", claims="{c}""#),
        None => base.to_owned(),
    }
}

impl GraphError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            flavour: GraphFlavour::MicrosoftGraph,
            www_authenticate: (status == 401).then(|| graph_www_authenticate(None)),
        }
    }

    /// The body, compact, with `innerError` `date` (no `Z`), `request-id`, `client-request-id`.
    pub fn to_json(&self, ctx: &RequestContext) -> String {
        let date = ctx
            .now
            .to_offset(time::UtcOffset::UTC)
            .format(&format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]"
            ))
            .unwrap_or_default();
        match self.flavour {
            GraphFlavour::MicrosoftGraph => serde_json::json!({
                "error": {
                    "code": self.code,
                    "message": self.message,
                    "innerError": {"date": date, "request-id": ctx.trace_id.to_string(), "client-request-id": ctx.correlation_id.to_string()}
                }
            })
            .to_string(),
            GraphFlavour::MicrosoftGraphNoInner => serde_json::json!({"error": {"code": self.code, "message": self.message}}).to_string(),
            GraphFlavour::AadGraph => serde_json::json!({"odata.error": {"code": self.code, "message": {"lang": "en", "value": self.message}}}).to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AadError {
    pub status: u16,
    pub error: &'static str,
    pub codes: Vec<u32>,
    /// Message after `AADSTSnnnn: `.
    pub message: String,
    pub suberror: Option<&'static str>,
    /// Claims challenge JSON (a string, not base64, at the token endpoint).
    pub claims: Option<String>,
}

impl AadError {
    pub fn new(status: u16, error: &'static str, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            error,
            codes: vec![code],
            message: message.into(),
            suberror: None,
            claims: None,
        }
    }

    pub fn with_suberror(mut self, suberror: &'static str) -> Self {
        self.suberror = Some(suberror);
        self
    }

    /// `AADSTS65001: message` (several codes are listed in turn).
    pub fn headline(&self) -> String {
        match self.codes.first() {
            Some(code) => format!("AADSTS{code}: {}", self.message),
            None => self.message.clone(),
        }
    }

    /// The `error_description`: headline plus the three trace lines, CRLF-separated.
    pub fn description(&self, ctx: &RequestContext) -> String {
        format!(
            "{}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
            self.headline(),
            ctx.trace_id,
            ctx.correlation_id,
            ctx.entra_timestamp()
        )
    }

    pub fn error_uri(&self, ctx: &RequestContext) -> String {
        let code = self.codes.first().copied().unwrap_or_default();
        format!("https://{}/error?code={code}", ctx.login_host)
    }

    /// The JSON body, compact, fields in Entra's order.
    pub fn to_json(&self, ctx: &RequestContext) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
            error_description: String,
            error_codes: &'a [u32],
            timestamp: String,
            trace_id: String,
            correlation_id: String,
            error_uri: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            suberror: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            claims: Option<&'a str>,
        }
        let body = Body {
            error: self.error,
            error_description: self.description(ctx),
            error_codes: &self.codes,
            timestamp: ctx.entra_timestamp(),
            trace_id: ctx.trace_id.to_string(),
            correlation_id: ctx.correlation_id.to_string(),
            error_uri: self.error_uri(ctx),
            suberror: self.suberror,
            claims: self.claims.as_deref(),
        };
        serde_json::to_string(&body).unwrap_or_default()
    }

    /// Query parameters for a redirect: `error`, `error_description`, `error_uri`
    /// (the caller adds `state`).
    pub fn redirect_params(&self, ctx: &RequestContext) -> Vec<(&'static str, String)> {
        vec![
            ("error", self.error.to_owned()),
            ("error_description", self.description(ctx)),
            ("error_uri", self.error_uri(ctx)),
        ]
    }
}

/// Entra's trace ids end in `00`; keep the pattern so pasted ids look familiar.
pub fn new_trace_id() -> Uuid {
    let mut bytes = *Uuid::new_v4().as_bytes();
    if let Some(last) = bytes.last_mut() {
        *last = 0;
    }
    Uuid::from_bytes(bytes)
}

/// Query-string encoding as Entra's redirects show it (.NET `HttpUtility.UrlEncode`):
/// space as `+`, `-_.!*()` kept, everything else `%xx` in lowercase hex.
pub fn entra_urlencode(pairs: &[(&str, String)]) -> String {
    fn enc(s: &str, out: &mut String) {
        for b in s.bytes() {
            match b {
                b' ' => out.push('+'),
                b'a'..=b'z'
                | b'A'..=b'Z'
                | b'0'..=b'9'
                | b'-'
                | b'_'
                | b'.'
                | b'!'
                | b'*'
                | b'('
                | b')' => out.push(char::from(b)),
                _ => out.push_str(&format!("%{b:02x}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(k, &mut out);
        out.push('=');
        enc(v, &mut out);
    }
    out
}

/// One line on what an AADSTS code means, for the `/error?code=` page.
pub fn describe_code(code: u32) -> Option<&'static str> {
    Some(match code {
        50011 => {
            "The redirect URI in the request is not registered for the application. Register it exactly, or send a registered one."
        }
        50034 => "The user account does not exist in the directory.",
        50053 => "The account is locked after too many failed sign-ins.",
        50057 => "The user account is disabled.",
        50058 => "A silent sign-in request was sent but no user is signed in.",
        50059 => "No tenant-identifying information was found: use a tenant-specific authority.",
        50126 => "Invalid username or password.",
        50173 => "The grant was revoked (password change or revokeSignInSessions); sign in again.",
        54005 => "The authorization code was already redeemed.",
        65001 => "The user or administrator has not consented to the application.",
        65004 => "The user declined to consent.",
        70000 => "The grant (code, refresh token or device code) is not valid.",
        70003 => "The grant type is not supported.",
        70008 => "The authorization code or refresh token has expired.",
        70011 => "The scope is not valid.",
        70016 => "Device flow: authorization is pending; keep polling.",
        70020 => "Device flow: the device code expired.",
        90002 => "The tenant was not found.",
        90094 => "Administrator consent is required.",
        500011 => "The resource principal was not found in the tenant.",
        501481 => "The code_verifier does not match the code_challenge (PKCE).",
        650053 => "The application asked for a scope that doesn't exist on the resource.",
        700016 => "The application was not found in the directory.",
        700025 => "A public client must not present a client secret or assertion.",
        700027 => "The client assertion failed validation.",
        900144 => "The request body is missing a required parameter.",
        1002012 => "Client credential flows need a scope ending in /.default.",
        7000215 => "Invalid client secret provided.",
        7000218 => "The request must contain client_assertion or client_secret.",
        7000222 => "The client secret has expired.",
        9002313 => "The request is malformed or invalid.",
        9002325 => "PKCE is required.",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext {
            now: OffsetDateTime::from_unix_timestamp(1_683_352_980)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            trace_id: "6f6c4645-0202-4486-b625-fa957dfc4700"
                .parse()
                .unwrap_or_default(),
            correlation_id: "5fc87507-4086-4e77-b415-cee677eb232e"
                .parse()
                .unwrap_or_default(),
            login_host: "login.microsoftonline.com".to_owned(),
        }
    }

    /// The real 7000215 body of entra-graph-semantics.md C.4, byte for byte.
    #[test]
    fn matches_recorded_7000215_body() {
        let e = AadError::new(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'a8fdfbd0-da97-42d9-8f1a-fd6a7cb650b4'.",
        );
        let expected = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'a8fdfbd0-da97-42d9-8f1a-fd6a7cb650b4'.\r\nTrace ID: 6f6c4645-0202-4486-b625-fa957dfc4700\r\nCorrelation ID: 5fc87507-4086-4e77-b415-cee677eb232e\r\nTimestamp: 2023-05-06 06:03:00Z","error_codes":[7000215],"timestamp":"2023-05-06 06:03:00Z","trace_id":"6f6c4645-0202-4486-b625-fa957dfc4700","correlation_id":"5fc87507-4086-4e77-b415-cee677eb232e","error_uri":"https://login.microsoftonline.com/error?code=7000215"}"#;
        assert_eq!(e.to_json(&ctx()), expected);
    }

    #[test]
    fn trace_ids_end_in_00() {
        for _ in 0..20 {
            assert!(new_trace_id().to_string().ends_with("00"));
        }
    }
}
