//! The Graph operations, reached only after `enforce` allowed the request. Changes
//! go through the directory (persisted) and take effect for the next token.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use gatehouse_engine::graph::{self, Caller, RequestFacts, graph_path};
use gatehouse_engine::{Denial, RequestContext};
use gatehouse_idp::AppState;
use gatehouse_jose::{password, random};
use gatehouse_model::ids::roles;
use gatehouse_model::*;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::enforce::{Allowed, enforce};
use crate::odata::{self, Query};
use crate::reply::{self, GRAPH_CONTEXT_BASE};

type Outcome = Result<Response, Denial>;

/// Remove Gatehouse's private fields (hashes) from a serialised object.
fn public(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(k, _)| !k.starts_with("gatehouse"))
                .map(|(k, v)| (k, public(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(public).collect()),
        other => other,
    }
}

fn to_json<T: serde::Serialize>(t: &T) -> Value {
    public(serde_json::to_value(t).unwrap_or(Value::Null))
}

pub fn user_json(u: &User) -> Value {
    json!({
        "businessPhones": [],
        "displayName": u.display_name,
        "givenName": u.given_name,
        "jobTitle": null,
        "mail": u.mail,
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": null,
        "surname": u.surname,
        "userPrincipalName": u.user_principal_name,
        "id": u.id.to_string(),
        "accountEnabled": u.account_enabled,
        "assignedLicenses": to_json(&u.assigned_licenses),
    })
}

/// Graph's default property set for users (accountEnabled and licences need $select).
fn user_default(u: &User, q: &Query) -> Value {
    let v = user_json(u);
    match &q.select {
        Some(sel) => odata::select(v, sel),
        None => match v {
            Value::Object(mut o) => {
                o.remove("accountEnabled");
                o.remove("assignedLicenses");
                Value::Object(o)
            }
            other => other,
        },
    }
}

fn entity(ctx: &RequestContext, set: &str, mut v: Value) -> Response {
    if let Value::Object(o) = &mut v {
        let mut with = Map::new();
        with.insert(
            "@odata.context".into(),
            format!("{GRAPH_CONTEXT_BASE}#{set}/$entity").into(),
        );
        with.extend(std::mem::take(o));
        *o = with;
    }
    reply::json(ctx, StatusCode::OK, v)
}

fn created(ctx: &RequestContext, set: &str, v: Value) -> Response {
    let mut r = entity(ctx, set, v);
    *r.status_mut() = StatusCode::CREATED;
    r
}

fn collection(
    ctx: &RequestContext,
    base: &str,
    path: &str,
    set: &str,
    items: Vec<Value>,
    q: &Query,
    headers: &HeaderMap,
) -> Outcome {
    if q.count
        && headers
            .get("consistencylevel")
            .and_then(|v| v.to_str().ok())
            != Some("eventual")
    {
        return Err(graph::bad_request(
            "$count is only supported with the ConsistencyLevel:eventual header.",
        ));
    }
    let (page, total, more) = odata::apply(items, q).map_err(|e| graph::bad_request(&e))?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        format!("{GRAPH_CONTEXT_BASE}#{set}").into(),
    );
    if q.count {
        body.insert("@odata.count".into(), total.into());
    }
    if more {
        let next = q.skip + page.len();
        let mut params = vec![format!("$skiptoken={next}")];
        if let Some(t) = q.top {
            params.push(format!("$top={t}"));
        }
        if let Some(f) = &q.filter {
            params.push(format!(
                "$filter={}",
                form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>()
            ));
        }
        body.insert(
            "@odata.nextLink".into(),
            format!("{base}/v1.0{path}?{}", params.join("&")).into(),
        );
    }
    body.insert("value".into(), page.into());
    Ok(reply::json(ctx, StatusCode::OK, Value::Object(body)))
}

fn body_json(body: &Bytes) -> Result<Map<String, Value>, Denial> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        _ => Err(graph::bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        )),
    }
}

fn str_field<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}

fn parse_id(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .trim_matches(|c| c == '\'' || c == '(' || c == ')')
        .to_owned()
}

fn find_user<'d>(dir: &'d Directory, raw: &str) -> Result<&'d User, Denial> {
    let id = parse_id(raw);
    id.parse::<Uuid>()
        .ok()
        .and_then(|u| dir.user(u))
        .or_else(|| dir.user_by_upn(&id))
        .ok_or_else(|| graph::not_found(&id))
}

