//! Parsing and resolving the `scope` parameter as Entra does: one resource per request,
//! bare names mean Microsoft Graph, OIDC scopes ride along, `/.default` is static.

use gatehouse_model::directory::ResourceKind;
use gatehouse_model::ids::{AAD_GRAPH_URI, MICROSOFT_GRAPH_APP_ID, MICROSOFT_GRAPH_URI};
use gatehouse_model::{Directory, ServicePrincipal};

use crate::cause::Cause;
use crate::denial::Denial;
use crate::wire::{AadError, WireError};

pub const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// A `scope` parameter resolved against the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequest {
    pub raw: String,
    pub resource: ServicePrincipal,
    pub resource_kind: ResourceKind,
    /// The resource exactly as the client wrote it (empty for bare Graph names); sets `aud` of v1 tokens.
    pub resource_as_written: String,
    pub default: bool,
    /// Permission names without the resource prefix, in request order, deduplicated.
    pub permissions: Vec<String>,
    pub oidc: Vec<String>,
}

impl ScopeRequest {
    pub fn wants_refresh_token(&self) -> bool {
        self.oidc.iter().any(|s| s == "offline_access")
    }
    pub fn wants_id_token(&self) -> bool {
        self.oidc.iter().any(|s| s == "openid")
    }

    /// How the permission is written back in the response's `scope`: Graph
    /// scopes fully qualified, OIDC scopes bare (as the recording shows).
    pub fn qualify(&self, permission: &str) -> String {
        // Echo the form the client used (bare `User.Read` stays bare): MSAL caches the
        // token under the response's `scope` and looks it up by the requested names.
        let written = self.resource_as_written.trim_end_matches('/');
        if written.is_empty() {
            permission.to_owned()
        } else {
            format!("{written}/{permission}")
        }
    }
}

/// Split one scope token into (resource as written, permission). Bare names are Graph's.
fn split(scope: &str) -> (&str, &str) {
    match scope.rfind('/') {
        Some(i) if i > 0 => (
            scope.get(..i).unwrap_or(""),
            scope.get(i + 1..).unwrap_or(""),
        ),
        _ => ("", scope),
    }
}

/// One key per resource however it is written: bare names, URI and GUID of Graph agree.
fn resource_key(written: &str) -> String {
    let w = written.trim_end_matches('/').to_ascii_lowercase();
    if w.is_empty() || w == MICROSOFT_GRAPH_URI {
        return MICROSOFT_GRAPH_APP_ID.to_string();
    }
    if w == AAD_GRAPH_URI {
        return gatehouse_model::ids::AAD_GRAPH_APP_ID.to_string();
    }
    w
}

fn invalid_scope(raw: &str) -> Denial {
    Denial::new(
        Cause::ScopeInvalid,
        WireError::Token(AadError::new(
            400,
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' isn't valid. The scope {raw} isn't valid."
            ),
        )),
    )
    .fact("scope", raw)
}

