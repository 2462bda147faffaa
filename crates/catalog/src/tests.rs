//! Tests against the embedded data. Expected values were read from the JSON
//! files with a script, not guessed.

use super::*;

fn cat() -> &'static Catalog {
    match Catalog::try_embedded() {
        Ok(c) => c,
        Err(e) => panic!("embedded catalog failed to parse: {e}"),
    }
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

fn names(list: &[Accepted]) -> Vec<&str> {
    list.iter().map(|a| a.permission.as_str()).collect()
}

fn find<'a>(list: &'a [Accepted], name: &str) -> &'a Accepted {
    list.iter()
        .find(|a| a.permission == name)
        .unwrap_or_else(|| panic!("{name} not in {:?}", names(list)))
}

const USER_GUID: &str = "8f2e2f26-1f6b-4a6e-9f10-0f9b4c2d7a11";

// ------------------------------------------------------------------ loading

#[test]
fn embedded_parses_and_has_expected_size() {
    let c = cat();
    // 917 names in permissions.json, 2 of them differ only by case -> 916,
    // plus 52 names only in permissions-descriptions.json (openid, ...).
    assert_eq!(c.len(), 968);
    assert!(!c.is_empty());
    assert_eq!(c.iter().count(), 968);
    assert!(c.route_count() > 7000, "{}", c.route_count());
    // Same instance every time.
    assert!(std::ptr::eq(c, Catalog::embedded()));
}

fn from_original_files() -> Catalog {
    Catalog::from_json(
        include_bytes!("../data/permissions.json"),
        include_bytes!("../data/provisioningInfo.json"),
        include_bytes!("../data/permissions-descriptions.json"),
    )
    .unwrap()
}

/// The catalog build.rs precomputed equals the one parsed from `data/` now.
#[test]
fn precomputed_catalog_equals_original_files() {
    let original = from_original_files();
    let c = cat();
    assert_eq!(original.len(), c.len());
    assert_eq!(original.route_count(), c.route_count());
    assert!(original.iter().eq(c.iter()));
    assert_eq!(original.perms, c.perms);
    assert_eq!(original.by_name, c.by_name);
    assert_eq!(original.ids_delegated, c.ids_delegated);
    assert_eq!(original.ids_application, c.ids_application);
    assert!(original.skipped_paths().eq(c.skipped_paths()));
    assert!(original.router.templates().eq(c.router.templates()));
    // Byte for byte what build.rs embedded (the encoding is deterministic).
    assert!(blob::encode(&original.perms, &original.router) == CATALOG_BLOB);
    for (m, p) in [
        ("GET", "/v1.0/me"),
        ("PATCH", "/v1.0/users/x"),
        ("GET", "/v1.0/groups/x/members"),
    ] {
        for kind in [TokenKind::Delegated, TokenKind::Application] {
            assert_eq!(original.accepted(m, p, kind), c.accepted(m, p, kind));
        }
    }
}

#[test]
fn blob_round_trips_and_rejects_corruption() {
    let decode = |b: &[u8]| blob::decode(Cow::Owned(b.to_vec()));
    let (perms, router) = decode(CATALOG_BLOB).unwrap();
    assert_eq!(blob::encode(&perms, &router), CATALOG_BLOB);
    // Truncated or extended input is rejected, never a partial catalog.
    for len in [0, 7, 8, 100, CATALOG_BLOB.len() / 2, CATALOG_BLOB.len() - 1] {
        assert!(decode(&CATALOG_BLOB[..len]).is_none(), "{len}");
    }
    let mut longer = CATALOG_BLOB.to_vec();
    longer.push(0);
    assert!(decode(&longer).is_none());
    let mut bad_magic = CATALOG_BLOB.to_vec();
    bad_magic[0] ^= 1;
    assert!(decode(&bad_magic).is_none());
    // A huge count does not allocate: it is checked against the input size.
    let mut huge = CATALOG_BLOB[..8].to_vec();
    huge.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    assert!(decode(&huge).is_none());
}

#[test]
fn query_string_templates_are_skipped() {
    let skipped: Vec<&str> = cat().skipped_paths().collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped.iter().all(|s| s.contains('?')));
}