fn iso_now(ctx: &RequestContext) -> String {
    ctx.now
        .replace_nanosecond(0)
        .unwrap_or(ctx.now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn server_error(e: impl std::fmt::Display) -> Denial {
    graph::service_unavailable(&e.to_string())
}

/// Apply a change to the directory (persisted; effective for the next token).
async fn change<F: FnOnce(&mut Directory)>(
    state: &AppState,
    f: F,
) -> Result<std::sync::Arc<Directory>, Denial> {
    state.update_directory(f).await.map_err(server_error)
}

/// Every `/v1.0/...` request.
pub async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let parsed = body_json(&body);
    let facts = RequestFacts {
        body_keys: parsed
            .as_ref()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default(),
    };
    let Allowed { call, ctx } =
        match enforce(&state, method.as_str(), &path, &headers, &facts).await {
            Ok(a) => a,
            Err(r) => return r,
        };
    let outcome = match (parsed, Query::parse(query.as_deref())) {
        (Err(d), _) => Err(d),
        (_, Err(e)) => Err(graph::bad_request(&e)),
        (Ok(b), Ok(q)) => operate(&state, &call, &ctx, &method, &path, &q, &headers, b).await,
    };
    match outcome {
        Ok(r) => r,
        Err(d) => reply::denial(&state, &d, &ctx, "graph").await,
    }
}

#[allow(clippy::too_many_arguments)]
async fn operate(
    state: &AppState,
    call: &graph::GraphCall,
    ctx: &RequestContext,
    method: &Method,
    raw_path: &str,
    q: &Query,
    headers: &HeaderMap,
    b: Map<String, Value>,
) -> Outcome {
    let path = graph_path(raw_path).trim_end_matches('/').to_owned();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let base = state.config.public_base.clone();
    let dir = state.directory();
    let me = match &call.caller {
        Caller::Delegated { user, .. } => Some(*user),
        Caller::App { .. } => None,
    };
    // `/me/...` is `/users/{signed-in id}/...`.
    let (l, segs): (Vec<&str>, Vec<String>) = if l.first() == Some(&"me") {
        let id = me.map(|u| u.to_string()).unwrap_or_default();
        let mut ll = vec!["users", "{me}"];
        ll.extend(l.iter().skip(1));
        let mut ss = vec!["users".to_owned(), id];
        ss.extend(segs.iter().skip(1).map(|s| (*s).to_owned()));
        (ll, ss)
    } else {
        (l, segs.iter().map(|s| (*s).to_owned()).collect())
    };
    let seg = |i: usize| segs.get(i).map(String::as_str).unwrap_or("");
    let m = method.as_str();
    match (m, l.as_slice()) {
        ("GET", ["users"]) => {
            let items = dir
                .users
                .iter()
                .map(|u| {
                    user_default(
                        u,
                        &Query {
                            select: q.select.clone().or(Some(vec![
                                "businessPhones".into(),
                                "displayName".into(),
                                "givenName".into(),
                                "jobTitle".into(),
                                "mail".into(),
                                "mobilePhone".into(),
                                "officeLocation".into(),
                                "preferredLanguage".into(),
                                "surname".into(),
                                "userPrincipalName".into(),
                                "accountEnabled".into(),
                            ])),
                            ..Query::default()
                        },
                    )
                })
                .collect();
            let mut q2 = q.clone();
            if q2.select.is_none() {
                q2.select = Some(vec![
                    "businessPhones".into(),
                    "displayName".into(),
                    "givenName".into(),
                    "jobTitle".into(),
                    "mail".into(),
                    "mobilePhone".into(),
                    "officeLocation".into(),
                    "preferredLanguage".into(),
                    "surname".into(),
                    "userPrincipalName".into(),
                ]);
            }
            collection(ctx, &base, &path, "users", items, &q2, headers)
        }
        ("POST", ["users"]) => create_user(state, ctx, &b).await,
        ("GET", ["users", _]) => {
            let u = find_user(&dir, seg(1))?;
            let mut v = user_default(u, q);
            if q.expand.iter().any(|e| e.eq_ignore_ascii_case("memberOf"))
                && let Value::Object(o) = &mut v
            {
                o.insert("memberOf".into(), member_of(&dir, u.id).into());
            }
            Ok(entity(ctx, "users", v))
        }
        ("PATCH", ["users", _]) => update_user(state, ctx, find_user(&dir, seg(1))?.id, &b).await,
        ("DELETE", ["users", _]) => {
            let id = find_user(&dir, seg(1))?.id;
            change(state, |d| {
                d.users.retain(|u| u.id != id);
                d.role_assignments.retain(|r| r.principal_id != id);
                d.oauth2_permission_grants
                    .retain(|g| g.principal_id != Some(id));
                d.app_role_assignments.retain(|a| a.principal_id != id);
            })
            .await?;
            Ok(reply::no_content(ctx))
        }
        ("GET", ["users", _, "memberof"]) => {
            let u = find_user(&dir, seg(1))?;
            collection(
                ctx,
                &base,
                &path,
                "directoryObjects",
                member_of(&dir, u.id),
                q,
                headers,
            )
        }
        (_, ["groups", ..]) => groups(state, ctx, &base, &path, m, &l, &segs, q, headers, &b).await,
        (_, ["identity", "conditionalaccess", ..]) => {
            conditional_access(state, ctx, &base, &path, m, &l, &segs, q, headers, &b).await
        }
        ("POST", ["users", _, "assignlicense"]) => {
            assign_license(state, ctx, find_user(&dir, seg(1))?.id, &b).await
        }
        ("POST", ["users", _, "revokesigninsessions"]) => {
            let id = find_user(&dir, seg(1))?.id;
            let now = ctx.unix();
            change(state, |d| set_valid_from(d, id, now)).await?;
            Ok(reply::json(
                ctx,
                StatusCode::OK,
                json!({"@odata.context": format!("{GRAPH_CONTEXT_BASE}#Edm.Boolean"), "value": true}),
            ))
        }
        ("POST", ["users", _, "changepassword"]) => {
            change_password(state, ctx, find_user(&dir, seg(1))?.clone(), &b).await
        }
        ("POST", ["users", _, "authentication", "methods", _, "resetpassword"]) => {
            let id = find_user(&dir, seg(1))?.id;
            let new_password = str_field(&b, "newPassword")
                .map(str::to_owned)
                .unwrap_or_else(random::password);
            set_password(state, ctx, id, &new_password).await?;
            let mut r = reply::json(ctx, StatusCode::ACCEPTED, Value::Null);
            *r.body_mut() = axum::body::Body::empty();
            let op = format!(
                "{base}/v1.0/users/{id}/authentication/operations/{}",
                Uuid::new_v4()
            );
            if let Ok(v) = HeaderValue::from_str(&op) {
                r.headers_mut().insert("location", v);
            }
            Ok(r)
        }
        ("GET", ["users", _, "messages"]) => {
            let u = find_user(&dir, seg(1))?;
            let items = vec![welcome_message(u, &dir)];
            collection(
                ctx,
                &base,
                &path,
                &format!("users('{}')/messages", u.id),
                items,
                q,
                headers,
            )
        }
        ("GET", ["organization"]) => {
            let org = json!({"id": dir.tenant.id.to_string(), "displayName": dir.tenant.display_name, "tenantType": "AAD", "verifiedDomains": [{"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": true, "isInitial": true, "name": dir.tenant.domain, "type": "Managed"}]});
            collection(ctx, &base, &path, "organization", vec![org], q, headers)
        }
        ("GET", ["subscribedskus"]) => {
            let items = dir.subscribed_skus.iter().map(|s| {
                let consumed = dir.users.iter().filter(|u| u.assigned_licenses.iter().any(|l| l.sku_id == s.sku_id)).count();
                json!({"id": format!("{}_{}", dir.tenant.id, s.sku_id), "skuId": s.sku_id.to_string(), "skuPartNumber": s.sku_part_number, "capabilityStatus": "Enabled", "consumedUnits": consumed, "prepaidUnits": {"enabled": s.prepaid_units_enabled, "suspended": 0, "warning": 0}, "servicePlans": s.service_plans.iter().map(|p| json!({"servicePlanId": p.service_plan_id.to_string(), "servicePlanName": p.service_plan_name, "provisioningStatus": "Success", "appliesTo": "User"})).collect::<Vec<_>>()})
            }).collect();
            collection(ctx, &base, &path, "subscribedSkus", items, q, headers)
        }
        ("GET", ["applications"]) => collection(
            ctx,
            &base,
            &path,
            "applications",
            dir.applications.iter().map(to_json).collect(),
            q,
            headers,
        ),
        ("POST", ["applications"]) => create_application(state, ctx, &b).await,
        ("GET", ["applications", _]) => {
            let a = find_app(&dir, seg(1))?;
            Ok(entity(ctx, "applications", to_json(a)))
        }
        ("POST", ["applications", _, "addpassword"]) => {
            add_password(state, ctx, find_app(&dir, seg(1))?.id, &b).await
        }
        ("POST", ["applications", _, "removepassword"]) => {
            let id = find_app(&dir, seg(1))?.id;
            let key: Uuid = str_field(&b, "keyId")
                .and_then(|k| k.parse().ok())
                .ok_or_else(|| graph::bad_request("keyId is required."))?;
            change(state, |d| {
                if let Some(a) = d.applications.iter_mut().find(|a| a.id == id) {
                    a.password_credentials.retain(|p| p.key_id != key);
                }
            })
            .await?;
            Ok(reply::no_content(ctx))
        }
        ("GET", ["serviceprincipals"]) => collection(
            ctx,
            &base,
            &path,
            "servicePrincipals",
            dir.service_principals
                .iter()
                .map(|s| sp_json(&dir, s))
                .collect(),
            q,
            headers,
        ),
        ("POST", ["serviceprincipals"]) => create_service_principal(state, ctx, &b).await,
        ("GET", ["serviceprincipals", _]) => Ok(entity(
            ctx,
            "servicePrincipals",
            sp_json(&dir, find_sp(&dir, seg(1))?),
        )),
        ("GET", ["serviceprincipals", _, "approleassignedto"]) => {
            let sp = find_sp(&dir, seg(1))?;
            let items = dir
                .app_role_assignments
                .iter()
                .filter(|a| a.resource_id == sp.id)
                .map(to_json)
                .collect();
            collection(ctx, &base, &path, "appRoleAssignments", items, q, headers)
        }
        ("GET", ["serviceprincipals", _, "approleassignments"]) => {
            let sp = find_sp(&dir, seg(1))?;
            let items = dir
                .app_role_assignments
                .iter()
                .filter(|a| a.principal_id == sp.id)
                .map(to_json)
                .collect();
            collection(ctx, &base, &path, "appRoleAssignments", items, q, headers)
        }
        ("POST", ["serviceprincipals", _, "approleassignedto"])
        | ("POST", ["serviceprincipals", _, "approleassignments"]) => {
            assign_app_role(state, ctx, &b).await
        }
        ("GET", ["serviceprincipals", _, "oauth2permissiongrants"]) => {
            let sp = find_sp(&dir, seg(1))?;
            let items = dir
                .oauth2_permission_grants
                .iter()
                .filter(|g| g.client_id == sp.id)
                .map(to_json)
                .collect();
            collection(
                ctx,
                &base,
                &path,
                "oauth2PermissionGrants",
                items,
                q,
                headers,
            )
        }
        ("GET", ["oauth2permissiongrants"]) => collection(
            ctx,
            &base,
            &path,
            "oauth2PermissionGrants",
            dir.oauth2_permission_grants.iter().map(to_json).collect(),
            q,
            headers,
        ),
        ("POST", ["oauth2permissiongrants"]) => create_grant(state, ctx, &b).await,
        // Activating a role from its template: roles are always active here, so this
        // returns the role object (as Graph does for a role already activated).
        ("POST", ["directoryroles"]) => {
            let template: Uuid = str_field(&b, "roleTemplateId")
                .and_then(|t| t.parse().ok())
                .filter(|t| roles::display_name(*t).is_some())
                .ok_or_else(|| {
                    graph::bad_request(
                        "roleTemplateId must be the id of a directory role template.",
                    )
                })?;
            Ok(created(
                ctx,
                "directoryRoles",
                directory_role_json(template),
            ))
        }
        ("GET", ["directoryroles", _, "members"]) => {
            let decoded = parse_id(seg(1));
            let template: Uuid = decoded
                .strip_prefix("roleTemplateId=")
                .unwrap_or(&decoded)
                .parse()
                .map_err(|_| graph::not_found(seg(1)))?;
            let items = dir
                .role_assignments
                .iter()
                .filter(|r| r.role_definition_id == template)
                .filter_map(|r| directory_object(&dir, r.principal_id))
                .collect();
            collection(ctx, &base, &path, "directoryObjects", items, q, headers)
        }
        ("DELETE", ["oauth2permissiongrants", _]) => {
            let id = parse_id(seg(1));
            if !dir.oauth2_permission_grants.iter().any(|g| g.id == id) {
                return Err(graph::not_found(&id));
            }
            change(state, |d| d.oauth2_permission_grants.retain(|g| g.id != id)).await?;
            Ok(reply::no_content(ctx))
        }
        ("DELETE", ["serviceprincipals", _, "approleassignedto", _])
        | ("DELETE", ["serviceprincipals", _, "approleassignments", _]) => {
            let id = parse_id(seg(3));
            if !dir.app_role_assignments.iter().any(|a| a.id == id) {
                return Err(graph::not_found(&id));
            }
            change(state, |d| d.app_role_assignments.retain(|a| a.id != id)).await?;
            Ok(reply::no_content(ctx))
        }
        ("GET", ["directoryroles"]) => {
            let mut active: Vec<Uuid> = dir
                .role_assignments
                .iter()
                .map(|r| r.role_definition_id)
                .collect();
            active.sort();
            active.dedup();
            collection(
                ctx,
                &base,
                &path,
                "directoryRoles",
                active.into_iter().map(directory_role_json).collect(),
                q,
                headers,
            )
        }
        ("POST", ["directoryroles", _, "members", "$ref"]) => {
            let raw = seg(1);
            // SDKs percent-encode the `=` of the alternate key.
            let decoded = parse_id(raw);
            let template = parse_id(
                decoded
                    .strip_prefix("roleTemplateId=")
                    .or_else(|| decoded.strip_prefix("roletemplateid="))
                    .unwrap_or(&decoded),
            );
            let template: Uuid = template.parse().map_err(|_| graph::not_found(raw))?;
            let member = str_field(&b, "@odata.id")
                .and_then(|u| u.rsplit('/').next())
                .and_then(|id| id.parse::<Uuid>().ok())
                .ok_or_else(|| {
                    graph::bad_request("@odata.id must reference a directory object.")
                })?;
            add_role(state, template, member).await?;
            Ok(reply::no_content(ctx))
        }
        ("GET", ["rolemanagement", "directory", "roleassignments"]) => collection(
            ctx,
            &base,
            &path,
            "roleManagement/directory/roleAssignments",
            dir.role_assignments.iter().map(to_json).collect(),
            q,
            headers,
        ),
        ("POST", ["rolemanagement", "directory", "roleassignments"]) => {
            let principal: Uuid = str_field(&b, "principalId")
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| graph::bad_request("principalId is required."))?;
            let role: Uuid = str_field(&b, "roleDefinitionId")
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| graph::bad_request("roleDefinitionId is required."))?;
            let id = add_role(state, role, principal).await?;
            Ok(created(
                ctx,
                "roleManagement/directory/roleAssignments",
                json!({"id": id.to_string(), "principalId": principal.to_string(), "roleDefinitionId": role.to_string(), "directoryScopeId": "/"}),
            ))
        }
        _ => Err(graph::unsupported_route(m, &path)),
    }
}

