//! `gatehouse doctor`: read a token, request and response in the forms people have
//! at hand, run the engine's diagnosis, and print it for a person or as JSON.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use gatehouse_engine::doctor::{
    Case, Report, RequestInput, ResponseInput, Signature, Status, TokenInput, Verdict, diagnose,
};
use serde_json::Value;

#[derive(clap::Args, Default)]
pub struct DoctorArgs {
    /// The token, a file holding it, `-` for stdin, or an `Authorization: Bearer …` line.
    pub token: Option<String>,
    /// The request: "GET https://graph.microsoft.com/v1.0/users/{id}".
    #[arg(long)]
    pub request: Option<String>,
    /// A curl command line (method, URL, Authorization header and body are taken from it).
    #[arg(long)]
    pub curl: Option<String>,
    /// JSON request body (e.g. for PATCH).
    #[arg(long)]
    pub body: Option<String>,
    /// HTTP status that came back.
    #[arg(long)]
    pub status: Option<u16>,
    /// The WWW-Authenticate header that came back.
    #[arg(long)]
    pub www_authenticate: Option<String>,
    /// The Graph error body that came back (JSON).
    #[arg(long)]
    pub response_body: Option<String>,
    /// A token-endpoint error: its JSON, or just the AADSTS message.
    #[arg(long)]
    pub token_endpoint_error: Option<String>,
    /// Judge expiry at this Unix time instead of now.
    #[arg(long)]
    pub now: Option<i64>,
    /// A JWKS file, or a loopback URL serving one (Gatehouse's own), to verify the signature.
    #[arg(long)]
    pub jwks: Option<PathBuf>,
    /// A CA certificate (PEM) to trust when fetching --jwks over HTTPS; Gatehouse's
    /// `<data-dir>/tls/ca.pem` is trusted by default when it exists.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// A JSON case file (header/claims or token, request, response, now).
    #[arg(long)]
    pub case: Option<PathBuf>,
    /// Print the report as JSON (schema: docs/doctor.md).
    #[arg(long)]
    pub json: bool,
}

fn read_token_arg(arg: &str) -> Result<String> {
    let raw = if arg == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else if std::path::Path::new(arg).is_file() {
        std::fs::read_to_string(arg)?
    } else {
        arg.to_owned()
    };
    Ok(strip_bearer(&raw))
}

fn strip_bearer(raw: &str) -> String {
    let t = raw.trim();
    let t = t
        .strip_prefix("Authorization:")
        .or_else(|| t.strip_prefix("authorization:"))
        .unwrap_or(t)
        .trim();
    t.strip_prefix("Bearer ")
        .or_else(|| t.strip_prefix("bearer "))
        .unwrap_or(t)
        .trim()
        .to_owned()
}

/// Split a shell-ish command line, honouring single and double quotes.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() || c == '\\' => {
                if !cur.is_empty() || any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() || any {
        out.push(cur);
    }
    out
}

/// (method, url, token, body) from a curl command line.
fn parse_curl(cmd: &str) -> (String, Option<String>, Option<String>, Option<String>) {
    let w = shell_words(cmd);
    let mut method = None;
    let mut url = None;
    let mut token = None;
    let mut body = None;
    let mut i = 0;
    while i < w.len() {
        let a = w.get(i).map(String::as_str).unwrap_or("");
        let next = w.get(i + 1).cloned();
        match a {
            "-X" | "--request" => {
                method = next;
                i += 1;
            }
            "-H" | "--header" => {
                if let Some(h) = next.as_deref()
                    && h.to_ascii_lowercase().starts_with("authorization:")
                {
                    token = Some(strip_bearer(h));
                }
                i += 1;
            }
            "-d" | "--data" | "--data-raw" | "--json" => {
                body = next;
                i += 1;
            }
            a if a.starts_with("http://") || a.starts_with("https://") => url = Some(a.to_owned()),
            _ => {}
        }
        i += 1;
    }
    let method = method.unwrap_or_else(|| {
        if body.is_some() {
            "POST".into()
        } else {
            "GET".into()
        }
    });
    (method.to_ascii_uppercase(), url, token, body)
}

