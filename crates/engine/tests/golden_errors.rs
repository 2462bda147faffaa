//! The exact bytes of every Entra error Gatehouse sends, under a fixed trace id,
//! correlation id and time. `UPDATE_GOLDEN=1 cargo test -p gatehouse-engine` rewrites them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use gatehouse_engine::scope;
use gatehouse_engine::token::{
    self, CodeFacts, LockoutState, PresentedCredential, SecretCheck, SignInChannel,
};
use gatehouse_engine::{Denial, RequestContext, WireError};
use gatehouse_model::directory::Directory;
use gatehouse_model::ids::MICROSOFT_GRAPH_APP_ID;
use gatehouse_model::*;
use time::OffsetDateTime;
use uuid::Uuid;

fn ctx() -> RequestContext {
    RequestContext {
        now: OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap(),
        trace_id: "4dca72dd-f02e-4615-b1c9-e226952f2200".parse().unwrap(),
        correlation_id: "0a49cdbc-2e94-4089-bc6f-1162b123592c".parse().unwrap(),
        login_host: "localhost:8443".into(),
    }
}

fn app(public: bool) -> Application {
    Application {
        id: Uuid::from_u128(1),
        app_id: "b0000000-0000-4000-8000-000000000003".parse().unwrap(),
        display_name: "Contoso Web".into(),
        sign_in_audience: "AzureADMyOrg".into(),
        identifier_uris: vec![],
        api: ApiApplication::default(),
        app_roles: vec![],
        required_resource_access: vec![],
        web: RedirectUris {
            redirect_uris: vec!["http://localhost:3000/auth/callback".into()],
        },
        spa: RedirectUris::default(),
        public_client: RedirectUris::default(),
        is_fallback_public_client: public,
        password_credentials: if public {
            vec![]
        } else {
            vec![PasswordCredential {
                key_id: Uuid::from_u128(2),
                display_name: None,
                hint: "abc".into(),
                start_date_time: String::new(),
                end_date_time: String::new(),
                gatehouse_secret_hash: None,
                gatehouse_expires: None,
            }]
        },
        key_credentials: vec![],
    }
}

fn directory() -> Directory {
    let mut d = Directory::empty(Tenant {
        id: "5f3d9c2e-8b7a-4e61-9d0c-1a2b3c4d5e6f".parse().unwrap(),
        display_name: "Gatehouse Demo".into(),
        domain: "gatehousedemo.onmicrosoft.com".into(),
    });
    d.service_principals.push(ServicePrincipal {
        id: Uuid::from_u128(9),
        app_id: MICROSOFT_GRAPH_APP_ID,
        display_name: "Microsoft Graph".into(),
        app_owner_organization_id: None,
        service_principal_names: vec![],
        app_roles: vec![],
        oauth2_permission_scopes: vec![],
        app_role_assignment_required: false,
        account_enabled: true,
        service_principal_type: "Application".into(),
    });
    d.users.push(User {
        id: Uuid::from_u128(3),
        user_principal_name: "adele@gatehousedemo.onmicrosoft.com".into(),
        display_name: "Adele Vance".into(),
        given_name: None,
        surname: None,
        mail: None,
        account_enabled: true,
        assigned_licenses: vec![],
        gatehouse_password_hash: None,
        sign_in_sessions_valid_from: None,
        gatehouse_totp_secret: None,
    });
    d
}

fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing {} (UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(actual, expected, "{name}");
}

fn body(d: &Denial) -> String {
    let aad = d.wire.aad().unwrap();
    let kind = match d.wire {
        WireError::Token(_) => "token",
        WireError::Redirect(_) => "redirect",
        WireError::Page(_) => "page",
        WireError::Graph(_) => "graph",
    };
    match d.wire {
        WireError::Redirect(_) => {
            let params = aad.redirect_params(&ctx());
            let q = gatehouse_engine::wire::entra_urlencode(&params);
            format!("HTTP {} {kind} {}\n{q}\n", aad.status, d.cause.code())
        }
        _ => format!(
            "HTTP {} {kind} {}\n{}\n",
            aad.status,
            d.cause.code(),
            aad.to_json(&ctx())
        ),
    }
}

