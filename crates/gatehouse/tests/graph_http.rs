//! Microsoft Graph authorization driven in-process: each cause of the guide, with the
//! wire bytes and the explanation.
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

async fn graph(
    h: &Harness,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut b = http::Request::builder()
        .method(method)
        .uri(path)
        .header("client-request-id", "b846630d-4c65-4b57-98cf-11a83fa613e5");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    h.send(b.body(body).unwrap()).await
}

/// Consent for all users through Graph, the way an admin script does it.
async fn grant_delegated(h: &Harness, app: &str, scope: &str) {
    let auto = app_token(h, "automation", "https://graph.microsoft.com/.default").await;
    let graph_sp = graph(
        h,
        "GET",
        "/v1.0/servicePrincipals?$filter=appId%20eq%20%2700000003-0000-0000-c000-000000000000%27",
        Some(&auto),
        None,
    )
    .await
    .json();
    let resource = graph_sp["value"][0]["id"].as_str().unwrap().to_owned();
    let client = h.app(app).service_principal_id.to_string();
    let r = graph(h, "POST", "/v1.0/oauth2PermissionGrants", Some(&auto), Some(json!({"clientId": client, "consentType": "AllPrincipals", "principalId": null, "resourceId": resource, "scope": scope}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn explained(h: &Harness, r: &Reply) -> Value {
    let id = r.header("request-id").unwrap().to_owned();
    h.get(&format!("/_gatehouse/explain/{id}"), &[])
        .await
        .json()
}

fn error(r: &Reply) -> (u16, String, String) {
    let b = r.json();
    (
        r.status,
        b["error"]["code"].as_str().unwrap_or("").to_owned(),
        b["error"]["message"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn missing_and_malformed_tokens_are_401_with_graph_challenge() {
    let h = harness().await;
    let r = graph(&h, "GET", "/v1.0/me", None, None).await;
    assert_eq!(
        error(&r),
        (
            401,
            "InvalidAuthenticationToken".into(),
            "Access token is empty.".into()
        )
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#
        )
    );
    let b = r.json();
    let inner: Vec<&str> = b["error"]["innerError"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(inner, ["date", "request-id", "client-request-id"]);
    assert_eq!(
        b["error"]["innerError"]["client-request-id"],
        "b846630d-4c65-4b57-98cf-11a83fa613e5"
    );
    assert!(
        !b["error"]["innerError"]["date"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let r = graph(&h, "GET", "/v1.0/me", Some("not-a-jwt"), None).await;
    assert!(error(&r).2.starts_with("IDX14100"));
}

#[tokio::test]
async fn app_only_token_at_me_is_400() {
    let h = harness().await;
    let t = app_token(&h, "daemon", "https://graph.microsoft.com/.default").await;
    let r = graph(&h, "GET", "/v1.0/me", Some(&t), None).await;
    assert_eq!(
        r.body,
        format!(
            r#"{{"error":{{"code":"BadRequest","message":"/me request is only valid with delegated authentication flow.","innerError":{{"date":"{}","request-id":"{}","client-request-id":"b846630d-4c65-4b57-98cf-11a83fa613e5"}}}}}}"#,
            r.json()["error"]["innerError"]["date"].as_str().unwrap(),
            r.header("request-id").unwrap()
        )
    );
    assert_eq!(explained(&h, &r).await["cause"], "GH-ME-APP-ONLY");
    // The same token can read users: User.Read.All is granted.
    let ok = graph(
        &h,
        "GET",
        &format!("/v1.0/users/{}", h.user("user").username),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["displayName"], "Adele Vance");
}

#[tokio::test]
async fn azure_ad_graph_token_at_microsoft_graph_is_401_invalid_audience_and_vice_versa() {
    let h = harness().await;
    let t = app_token(&h, "automation", "https://graph.windows.net/.default").await;
    assert_eq!(claims(&t)["aud"], "https://graph.windows.net");
    let r = graph(&h, "GET", "/v1.0/users", Some(&t), None).await;
    assert_eq!(
        error(&r),
        (
            401,
            "InvalidAuthenticationToken".into(),
            "Access token validation failure. Invalid audience.".into()
        )
    );
    let e = explained(&h, &r).await;
    assert_eq!(e["cause"], "GH-AUD-WRONG-RESOURCE");
    assert_eq!(e["guide"], "wrong-resource");
    let g = app_token(&h, "automation", "https://graph.microsoft.com/.default").await;
    let r = graph(
        &h,
        "GET",
        &format!("/aadgraph/{TENANT}/users?api-version=1.6"),
        Some(&g),
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["odata.error"]["code"],
        "Authentication_MissingOrMalformed"
    );
    assert_eq!(explained(&h, &r).await["cause"], "GH-AUD-WRONG-RESOURCE");
    let ok = graph(
        &h,
        "GET",
        &format!("/aadgraph/{TENANT}/users?api-version=1.6"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test]
async fn delegated_token_without_the_scope_is_403_with_least_privileged_fix() {
    let h = harness().await;
    let t = user_token(&h, "user", "User.Read").await;
    let r = graph(&h, "GET", "/v1.0/users", Some(&t), None).await;
    assert_eq!(
        error(&r),
        (
            403,
            "Authorization_RequestDenied".into(),
            "Insufficient privileges to complete the operation.".into()
        )
    );
    let e = explained(&h, &r).await;
    assert_eq!(e["cause"], "GH-PERMISSION-MISSING");
    let fix = e["fix"].to_string();
    assert!(
        fix.contains("User.ReadBasic.All") || fix.contains("User.Read.All"),
        "{fix}"
    );
    let me = graph(&h, "GET", "/v1.0/me", Some(&t), None).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["userPrincipalName"], h.user("user").username);
}

#[tokio::test]
async fn app_permission_not_granted_is_explained_as_consent() {
    let h = harness().await;
    let t = app_token(&h, "daemon", "https://graph.microsoft.com/.default").await;
    let r = graph(
        &h,
        "GET",
        &format!("/v1.0/users/{}/messages", h.user("user").object_id),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body,
        r#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied. Check credentials and try again."}}"#
    );
    let e = explained(&h, &r).await;
    assert_eq!(e["cause"], "GH-APP-PERMISSION-NOT-CONSENTED");
    assert!(e["fix"].to_string().contains("adminconsent?client_id="));
}

#[tokio::test]
async fn app_only_call_with_only_delegated_grants_is_token_type() {
    let h = harness().await;
    let t = app_token(&h, "api", "https://graph.microsoft.com/.default").await;
    assert!(
        claims(&t).get("roles").is_none(),
        "no application permission: no roles claim"
    );
    let r = graph(
        &h,
        "GET",
        &format!("/v1.0/users/{}", h.user("user").object_id),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(explained(&h, &r).await["cause"], "GH-TOKEN-TYPE-APP");
}

#[tokio::test]
async fn unlicensed_mailbox_is_404_mailbox_not_enabled() {
    let h = harness().await;
    grant_delegated(&h, "public", "Mail.Read").await;
    let t = user_token(&h, "unlicensed", "Mail.Read").await;
    let r = graph(&h, "GET", "/v1.0/me/messages", Some(&t), None).await;
    assert_eq!(
        error(&r),
        (
            404,
            "MailboxNotEnabledForRESTAPI".into(),
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.".into()
        )
    );
    assert_eq!(explained(&h, &r).await["cause"], "GH-USER-UNLICENSED");
    let licensed = user_token(&h, "user", "Mail.Read").await;
    assert_eq!(
        graph(&h, "GET", "/v1.0/me/messages", Some(&licensed), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn privileged_operations_and_user_roles() {
    let h = harness().await;
    let auto = app_token(&h, "automation", "https://graph.microsoft.com/.default").await;
    let target = h.user("unlicensed").object_id;
    // App-only passwordProfile without a directory role on the service principal.
    let body = json!({"passwordProfile": {"password": "N3w-Passw0rd!x", "forceChangePasswordNextSignIn": false}});
    let r = graph(
        &h,
        "PATCH",
        &format!("/v1.0/users/{target}"),
        Some(&auto),
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        explained(&h, &r).await["cause"],
        "GH-PRIVILEGED-APP-ROLE-MISSING"
    );
    // displayName alone works (msgraph-sdk-powershell#1382).
    let ok = graph(
        &h,
        "PATCH",
        &format!("/v1.0/users/{target}"),
        Some(&auto),
        Some(json!({"displayName": "Ulrich U."})),
    )
    .await;
    assert_eq!(ok.status, 204, "{}", ok.body);
    // Assign User Administrator to the automation SP through Graph, then it works with a new token.
    let sp = h.app("automation").service_principal_id;
    let r = graph(&h, "POST", "/v1.0/roleManagement/directory/roleAssignments", Some(&auto), Some(json!({"principalId": sp.to_string(), "roleDefinitionId": "fe930be7-5e62-47db-91af-98c3a49a38b1", "directoryScopeId": "/"}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = graph(
        &h,
        "PATCH",
        &format!("/v1.0/users/{target}"),
        Some(&auto),
        Some(body),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    // resetPassword has no application permission.
    let r = graph(&h, "POST", &format!("/v1.0/users/{target}/authentication/methods/28c10230-6103-485e-b985-444c60001490/resetPassword"), Some(&auto), Some(json!({"newPassword": "An0ther-Passw0rd!"}))).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        explained(&h, &r).await["cause"],
        "GH-PRIVILEGED-DELEGATED-ONLY"
    );
    // A regular user holding User.ReadWrite.All still cannot change another user.
    grant_delegated(&h, "public", "User.ReadWrite.All").await;
    let regular = user_token(&h, "user", "User.ReadWrite.All").await;
    let r = graph(
        &h,
        "PATCH",
        &format!("/v1.0/users/{target}"),
        Some(&regular),
        Some(json!({"accountEnabled": false})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(explained(&h, &r).await["cause"], "GH-USER-ROLE-MISSING");
    // changePassword on someone else.
    let r = graph(
        &h,
        "POST",
        &format!("/v1.0/users/{target}/changePassword"),
        Some(&regular),
        Some(json!({"currentPassword": "x", "newPassword": "y"})),
    )
    .await;
    assert_eq!(
        error(&r),
        (
            403,
            "Authorization_RequestDenied".into(),
            "Access to change password operation is denied.".into()
        )
    );
}

#[tokio::test]
async fn revoke_sign_in_sessions_challenges_cae_tokens_only() {
    let h = harness().await;
    let u = h.user("user");
    let pubc = h.app("public").client_id.to_string();
    let cae_req = [
        ("grant_type", "password"),
        ("client_id", pubc.as_str()),
        ("username", u.username.as_str()),
        ("password", u.password.as_str()),
        ("scope", "User.Read User.RevokeSessions.All offline_access"),
        (
            "claims",
            r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#,
        ),
    ];
    let r = h.token(&cae_req).await;
    assert_eq!(
        r.status, 400,
        "User.RevokeSessions.All is admin-only and not consented: {}",
        r.body
    );
    let cae = h
        .token(&[
            cae_req[0],
            cae_req[1],
            cae_req[2],
            cae_req[3],
            ("scope", "User.Read offline_access"),
            cae_req[5],
        ])
        .await
        .json();
    assert_eq!(cae["expires_in"], 70000);
    let cae_at = cae["access_token"].as_str().unwrap().to_owned();
    let plain_at = user_token(&h, "user", "User.Read").await;
    h.state.clock.advance(1);
    let admin = user_token(&h, "admin", "User.Read").await;
    let _ = admin;
    // Revoke through the directory as an admin script would (automation app has User.ReadWrite.All).
    let auto = app_token(&h, "automation", "https://graph.microsoft.com/.default").await;
    let r = graph(
        &h,
        "POST",
        &format!("/v1.0/users/{}/revokeSignInSessions", u.object_id),
        Some(&auto),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["value"], true);
    h.state.clock.advance(1);
    let r = graph(&h, "GET", "/v1.0/me", Some(&cae_at), None).await;
    assert_eq!(
        error(&r).2,
        "Continuous access evaluation resulted in claims challenge with result: InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp"
    );
    let www = r.header("www-authenticate").unwrap();
    assert!(
        www.contains(r#"error="insufficient_claims", claims=""#),
        "{www}"
    );
    assert_eq!(
        graph(&h, "GET", "/v1.0/me", Some(&plain_at), None)
            .await
            .status,
        200,
        "non-CAE tokens live until they expire"
    );
    let rt = cae["refresh_token"].as_str().unwrap();
    let r = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &pubc),
            ("refresh_token", rt),
        ])
        .await
        .json();
    assert_eq!(r["error_codes"][0], 50173);
    assert_eq!(r["suberror"], "bad_token");
}

#[tokio::test]
async fn admin_script_setup_through_graph_takes_effect_for_next_token() {
    let h = harness().await;
    let auto = app_token(&h, "automation", "https://graph.microsoft.com/.default").await;
    let app = graph(&h, "POST", "/v1.0/applications", Some(&auto), Some(json!({"displayName": "Scenario App", "requiredResourceAccess": [{"resourceAppId": "00000003-0000-0000-c000-000000000000", "resourceAccess": [{"id": "df021288-bdef-4463-88db-98f22de89214", "type": "Role"}]}]}))).await;
    assert_eq!(app.status, 201, "{}", app.body);
    let app = app.json();
    let app_id = app["appId"].as_str().unwrap().to_owned();
    let sp = graph(
        &h,
        "POST",
        "/v1.0/servicePrincipals",
        Some(&auto),
        Some(json!({"appId": app_id})),
    )
    .await
    .json();
    let pw = graph(
        &h,
        "POST",
        &format!(
            "/v1.0/applications/{}/addPassword",
            app["id"].as_str().unwrap()
        ),
        Some(&auto),
        Some(json!({"passwordCredential": {"displayName": "ci"}})),
    )
    .await
    .json();
    let secret = pw["secretText"].as_str().unwrap().to_owned();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", app_id.as_str()),
        ("client_secret", secret.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let before = h.token(&form).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = graph(&h, "GET", "/v1.0/users", Some(&before), None).await;
    assert_eq!(
        explained(&h, &r).await["cause"],
        "GH-APP-PERMISSION-NOT-CONSENTED"
    );
    let graph_sp = graph(
        &h,
        "GET",
        "/v1.0/servicePrincipals?$filter=appId%20eq%20%2700000003-0000-0000-c000-000000000000%27",
        Some(&auto),
        None,
    )
    .await
    .json();
    let graph_sp_id = graph_sp["value"][0]["id"].as_str().unwrap().to_owned();
    let r = graph(&h, "POST", &format!("/v1.0/servicePrincipals/{graph_sp_id}/appRoleAssignedTo"), Some(&auto), Some(json!({"principalId": sp["id"], "resourceId": graph_sp_id, "appRoleId": "df021288-bdef-4463-88db-98f22de89214"}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // The old token keeps its claims; a new one carries the role.
    assert_eq!(
        graph(&h, "GET", "/v1.0/users", Some(&before), None)
            .await
            .status,
        403
    );
    let after = h.token(&form).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = graph(
        &h,
        "GET",
        "/v1.0/users?$top=2&$select=displayName",
        Some(&after),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    assert_eq!(b["value"].as_array().unwrap().len(), 2);
    assert!(
        b["@odata.nextLink"]
            .as_str()
            .unwrap()
            .contains("$skiptoken=2")
    );
}

#[tokio::test]
async fn replayed_code_revokes_the_access_token_at_graph() {
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
    let cookies = page.cookies();
    let kmsi = submit(&h, &page, &cookies, "passwd", u.password.clone()).await;
    let done = submit(&h, &kmsi, &cookies, "kmsi", "No").await;
    let code: String =
        form_urlencoded::parse(done.location().split_once('?').unwrap().1.as_bytes())
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
    let cid = web.client_id.to_string();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", cid.as_str()),
        ("client_secret", web.client_secret.as_deref().unwrap()),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:3000/auth/callback"),
    ];
    let at = h.token(&form).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        graph(&h, "GET", "/v1.0/me", Some(&at), None).await.status,
        200
    );
    assert_eq!(h.token(&form).await.json()["error_codes"][0], 54005);
    let r = graph(&h, "GET", "/v1.0/me", Some(&at), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(explained(&h, &r).await["cause"], "GH-TOKEN-REVOKED");
}

#[tokio::test]
async fn groups_members_expand_and_count() {
    let h = harness().await;
    let auto = app_token(&h, "automation", "https://graph.microsoft.com/.default").await;
    let g = graph(&h, "POST", "/v1.0/groups", Some(&auto), Some(json!({"displayName": "Finance", "mailNickname": "finance", "mailEnabled": false, "securityEnabled": true}))).await;
    assert_eq!(g.status, 201, "{}", g.body);
    let gid = g.json()["id"].as_str().unwrap().to_owned();
    let adele = h.user("user").object_id;
    let r = graph(&h, "POST", &format!("/v1.0/groups/{gid}/members/$ref"), Some(&auto), Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{adele}")}))).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let members = graph(
        &h,
        "GET",
        &format!("/v1.0/groups/{gid}/members"),
        Some(&auto),
        None,
    )
    .await
    .json();
    assert_eq!(members["value"][0]["@odata.type"], "#microsoft.graph.user");
    let u = graph(
        &h,
        "GET",
        &format!("/v1.0/users/{adele}?$expand=memberOf"),
        Some(&auto),
        None,
    )
    .await
    .json();
    assert_eq!(u["memberOf"][0]["displayName"], "Finance");
    let r = graph(
        &h,
        "DELETE",
        &format!("/v1.0/groups/{gid}/members/{adele}/$ref"),
        Some(&auto),
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let no_header = graph(&h, "GET", "/v1.0/users?$count=true", Some(&auto), None).await;
    assert_eq!(no_header.status, 400);
    let req = http::Request::get("/v1.0/users?$count=true&$filter=startswith(displayName,%27A%27)")
        .header("authorization", format!("Bearer {auto}"))
        .header("consistencylevel", "eventual")
        .body(Body::empty())
        .unwrap();
    let counted = h.send(req).await.json();
    assert_eq!(counted["@odata.count"], 2, "{counted}");
}