/// Resolve `raw` (space-separated) for `client_display`. `app_only` is client credentials / OBO.
pub fn resolve(
    dir: &Directory,
    raw: &str,
    app_only_default_required: bool,
) -> Result<ScopeRequest, Denial> {
    let tokens: Vec<&str> = raw.split_whitespace().collect();
    if tokens.is_empty() {
        return Err(Denial::new(
            Cause::RequestMissingParameter,
            WireError::Token(AadError::new(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )),
        )
        .fix("Send a scope such as https://graph.microsoft.com/.default (app-only) or User.Read (delegated)."));
    }
    let mut oidc = Vec::new();
    let mut resource_written: Option<&str> = None;
    let mut permissions: Vec<String> = Vec::new();
    let mut default = false;
    for t in &tokens {
        if OIDC_SCOPES.iter().any(|o| o.eq_ignore_ascii_case(t)) {
            let lower = t.to_ascii_lowercase();
            if !oidc.contains(&lower) {
                oidc.push(lower);
            }
            continue;
        }
        let (res, perm) = split(t);
        if perm.is_empty() {
            return Err(invalid_scope(raw));
        }
        let normalised_res = resource_key(res);
        match resource_written {
            None => resource_written = Some(res),
            Some(prev) => {
                if resource_key(prev) != normalised_res {
                    return Err(Denial::new(
                        Cause::ScopeMultipleResources,
                        WireError::Token(AadError::new(
                            400,
                            "invalid_request",
                            28000,
                            format!("Provided value for the input parameter scope is not valid because it contains more than one resource. Scope {raw} is not valid."),
                        )),
                    )
                    .fact("scope", raw)
                    .fix("Request one resource per token; get a second token for the other resource."));
                }
            }
        }
        if perm == ".default" {
            default = true;
        } else if !permissions.iter().any(|p| p.eq_ignore_ascii_case(perm)) {
            permissions.push(perm.to_owned());
        }
    }
    if default && !permissions.is_empty() {
        return Err(invalid_scope(raw)
            .fact("mixed", "a /.default scope with named scopes")
            .fix("Clients can't combine static (/.default) and dynamic consent in one request: send only {resource}/.default, or only named scopes."));
    }
    if app_only_default_required && !default {
        return Err(Denial::new(
            Cause::ScopeNotDefaultForAppOnly,
            WireError::Token(AadError::new(
                400,
                "invalid_scope",
                1002012,
                format!("The provided value for scope {raw} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
            )),
        )
        .fact("scope", raw)
        .fact("grant", "app-only (client credentials or on-behalf-of)")
        .fix("Request https://graph.microsoft.com/.default: an app-only token carries every application permission an admin granted, never individually named ones."));
    }
    let written = resource_written.unwrap_or("");
    let resource = if written.is_empty() {
        dir.resource_by_identifier(MICROSOFT_GRAPH_URI)
    } else {
        dir.resource_by_identifier(written)
    };
    let Some(resource) = resource.cloned() else {
        return Err(Denial::new(
            Cause::ResourceNotFound,
            WireError::Token(AadError::new(
                400,
                "invalid_resource",
                500011,
                format!("The resource principal named {written} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", dir.tenant.display_name),
            )),
        )
        .fact("resource", written)
        .fix("Check the resource part of the scope: an API's application ID URI (api://...) or https://graph.microsoft.com."));
    };
    let resource_kind = dir.resource_kind(&resource);
    // Permission names keep the catalog's spelling, as tokens do.
    let mut canonical = Vec::new();
    for p in &permissions {
        match dir.offered_scope(&resource, p) {
            Some(o) => canonical.push(o.value),
            None => {
                return Err(Denial::new(
                    Cause::ScopeUnknownPermission,
                    WireError::Token(AadError::new(
                        400,
                        "invalid_client",
                        650053,
                        format!("The application asked for scope '{p}' that doesn't exist on the resource '{}'. Contact the app vendor.", resource.app_id),
                    )),
                )
                .fact("scope", p.clone())
                .fact("resource", resource.display_name.clone())
                .fix("Use a delegated permission the resource offers (for Graph, see the permissions reference)."));
            }
        }
    }
    Ok(ScopeRequest {
        raw: raw.to_owned(),
        resource,
        resource_kind,
        resource_as_written: written.to_owned(),
        default,
        permissions: canonical,
        oidc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_prefix_and_bare() {
        assert_eq!(
            split("https://graph.microsoft.com/User.Read"),
            ("https://graph.microsoft.com", "User.Read")
        );
        assert_eq!(split("User.Read"), ("", "User.Read"));
        assert_eq!(
            split("api://abc/access_as_user"),
            ("api://abc", "access_as_user")
        );
        assert_eq!(
            split("https://contoso.com//.default"),
            ("https://contoso.com/", ".default")
        );
    }
}