fn find_group<'d>(dir: &'d Directory, raw: &str) -> Result<&'d Group, Denial> {
    let id = parse_id(raw);
    id.parse::<Uuid>()
        .ok()
        .and_then(|g| dir.groups.iter().find(|x| x.id == g))
        .ok_or_else(|| graph::not_found(&id))
}

/// A user, group or service principal as `directoryObject` with its `@odata.type`.
fn directory_object(dir: &Directory, id: Uuid) -> Option<Value> {
    let tagged = |t: &str, mut v: Value| {
        if let Value::Object(o) = &mut v {
            let mut with = Map::new();
            with.insert("@odata.type".into(), t.into());
            with.extend(std::mem::take(o));
            *o = with;
        }
        v
    };
    if let Some(u) = dir.user(id) {
        return Some(tagged(
            "#microsoft.graph.user",
            user_default(u, &Query::default()),
        ));
    }
    if let Some(g) = dir.groups.iter().find(|g| g.id == id) {
        return Some(tagged("#microsoft.graph.group", to_json(g)));
    }
    dir.service_principal(id).map(|s| tagged("#microsoft.graph.servicePrincipal", json!({"id": s.id.to_string(), "appId": s.app_id.to_string(), "displayName": s.display_name})))
}

/// Groups (direct) and directory roles the principal is a member of.
fn member_of(dir: &Directory, id: Uuid) -> Vec<Value> {
    let mut out: Vec<Value> = dir
        .groups
        .iter()
        .filter(|g| g.gatehouse_members.contains(&id))
        .filter_map(|g| directory_object(dir, g.id))
        .collect();
    out.extend(
        dir.directory_roles_of(id)
            .into_iter()
            .map(directory_role_json),
    );
    out
}

