//! The identity platform driven in-process: discovery, every grant, the pages, and the
//! errors with their explanations.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::type_complexity
)]

mod common;

use common::*;

#[tokio::test]
async fn discovery_issuer_per_tenant_form() {
    let h = harness().await;
    let guid = h
        .get(
            &format!("/{TENANT}/v2.0/.well-known/openid-configuration"),
            &[],
        )
        .await;
    assert_eq!(guid.status, 200);
    assert_eq!(guid.json()["issuer"], format!("{BASE}/{TENANT}/v2.0"));
    assert_eq!(guid.header("cache-control"), Some("max-age=86400, private"));
    let domain = h
        .get(
            "/gatehousedemo.onmicrosoft.com/v2.0/.well-known/openid-configuration",
            &[],
        )
        .await;
    assert_eq!(domain.json()["issuer"], format!("{BASE}/{TENANT}/v2.0"));
    assert_eq!(
        domain.json()["token_endpoint"],
        format!("{BASE}/gatehousedemo.onmicrosoft.com/oauth2/v2.0/token")
    );
    let common = h
        .get("/common/v2.0/.well-known/openid-configuration", &[])
        .await;
    assert_eq!(common.json()["issuer"], format!("{BASE}/{{tenantid}}/v2.0"));
    let unknown = h
        .get(
            "/contoso.example/v2.0/.well-known/openid-configuration",
            &[],
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["error_codes"][0], 90002);
    let jwks = h
        .get(&format!("/{TENANT}/discovery/v2.0/keys"), &[])
        .await
        .json();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
}

/// Golden file: the exact bytes of the discovery document.
#[tokio::test]
async fn discovery_document_golden() {
    let h = harness().await;
    let body = h
        .get(
            &format!("/{TENANT}/v2.0/.well-known/openid-configuration"),
            &[],
        )
        .await
        .body;
    golden("discovery-tenant.json", &body);
}

fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden file {} (run with UPDATE_GOLDEN=1)",
            path.display()
        )
    });
    assert_eq!(actual, expected, "golden file {name} differs");
}

#[tokio::test]
async fn client_credentials_token_is_entra_v1_graph_token() {
    let h = harness().await;
    let d = h.app("daemon");
    let r = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &d.client_id.to_string()),
            ("client_secret", d.client_secret.as_deref().unwrap()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store, no-cache"));
    let body = r.json();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["token_type", "expires_in", "ext_expires_in", "access_token"],
        "no scope for client credentials"
    );
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert_eq!(c["iss"], format!("https://sts.windows.net/{TENANT}/"));
    assert_eq!(c["ver"], "1.0");
    assert_eq!(c["idtyp"], "app");
    assert_eq!(
        c["roles"],
        serde_json::json!(["User.Read.All"]),
        "only admin-consented application permissions"
    );
    assert!(c.get("scp").is_none());
    assert_eq!(c["appid"], d.client_id.to_string());
}

#[tokio::test]
async fn client_credentials_with_basic_auth_percent_decoded() {
    let h = harness().await;
    let d = h.app("daemon");
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        enc(&d.client_id.to_string()),
        enc(d.client_secret.as_deref().unwrap())
    ));
    let req = http::Request::post(format!("/{TENANT}/oauth2/v2.0/token"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded;charset=UTF-8",
        )
        .header("authorization", format!("Basic {basic}"))
        .body(axum::body::Body::from(
            "grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
        ))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn wrong_secret_is_7000215_with_diagnosis_and_explanation() {
    let h = harness().await;
    let d = h.app("daemon");
    let req = http::Request::post(format!("/{TENANT}/oauth2/v2.0/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("client-request-id", "0a49cdbc-2e94-4089-bc6f-1162b123592c")
        .body(axum::body::Body::from(format!("grant_type=client_credentials&client_id={}&client_secret=wrong&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default", d.client_id)))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.status, 401);
    let b = r.json();
    assert_eq!(b["error"], "invalid_client");
    assert_eq!(b["error_codes"], serde_json::json!([7000215]));
    assert_eq!(b["correlation_id"], "0a49cdbc-2e94-4089-bc6f-1162b123592c");
    let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "error",
            "error_description",
            "error_codes",
            "timestamp",
            "trace_id",
            "correlation_id",
            "error_uri"
        ]
    );
    let desc = b["error_description"].as_str().unwrap();
    assert!(desc.starts_with("AADSTS7000215: Invalid client secret provided."));
    assert!(
        desc.contains("\r\nTrace ID: ")
            && desc.contains(
                "\r\nCorrelation ID: 0a49cdbc-2e94-4089-bc6f-1162b123592c\r\nTimestamp: "
            )
    );
    let diag = r.header("x-gatehouse-diagnosis").unwrap();
    assert!(
        diag.starts_with("GH-CLIENT-SECRET-INVALID; explain="),
        "{diag}"
    );
    let trace = b["trace_id"].as_str().unwrap();
    let explained = h
        .get(&format!("/_gatehouse/explain/{trace}"), &[])
        .await
        .json();
    assert_eq!(explained["cause"], "GH-CLIENT-SECRET-INVALID");
    assert_eq!(explained["guide"], "client-configuration");
    assert!(!explained["fix"].as_array().unwrap().is_empty());
}