#[test]
fn malformed_input_is_an_error() {
    assert!(Catalog::from_json(b"{", b"{}", b"{}").is_err());
    let err = Catalog::from_json(br#"{"permissions":{}}"#, b"[]", b"{}").unwrap_err();
    assert!(
        err.to_string().starts_with("provisioningInfo.json"),
        "{err}"
    );
}

#[test]
fn small_handmade_catalog() {
    let perms = br#"{"permissions": {
        "A.Read": {"authorizationType": "oAuth2",
            "schemes": {"Application": {"adminDisplayName": "Read A", "adminDescription": "d",
                                        "requiresAdminConsent": true, "privilegeLevel": 2}},
            "pathSets": [{"schemeKeys": ["Application"], "methods": ["GET"],
                          "paths": {"/things/{thing-id}": "least=Application"}}],
            "ownerInfo": {"ownerSecurityGroup": "x"}}}}"#;
    let prov = br#"{"permissionDeployments": {"A.Read": [
        {"id": "11111111-2222-3333-4444-555555555555", "scheme": "Application",
         "environment": "public", "isHidden": false, "isEnabled": true, "resourceAppId": ""}]}}"#;
    let desc = br#"{"delegatedScopesList": [], "applicationScopesList": []}"#;
    let c = Catalog::from_json(perms, prov, desc).unwrap();
    assert_eq!(c.len(), 1);
    let a = c.get("a.read").unwrap().application.as_ref().unwrap();
    assert_eq!(a.id, uuid("11111111-2222-3333-4444-555555555555"));
    assert_eq!(a.id_source, IdSource::Provisioning);
    let acc = c.accepted("GET", "/v1.0/Things/42", TokenKind::Application);
    assert_eq!(names(&acc), ["A.Read"]);
    assert!(acc[0].least_privileged);
    assert!(
        c.accepted("GET", "/v1.0/things/42", TokenKind::Delegated)
            .is_empty()
    );
    assert!(
        c.accepted("POST", "/v1.0/things/42", TokenKind::Application)
            .is_empty()
    );
}

// ------------------------------------------------------------------ permissions and ids

#[test]
fn user_read_ids_and_flags() {
    let p = cat().get("User.Read").unwrap();
    assert_eq!(p.name, "User.Read");
    let d = p.delegated.as_ref().unwrap();
    assert_eq!(d.id, uuid("e1fe6dd8-ba31-4d61-89e7-88639da4683d"));
    assert_eq!(d.id_source, IdSource::Provisioning);
    assert!(!d.requires_admin_consent);
    assert_eq!(d.privilege_level, Some(2));
    assert_eq!(d.admin_display_name, "Sign in and read user profile");
    assert_eq!(
        d.user_display_name.as_deref(),
        Some("Sign you in and read your profile")
    );
    assert!(p.application.is_none());
    assert!(p.delegated_personal.is_some());
    assert!(!p.rsc);
}

#[test]
fn user_read_all_ids() {
    let p = cat().get("User.Read.All").unwrap();
    let d = p.delegated.as_ref().unwrap();
    let a = p.application.as_ref().unwrap();
    assert_eq!(d.id, uuid("a154be20-db9c-4678-8ab7-66f6cc099a59"));
    assert_eq!(a.id, uuid("df021288-bdef-4463-88db-98f22de89214"));
    assert!(d.requires_admin_consent);
    assert!(a.requires_admin_consent);
    assert_eq!(
        a.admin_display_name,
        "Read all users' full profiles and company properties"
    );
    assert_eq!(p.for_kind(TokenKind::Application), Some(a));
    assert_eq!(p.variant(Scheme::DelegatedWork), Some(d));
}

