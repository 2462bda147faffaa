//! In-process harness: a prepared data directory and the Router driven with `oneshot`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Body;
use gatehouse::bootstrap::{DataDir, read_credentials};
use gatehouse_idp::{AppState, Clock, IdpConfig};
use gatehouse_model::tenant_file::IssuedCredentials;
use http::{Request, Response};
use http_body_util::BodyExt;
use serde_json::Value;
use time::OffsetDateTime;
use tower::ServiceExt;

pub const BASE: &str = "https://localhost:8443";
pub const TENANT: &str = "5f3d9c2e-8b7a-4e61-9d0c-1a2b3c4d5e6f";

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Harness {
    pub router: Router,
    pub state: AppState,
    pub creds: IssuedCredentials,
    pub dir: PathBuf,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn harness() -> Harness {
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let data = DataDir::new(&dir);
    let p = gatehouse::prepare(&data, None, OffsetDateTime::now_utc())
        .await
        .unwrap();
    let creds = read_credentials(&data).unwrap();
    let state = AppState::new(
        p.store,
        p.directory,
        p.keyring,
        p.secrets,
        IdpConfig::new(BASE),
        Clock::adjustable(),
    )
    .unwrap();
    Harness {
        router: gatehouse_idp::router(state.clone()).merge(gatehouse_graph::router(state.clone())),
        state,
        creds,
        dir,
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn location(&self) -> &str {
        self.header("location").unwrap_or("")
    }
    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|c| c.split(';').next().unwrap_or("").to_owned())
            .collect()
    }
}

impl Harness {
    pub fn app(&self, key: &str) -> &gatehouse_model::tenant_file::AppCredential {
        &self.creds.apps[key]
    }
    pub fn user(&self, key: &str) -> &gatehouse_model::tenant_file::UserCredential {
        &self.creds.users[key]
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let resp: Response<Body> = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, cookies: &[String]) -> Reply {
        let mut b = Request::get(path);
        if !cookies.is_empty() {
            b = b.header("cookie", cookies.join("; "));
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)], cookies: &[String]) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter())
            .finish();
        let mut b = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        if !cookies.is_empty() {
            b = b.header("cookie", cookies.join("; "));
        }
        self.send(b.body(Body::from(body)).unwrap()).await
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> Reply {
        self.post_form(&format!("/{TENANT}/oauth2/v2.0/token"), form, &[])
            .await
    }
}

/// The claims of a JWT, unverified (the tests check shapes; signatures are checked in jose).
pub fn claims(jwt: &str) -> Value {
    let decoded = gatehouse_jose::decode_unverified(jwt).unwrap();
    Value::Object(decoded.claims)
}

/// Hidden inputs and the form action of an HTML page.
pub fn form_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in html.split("<input").skip(1) {
        let tag = part.split('>').next().unwrap_or("");
        let attr = |name: &str| -> Option<String> {
            let key = format!("{name}=\"");
            let start = tag.find(&key)? + key.len();
            let rest = &tag[start..];
            Some(rest[..rest.find('"')?].to_owned())
        };
        if attr("type").as_deref() == Some("hidden")
            && let (Some(n), Some(v)) = (attr("name"), attr("value"))
        {
            out.push((n, v.replace("&amp;", "&")));
        }
    }
    out
}

/// Submit the form of a sign-in page with one more field (the page's hidden fields,
/// flow id and CSRF token included), as a browser would.
pub async fn submit(
    h: &Harness,
    page: &Reply,
    cookies: &[String],
    field: &str,
    value: impl Into<String>,
) -> Reply {
    let mut fields = form_fields(&page.body);
    fields.push((field.to_owned(), value.into()));
    let f: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    h.post_form(&format!("/{TENANT}/login"), &f, cookies).await
}

/// An app-only token from the client-credentials grant.
pub async fn app_token(h: &Harness, key: &str, scope: &str) -> String {
    let a = h.app(key);
    let r = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &a.client_id.to_string()),
            ("client_secret", a.client_secret.as_deref().unwrap()),
            ("scope", scope),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

/// A delegated token by ROPC through the demo public client.
pub async fn user_token(h: &Harness, user: &str, scope: &str) -> String {
    let u = h.user(user);
    let r = h
        .token(&[
            ("grant_type", "password"),
            ("client_id", &h.app("public").client_id.to_string()),
            ("username", &u.username),
            ("password", &u.password),
            ("scope", scope),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_owned()
}