async fn error_code(h: &Harness, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let r = h.token(form).await;
    (r.status, r.json())
}

#[tokio::test]
async fn token_endpoint_error_table() {
    let h = harness().await;
    let d = h.app("daemon");
    let id = d.client_id.to_string();
    let secret = d.client_secret.clone().unwrap();
    let pubc = h.app("public").client_id.to_string();
    let u = h.user("user");
    let cases: Vec<(Vec<(&str, &str)>, u16, &str, u64)> = vec![
        (vec![("client_id", &id)], 400, "invalid_request", 900144),
        (
            vec![("grant_type", "magic"), ("client_id", &id)],
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "00000000-1111-2222-3333-444444444444"),
                ("client_secret", "x"),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            400,
            "unauthorized_client",
            700016,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            401,
            "invalid_client",
            7000218,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "User.Read.All"),
            ],
            400,
            "invalid_scope",
            1002012,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "https://graph.microsoft.com/.default User.Read"),
            ],
            400,
            "invalid_scope",
            70011,
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", &pubc),
                ("username", &u.username),
                ("password", "wrong"),
                ("scope", "User.Read"),
            ],
            400,
            "invalid_grant",
            50126,
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", &pubc),
                ("username", "nobody@gatehousedemo.onmicrosoft.com"),
                ("password", "x"),
                ("scope", "User.Read"),
            ],
            400,
            "invalid_grant",
            50034,
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", &pubc),
                ("refresh_token", "garbage"),
            ],
            400,
            "invalid_grant",
            9002313,
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", &pubc),
                ("code", "not-a-code"),
                ("redirect_uri", "http://localhost"),
            ],
            400,
            "invalid_grant",
            9002313,
        ),
    ];
    for (form, status, error, code) in cases {
        let (s, b) = error_code(&h, &form).await;
        assert_eq!(
            (
                s,
                b["error"].as_str().unwrap(),
                b["error_codes"][0].as_u64().unwrap()
            ),
            (status, error, code),
            "{form:?}: {b}"
        );
    }
}