fn case_from_file(path: &PathBuf, now: i64) -> Result<Case> {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .context("case file is not JSON")?;
    let token = match (v.get("claims").and_then(Value::as_object), v.get("token")) {
        (Some(c), _) => TokenInput::Parsed {
            header: v
                .get("header")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            claims: c.clone(),
        },
        (None, Some(Value::String(t))) => TokenInput::Raw(strip_bearer(t)),
        _ => TokenInput::Absent,
    };
    let request = v
        .get("request")
        .and_then(Value::as_object)
        .map(|r| RequestInput {
            method: r
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or("GET")
                .to_ascii_uppercase(),
            url: r
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            body: r.get("body").cloned().filter(|b| !b.is_null()),
        });
    let response = v
        .get("response")
        .and_then(Value::as_object)
        .map(|r| ResponseInput {
            status: r
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok()),
            www_authenticate: r
                .get("www_authenticate")
                .and_then(Value::as_str)
                .map(str::to_owned),
            body: r
                .get("body")
                .cloned()
                .filter(|b| !b.is_null())
                .map(|b| match b {
                    Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
                    other => other,
                }),
            token_endpoint_error: r.get("token_endpoint_error").and_then(|e| {
                if e.is_string() {
                    e.as_str().map(str::to_owned)
                } else if e.is_null() {
                    None
                } else {
                    Some(e.to_string())
                }
            }),
        });
    Ok(Case {
        token,
        signature: Signature::NotChecked,
        request,
        response,
        now: v.get("now").and_then(Value::as_i64).unwrap_or(now),
    })
}

/// Build the case from the arguments.
pub fn build_case(args: &DoctorArgs, now: i64) -> Result<Case> {
    if let Some(p) = &args.case {
        return case_from_file(p, args.now.unwrap_or(now));
    }
    let (mut method, mut url, mut token, mut body) = (None, None, None, args.body.clone());
    if let Some(c) = &args.curl {
        let (m, u, t, b) = parse_curl(c);
        method = Some(m);
        url = u;
        token = t;
        body = body.or(b);
    }
    if let Some(r) = &args.request {
        let mut parts = r.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some(m), Some(u)) => {
                method = Some(m.to_ascii_uppercase());
                url = Some(u.to_owned());
            }
            (Some(u), None) => {
                method = Some("GET".into());
                url = Some(u.to_owned());
            }
            _ => bail!("--request must be 'METHOD URL'"),
        }
    }
    if let Some(t) = &args.token {
        token = Some(read_token_arg(t)?);
    } else if token.is_none()
        && !std::io::stdin().is_terminal()
        && args.token_endpoint_error.is_none()
        && args.request.is_none()
        && args.curl.is_none()
    {
        token = Some(read_token_arg("-")?);
    }
    let mut signature = Signature::NotChecked;
    if let (Some(j), Some(t)) = (&args.jwks, &token) {
        let jwks: Value = serde_json::from_str(
            &std::fs::read_to_string(j).with_context(|| format!("reading {}", j.display()))?,
        )
        .context("JWKS is not JSON")?;
        signature = match gatehouse_jose::jws::verify_with_jwks(t, &jwks) {
            Ok(()) => Signature::Valid,
            Err(e) => Signature::Invalid(e),
        };
    }
    let request = url.map(|u| RequestInput {
        method: method.unwrap_or_else(|| "GET".into()),
        url: u,
        body: body.as_deref().and_then(|b| serde_json::from_str(b).ok()),
    });
    let response = (args.status.is_some()
        || args.www_authenticate.is_some()
        || args.response_body.is_some()
        || args.token_endpoint_error.is_some())
    .then(|| ResponseInput {
        status: args.status,
        www_authenticate: args.www_authenticate.clone(),
        body: args
            .response_body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok()),
        token_endpoint_error: args.token_endpoint_error.clone(),
    });
    Ok(Case {
        token: token.map(TokenInput::Raw).unwrap_or(TokenInput::Absent),
        signature,
        request,
        response,
        now: args.now.unwrap_or(now),
    })
}

pub fn exit_code(r: &Report) -> i32 {
    match r.verdict {
        Verdict::Allowed => 0,
        Verdict::Denied => 1,
        Verdict::Unknown => 2,
    }
}

