//! Conditional access: which policies apply to a sign-in (users, groups, roles,
//! target resources, client app types), what their grant controls demand, and the
//! answers Entra gives at the token endpoint (53003, 50076, 50079).

use gatehouse_model::{ConditionalAccessPolicy, Directory, User};
use uuid::Uuid;

use crate::cause::Cause;
use crate::denial::Denial;
use crate::wire::{AadError, WireError};

/// One sign-in or token issuance, as conditional access sees it.
#[derive(Debug, Clone)]
pub struct SignIn<'a> {
    pub user: &'a User,
    pub client_app_id: Uuid,
    pub resource_app_id: Uuid,
    /// `browser` for the pages, `mobileAppsAndDesktopClients` for ROPC/device/refresh.
    pub client_app_type: &'a str,
    /// Methods already satisfied in this session (`pwd`, `mfa`).
    pub amr: &'a [String],
    /// Authentication contexts the request asks for (`acrs` in `claims`).
    pub acrs_requested: &'a [String],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow {
        /// Report-only policies that would have applied, with what they would have demanded.
        report_only: Vec<(Uuid, String)>,
        /// Authentication contexts satisfied (for the `acrs` claim).
        acrs: Vec<String>,
    },
    Block {
        policy: Box<ConditionalAccessPolicy>,
    },
    NeedMfa {
        policies: Vec<ConditionalAccessPolicy>,
    },
}

fn includes(list: &[String], id: &str) -> bool {
    list.iter()
        .any(|x| x.eq_ignore_ascii_case("All") || x.eq_ignore_ascii_case(id))
}

fn has(list: &[String], id: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(id))
}

/// Does the policy's assignment cover this sign-in?
pub fn applies(dir: &Directory, p: &ConditionalAccessPolicy, s: &SignIn<'_>) -> bool {
    let u = &p.conditions.users;
    let uid = s.user.id.to_string();
    let groups: Vec<String> = dir
        .groups
        .iter()
        .filter(|g| g.gatehouse_members.contains(&s.user.id))
        .map(|g| g.id.to_string())
        .collect();
    let roles: Vec<String> = dir
        .directory_roles_of(s.user.id)
        .iter()
        .map(Uuid::to_string)
        .collect();
    let user_in = includes(&u.include_users, &uid)
        || groups.iter().any(|g| has(&u.include_groups, g))
        || roles.iter().any(|r| has(&u.include_roles, r));
    let user_out = has(&u.exclude_users, &uid)
        || groups.iter().any(|g| has(&u.exclude_groups, g))
        || roles.iter().any(|r| has(&u.exclude_roles, r));
    if !user_in || user_out {
        return false;
    }
    let a = &p.conditions.applications;
    let resource = s.resource_app_id.to_string();
    let client = s.client_app_id.to_string();
    let by_app =
        includes(&a.include_applications, &resource) || has(&a.include_applications, &client);
    let by_context = a
        .include_authentication_context_class_references
        .iter()
        .any(|c| s.acrs_requested.iter().any(|r| r.eq_ignore_ascii_case(c)));
    if !(by_app || by_context)
        || has(&a.exclude_applications, &resource)
        || has(&a.exclude_applications, &client)
    {
        return false;
    }
    let types = &p.conditions.client_app_types;
    types.is_empty() || includes(types, s.client_app_type)
}

pub fn evaluate(dir: &Directory, s: &SignIn<'_>) -> Verdict {
    let mfa_done = s.amr.iter().any(|m| m == "mfa");
    let mut report_only = Vec::new();
    let mut need_mfa = Vec::new();
    for p in dir
        .conditional_access_policies
        .iter()
        .filter(|p| p.state != "disabled")
    {
        if !applies(dir, p, s) {
            continue;
        }
        let controls = p
            .grant_controls
            .as_ref()
            .map(|g| g.built_in_controls.clone())
            .unwrap_or_default();
        let block = has(&controls, "block");
        let mfa = has(&controls, "mfa");
        if p.state == "enabledForReportingButNotEnforced" {
            let would = if block {
                "block"
            } else if mfa && !mfa_done {
                "require mfa"
            } else {
                "grant"
            };
            report_only.push((p.id, would.to_owned()));
            continue;
        }
        if block {
            return Verdict::Block {
                policy: Box::new(p.clone()),
            };
        }
        if mfa && !mfa_done {
            need_mfa.push(p.clone());
        }
    }
    if !need_mfa.is_empty() {
        return Verdict::NeedMfa { policies: need_mfa };
    }
    // Requested contexts are satisfied once every policy demanding them is met.
    Verdict::Allow {
        report_only,
        acrs: if mfa_done {
            s.acrs_requested.to_vec()
        } else {
            Vec::new()
        },
    }
}

/// The token-endpoint answer for a verdict (non-interactive: the client must go interactive).
pub fn token_denial(s: &SignIn<'_>, verdict: &Verdict, on_behalf_of: bool) -> Option<Denial> {
    let resource = s.resource_app_id;
    match verdict {
        Verdict::Allow { .. } => None,
        Verdict::Block { policy } => {
            let e = AadError::new(400, if on_behalf_of { "invalid_grant" } else { "interaction_required" }, 53003, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.").with_suberror("message_only");
            Some(
                Denial::new(Cause::CaBlocked, WireError::Token(e))
                    .fact("policy", format!("{} ({})", policy.display_name, policy.id))
                    .fact("user", s.user.user_principal_name.clone())
                    .fact("grant control", "block")
                    .fix("The policy blocks this user/app/resource combination; an administrator must exclude the user or app, or the client must meet the policy's conditions."),
            )
        }
        Verdict::NeedMfa { policies } => {
            let registered = s.user.gatehouse_totp_secret.is_some();
            let ids: Vec<String> = policies.iter().map(|p| p.id.to_string()).collect();
            let claims = format!(
                r#"{{"access_token":{{"capolids":{{"essential":true,"values":[{}]}}}}}}"#,
                ids.iter()
                    .map(|i| format!("\"{i}\""))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let (code, message, cause) = if registered {
                (
                    50076,
                    format!(
                        "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{resource}'."
                    ),
                    Cause::CaMfaRequired,
                )
            } else {
                (
                    50079,
                    format!(
                        "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '{resource}'."
                    ),
                    Cause::CaMfaRegistrationRequired,
                )
            };
            let mut e = AadError::new(
                400,
                if on_behalf_of {
                    "invalid_grant"
                } else {
                    "interaction_required"
                },
                code,
                message,
            )
            .with_suberror("basic_action");
            e.claims = Some(claims.clone());
            Some(
                Denial::new(cause, WireError::Token(e))
                    .fact("policies", policies.iter().map(|p| format!("{} ({})", p.display_name, p.id)).collect::<Vec<_>>().join(", "))
                    .fact("user", s.user.user_principal_name.clone())
                    .fact("authentication so far (amr)", s.amr.join(" "))
                    .fact("claims", claims)
                    .fix("Send the user through an interactive sign-in (authorize endpoint) with the returned claims (MSAL: claims_challenge=...), where they complete MFA; a refresh or password grant cannot satisfy MFA.")
                    .fix(if registered { "The user has an authenticator registered." } else { "The user has no authenticator: they register one during the interactive sign-in." }),
            )
        }
    }
}