fn directory_role_json(template: Uuid) -> Value {
    json!({"@odata.type": "#microsoft.graph.directoryRole", "id": template.to_string(), "displayName": roles::display_name(template).unwrap_or("Directory role"), "roleTemplateId": template.to_string()})
}

fn sp_json(dir: &Directory, s: &ServicePrincipal) -> Value {
    let mut v = to_json(s);
    if let Value::Object(o) = &mut v {
        o.insert("appDisplayName".into(), s.display_name.clone().into());
        if dir.resource_kind(s) == gatehouse_model::directory::ResourceKind::MicrosoftGraph {
            // Graph's roles and scopes come from the catalog, as in a real tenant.
            let cat = gatehouse_catalog::Catalog::embedded();
            let app_roles: Vec<Value> = cat.iter().filter(|p| !p.rsc).filter_map(|p| p.application.as_ref().map(|a| json!({"allowedMemberTypes": ["Application"], "description": a.admin_description, "displayName": a.admin_display_name, "id": a.id.to_string(), "isEnabled": true, "origin": "Application", "value": p.name}))).collect();
            let scopes: Vec<Value> = cat.iter().filter(|p| !p.rsc).filter_map(|p| p.delegated.as_ref().map(|d| json!({"adminConsentDescription": d.admin_description, "adminConsentDisplayName": d.admin_display_name, "id": d.id.to_string(), "isEnabled": true, "type": if d.requires_admin_consent { "Admin" } else { "User" }, "userConsentDescription": d.user_description, "userConsentDisplayName": d.user_display_name, "value": p.name}))).collect();
            o.insert("appRoles".into(), app_roles.into());
            o.insert("oauth2PermissionScopes".into(), scopes.into());
        }
    }
    v
}

/// An object key: the object id, or `appId=…` (applications and service principals).
enum ObjectKey {
    Id(Uuid),
    AppId(Uuid),
}

fn object_key(raw: &str) -> Result<ObjectKey, Denial> {
    let id = parse_id(raw);
    match id
        .strip_prefix("appId=")
        .or_else(|| id.strip_prefix("appid="))
    {
        Some(app_id) => parse_id(app_id).parse().map(ObjectKey::AppId),
        None => id.parse().map(ObjectKey::Id),
    }
    .map_err(|_| graph::not_found(&id))
}

fn find_app<'d>(dir: &'d Directory, raw: &str) -> Result<&'d Application, Denial> {
    let key = object_key(raw)?;
    dir.applications
        .iter()
        .find(|a| match key {
            ObjectKey::Id(id) => a.id == id,
            ObjectKey::AppId(app_id) => a.app_id == app_id,
        })
        .ok_or_else(|| graph::not_found(&parse_id(raw)))
}