#[test]
fn more_known_ids() {
    // (name, delegated, application) from the reference table / JSON.
    let cases = [
        (
            "User.ReadBasic.All",
            "b340eb25-3456-403f-be2f-af7a0d370277",
            Some("97235f07-e226-4f63-ace3-39588e11d3a1"),
        ),
        (
            "User.ReadWrite.All",
            "204e0828-b5ca-4ad8-b9f3-f32a958e7cc4",
            Some("741f803b-c850-494e-b5df-cde7c675a1ca"),
        ),
        (
            "User-PasswordProfile.ReadWrite.All",
            "56760768-b641-451f-8906-e1b8ab31bca7",
            Some("cc117bb9-00cf-4eb8-b580-ea2a878fe8f7"),
        ),
        (
            "UserAuthenticationMethod.ReadWrite.All",
            "b7887744-6746-4312-813d-72daeaee7e2d",
            Some("50483e42-d915-4231-9639-7fdb7fd190e5"),
        ),
        (
            "Directory.Read.All",
            "06da0dbc-49e2-44d2-8312-53f166ab848a",
            Some("7ab1d382-f21e-4acd-a863-ba3e13f7da61"),
        ),
        (
            "Directory.ReadWrite.All",
            "c5366453-9fb0-48a5-a156-24f0c49a4b84",
            Some("19dbc75e-c2e2-444c-a770-ec69d8559fc7"),
        ),
        (
            "Directory.AccessAsUser.All",
            "0e263e50-5827-48a4-b97c-d940288653c7",
            None,
        ),
        (
            "RoleManagement.ReadWrite.Directory",
            "d01b97e9-cbc0-49fe-810a-750afd5527a3",
            Some("9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8"),
        ),
        (
            "AppRoleAssignment.ReadWrite.All",
            "84bccea3-f856-4a8a-967b-dbe0a3d53a64",
            Some("06b708a9-e830-4db3-a914-8e69da51d44f"),
        ),
        (
            "Application.Read.All",
            "c79f8feb-a9db-4090-85f9-90d820caa0eb",
            Some("9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30"),
        ),
        (
            "Mail.Read",
            "570282fd-fa5c-430d-a7fd-fc8dc98a9dca",
            Some("810c84a8-4a9e-49e6-bf7d-12d183f40d01"),
        ),
    ];
    for (name, del, app) in cases {
        let p = cat().get(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(p.delegated.as_ref().unwrap().id, uuid(del), "{name}");
        assert_eq!(
            p.application.as_ref().map(|v| v.id),
            app.map(uuid),
            "{name}"
        );
    }
}

#[test]
fn openid_scopes_come_from_descriptions() {
    let cases = [
        ("openid", "37f7f235-527c-4136-accd-4a02d197296e"),
        ("profile", "14dad69e-099b-42c9-810b-d002981feec1"),
        ("email", "64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0"),
        ("offline_access", "7427e0e9-2fba-42fe-b0c0-848c9e6a8182"),
    ];
    for (name, id) in cases {
        let p = cat().get(name).unwrap();
        let d = p.delegated.as_ref().unwrap();
        assert_eq!(d.id, uuid(id), "{name}");
        assert_eq!(d.id_source, IdSource::Descriptions, "{name}");
        assert!(!d.requires_admin_consent, "{name}");
        assert!(p.application.is_none(), "{name}");
    }
}

#[test]
fn provisioning_wins_over_descriptions() {
    // provisioningInfo.json says c8948c23..., the descriptions file 1a997f7e...
    let p = cat()
        .get("Contacts-OnPremisesSyncBehavior.ReadWrite.All")
        .unwrap();
    let a = p.application.as_ref().unwrap();
    assert_eq!(a.id, uuid("c8948c23-e66b-42db-83fd-770b71ab78d2"));
    assert_eq!(a.id_source, IdSource::Provisioning);
}

#[test]
fn id_fallbacks() {
    // Only in provisioningInfo.json under another resourceAppId.
    let p = cat().get("UserAuthMethod-Phone.Read.All").unwrap();
    let d = p.delegated.as_ref().unwrap();
    assert_eq!(d.id, uuid("20cf4ae1-09b9-4d29-a6f8-43e1820ce60c"));
    assert_eq!(d.id_source, IdSource::ProvisioningOtherResource);
    // No GUID anywhere (provisioning entries have "id": "").
    let p = cat().get("AgentIdentity.Read.All").unwrap();
    let d = p.delegated.as_ref().unwrap();
    let a = p.application.as_ref().unwrap();
    assert_eq!(d.id_source, IdSource::Synthetic);
    assert_eq!(a.id_source, IdSource::Synthetic);
    assert_ne!(d.id, a.id);
    assert_eq!(d.id.get_version_num(), 8);
    // Deterministic across parses (the embedded catalog was parsed by build.rs).
    let again = from_original_files();
    assert_eq!(
        again
            .get("AgentIdentity.Read.All")
            .unwrap()
            .delegated
            .as_ref()
            .unwrap()
            .id,
        d.id
    );
}

#[test]
fn case_insensitive_lookup() {
    let c = cat();
    for n in ["user.read", "USER.READ", " User.Read ", "uSeR.rEaD"] {
        assert_eq!(c.get(n).map(|p| p.name.as_str()), Some("User.Read"), "{n}");
    }
    assert_eq!(c.get("user.read.all").unwrap().name, "User.Read.All");
    assert!(c.get("User.Read.Everything").is_none());
    assert!(c.get("").is_none());
}

#[test]
fn case_variant_duplicate_is_merged() {
    let c = cat();
    let a = c.get("Calls.JoinGroupCallasGuest.All").unwrap();
    let b = c.get("Calls.JoinGroupCallAsGuest.All").unwrap();
    assert!(std::ptr::eq(a, b));
    assert_eq!(a.name, "Calls.JoinGroupCallAsGuest.All");
    assert_eq!(
        a.application.as_ref().unwrap().admin_display_name,
        "Join group calls and meetings as a guest"
    );
    // A path only the lower-case stub entry had.
    let acc = c.accepted(
        "DELETE",
        "/communications/calls/1/participants/2",
        TokenKind::Application,
    );
    assert!(
        names(&acc).contains(&"Calls.JoinGroupCallAsGuest.All"),
        "{:?}",
        names(&acc)
    );
}

#[test]
fn missing_admin_texts_fall_back() {
    // permissions.json has no adminDisplayName for this DelegatedWork scheme.
    let p = cat().get("IndustryData-OutboundFlow.Read.All").unwrap();
    assert!(!p.delegated.as_ref().unwrap().admin_display_name.is_empty());
}

#[test]
fn by_id_round_trips() {
    let c = cat();
    let mut checked = 0;
    for p in c.iter() {
        for (kind, v) in [
            (TokenKind::Delegated, &p.delegated),
            (TokenKind::Application, &p.application),
        ] {
            let Some(v) = v else { continue };
            let found = c.by_id_and_kind(v.id, kind).unwrap();
            assert_eq!(found.name, p.name);
            let (q, k) = c.by_id(v.id).unwrap();
            assert_eq!(q.for_kind(k).unwrap().id, v.id);
            checked += 1;
        }
    }
    assert!(checked > 1400, "{checked}");
    let (p, k) = c
        .by_id(uuid("df021288-bdef-4463-88db-98f22de89214"))
        .unwrap();
    assert_eq!(
        (p.name.as_str(), k),
        ("User.Read.All", TokenKind::Application)
    );
    let (p, k) = c
        .by_id(uuid("e1fe6dd8-ba31-4d61-89e7-88639da4683d"))
        .unwrap();
    assert_eq!((p.name.as_str(), k), ("User.Read", TokenKind::Delegated));
    assert!(c.by_id(Uuid::nil()).is_none());
    assert!(
        c.by_id_and_kind(
            uuid("e1fe6dd8-ba31-4d61-89e7-88639da4683d"),
            TokenKind::Application
        )
        .is_none()
    );
    // The one GUID used for both schemes of the same permission.
    let shared = uuid("405a51b5-8d8d-430b-9842-8be4b0e9f324");
    assert_eq!(c.by_id(shared).unwrap().1, TokenKind::Application);
    assert_eq!(
        c.by_id_and_kind(shared, TokenKind::Delegated).unwrap().name,
        "User.Export.All"
    );
}

#[test]
fn catalog_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Catalog>();
    let handle = std::thread::spawn(|| Catalog::embedded().len());
    assert_eq!(handle.join().unwrap(), cat().len());
}