#[tokio::test]
async fn ropc_consent_missing_is_65001_with_suberror() {
    let h = harness().await;
    let u = h.user("user");
    let (s, b) = error_code(
        &h,
        &[
            ("grant_type", "password"),
            ("client_id", &h.app("public").client_id.to_string()),
            ("username", &u.username),
            ("password", &u.password),
            ("scope", "Mail.Read"),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "invalid_grant");
    assert_eq!(b["error_codes"][0], 65001);
    assert_eq!(b["suberror"], "consent_required");
}

#[tokio::test]
async fn ropc_then_refresh_rotates_and_reuse_revokes_family() {
    let h = harness().await;
    let u = h.user("user");
    let pubc = h.app("public").client_id.to_string();
    let r = h
        .token(&[
            ("grant_type", "password"),
            ("client_id", &pubc),
            ("username", &u.username),
            ("password", &u.password),
            ("scope", "User.Read openid profile offline_access"),
            ("client_info", "1"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    assert_eq!(b["scope"], "User.Read openid profile offline_access");
    let at = claims(b["access_token"].as_str().unwrap());
    assert_eq!(at["scp"], "User.Read");
    assert_eq!(at["idtyp"], "user");
    assert_eq!(
        at["aud"], "00000003-0000-0000-c000-000000000000",
        "bare scopes give Graph's GUID audience"
    );
    let id = claims(b["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], pubc);
    assert_eq!(id["preferred_username"], u.username);
    let rt1 = b["refresh_token"].as_str().unwrap().to_owned();
    let r2 = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &pubc),
            ("refresh_token", &rt1),
            ("scope", "User.Read openid offline_access"),
        ])
        .await
        .json();
    let rt2 = r2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    // Replaying RT1 (public client): rejected, and RT2 is revoked with it.
    let (_, replay) = error_code(
        &h,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &pubc),
            ("refresh_token", &rt1),
        ],
    )
    .await;
    assert_eq!(replay["error"], "invalid_grant");
    let (_, after) = error_code(
        &h,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &pubc),
            ("refresh_token", &rt2),
        ],
    )
    .await;
    assert_eq!(after["error"], "invalid_grant", "{after}");
}

#[tokio::test]
async fn lockout_after_ten_wrong_passwords_is_50053() {
    let h = harness().await;
    let u = h.user("unlicensed");
    let pubc = h.app("public").client_id.to_string();
    for _ in 0..10 {
        let (_, b) = error_code(
            &h,
            &[
                ("grant_type", "password"),
                ("client_id", &pubc),
                ("username", &u.username),
                ("password", "nope"),
                ("scope", "User.Read"),
            ],
        )
        .await;
        assert_eq!(b["error_codes"][0], 50126);
    }
    let (_, b) = error_code(
        &h,
        &[
            ("grant_type", "password"),
            ("client_id", &pubc),
            ("username", &u.username),
            ("password", &u.password),
            ("scope", "User.Read"),
        ],
    )
    .await;
    assert_eq!(
        b["error_codes"][0], 50053,
        "even the right password is refused while locked"
    );
    h.state.clock.advance(61);
    let r = h
        .token(&[
            ("grant_type", "password"),
            ("client_id", &pubc),
            ("username", &u.username),
            ("password", &u.password),
            ("scope", "User.Read"),
        ])
        .await;
    assert_eq!(r.status, 200, "lockout ends after 60 s: {}", r.body);
}

#[tokio::test]
async fn unregistered_redirect_uri_is_a_page_never_a_redirect() {
    let h = harness().await;
    let web = h.app("web").client_id.to_string();
    for bad in [
        "http://localhost:3000/auth/callback/",
        "http://localhost:3000/auth/callback2",
        "http://localhost:3000/auth/callback?x=1",
        "https://localhost:3000/auth/callback",
        "http://localhost:3000/auth/../callback",
        "http://LOCALHOST:3000/auth/callback",
        "http://localhost:3000@evil.test/auth/callback",
    ] {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("client_id", web.as_str()),
                ("response_type", "code"),
                ("redirect_uri", bad),
                ("scope", "User.Read"),
            ])
            .finish();
        let r = h
            .get(&format!("/{TENANT}/oauth2/v2.0/authorize?{q}"), &[])
            .await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.header("location").is_none(), "{bad}");
        assert!(r.body.contains("AADSTS50011"), "{bad}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    }
    let q = "client_id=00000000-1111-2222-3333-444444444444&response_type=code&redirect_uri=http%3A%2F%2Flocalhost&scope=User.Read";
    let r = h
        .get(&format!("/{TENANT}/oauth2/v2.0/authorize?{q}"), &[])
        .await;
    assert!(r.body.contains("AADSTS700016") && r.header("location").is_none());
}