fn find_sp<'d>(dir: &'d Directory, raw: &str) -> Result<&'d ServicePrincipal, Denial> {
    let key = object_key(raw)?;
    dir.service_principals
        .iter()
        .find(|s| match key {
            ObjectKey::Id(id) => s.id == id,
            ObjectKey::AppId(app_id) => s.app_id == app_id,
        })
        .ok_or_else(|| graph::not_found(&parse_id(raw)))
}

fn set_valid_from(d: &mut Directory, user: Uuid, now: i64) {
    if let Some(u) = d.users.iter_mut().find(|u| u.id == user) {
        u.sign_in_sessions_valid_from = Some(now);
    }
}

async fn hash(p: &str) -> Result<String, Denial> {
    let p = p.to_owned();
    tokio::task::spawn_blocking(move || password::hash(&p))
        .await
        .map_err(server_error)?
        .map_err(server_error)
}

/// A new password: hashed, and every session and refresh token issued before is revoked.
async fn set_password(
    state: &AppState,
    ctx: &RequestContext,
    user: Uuid,
    new_password: &str,
) -> Result<(), Denial> {
    if new_password.len() < 8 {
        return Err(graph::bad_request(
            "The specified password does not comply with password complexity requirements. Please provide a different password.",
        ));
    }
    let h = hash(new_password).await?;
    let now = ctx.unix();
    change(state, |d| {
        if let Some(u) = d.users.iter_mut().find(|u| u.id == user) {
            u.gatehouse_password_hash = Some(h);
            u.sign_in_sessions_valid_from = Some(now);
        }
    })
    .await?;
    Ok(())
}

async fn create_user(state: &AppState, ctx: &RequestContext, b: &Map<String, Value>) -> Outcome {
    let upn = str_field(b, "userPrincipalName").ok_or_else(|| {
        graph::bad_request(
            "Invalid value specified for property 'userPrincipalName' of resource 'User'.",
        )
    })?;
    let display = str_field(b, "displayName").ok_or_else(|| {
        graph::bad_request("Invalid value specified for property 'displayName' of resource 'User'.")
    })?;
    let pw = b
        .get("passwordProfile")
        .and_then(|p| p.get("password"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            graph::bad_request(
                "Invalid value specified for property 'passwordProfile' of resource 'User'.",
            )
        })?;
    let dir = state.directory();
    let domain_ok = upn
        .rsplit_once('@')
        .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&dir.tenant.domain));
    if !domain_ok {
        return Err(graph::bad_request(&format!(
            "Property userPrincipalName is invalid: the domain must be {}.",
            dir.tenant.domain
        )));
    }
    if dir.user_by_upn(upn).is_some() {
        return Err(graph::bad_request(
            "Another object with the same value for property userPrincipalName already exists.",
        ));
    }
    let user = User {
        id: Uuid::new_v4(),
        user_principal_name: upn.to_owned(),
        display_name: display.to_owned(),
        given_name: str_field(b, "givenName").map(str::to_owned),
        surname: str_field(b, "surname").map(str::to_owned),
        mail: Some(upn.to_owned()),
        account_enabled: b
            .get("accountEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        assigned_licenses: Vec::new(),
        gatehouse_password_hash: Some(hash(pw).await?),
        sign_in_sessions_valid_from: None,
        gatehouse_totp_secret: None,
    };
    let json = user_json(&user);
    change(state, |d| d.users.push(user)).await?;
    Ok(created(ctx, "users", json))
}

async fn update_user(
    state: &AppState,
    ctx: &RequestContext,
    id: Uuid,
    b: &Map<String, Value>,
) -> Outcome {
    if let Some(pw) = b
        .get("passwordProfile")
        .and_then(|p| p.get("password"))
        .and_then(Value::as_str)
    {
        set_password(state, ctx, id, pw).await?;
    }
    let now = ctx.unix();
    let b = b.clone();
    change(state, |d| {
        let disabled = b.get("accountEnabled").and_then(Value::as_bool) == Some(false);
        if let Some(u) = d.users.iter_mut().find(|u| u.id == id) {
            if let Some(v) = b.get("displayName").and_then(Value::as_str) {
                u.display_name = v.to_owned();
            }
            if let Some(v) = b.get("givenName").and_then(Value::as_str) {
                u.given_name = Some(v.to_owned());
            }
            if let Some(v) = b.get("surname").and_then(Value::as_str) {
                u.surname = Some(v.to_owned());
            }
            if let Some(v) = b.get("accountEnabled").and_then(Value::as_bool) {
                u.account_enabled = v;
            }
        }
        if disabled {
            set_valid_from(d, id, now);
        }
    })
    .await?;
    Ok(reply::no_content(ctx))
}

async fn change_password(
    state: &AppState,
    ctx: &RequestContext,
    user: User,
    b: &Map<String, Value>,
) -> Outcome {
    let current = str_field(b, "currentPassword").unwrap_or("").to_owned();
    let new_password = str_field(b, "newPassword")
        .ok_or_else(|| graph::bad_request("newPassword is required."))?
        .to_owned();
    let stored = user.gatehouse_password_hash.clone().unwrap_or_default();
    let ok = tokio::task::spawn_blocking(move || password::verify(&current, &stored))
        .await
        .unwrap_or(false);
    if !ok {
        return Err(graph::bad_request("The current password is incorrect."));
    }
    set_password(state, ctx, user.id, &new_password).await?;
    Ok(reply::no_content(ctx))
}

async fn assign_license(
    state: &AppState,
    ctx: &RequestContext,
    id: Uuid,
    b: &Map<String, Value>,
) -> Outcome {
    let dir = state.directory();
    let mut add = Vec::new();
    for l in b
        .get("addLicenses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let sku: Uuid = l
            .get("skuId")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| graph::bad_request("skuId is required in addLicenses."))?;
        if !dir.subscribed_skus.iter().any(|s| s.sku_id == sku) {
            return Err(graph::bad_request(&format!(
                "License {sku} does not correspond to a valid company License."
            )));
        }
        let disabled = l
            .get("disabledPlans")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str()?.parse().ok()).collect())
            .unwrap_or_default();
        add.push(AssignedLicense {
            sku_id: sku,
            disabled_plans: disabled,
        });
    }
    let remove: Vec<Uuid> = b
        .get("removeLicenses")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    let updated = change(state, |d| {
        if let Some(u) = d.users.iter_mut().find(|u| u.id == id) {
            u.assigned_licenses.retain(|l| {
                !remove.contains(&l.sku_id) && !add.iter().any(|a| a.sku_id == l.sku_id)
            });
            u.assigned_licenses.extend(add);
        }
    })
    .await?;
    let u = updated
        .user(id)
        .ok_or_else(|| graph::not_found(&id.to_string()))?;
    Ok(entity(ctx, "users", user_json(u)))
}