#[test]
fn scheme_and_kind_names() {
    assert_eq!(
        "DelegatedWork".parse::<Scheme>().unwrap(),
        Scheme::DelegatedWork
    );
    assert_eq!(
        "application".parse::<Scheme>().unwrap(),
        Scheme::Application
    );
    assert!("Delegated".parse::<Scheme>().is_err());
    assert_eq!(TokenKind::Delegated.scheme(), Scheme::DelegatedWork);
    assert_eq!(TokenKind::Application.scheme(), Scheme::Application);
    assert_eq!(Scheme::DelegatedPersonal.to_string(), "DelegatedPersonal");
}

// ------------------------------------------------------------------ accepted()

#[test]
fn get_user_by_guid_application() {
    let acc = cat().accepted(
        "GET",
        &format!("/v1.0/users/{USER_GUID}"),
        TokenKind::Application,
    );
    let n = names(&acc);
    // permissions.json marks User.ReadBasic.All and User.ReadWrite.All least for
    // Application on GET /users/{id}; User.Read.All is accepted but not least.
    assert_eq!(&n[..2], ["User.ReadBasic.All", "User.ReadWrite.All"]);
    assert!(acc[0].least_privileged && acc[1].least_privileged);
    assert!(acc[2..].iter().all(|a| !a.least_privileged));
    let ura = find(&acc, "User.Read.All");
    assert!(!ura.least_privileged);
    assert!(ura.requires_admin_consent);
    assert_eq!(ura.privilege_level, Some(3));
    assert!(ura.also_requires.is_empty());
    assert!(n.contains(&"Directory.Read.All"));
    assert!(n.contains(&"User.ReadWrite.CrossCloud"));
    // Delegated-only permissions are not listed for app tokens.
    assert!(!n.contains(&"User.Read"));
    assert!(!n.contains(&"User.ReadWrite"));
    assert_eq!(acc.len(), 16, "{n:?}");
    // Sorted: non-least part by privilege level, then name.
    let rest = &acc[2..];
    for w in rest.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let key = |x: &Accepted| (x.privilege_level.unwrap_or(u8::MAX), x.permission.clone());
        assert!(key(a) <= key(b), "{a:?} before {b:?}");
    }
}