/// The whole browser flow without JavaScript: pages, KMSI, code, PKCE, replay.
#[tokio::test]
async fn auth_code_flow_through_pages_with_pkce_and_replay() {
    let h = harness().await;
    let web = h.app("web");
    let u = h.user("user");
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", web.client_id.to_string().as_str()),
            ("response_type", "code"),
            ("redirect_uri", "http://localhost:3000/auth/callback"),
            ("scope", "User.Read openid profile offline_access"),
            ("state", "st4te"),
            ("nonce", "n0nce"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let page = h
        .get(&format!("/{TENANT}/oauth2/v2.0/authorize?{q}"), &[])
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"i0116\"") && page.body.contains("id=\"idSIButton9\""));
    let cookies = page.cookies();
    let login = format!("/{TENANT}/login");
    let mut fields = form_fields(&page.body);
    fields.push(("login".into(), u.username.clone()));
    let f: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    // Without the browser cookie the step is refused (CSRF / session binding).
    assert!(
        h.post_form(&login, &f, &[])
            .await
            .body
            .contains("expired or was not opened in this browser")
    );
    let pw = h.post_form(&login, &f, &cookies).await;
    assert!(pw.body.contains("id=\"i0118\""), "{}", pw.body);
    let mut fields = form_fields(&pw.body);
    fields.push(("passwd".into(), u.password.clone()));
    let f: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let kmsi = h.post_form(&login, &f, &cookies).await;
    assert!(
        kmsi.body.contains("KmsiCheckboxField") && kmsi.body.contains("idBtn_Back"),
        "{}",
        kmsi.body
    );
    let mut fields = form_fields(&kmsi.body);
    fields.push(("kmsi".into(), "No".into()));
    let f: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let done = h.post_form(&login, &f, &cookies).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let loc = done.location().to_owned();
    assert!(
        loc.starts_with("http://localhost:3000/auth/callback?code="),
        "{loc}"
    );
    let params: std::collections::HashMap<String, String> =
        form_urlencoded::parse(loc.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(params["state"], "st4te");
    let code = params["code"].clone();
    let secret = web.client_secret.clone().unwrap();
    let cid = web.client_id.to_string();
    let redeem = |v: &'static str| {
        let code = code.clone();
        let secret = secret.clone();
        let cid = cid.clone();
        let h = &h;
        async move {
            h.token(&[
                ("grant_type", "authorization_code"),
                ("client_id", &cid),
                ("client_secret", &secret),
                ("code", &code),
                ("redirect_uri", "http://localhost:3000/auth/callback"),
                ("code_verifier", v),
            ])
            .await
        }
    };
    let ok = redeem(verifier).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let tokens = ok.json();
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["nonce"],
        "n0nce"
    );
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let again = redeem(verifier).await.json();
    assert_eq!(again["error_codes"][0], 54005);
    // The replay revoked the refresh token issued from the code.
    let (_, b) = error_code(
        &h,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &cid),
            ("client_secret", &secret),
            ("refresh_token", &rt),
        ],
    )
    .await;
    assert_eq!(b["error"], "invalid_grant", "{b}");
}

#[tokio::test]
async fn expired_code_is_70008_with_moved_clock() {
    let h = harness().await;
    let web = h.app("web");
    let u = h.user("user");
    let q = format!(
        "client_id={}&response_type=code&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fauth%2Fcallback&scope=User.Read&login_hint={}",
        web.client_id, u.username
    );
    let page = h
        .get(&format!("/{TENANT}/oauth2/v2.0/authorize?{q}"), &[])
        .await;
    assert!(
        page.body.contains("id=\"i0118\""),
        "login_hint skips the user name page"
    );
    let cookies = page.cookies();
    let kmsi = submit(&h, &page, &cookies, "passwd", u.password.clone()).await;
    let done = submit(&h, &kmsi, &cookies, "kmsi", "Yes").await;
    let loc = done.location().to_owned();
    let code: String = form_urlencoded::parse(loc.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    h.state.clock.advance(601);
    let (_, b) = error_code(
        &h,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &web.client_id.to_string()),
            ("client_secret", web.client_secret.as_deref().unwrap()),
            ("code", &code),
            ("redirect_uri", "http://localhost:3000/auth/callback"),
        ],
    )
    .await;
    assert_eq!(b["error_codes"][0], 70008, "{b}");
}