fn welcome_message(u: &User, dir: &Directory) -> Value {
    json!({"id": format!("AAMk{}", u.id.simple()), "subject": "Welcome to Gatehouse", "bodyPreview": "Your mailbox is ready.", "isRead": false, "from": {"emailAddress": {"name": dir.tenant.display_name, "address": format!("noreply@{}", dir.tenant.domain)}}, "toRecipients": [{"emailAddress": {"name": u.display_name, "address": u.user_principal_name}}]})
}

async fn create_application(
    state: &AppState,
    ctx: &RequestContext,
    b: &Map<String, Value>,
) -> Outcome {
    let display = str_field(b, "displayName").ok_or_else(|| {
        graph::bad_request(
            "Invalid value specified for property 'displayName' of resource 'Application'.",
        )
    })?;
    let mut v = Value::Object(b.clone());
    if let Value::Object(o) = &mut v {
        o.retain(|k, _| {
            !k.starts_with("gatehouse") && k != "passwordCredentials" && k != "keyCredentials"
        });
        o.insert("id".into(), Uuid::new_v4().to_string().into());
        o.insert("appId".into(), Uuid::new_v4().to_string().into());
        o.insert("displayName".into(), display.into());
    }
    let app: Application = serde_json::from_value(v)
        .map_err(|e| graph::bad_request(&format!("Invalid application: {e}")))?;
    let json = to_json(&app);
    change(state, |d| d.applications.push(app)).await?;
    Ok(created(ctx, "applications", json))
}

async fn add_password(
    state: &AppState,
    ctx: &RequestContext,
    object_id: Uuid,
    b: &Map<String, Value>,
) -> Outcome {
    let secret = random::client_secret();
    let key_id = Uuid::new_v4();
    let display = b
        .get("passwordCredential")
        .and_then(|p| p.get("displayName"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let start = iso_now(ctx);
    let end_t = ctx.now + time::Duration::days(730);
    let end = end_t
        .replace_nanosecond(0)
        .unwrap_or(end_t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let cred = PasswordCredential {
        key_id,
        display_name: display.clone(),
        hint: secret.chars().take(3).collect(),
        start_date_time: start.clone(),
        end_date_time: end.clone(),
        gatehouse_secret_hash: Some(state.secrets.hash(&secret)),
        gatehouse_expires: Some(end_t.unix_timestamp()),
    };
    change(state, |d| {
        if let Some(a) = d.applications.iter_mut().find(|a| a.id == object_id) {
            a.password_credentials.push(cred);
        }
    })
    .await?;
    let body = json!({"@odata.context": format!("{GRAPH_CONTEXT_BASE}#microsoft.graph.passwordCredential"), "customKeyIdentifier": null, "displayName": display, "endDateTime": end, "hint": secret.chars().take(3).collect::<String>(), "keyId": key_id.to_string(), "secretText": secret, "startDateTime": start});
    Ok(reply::json(ctx, StatusCode::OK, body))
}

async fn create_service_principal(
    state: &AppState,
    ctx: &RequestContext,
    b: &Map<String, Value>,
) -> Outcome {
    let app_id: Uuid = str_field(b, "appId")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| graph::bad_request("appId is required."))?;
    let dir = state.directory();
    let app = dir.application_by_app_id(app_id).ok_or_else(|| graph::bad_request(&format!("The appId '{app_id}' of the service principal does not reference a valid application object.")))?.clone();
    if dir.service_principal_by_app_id(app_id).is_some() {
        return Err(graph::bad_request(
            "The service principal cannot be created, updated, or restored because the service principal name is already in use.",
        ));
    }
    let sp = ServicePrincipal {
        id: Uuid::new_v4(),
        app_id,
        display_name: app.display_name.clone(),
        app_owner_organization_id: Some(dir.tenant.id),
        service_principal_names: std::iter::once(app_id.to_string())
            .chain(app.identifier_uris.iter().cloned())
            .collect(),
        app_roles: app.app_roles.clone(),
        oauth2_permission_scopes: app.api.oauth2_permission_scopes.clone(),
        app_role_assignment_required: b
            .get("appRoleAssignmentRequired")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        account_enabled: true,
        service_principal_type: "Application".into(),
    };
    let json = sp_json(&dir, &sp);
    change(state, |d| d.service_principals.push(sp)).await?;
    Ok(created(ctx, "servicePrincipals", json))
}

async fn assign_app_role(
    state: &AppState,
    ctx: &RequestContext,
    b: &Map<String, Value>,
) -> Outcome {
    let dir = state.directory();
    let principal: Uuid = str_field(b, "principalId")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| graph::bad_request("principalId is required."))?;
    let resource: Uuid = str_field(b, "resourceId")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| graph::bad_request("resourceId is required."))?;
    let role: Uuid = str_field(b, "appRoleId")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| graph::bad_request("appRoleId is required."))?;
    let resource_sp = dir
        .service_principal(resource)
        .ok_or_else(|| graph::not_found(&resource.to_string()))?
        .clone();
    if dir.offered_app_role(&resource_sp, role).is_none() && role != Uuid::nil() {
        return Err(graph::bad_request(
            "Permission being assigned was not found on application",
        ));
    }
    let principal_sp = dir.service_principal(principal).cloned();
    let principal_user = dir.user(principal).cloned();
    let (ptype, pname) = match (&principal_sp, &principal_user) {
        (Some(s), _) => ("ServicePrincipal", s.display_name.clone()),
        (None, Some(u)) => ("User", u.display_name.clone()),
        _ => return Err(graph::not_found(&principal.to_string())),
    };
    let assignment = AppRoleAssignment {
        id: random::token(),
        app_role_id: role,
        principal_id: principal,
        principal_type: ptype.into(),
        principal_display_name: Some(pname),
        resource_id: resource,
        resource_display_name: Some(resource_sp.display_name.clone()),
        created_date_time: Some(iso_now(ctx)),
    };
    let json = to_json(&assignment);
    change(state, |d| {
        if !d.app_role_assignments.iter().any(|a| {
            a.principal_id == principal && a.resource_id == resource && a.app_role_id == role
        }) {
            d.app_role_assignments.push(assignment);
        }
    })
    .await?;
    Ok(created(ctx, "appRoleAssignments", json))
}