#[test]
fn get_user_by_guid_delegated() {
    let acc = cat().accepted(
        "GET",
        &format!("/v1.0/users/{USER_GUID}"),
        TokenKind::Delegated,
    );
    let n = names(&acc);
    assert_eq!(&n[..2], ["User.ReadBasic.All", "User.ReadWrite.All"]);
    // User.Read is accepted for DelegatedWork, but its least mark is only for DelegatedPersonal.
    assert!(!find(&acc, "User.Read").least_privileged);
    assert!(!n.contains(&"User.ReadWrite.CrossCloud"));
    assert!(!find(&acc, "User.ReadBasic.All").requires_admin_consent);
}

#[test]
fn personal_scheme_is_separate() {
    let acc = cat().accepted_for_scheme(
        "GET",
        &format!("/users/{USER_GUID}"),
        Scheme::DelegatedPersonal,
    );
    assert_eq!(names(&acc)[..2], ["User.Read", "User.ReadWrite"]);
    assert!(acc[0].least_privileged && acc[1].least_privileged);
}

#[test]
fn me_delegated_and_app() {
    let c = cat();
    let acc = c.accepted("GET", "/v1.0/me", TokenKind::Delegated);
    assert_eq!(acc[0].permission, "User.Read");
    assert!(acc[0].least_privileged);
    assert!(!acc[0].requires_admin_consent);
    assert!(acc[1..].iter().all(|a| !a.least_privileged));
    assert_eq!(acc.len(), 9, "{:?}", names(&acc));
    // /me has no Application scheme in the catalog.
    assert!(
        c.accepted("GET", "/v1.0/me", TokenKind::Application)
            .is_empty()
    );
    let m = c.match_route("GET", "/v1.0/me").unwrap();
    assert_eq!(m.template, "/me");
    assert!(!m.me_alias);
    assert!(m.params.is_empty());
}

#[test]
fn me_alias_to_users() {
    let c = cat();
    // The catalog has GET /me/memberof itself ...
    let m = c.match_route("GET", "/v1.0/me/memberOf").unwrap();
    assert_eq!(m.template, "/me/memberof");
    assert!(!m.me_alias);
    assert_eq!(
        c.accepted("GET", "/v1.0/me/memberOf", TokenKind::Delegated)[0].permission,
        "User.Read"
    );
    // ... but not GET /me/invitedBy, which maps to /users/{id}/invitedby.
    let m = c.match_route("GET", "/v1.0/me/invitedBy").unwrap();
    assert_eq!(m.template, "/users/{id}/invitedby");
    assert!(m.me_alias);
    assert_eq!(m.params, ["me"]);
    assert!(
        !c.accepted("GET", "/v1.0/me/invitedBy", TokenKind::Delegated)
            .is_empty()
    );
}

#[test]
fn patch_user() {
    let c = cat();
    let path = format!("/v1.0/users/{USER_GUID}");
    let app = c.accepted("PATCH", &path, TokenKind::Application);
    assert_eq!(app[0].permission, "User.ReadWrite.All");
    assert!(app[0].least_privileged);
    assert!(app[1..].iter().all(|a| !a.least_privileged));
    let n = names(&app);
    for p in [
        "User-PasswordProfile.ReadWrite.All",
        "User.EnableDisableAccount.All",
        "User-Mail.ReadWrite.All",
        "User-Phone.ReadWrite.All",
        "User.ManageIdentities.All",
        "Directory.ReadWrite.All",
        "User.ReadWrite.CrossCloud",
    ] {
        assert!(n.contains(&p), "{p} missing from {n:?}");
    }
    assert!(!n.contains(&"User.ReadWrite"));
    assert!(
        !n.contains(&"User.Read.All"),
        "read permission must not allow PATCH"
    );
    let del = c.accepted("PATCH", &path, TokenKind::Delegated);
    assert_eq!(del[0].permission, "User.ReadWrite.All");
    assert!(!find(&del, "User.ReadWrite").least_privileged);
    assert!(!names(&del).contains(&"User.ReadWrite.CrossCloud"));
    assert_eq!(
        c.match_route("PATCH", &path).unwrap().template,
        "/users/{id}"
    );
    // PUT /users/{id} is not in the catalog.
    assert!(c.match_route("PUT", &path).is_none());
    assert!(c.accepted("PUT", &path, TokenKind::Application).is_empty());
}