#[tokio::test]
async fn admin_only_scope_for_non_admin_is_90094_page() {
    let h = harness().await;
    let web = h.app("web");
    let u = h.user("user");
    let q = format!(
        "client_id={}&response_type=code&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fauth%2Fcallback&scope=Directory.Read.All&login_hint={}",
        web.client_id, u.username
    );
    let page = h
        .get(&format!("/{TENANT}/oauth2/v2.0/authorize?{q}"), &[])
        .await;
    let cookies = page.cookies();
    let kmsi = submit(&h, &page, &cookies, "passwd", u.password.clone()).await;
    let r = submit(&h, &kmsi, &cookies, "kmsi", "No").await;
    assert!(
        r.body.contains("AADSTS90094") && r.body.contains("Need admin approval"),
        "{}",
        r.body
    );
    assert!(r.header("location").is_none());
    assert!(
        r.header("x-gatehouse-diagnosis")
            .unwrap()
            .starts_with("GH-CONSENT-ADMIN-REQUIRED")
    );
}

#[tokio::test]
async fn device_code_pending_then_expired() {
    let h = harness().await;
    let pubc = h.app("public").client_id.to_string();
    let start = h
        .post_form(
            &format!("/{TENANT}/oauth2/v2.0/devicecode"),
            &[("client_id", &pubc), ("scope", "User.Read offline_access")],
            &[],
        )
        .await
        .json();
    let device_code = start["device_code"].as_str().unwrap().to_owned();
    assert_eq!(start["verification_uri"], format!("{BASE}/devicelogin"));
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", pubc.as_str()),
        ("device_code", device_code.as_str()),
    ];
    let (_, b) = error_code(&h, &poll).await;
    assert_eq!(b["error"], "authorization_pending");
    h.state.clock.advance(901);
    let (_, b) = error_code(&h, &poll).await;
    assert_eq!(b["error"], "expired_token");
}