async fn create_grant(state: &AppState, ctx: &RequestContext, b: &Map<String, Value>) -> Outcome {
    let dir = state.directory();
    let client: Uuid = str_field(b, "clientId")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| graph::bad_request("clientId is required."))?;
    let resource: Uuid = str_field(b, "resourceId")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| graph::bad_request("resourceId is required."))?;
    let consent_type = match str_field(b, "consentType") {
        Some("AllPrincipals") => ConsentType::AllPrincipals,
        Some("Principal") => ConsentType::Principal,
        _ => {
            return Err(graph::bad_request(
                "consentType must be AllPrincipals or Principal.",
            ));
        }
    };
    let principal: Option<Uuid> = str_field(b, "principalId").and_then(|p| p.parse().ok());
    if (consent_type == ConsentType::Principal) != principal.is_some() {
        return Err(graph::bad_request(
            "principalId is required for consentType Principal and must be null for AllPrincipals.",
        ));
    }
    dir.service_principal(client)
        .ok_or_else(|| graph::not_found(&client.to_string()))?;
    let resource_sp = dir
        .service_principal(resource)
        .ok_or_else(|| graph::not_found(&resource.to_string()))?
        .clone();
    let scope = str_field(b, "scope").unwrap_or("").to_owned();
    for s in scope.split_whitespace() {
        if dir.offered_scope(&resource_sp, s).is_none() {
            return Err(graph::bad_request(&format!(
                "Invalid value specified for property 'scope' of resource 'OAuth2PermissionGrant': {s} is not a delegated permission of {}.",
                resource_sp.display_name
            )));
        }
    }
    let grant = OAuth2PermissionGrant {
        id: random::token(),
        client_id: client,
        consent_type,
        principal_id: principal,
        resource_id: resource,
        scope,
    };
    let json = to_json(&grant);
    change(state, |d| d.oauth2_permission_grants.push(grant)).await?;
    Ok(created(ctx, "oauth2PermissionGrants", json))
}

async fn add_role(state: &AppState, template: Uuid, principal: Uuid) -> Result<Uuid, Denial> {
    let dir = state.directory();
    if roles::display_name(template).is_none() {
        return Err(graph::not_found(&template.to_string()));
    }
    if dir.user(principal).is_none() && dir.service_principal(principal).is_none() {
        return Err(graph::not_found(&principal.to_string()));
    }
    if let Some(existing) = dir
        .role_assignments
        .iter()
        .find(|r| r.principal_id == principal && r.role_definition_id == template)
    {
        return Err(graph::bad_request(&format!(
            "One or more added object references already exist for the following modified properties: 'members' (assignment {}).",
            existing.id
        )));
    }
    let id = Uuid::new_v4();
    change(state, |d| {
        d.role_assignments.push(DirectoryRoleAssignment {
            id,
            principal_id: principal,
            role_definition_id: template,
            directory_scope_id: "/".into(),
        })
    })
    .await?;
    Ok(id)
}