#[test]
fn directory_role_members_ref() {
    let c = cat();
    let path = format!("/v1.0/directoryRoles/{USER_GUID}/members/$ref");
    for kind in [TokenKind::Delegated, TokenKind::Application] {
        let acc = c.accepted("POST", &path, kind);
        assert_eq!(
            names(&acc),
            ["RoleManagement.ReadWrite.Directory"],
            "{kind}"
        );
        assert!(acc[0].least_privileged);
        assert!(acc[0].requires_admin_consent);
    }
    let m = c.match_route("POST", &path).unwrap();
    assert_eq!(m.template, "/directoryroles/{id}/members");
    assert_eq!(m.params, [USER_GUID]);
    // DELETE .../members/{id}/$ref -> /directoryroles/{id}/members/{id}
    let m = c
        .match_route(
            "DELETE",
            &format!("/v1.0/directoryRoles/{USER_GUID}/members/abc/$ref"),
        )
        .unwrap();
    assert_eq!(m.template, "/directoryroles/{id}/members/{id}");
    assert_eq!(m.params, [USER_GUID, "abc"]);
}

#[test]
fn directory_role_key_forms() {
    let c = cat();
    let t = "62e90394-69f5-4237-9190-012177145e10";
    // Key-as-segment on GET: no dedicated template, so /directoryroles/{id}/members.
    let m = c
        .match_route(
            "GET",
            &format!("/v1.0/directoryRoles/roleTemplateId={t}/members"),
        )
        .unwrap();
    assert_eq!(m.template, "/directoryroles/{id}/members");
    assert_eq!(m.params, [format!("roleTemplateId={t}")]);
    // ... but POST has /directoryroles/roletemplateid={roletemplateid}/members.
    let m = c
        .match_route(
            "POST",
            &format!("/v1.0/directoryRoles/roleTemplateId={t}/members/$ref"),
        )
        .unwrap();
    assert_eq!(m.template, "/directoryroles/roletemplateid={id}/members");
    assert_eq!(m.params, [t]);
    // Parenthesised alternate key has its own template.
    let m = c
        .match_route(
            "GET",
            &format!("/v1.0/directoryRoles(roleTemplateId='{t}')/members"),
        )
        .unwrap();
    assert_eq!(m.template, "/directoryroles(roletemplateid={id})/members");
    assert_eq!(m.params, [t]);
    let acc = c.accepted(
        "GET",
        &format!("/v1.0/directoryRoles(roleTemplateId='{t}')/members"),
        TokenKind::Application,
    );
    assert_eq!(acc[0].permission, "Directory.Read.All");
    assert!(acc[0].least_privileged);
}

#[test]
fn reset_password_is_delegated_only() {
    let c = cat();
    let path = format!(
        "/v1.0/users/{USER_GUID}/authentication/methods/28c10230-6103-485e-b985-444c60001490/resetPassword"
    );
    let del = c.accepted("POST", &path, TokenKind::Delegated);
    assert_eq!(names(&del), ["UserAuthenticationMethod.ReadWrite.All"]);
    assert!(del[0].least_privileged);
    assert!(c.accepted("POST", &path, TokenKind::Application).is_empty());
    // The route exists even though no app permission accepts it.
    assert_eq!(
        c.match_route("POST", &path).unwrap().template,
        "/users/{id}/authentication/methods/{id}/resetpassword"
    );
}

#[test]
fn upn_segments() {
    let c = cat();
    for path in [
        "/v1.0/users/adele@contoso.com/memberOf",
        "/v1.0/users/adele%40contoso.com/memberOf",
        "/v1.0/users/adele_fabrikam.com%23EXT%23@contoso.onmicrosoft.com/memberOf",
    ] {
        let m = c.match_route("GET", path).unwrap();
        assert_eq!(m.template, "/users/{id}/memberof", "{path}");
        assert!(m.params[0].contains('@'), "{:?}", m.params);
        let app = c.accepted("GET", path, TokenKind::Application);
        assert_eq!(app[0].permission, "Directory.Read.All", "{path}");
        assert!(app[0].least_privileged);
        let del = c.accepted("GET", path, TokenKind::Delegated);
        assert_eq!(del[0].permission, "User.Read", "{path}");
        // Directory.Read.All is least only for Application here.
        assert!(!find(&del, "Directory.Read.All").least_privileged);
    }
    let m = c
        .match_route(
            "GET",
            "/users/adele_fabrikam.com%23EXT%23@contoso.onmicrosoft.com",
        )
        .unwrap();
    assert_eq!(
        m.params,
        ["adele_fabrikam.com#EXT#@contoso.onmicrosoft.com"]
    );
}