#[tokio::test]
async fn on_behalf_of_trades_an_api_token_for_graph() {
    let h = harness().await;
    let u = h.user("user");
    let api = h.app("api");
    let api_scope = api.scope.clone().unwrap();
    let r = h
        .token(&[
            ("grant_type", "password"),
            ("client_id", &h.app("public").client_id.to_string()),
            ("username", &u.username),
            ("password", &u.password),
            ("scope", &api_scope),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let user_token = r.json()["access_token"].as_str().unwrap().to_owned();
    let c = claims(&user_token);
    assert_eq!(
        c["aud"],
        api.client_id.to_string(),
        "v2 tokens for tenant APIs carry the app id"
    );
    assert_eq!(c["ver"], "2.0");
    assert_eq!(c["scp"], "access_as_user");
    let obo = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("client_id", &api.client_id.to_string()),
        ("client_secret", api.client_secret.as_deref().unwrap()),
        ("assertion", &user_token),
        ("scope", "https://graph.microsoft.com/.default"),
        ("requested_token_use", "on_behalf_of"),
    ];
    let r = h.token(&obo).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let g = claims(r.json()["access_token"].as_str().unwrap());
    assert_eq!(g["aud"], "https://graph.microsoft.com");
    assert_eq!(g["appid"], api.client_id.to_string());
    assert_eq!(g["oid"], u.object_id.to_string());
    assert!(
        g["scp"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "User.Read")
    );
    // The same token from another client is refused.
    let mut wrong = obo;
    let web = h.app("web");
    let web_id = web.client_id.to_string();
    wrong[1] = ("client_id", &web_id);
    wrong[2] = ("client_secret", web.client_secret.as_deref().unwrap());
    let (_, b) = error_code(&h, &wrong).await;
    assert_eq!(b["error"], "invalid_grant", "{b}");
}

async fn sign_in_pages(
    h: &Harness,
    first: &Reply,
    username: &str,
    password: &str,
) -> (Reply, Vec<String>) {
    let cookies = first.cookies();
    let login = format!("/{TENANT}/login");
    let mut page = first.body.clone();
    let mut last = None;
    for (field, value) in [("login", username), ("passwd", password), ("kmsi", "Yes")] {
        let mut fields = form_fields(&page);
        let step = fields
            .iter()
            .find(|(k, _)| k == "step")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if (field == "login" && step != "username") || (field == "passwd" && step != "password") {
            continue;
        }
        fields.push((field.into(), value.into()));
        let f: Vec<(&str, &str)> = fields
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let r = h.post_form(&login, &f, &cookies).await;
        page = r.body.clone();
        last = Some(r);
    }
    let mut all = cookies;
    if let Some(r) = &last {
        all.extend(r.cookies());
    }
    (last.unwrap(), all)
}

#[tokio::test]
async fn admin_consent_grants_required_permissions_for_everyone() {
    let h = harness().await;
    let web = h.app("web");
    let admin = h.user("admin");
    let q = format!(
        "client_id={}&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fauth%2Fcallback&state=42",
        web.client_id
    );
    let first = h
        .get(&format!("/{TENANT}/v2.0/adminconsent?{q}"), &[])
        .await;
    let (consent, cookies) = sign_in_pages(&h, &first, &admin.username, &admin.password).await;
    assert!(
        consent.body.contains("idBtn_Accept") && consent.body.contains("Directory.Read.All"),
        "{}",
        consent.body
    );
    let done = submit(&h, &consent, &cookies, "action", "Accept").await;
    let loc = done.location();
    assert!(
        loc.contains("admin_consent=True")
            && loc.contains(&format!("tenant={TENANT}"))
            && loc.contains("state=42"),
        "{loc}"
    );
    let dir = h.state.directory();
    let sp = dir.service_principal_by_app_id(web.client_id).unwrap();
    let graph = dir
        .resource_by_identifier("https://graph.microsoft.com")
        .unwrap();
    let user = h.user("user").object_id;
    let consented = dir.consented_scopes(sp, graph, user);
    assert!(
        consented.contains("Directory.Read.All") && consented.contains("Mail.Read"),
        "{consented:?}"
    );
}

#[tokio::test]
async fn non_admin_at_admin_consent_gets_90094() {
    let h = harness().await;
    let web = h.app("web");
    let u = h.user("user");
    let first = h
        .get(
            &format!("/{TENANT}/v2.0/adminconsent?client_id={}", web.client_id),
            &[],
        )
        .await;
    let (page, _) = sign_in_pages(&h, &first, &u.username, &u.password).await;
    assert!(page.body.contains("AADSTS90094"), "{}", page.body);
}

#[tokio::test]
async fn logout_redirects_only_to_registered_uris() {
    let h = harness().await;
    let ok = h.get(&format!("/{TENANT}/oauth2/v2.0/logout?post_logout_redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fauth%2Fcallback&state=s"), &[]).await;
    assert_eq!(ok.status, 302);
    assert_eq!(ok.location(), "http://localhost:3000/auth/callback?state=s");
    assert!(
        ok.headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("gh_session=;"))
    );
    for evil in ["https://evil.test/", "//evil.test", "javascript:alert(1)"] {
        let q = form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>();
        let r = h
            .get(
                &format!("/{TENANT}/oauth2/v2.0/logout?post_logout_redirect_uri={q}"),
                &[],
            )
            .await;
        assert_eq!(r.status, 200, "{evil}");
        assert!(r.header("location").is_none(), "{evil}");
    }
}

#[tokio::test]
async fn session_gives_single_sign_on_and_prompt_none_without_session_is_login_required() {
    let h = harness().await;
    let web = h.app("web");
    let u = h.user("user");
    let q = format!(
        "client_id={}&response_type=code&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fauth%2Fcallback&scope=User.Read&state=a",
        web.client_id
    );
    let none = h
        .get(
            &format!("/{TENANT}/oauth2/v2.0/authorize?{q}&prompt=none"),
            &[],
        )
        .await;
    assert_eq!(none.status, 302);
    assert!(
        none.location().contains("error=login_required") && none.location().contains("AADSTS50058"),
        "{}",
        none.location()
    );
    let first = h
        .get(&format!("/{TENANT}/oauth2/v2.0/authorize?{q}"), &[])
        .await;
    let (done, cookies) = sign_in_pages(&h, &first, &u.username, &u.password).await;
    assert_eq!(done.status, 303);
    let again = h
        .get(
            &format!("/{TENANT}/oauth2/v2.0/authorize?{q}&prompt=none"),
            &cookies,
        )
        .await;
    assert_eq!(again.status, 302, "{}", again.body);
    assert!(
        again.location().contains("code="),
        "SSO from the session: {}",
        again.location()
    );
}