/// `/groups`, `/groups/{id}`, `/groups/{id}/members[/$ref]`.
#[allow(clippy::too_many_arguments)]
async fn groups(
    state: &AppState,
    ctx: &RequestContext,
    base: &str,
    path: &str,
    m: &str,
    l: &[&str],
    segs: &[String],
    q: &Query,
    headers: &HeaderMap,
    b: &Map<String, Value>,
) -> Outcome {
    let dir = state.directory();
    let seg = |i: usize| segs.get(i).map(String::as_str).unwrap_or("");
    match (m, l) {
        ("GET", ["groups"]) => collection(
            ctx,
            base,
            path,
            "groups",
            dir.groups.iter().map(to_json).collect(),
            q,
            headers,
        ),
        ("POST", ["groups"]) => {
            let display = str_field(b, "displayName").ok_or_else(|| {
                graph::bad_request(
                    "Invalid value specified for property 'displayName' of resource 'Group'.",
                )
            })?;
            let nickname = str_field(b, "mailNickname").ok_or_else(|| {
                graph::bad_request(
                    "Invalid value specified for property 'mailNickname' of resource 'Group'.",
                )
            })?;
            let group = Group {
                id: Uuid::new_v4(),
                display_name: display.to_owned(),
                description: str_field(b, "description").map(str::to_owned),
                mail_nickname: nickname.to_owned(),
                mail_enabled: b
                    .get("mailEnabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                security_enabled: b
                    .get("securityEnabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                group_types: b
                    .get("groupTypes")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                gatehouse_members: Vec::new(),
            };
            let json = to_json(&group);
            change(state, |d| d.groups.push(group)).await?;
            Ok(created(ctx, "groups", json))
        }
        ("GET", ["groups", _]) => Ok(entity(ctx, "groups", to_json(find_group(&dir, seg(1))?))),
        ("DELETE", ["groups", _]) => {
            let id = find_group(&dir, seg(1))?.id;
            change(state, |d| d.groups.retain(|g| g.id != id)).await?;
            Ok(reply::no_content(ctx))
        }
        ("GET", ["groups", _, "members"]) => {
            let g = find_group(&dir, seg(1))?;
            let items = g
                .gatehouse_members
                .iter()
                .filter_map(|m| directory_object(&dir, *m))
                .collect();
            collection(ctx, base, path, "directoryObjects", items, q, headers)
        }
        ("POST", ["groups", _, "members", "$ref"]) => {
            let gid = find_group(&dir, seg(1))?.id;
            let member = str_field(b, "@odata.id")
                .and_then(|u| u.rsplit('/').next())
                .and_then(|id| id.parse::<Uuid>().ok())
                .ok_or_else(|| {
                    graph::bad_request("@odata.id must reference a directory object.")
                })?;
            directory_object(&dir, member).ok_or_else(|| graph::not_found(&member.to_string()))?;
            if dir
                .groups
                .iter()
                .any(|g| g.id == gid && g.gatehouse_members.contains(&member))
            {
                return Err(graph::bad_request(
                    "One or more added object references already exist for the following modified properties: 'members'.",
                ));
            }
            change(state, |d| {
                if let Some(g) = d.groups.iter_mut().find(|g| g.id == gid) {
                    g.gatehouse_members.push(member);
                }
            })
            .await?;
            Ok(reply::no_content(ctx))
        }
        ("DELETE", ["groups", _, "members", _, "$ref"]) => {
            let gid = find_group(&dir, seg(1))?.id;
            let member: Uuid = parse_id(seg(3))
                .parse()
                .map_err(|_| graph::not_found(seg(3)))?;
            if !dir
                .groups
                .iter()
                .any(|g| g.id == gid && g.gatehouse_members.contains(&member))
            {
                return Err(graph::not_found(&member.to_string()));
            }
            change(state, |d| {
                if let Some(g) = d.groups.iter_mut().find(|g| g.id == gid) {
                    g.gatehouse_members.retain(|x| *x != member);
                }
            })
            .await?;
            Ok(reply::no_content(ctx))
        }
        _ => Err(graph::unsupported_route(m, path)),
    }
}

/// `/identity/conditionalAccess/policies[/{id}]` and `/authenticationContextClassReferences[/{id}]`.
#[allow(clippy::too_many_arguments)]
async fn conditional_access(
    state: &AppState,
    ctx: &RequestContext,
    base: &str,
    path: &str,
    m: &str,
    l: &[&str],
    segs: &[String],
    q: &Query,
    headers: &HeaderMap,
    b: &Map<String, Value>,
) -> Outcome {
    let dir = state.directory();
    let now = ctx.unix();
    let seg = |i: usize| segs.get(i).map(String::as_str).unwrap_or("");
    let policy_set = "identity/conditionalAccess/policies";
    let find = |raw: &str| -> Result<ConditionalAccessPolicy, Denial> {
        let id = parse_id(raw);
        id.parse::<Uuid>()
            .ok()
            .and_then(|u| dir.conditional_access_policies.iter().find(|p| p.id == u))
            .cloned()
            .ok_or_else(|| graph::not_found(&id))
    };
    let parse_policy = |v: Value| -> Result<ConditionalAccessPolicy, Denial> {
        let p: ConditionalAccessPolicy = serde_json::from_value(v)
            .map_err(|e| graph::bad_request(&format!("Invalid conditionalAccessPolicy: {e}")))?;
        if !["enabled", "disabled", "enabledForReportingButNotEnforced"].contains(&p.state.as_str())
        {
            return Err(graph::bad_request(
                "state must be enabled, disabled or enabledForReportingButNotEnforced.",
            ));
        }
        Ok(p)
    };
    match (m, l) {
        ("GET", ["identity", "conditionalaccess", "policies"]) => collection(
            ctx,
            base,
            path,
            policy_set,
            dir.conditional_access_policies
                .iter()
                .map(to_json)
                .collect(),
            q,
            headers,
        ),
        ("POST", ["identity", "conditionalaccess", "policies"]) => {
            let mut p = parse_policy(Value::Object(b.clone()))?;
            p.id = Uuid::new_v4();
            p.created_date_time = Some(iso_now(ctx));
            let json = to_json(&p);
            change(state, |d| {
                d.conditional_access_policies.push(p);
                d.conditional_access_changed_at = Some(now);
            })
            .await?;
            Ok(created(ctx, policy_set, json))
        }
        ("GET", ["identity", "conditionalaccess", "policies", _]) => {
            Ok(entity(ctx, policy_set, to_json(&find(seg(3))?)))
        }
        ("PATCH", ["identity", "conditionalaccess", "policies", _]) => {
            let current = find(seg(3))?;
            let mut merged = to_json(&current);
            if let Value::Object(o) = &mut merged {
                for (k, v) in b {
                    o.insert(k.clone(), v.clone());
                }
            }
            let mut p = parse_policy(merged)?;
            p.id = current.id;
            p.modified_date_time = Some(iso_now(ctx));
            change(state, |d| {
                if let Some(x) = d
                    .conditional_access_policies
                    .iter_mut()
                    .find(|x| x.id == current.id)
                {
                    *x = p;
                }
                d.conditional_access_changed_at = Some(now);
            })
            .await?;
            Ok(reply::no_content(ctx))
        }
        ("DELETE", ["identity", "conditionalaccess", "policies", _]) => {
            let id = find(seg(3))?.id;
            change(state, |d| {
                d.conditional_access_policies.retain(|p| p.id != id);
                d.conditional_access_changed_at = Some(now);
            })
            .await?;
            Ok(reply::no_content(ctx))
        }
        (
            "GET",
            [
                "identity",
                "conditionalaccess",
                "authenticationcontextclassreferences",
            ],
        ) => collection(
            ctx,
            base,
            path,
            "identity/conditionalAccess/authenticationContextClassReferences",
            dir.authentication_context_class_references
                .iter()
                .map(to_json)
                .collect(),
            q,
            headers,
        ),
        (
            "PATCH",
            [
                "identity",
                "conditionalaccess",
                "authenticationcontextclassreferences",
                _,
            ],
        )
        | (
            "PUT",
            [
                "identity",
                "conditionalaccess",
                "authenticationcontextclassreferences",
                _,
            ],
        ) => {
            let id = parse_id(seg(3));
            let valid = id
                .strip_prefix('c')
                .and_then(|n| n.parse::<u8>().ok())
                .is_some_and(|n| (1..=99).contains(&n));
            if !valid {
                return Err(graph::bad_request(
                    "The id of an authentication context must be c1 to c99.",
                ));
            }
            let reference = AuthenticationContextClassReference {
                id: id.clone(),
                display_name: str_field(b, "displayName").unwrap_or(&id).to_owned(),
                description: str_field(b, "description").map(str::to_owned),
                is_available: b
                    .get("isAvailable")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
            };
            change(state, |d| {
                d.authentication_context_class_references
                    .retain(|r| r.id != reference.id);
                d.authentication_context_class_references.push(reference);
            })
            .await?;
            Ok(reply::no_content(ctx))
        }
        _ => Err(graph::unsupported_route(m, path)),
    }
}