#[test]
fn parenthesised_keys() {
    let c = cat();
    let m = c
        .match_route("GET", "/v1.0/users('adele@contoso.com')")
        .unwrap();
    assert_eq!(m.template, "/users/{id}");
    assert_eq!(m.params, ["adele@contoso.com"]);
    let m = c
        .match_route(
            "GET",
            "/v1.0/users(userPrincipalName='adele@contoso.com')/memberOf",
        )
        .unwrap();
    assert_eq!(m.template, "/users/{id}/memberof");
    assert_eq!(m.params, ["userPrincipalName=adele@contoso.com"]);
    let m = c
        .match_route(
            "GET",
            "/v1.0/applications(appId='00000003-0000-0000-c000-000000000000')",
        )
        .unwrap();
    assert_eq!(m.template, "/applications(appid={id})");
    assert_eq!(m.params, ["00000003-0000-0000-c000-000000000000"]);
    let acc = c.accepted(
        "GET",
        "/v1.0/applications(appId='x')",
        TokenKind::Application,
    );
    let least: Vec<&str> = acc
        .iter()
        .filter(|a| a.least_privileged)
        .map(|a| a.permission.as_str())
        .collect();
    assert_eq!(
        least,
        ["Application.Read.All", "Application.ReadWrite.OwnedBy"]
    );
}

#[test]
fn case_variants_give_same_answer() {
    let c = cat();
    let base = c.accepted(
        "GET",
        &format!("/v1.0/users/{USER_GUID}/memberOf"),
        TokenKind::Application,
    );
    assert!(!base.is_empty());
    for path in [
        format!("/V1.0/USERS/{USER_GUID}/MEMBEROF"),
        format!("/v1.0/users/{}/memberof", USER_GUID.to_uppercase()),
        format!("/beta/Users/{USER_GUID}/MemberOf"),
        format!("users/{USER_GUID}/memberOf/"),
        format!("https://graph.microsoft.com/v1.0/users/{USER_GUID}/memberOf?$select=id&$top=5"),
    ] {
        assert_eq!(
            c.accepted("GET", &path, TokenKind::Application),
            base,
            "{path}"
        );
        assert_eq!(
            c.accepted("get", &path, TokenKind::Application),
            base,
            "{path}"
        );
    }
    // HEAD behaves like GET.
    assert_eq!(
        c.accepted(
            "HEAD",
            &format!("/v1.0/users/{USER_GUID}/memberOf"),
            TokenKind::Application
        ),
        base
    );
}

#[test]
fn unknown_paths_and_methods() {
    let c = cat();
    for path in [
        "/v1.0/nonexistent",
        "/v1.0/users/abc/nonexistentNavigation",
        "/v1.0/users/abc/memberOf/xyz/extra/deep/path",
        "",
        "/",
        "/v1.0",
        "/v1.0/$metadata",
    ] {
        assert!(c.match_route("GET", path).is_none(), "{path}");
        assert!(
            c.accepted("GET", path, TokenKind::Delegated).is_empty(),
            "{path}"
        );
        assert!(
            c.accepted("GET", path, TokenKind::Application).is_empty(),
            "{path}"
        );
    }
    assert!(c.match_route("FROB", "/v1.0/users").is_none());
    assert!(c.match_route("OPTIONS", "/v1.0/users").is_none());
}

#[test]
fn dollar_segments() {
    let c = cat();
    // $count: /users/$count -> /users (not /users/{id}).
    let m = c.match_route("GET", "/v1.0/users/$count").unwrap();
    assert_eq!(m.template, "/users");
    // $value: /users/{id}/photo/$value -> /users/{id}/photo.
    let m = c
        .match_route("GET", &format!("/v1.0/users/{USER_GUID}/photo/$value"))
        .unwrap();
    assert_eq!(m.template, "/users/{id}/photo");
    // A $ref template that does exist in the catalog is used as is.
    let m = c
        .match_route("POST", "/v1.0/serviceprincipals/abc/sponsors/$ref")
        .unwrap();
    assert_eq!(m.template, "/serviceprincipals/{id}/sponsors/$ref");
}

#[test]
fn type_cast_segments() {
    let c = cat();
    let m = c
        .match_route(
            "GET",
            &format!("/v1.0/groups/{USER_GUID}/members/microsoft.graph.user"),
        )
        .unwrap();
    assert_eq!(m.template, "/groups/{id}/members");
    let m = c
        .match_route(
            "GET",
            &format!("/v1.0/groups/{USER_GUID}/members/microsoft.graph.user/$count"),
        )
        .unwrap();
    assert_eq!(m.template, "/groups/{id}/members");
    let acc = c.accepted(
        "GET",
        &format!("/v1.0/groups/{USER_GUID}/members"),
        TokenKind::Application,
    );
    assert_eq!(acc[0].permission, "GroupMember.ReadBasic.All");
}