pub fn render_text(r: &Report, colour: bool) -> String {
    let paint = |code: &str, s: &str| {
        if colour {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let mut out = String::new();
    let verdict = match r.verdict {
        Verdict::Allowed => paint("32;1", "ALLOWED"),
        Verdict::Denied => paint("31;1", "DENIED"),
        Verdict::Unknown => paint("33;1", "UNKNOWN"),
    };
    out.push_str(&format!("Verdict  {verdict}"));
    if let Some(c) = r.cause {
        out.push_str(&format!("  {c}"));
    }
    out.push('\n');
    if !r.summary.is_empty() {
        out.push_str(&format!("         {}\n", r.summary));
    }
    out.push_str(&format!("Guide    {}\n", r.guide));
    if let Some(t) = &r.token {
        out.push_str(&format!("\n{}\n", paint("1", "Token")));
        out.push_str(&format!(
            "  v{} {} token, aud {}, tid {}, app {}\n",
            t.version, t.kind, t.aud, t.tid, t.appid
        ));
        if let Some(s) = &t.scp {
            out.push_str(&format!("  scp    {s}\n"));
        }
        if !t.roles.is_empty() {
            out.push_str(&format!("  roles  {}\n", t.roles.join(" ")));
        }
        if !t.wids.is_empty() {
            out.push_str(&format!("  wids   {}\n", t.wids.join(" ")));
        }
    }
    out.push_str(&format!("\n{}\n", paint("1", "Checks")));
    for c in &r.checks {
        let mark = match c.status {
            Status::Pass => paint("32", "pass"),
            Status::Fail => paint("31", "FAIL"),
            Status::Warn => paint("33", "warn"),
            Status::Info => paint("36", "info"),
            Status::Skipped => paint("2", "skip"),
        };
        out.push_str(&format!("  [{mark}] {:<22} {}\n", c.name, c.detail));
    }
    if !r.evidence.is_empty() {
        out.push_str(&format!("\n{}\n", paint("1", "Evidence")));
        for f in &r.evidence {
            out.push_str(&format!("  - {}: {}\n", f.name, f.value));
        }
    }
    if !r.fix.is_empty() {
        out.push_str(&format!("\n{}\n", paint("1", "Fix")));
        for f in &r.fix {
            out.push_str(&format!(
                "  - {}{}\n",
                f.text,
                f.url
                    .as_deref()
                    .map(|u| format!("\n    {u}"))
                    .unwrap_or_default()
            ));
        }
    }
    if matches!(r.signature, Signature::NotChecked) && r.token.is_some() {
        out.push_str("\nThe signature was not checked (give --jwks to verify it).\n");
    }
    out
}

/// Fetch a JWKS from a loopback URL (never anywhere else: the doctor stays offline).
async fn fetch_jwks(url: &str, ca: Option<&std::path::Path>) -> Result<String> {
    let parsed = reqwest::Url::parse(url).context("--jwks URL")?;
    let loopback = matches!(
        parsed.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
    );
    if !loopback {
        bail!(
            "--jwks URLs are fetched only from loopback (localhost, 127.0.0.1, ::1); save the JWKS to a file instead"
        );
    }
    let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5));
    let default_ca = crate::bootstrap::DataDir::new(crate::bootstrap::DataDir::default_path())
        .tls()
        .join("ca.pem");
    let ca_path = ca
        .map(std::path::Path::to_path_buf)
        .or_else(|| default_ca.exists().then_some(default_ca));
    if let Some(p) = ca_path {
        let pem = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    let body = builder
        .build()?
        .get(parsed)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(body)
}

pub async fn run(mut args: DoctorArgs, now: i64) -> Result<i32> {
    if let Some(j) = args
        .jwks
        .as_ref()
        .and_then(|p| p.to_str())
        .filter(|s| s.starts_with("http://") || s.starts_with("https://"))
        .map(str::to_owned)
    {
        match fetch_jwks(&j, args.ca.as_deref()).await {
            Ok(body) => {
                let path = std::env::temp_dir()
                    .join(format!("gatehouse-doctor-jwks-{}.json", std::process::id()));
                std::fs::write(&path, body)?;
                args.jwks = Some(path);
            }
            Err(e) => {
                eprintln!("gatehouse doctor: {e:#}");
                return Ok(2);
            }
        }
    }
    let case = match build_case(&args, now) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gatehouse doctor: {e:#}");
            return Ok(2);
        }
    };
    let report = match diagnose(&case) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gatehouse doctor: {e}");
            return Ok(2);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_text(&report, std::io::stdout().is_terminal()));
    }
    Ok(exit_code(&report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_lines() {
        let (m, u, t, b) = parse_curl(
            r#"curl -X PATCH 'https://graph.microsoft.com/v1.0/users/x' -H "Authorization: Bearer abc.def.ghi" -H 'Content-Type: application/json' -d '{"accountEnabled":false}'"#,
        );
        assert_eq!(m, "PATCH");
        assert_eq!(
            u.as_deref(),
            Some("https://graph.microsoft.com/v1.0/users/x")
        );
        assert_eq!(t.as_deref(), Some("abc.def.ghi"));
        assert_eq!(b.as_deref(), Some(r#"{"accountEnabled":false}"#));
        assert_eq!(strip_bearer("Authorization: Bearer x.y.z\n"), "x.y.z");
    }
}
