//! Conditional access at the token endpoint and on the pages: block, MFA (with TOTP
//! registration and verification), report-only, disabled.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::body::Body;
use common::*;
use serde_json::{Value, json};

async fn automation(h: &Harness) -> String {
    app_token(h, "automation", "https://graph.microsoft.com/.default").await
}

async fn create_policy(h: &Harness, user: &str, state: &str, control: &str) -> String {
    let t = automation(h).await;
    let body = json!({"displayName": format!("{control} for {user}"), "state": state, "conditions": {"users": {"includeUsers": [h.user(user).object_id.to_string()]}, "applications": {"includeApplications": ["00000003-0000-0000-c000-000000000000"]}, "clientAppTypes": ["all"]}, "grantControls": {"operator": "OR", "builtInControls": [control]}});
    let req = http::Request::post("/v1.0/identity/conditionalAccess/policies")
        .header("authorization", format!("Bearer {t}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_owned()
}

async fn ropc(h: &Harness, user: &str) -> Reply {
    let u = h.user(user);
    h.token(&[
        ("grant_type", "password"),
        ("client_id", &h.app("public").client_id.to_string()),
        ("username", &u.username),
        ("password", &u.password),
        ("scope", "User.Read offline_access"),
    ])
    .await
}

#[tokio::test]
async fn block_policy_is_53003_and_report_only_does_not_enforce() {
    let h = harness().await;
    create_policy(
        &h,
        "unlicensed",
        "enabledForReportingButNotEnforced",
        "block",
    )
    .await;
    assert_eq!(
        ropc(&h, "unlicensed").await.status,
        200,
        "report-only never enforces"
    );
    create_policy(&h, "unlicensed", "disabled", "block").await;
    assert_eq!(ropc(&h, "unlicensed").await.status, 200);
    let id = create_policy(&h, "unlicensed", "enabled", "block").await;
    let r = ropc(&h, "unlicensed").await;
    let b = r.json();
    assert_eq!(
        (
            r.status,
            b["error"].as_str().unwrap(),
            b["error_codes"][0].as_u64().unwrap(),
            b["suberror"].as_str().unwrap()
        ),
        (400, "interaction_required", 53003, "message_only")
    );
    let e = h
        .get(
            &format!("/_gatehouse/explain/{}", b["trace_id"].as_str().unwrap()),
            &[],
        )
        .await
        .json();
    assert_eq!(e["cause"], "GH-CA-BLOCKED");
    assert!(e["evidence"].to_string().contains(&id));
    assert_eq!(
        ropc(&h, "user").await.status,
        200,
        "other users are not covered"
    );
}

#[tokio::test]
async fn mfa_policy_registration_then_totp_then_token_carries_mfa() {
    let h = harness().await;
    let policy = create_policy(&h, "user", "enabled", "mfa").await;
    let r = ropc(&h, "user").await.json();
    assert_eq!(r["error"], "interaction_required");
    assert_eq!(
        r["error_codes"][0], 50079,
        "no authenticator registered yet: enroll"
    );
    assert_eq!(r["suberror"], "basic_action");
    let challenge: Value = serde_json::from_str(r["claims"].as_str().unwrap()).unwrap();
    assert_eq!(challenge["access_token"]["capolids"]["values"][0], policy);

    // Interactive: password, then the registration page with the otpauth URI and QR code.
    let web = h.app("web");
    let u = h.user("user");
    let q = format!(
        "client_id={}&response_type=code&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fauth%2Fcallback&scope=User.Read&login_hint={}",
        web.client_id, u.username
    );
    let page = h
        .get(&format!("/{TENANT}/oauth2/v2.0/authorize?{q}"), &[])
        .await;
    let cookies = page.cookies();
    let mfa = submit(&h, &page, &cookies, "passwd", u.password.clone()).await;
    assert!(
        mfa.body.contains("idTxtBx_SAOTCC_OTC")
            && mfa.body.contains("idSubmit_SAOTCC_Continue")
            && mfa.body.contains("<svg"),
        "{}",
        mfa.body
    );
    let secret = mfa
        .body
        .split("id=\"mfaSecret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(mfa.body.contains("otpauth:"), "the otpauth URI is shown");
    let now = h.state.clock.now().unix_timestamp();
    // A wrong code is refused on the page.
    let again = submit(&h, &mfa, &cookies, "otc", "000000").await;
    assert!(again.body.contains("idSpan_SAOTCC_Error_OTC"));
    let code = gatehouse_jose::totp::code_at(&secret, now).unwrap();
    let kmsi = submit(&h, &again, &cookies, "otc", code).await;
    assert!(kmsi.body.contains("KmsiCheckboxField"), "{}", kmsi.body);
    let done = submit(&h, &kmsi, &cookies, "kmsi", "No").await;
    let loc = done.location().to_owned();
    let code: String = form_urlencoded::parse(loc.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let t = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &web.client_id.to_string()),
            ("client_secret", web.client_secret.as_deref().unwrap()),
            ("code", &code),
            ("redirect_uri", "http://localhost:3000/auth/callback"),
        ])
        .await;
    assert_eq!(t.status, 200, "{}", t.body);
    let c = claims(t.json()["access_token"].as_str().unwrap());
    assert_eq!(c["amr"], json!(["pwd", "mfa"]));
    // Registered now: ROPC says use MFA (50076), not enroll.
    assert_eq!(ropc(&h, "user").await.json()["error_codes"][0], 50076);
}

#[tokio::test]
async fn authentication_context_step_up_at_graph() {
    let h = harness().await;
    let admin = h.user("admin");
    let public = h.app("public");
    let secret = gatehouse_jose::totp::new_secret();
    let admin_id = admin.object_id;
    let public_sp = public.service_principal_id;
    let totp = secret.clone();
    h.state
        .update_directory(move |d| {
            d.protected_operations.push(gatehouse_model::ProtectedOperation { method: "PATCH".into(), path: "/users/{id}".into(), authentication_context: "c1".into() });
            let graph = d.resource_by_identifier("https://graph.microsoft.com").unwrap().id;
            d.add_delegated_grant(public_sp, graph, None, &["User.ReadWrite.All".to_owned()], || "g1".into());
            if let Some(u) = d.users.iter_mut().find(|u| u.id == admin_id) {
                u.gatehouse_totp_secret = Some(totp);
            }
            d.conditional_access_policies.push(serde_json::from_value(json!({"id": "7a5c2c21-0000-4000-8000-0000000000c1", "displayName": "Step-up for c1", "state": "enabled", "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeAuthenticationContextClassReferences": ["c1"]}}, "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}})).unwrap());
        })
        .await
        .unwrap();
    let target = h.user("unlicensed").object_id;
    let patch = |t: String| {
        http::Request::patch(format!("/v1.0/users/{target}"))
            .header("authorization", format!("Bearer {t}"))
            .header("content-type", "application/json")
            .body(Body::from(r#"{"displayName":"U"}"#))
            .unwrap()
    };
    let ropc = |claims: Option<&'static str>| {
        let mut f = vec![
            ("grant_type", "password".to_owned()),
            ("client_id", public.client_id.to_string()),
            ("username", admin.username.clone()),
            ("password", admin.password.clone()),
            ("scope", "User.ReadWrite.All".to_owned()),
        ];
        if let Some(c) = claims {
            f.push(("claims", c.to_owned()));
        }
        f
    };
    let cp1 = ropc(Some(r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#));
    let f: Vec<(&str, &str)> = cp1.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let t = h.token(&f).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h.send(patch(t)).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let www = r.header("www-authenticate").unwrap().to_owned();
    use base64::Engine;
    let b64 = www.split("claims=\"").nth(1).unwrap().trim_end_matches('"');
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        decoded,
        r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#
    );
    let plain = ropc(None);
    let f: Vec<(&str, &str)> = plain.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let t = h.token(&f).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h.send(patch(t)).await;
    assert_eq!(r.status, 403, "without cp1 Graph answers 403: {}", r.body);
    // Step-up: authorize with the challenge, MFA on the page, the token carries acrs c1.
    let claims_param = form_urlencoded::byte_serialize(decoded.as_bytes()).collect::<String>();
    let q = format!(
        "client_id={}&response_type=code&redirect_uri=http%3A%2F%2Flocalhost%3A5000&scope=User.ReadWrite.All&login_hint={}&claims={claims_param}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        public.client_id, admin.username
    );
    let page = h
        .get(&format!("/{TENANT}/oauth2/v2.0/authorize?{q}"), &[])
        .await;
    let cookies = page.cookies();
    let mfa = submit(&h, &page, &cookies, "passwd", admin.password.clone()).await;
    assert!(
        mfa.body.contains("idTxtBx_SAOTCC_OTC") && !mfa.body.contains("mfaSecret"),
        "already registered: code only"
    );
    let mut fields = form_fields(&mfa.body);
    fields.push((
        "otc".into(),
        gatehouse_jose::totp::code_at(&secret, h.state.clock.now().unix_timestamp()).unwrap(),
    ));
    let f: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let kmsi = h.post_form(&format!("/{TENANT}/login"), &f, &cookies).await;
    let done = submit(&h, &kmsi, &cookies, "kmsi", "Yes").await;
    let loc = done.location().to_owned();
    assert!(
        loc.starts_with("http://localhost:5000?code="),
        "{loc} {}",
        done.body
    );
    let code: String = form_urlencoded::parse(loc.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let r = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &public.client_id.to_string()),
            ("code", &code),
            ("redirect_uri", "http://localhost:5000"),
            (
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            ),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&t)["acrs"], json!(["c1"]));
    assert_eq!(h.send(patch(t)).await.status, 204);
}

#[tokio::test]
async fn cae_reevaluates_after_a_policy_change_and_after_deletion() {
    let h = harness().await;
    let u = h.user("user");
    let pubc = h.app("public").client_id.to_string();
    let form = |claims: Option<&'static str>| {
        let mut f = vec![
            ("grant_type", "password".to_owned()),
            ("client_id", pubc.clone()),
            ("username", u.username.clone()),
            ("password", u.password.clone()),
            ("scope", "User.Read".to_owned()),
        ];
        if let Some(c) = claims {
            f.push(("claims", c.to_owned()));
        }
        f
    };
    let cae = get(
        &h,
        form(Some(r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#)),
    )
    .await;
    let plain = get(&h, form(None)).await;
    let me = |t: String| {
        http::Request::get("/v1.0/me")
            .header("authorization", format!("Bearer {t}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(h.send(me(cae.clone())).await.status, 200);
    h.state.clock.advance(2);
    create_policy(&h, "user", "enabled", "mfa").await;
    let r = h.send(me(cae.clone())).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("TokenCreatedWithOutdatedPolicies"));
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("insufficient_claims")
    );
    assert_eq!(
        h.send(me(plain)).await.status,
        200,
        "non-CAE tokens keep working until they expire"
    );

    // Deleting the user revokes their CAE tokens.
    let other = h.user("unlicensed");
    let f = vec![
        ("grant_type", "password".to_owned()),
        ("client_id", pubc.clone()),
        ("username", other.username.clone()),
        ("password", other.password.clone()),
        ("scope", "User.Read".to_owned()),
        (
            "claims",
            r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#.to_owned(),
        ),
    ];
    let t = get(&h, f).await;
    let auto = automation(&h).await;
    let del = http::Request::delete(format!("/v1.0/users/{}", other.object_id))
        .header("authorization", format!("Bearer {auto}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(del).await.status, 204);
    let r = h.send(me(t)).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("TokenIssuedBeforeRevocationTimestamp"));
}

async fn get(h: &Harness, f: Vec<(&'static str, String)>) -> String {
    let ff: Vec<(&str, &str)> = f.iter().map(|(a, b)| (*a, b.as_str())).collect();
    h.token(&ff).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn on_behalf_of_under_a_block_policy_is_invalid_grant_53003() {
    let h = harness().await;
    let u = h.user("user");
    let api = h.app("api");
    let r = h
        .token(&[
            ("grant_type", "password"),
            ("client_id", &h.app("public").client_id.to_string()),
            ("username", &u.username),
            ("password", &u.password),
            ("scope", api.scope.as_deref().unwrap()),
        ])
        .await;
    let user_token = r.json()["access_token"].as_str().unwrap().to_owned();
    create_policy(&h, "user", "enabled", "block").await;
    let r = h
        .token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("client_id", &api.client_id.to_string()),
            ("client_secret", api.client_secret.as_deref().unwrap()),
            ("assertion", &user_token),
            ("scope", "https://graph.microsoft.com/.default"),
            ("requested_token_use", "on_behalf_of"),
        ])
        .await;
    let b = r.json();
    assert_eq!(
        (
            b["error"].as_str().unwrap(),
            b["error_codes"][0].as_u64().unwrap(),
            b["suberror"].as_str().unwrap()
        ),
        ("invalid_grant", 53003, "message_only"),
        "{b}"
    );
}