#[test]
fn most_specific_template_wins() {
    let c = cat();
    let m = c.match_route("GET", "/v1.0/users/delta").unwrap();
    assert_eq!(m.template, "/users/delta");
    let acc = c.accepted("GET", "/v1.0/users/delta()", TokenKind::Application);
    assert_eq!(acc[0].permission, "User.Read.All");
    assert!(acc[0].least_privileged);
    assert_eq!(
        c.match_route("GET", "/v1.0/users/delta()")
            .unwrap()
            .template,
        "/users/delta"
    );
}

#[test]
fn rsc_permissions_are_excluded() {
    let c = cat();
    assert!(c.get("ChannelSettings.Read.Group").unwrap().rsc);
    let acc = c.accepted("GET", "/v1.0/teams/t1/channels", TokenKind::Application);
    let n = names(&acc);
    assert!(!n.is_empty());
    assert!(!n.iter().any(|p| p.ends_with(".Group")), "{n:?}");
    assert!(n.contains(&"ChannelSettings.Read.All"));
    // The only Application `least` entry on this path was the RSC one.
    assert!(acc.iter().all(|a| !a.least_privileged));
    let del = c.accepted("GET", "/v1.0/teams/t1/channels", TokenKind::Delegated);
    assert_eq!(del[0].permission, "Channel.ReadBasic.All");
    assert!(del[0].least_privileged);
}

#[test]
fn also_requires_is_reported() {
    let acc = cat().accepted(
        "POST",
        "/v1.0/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')/appRoleAssignedTo",
        TokenKind::Application,
    );
    assert_eq!(
        find(&acc, "Application.Read.All").also_requires,
        ["AppRoleAssignment.ReadWrite.All"]
    );
    assert_eq!(
        find(&acc, "AppRoleAssignment.ReadWrite.All").also_requires,
        ["Application.Read.All", "Directory.Read.All"]
    );
    assert!(
        find(&acc, "Application.ReadWrite.All")
            .also_requires
            .is_empty()
    );
}

#[test]
fn workbook_path_addressing() {
    let c = cat();
    let m = c
        .match_route(
            "GET",
            "/v1.0/me/drive/root:/Documents/Budget%202024.xlsx:/workbook/worksheets",
        )
        .unwrap();
    assert_eq!(m.template, "/me/drive/root:/{id}:/workbook/worksheets");
    assert_eq!(m.params, ["Documents/Budget 2024.xlsx"]);
    let m = c
        .match_route(
            "GET",
            "/v1.0/me/drive/items/01ABC/workbook/worksheets/Sheet1/range(address='A1:B2')",
        )
        .unwrap();
    assert_eq!(
        m.template,
        "/me/drive/items/{id}/workbook/worksheets/{id}/range(address={id})"
    );
    assert_eq!(m.params, ["01ABC", "Sheet1", "A1:B2"]);
    let acc = c.accepted(
        "GET",
        "/v1.0/me/drive/items/01ABC/workbook/worksheets/Sheet1/range(address='A1:B2')",
        TokenKind::Delegated,
    );
    assert_eq!(acc[0].permission, "Files.ReadWrite");
}

/// Every catalog template, with its placeholders filled in, must map back to
/// itself: the matcher can reach every route, and specificity ordering never
/// hides a route behind another.
#[test]
fn every_template_matches_itself() {
    let c = cat();
    let mut failures = Vec::new();
    let mut n = 0;
    for (key, methods) in c.router.templates() {
        let method = [
            (route::M_GET, "GET"),
            (route::M_POST, "POST"),
            (route::M_PUT, "PUT"),
            (route::M_PATCH, "PATCH"),
            (route::M_DELETE, "DELETE"),
        ]
        .iter()
        .find(|(b, _)| methods & b != 0)
        .map(|(_, m)| *m)
        .unwrap();
        let real = key.replace(route::PLACEHOLDER, USER_GUID);
        let expected_params = key.matches(route::PLACEHOLDER).count();
        match c.match_route(method, &real) {
            Some(m) if m.template == key && m.params.len() == expected_params => {}
            other => failures.push(format!("{method} {key} -> {other:?}")),
        }
        n += 1;
    }
    assert!(n > 7000);
    assert!(
        failures.is_empty(),
        "{} failures, e.g. {:#?}",
        failures.len(),
        &failures[..failures.len().min(20)]
    );
}