/// Golden file of a token response and the claims of its tokens, with the values that
/// change on every issuance (tokens, times, opaque ids) masked.
#[tokio::test]
async fn token_response_golden() {
    let h = harness().await;
    let u = h.user("user");
    let r = h
        .token(&[
            ("grant_type", "password"),
            ("client_id", &h.app("public").client_id.to_string()),
            ("username", &u.username),
            ("password", &u.password),
            (
                "scope",
                "https://graph.microsoft.com/User.Read openid profile offline_access",
            ),
            ("client_info", "1"),
        ])
        .await;
    let mut body = r.json();
    let at = claims(body["access_token"].as_str().unwrap());
    let id = claims(body["id_token"].as_str().unwrap());
    let header = gatehouse_jose::decode_unverified(body["access_token"].as_str().unwrap())
        .unwrap()
        .header;
    for k in ["access_token", "refresh_token", "id_token"] {
        body[k] = serde_json::json!(format!("<{k}>"));
    }
    let lifetime = body["expires_in"].as_i64().unwrap();
    assert!((3600..5400).contains(&lifetime), "60-90 minutes, as Entra");
    body["expires_in"] = serde_json::json!("<60-90 min>");
    body["ext_expires_in"] = serde_json::json!("<60-90 min>");
    let mask = |mut v: serde_json::Value| {
        for k in ["iat", "nbf", "exp", "auth_time"] {
            if v.get(k).is_some() {
                v[k] = serde_json::json!("<unix time>");
            }
        }
        for k in ["aio", "rh", "uti", "sid"] {
            if v.get(k).is_some() {
                v[k] = serde_json::json!("<opaque>");
            }
        }
        v
    };
    let mut header = serde_json::Value::Object(header);
    for k in ["nonce", "kid", "x5t"] {
        header[k] = serde_json::json!(format!("<{k}>"));
    }
    let all = serde_json::json!({"response": body, "access_token_header": header, "access_token_claims": mask(at), "id_token_claims": mask(id)});
    golden(
        "token-response-ropc.json",
        &serde_json::to_string_pretty(&all).unwrap(),
    );
}

#[tokio::test]
async fn graph_role_activation_members_and_grant_deletion() {
    let h = harness().await;
    let d = h.app("automation");
    let t = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &d.client_id.to_string()),
            ("client_secret", d.client_secret.as_deref().unwrap()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let send = |m: &str, p: &str, b: Option<serde_json::Value>| {
        let mut r = http::Request::builder()
            .method(m)
            .uri(p)
            .header("authorization", format!("Bearer {t}"));
        if b.is_some() {
            r = r.header("content-type", "application/json");
        }
        r.body(axum::body::Body::from(
            b.map(|v| v.to_string()).unwrap_or_default(),
        ))
        .unwrap()
    };
    let r = h
        .send(send(
            "POST",
            "/v1.0/directoryRoles",
            Some(serde_json::json!({"roleTemplateId": "fe930be7-5e62-47db-91af-98c3a49a38b1"})),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let members = h
        .send(send(
            "GET",
            "/v1.0/directoryRoles/roleTemplateId=fe930be7-5e62-47db-91af-98c3a49a38b1/members",
            None,
        ))
        .await
        .json();
    assert_eq!(
        members["value"][0]["userPrincipalName"],
        h.user("user_admin").username
    );
    let grants = h
        .send(send("GET", "/v1.0/oauth2PermissionGrants", None))
        .await
        .json();
    let first = grants["value"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        h.send(send(
            "DELETE",
            &format!("/v1.0/oauth2PermissionGrants/{first}"),
            None
        ))
        .await
        .status,
        204
    );
    assert_eq!(
        h.send(send(
            "DELETE",
            &format!("/v1.0/oauth2PermissionGrants/{first}"),
            None
        ))
        .await
        .status,
        404
    );
}