#[test]
fn every_error_body_is_byte_stable() {
    let dir = directory();
    let confidential = app(false);
    let public = app(true);
    let user = dir.users[0].clone();
    let missing = vec![gatehouse_model::directory::OfferedPermission {
        id: Uuid::from_u128(5),
        value: "Directory.Read.All".into(),
        admin_consent_required: true,
        display_name: "Read directory data".into(),
        description: "d".into(),
    }];
    let base = "https://localhost:8443";
    let code = |redeemed: bool, expires_at: i64| CodeFacts {
        client_id: confidential.app_id,
        redirect_uri: "http://localhost:3000/auth/callback".into(),
        code_challenge: None,
        expires_at,
        redeemed,
    };
    let now = ctx().unix();
    let cases: Vec<(&str, Denial)> = vec![
        (
            "700016",
            token::client_unknown("00000000-1111-2222-3333-444444444444", &dir),
        ),
        (
            "7000215",
            token::authenticate_client(
                &confidential,
                &PresentedCredential::Secret(SecretCheck::NoMatch),
                token::GrantKind::ClientCredentials,
                false,
            )
            .unwrap_err(),
        ),
        (
            "7000218",
            token::authenticate_client(
                &confidential,
                &PresentedCredential::None,
                token::GrantKind::ClientCredentials,
                false,
            )
            .unwrap_err(),
        ),
        (
            "700025",
            token::authenticate_client(
                &public,
                &PresentedCredential::Secret(SecretCheck::NoMatch),
                token::GrantKind::Password,
                false,
            )
            .unwrap_err(),
        ),
        (
            "70011",
            scope::resolve(
                &dir,
                "https://graph.microsoft.com/.default User.Read",
                false,
            )
            .unwrap_err(),
        ),
        (
            "1002012",
            scope::resolve(&dir, "User.Read.All", true).unwrap_err(),
        ),
        ("900144", token::missing_parameter("grant_type")),
        (
            "65001",
            token::consent_missing(&confidential, &missing, base, &dir),
        ),
        ("65004", token::consent_declined()),
        (
            "90094",
            token::admin_consent_required(&confidential, &missing, &user, base, &dir),
        ),
        (
            "50011",
            token::redirect_uri_mismatch(&confidential, "http://localhost:3000/other"),
        ),
        (
            "50126",
            token::sign_in(
                &dir,
                "adele@gatehousedemo.onmicrosoft.com",
                false,
                LockoutState { locked: false },
                SignInChannel::TokenEndpoint,
            )
            .unwrap_err(),
        ),
        (
            "50034",
            token::sign_in(
                &dir,
                "nobody@gatehousedemo.onmicrosoft.com",
                false,
                LockoutState { locked: false },
                SignInChannel::TokenEndpoint,
            )
            .unwrap_err(),
        ),
        (
            "50053",
            token::sign_in(
                &dir,
                "adele@gatehousedemo.onmicrosoft.com",
                true,
                LockoutState { locked: true },
                SignInChannel::TokenEndpoint,
            )
            .unwrap_err(),
        ),
        (
            "54005",
            token::redeem_code(
                Some(&code(true, now + 60)),
                true,
                confidential.app_id,
                None,
                None,
                now,
            )
            .unwrap_err(),
        ),
        (
            "70008",
            token::redeem_code(
                Some(&code(false, now - 1)),
                true,
                confidential.app_id,
                None,
                None,
                now,
            )
            .unwrap_err(),
        ),
        (
            "9002313",
            token::redeem_code(None, false, confidential.app_id, None, None, now).unwrap_err(),
        ),
    ];
    for (name, denial) in &cases {
        assert!(
            denial
                .wire
                .aad()
                .unwrap()
                .codes
                .iter()
                .any(|c| c.to_string() == *name),
            "{name}: {:?}",
            denial.wire
        );
        assert!(
            !denial.fix.is_empty() || !denial.evidence.is_empty(),
            "{name} is explained"
        );
        golden(&format!("{name}.txt"), &body(denial));
    }
}
