//! The read view of one tenant's directory that every decision is made against.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{AAD_GRAPH_APP_ID, AAD_GRAPH_URI, MICROSOFT_GRAPH_APP_ID, MICROSOFT_GRAPH_URI};
use crate::objects::*;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DirectoryError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

/// Every object of one tenant. Small tenants (tens to thousands of objects) are the norm
/// for an emulator, so lookups scan; indexes can come when a tenant file needs them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    pub tenant: Tenant,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub applications: Vec<Application>,
    #[serde(default)]
    pub service_principals: Vec<ServicePrincipal>,
    #[serde(default)]
    pub oauth2_permission_grants: Vec<OAuth2PermissionGrant>,
    #[serde(default)]
    pub app_role_assignments: Vec<AppRoleAssignment>,
    #[serde(default)]
    pub role_assignments: Vec<DirectoryRoleAssignment>,
    #[serde(default)]
    pub subscribed_skus: Vec<SubscribedSku>,
    #[serde(default)]
    pub groups: Vec<Group>,
    #[serde(default)]
    pub conditional_access_policies: Vec<ConditionalAccessPolicy>,
    #[serde(default)]
    pub authentication_context_class_references: Vec<AuthenticationContextClassReference>,
    #[serde(default)]
    pub protected_operations: Vec<ProtectedOperation>,
    /// When conditional access last changed (Unix seconds): CAE re-evaluates older tokens.
    #[serde(default)]
    pub conditional_access_changed_at: Option<i64>,
}

/// Where a scope's permission lives: Microsoft Graph (served by the catalog),
/// Azure AD Graph, or an application of this tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    MicrosoftGraph,
    AadGraph,
    TenantApi,
}

/// A delegated permission or app role a resource offers, whichever catalog holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedPermission {
    pub id: Uuid,
    pub value: String,
    pub admin_consent_required: bool,
    pub display_name: String,
    pub description: String,
}

impl Directory {
    pub fn empty(tenant: Tenant) -> Self {
        Self {
            tenant,
            users: Vec::new(),
            applications: Vec::new(),
            service_principals: Vec::new(),
            oauth2_permission_grants: Vec::new(),
            app_role_assignments: Vec::new(),
            role_assignments: Vec::new(),
            subscribed_skus: Vec::new(),
            groups: Vec::new(),
            conditional_access_policies: Vec::new(),
            authentication_context_class_references: Vec::new(),
            protected_operations: Vec::new(),
            conditional_access_changed_at: None,
        }
    }

    /// Is `segment` (a GUID or a domain, case-insensitive) a name of this tenant?
    pub fn names_tenant(&self, segment: &str) -> bool {
        segment
            .parse::<Uuid>()
            .map(|id| id == self.tenant.id)
            .unwrap_or_else(|_| segment.eq_ignore_ascii_case(&self.tenant.domain))
    }

    pub fn user(&self, id: Uuid) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// By user principal name, case-insensitively, as sign-in does.
    pub fn user_by_upn(&self, upn: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.user_principal_name.eq_ignore_ascii_case(upn.trim()))
    }

    pub fn application_by_app_id(&self, app_id: Uuid) -> Option<&Application> {
        self.applications.iter().find(|a| a.app_id == app_id)
    }

    pub fn service_principal_by_app_id(&self, app_id: Uuid) -> Option<&ServicePrincipal> {
        self.service_principals.iter().find(|s| s.app_id == app_id)
    }

    pub fn service_principal(&self, id: Uuid) -> Option<&ServicePrincipal> {
        self.service_principals.iter().find(|s| s.id == id)
    }

    pub fn resource_kind(&self, resource: &ServicePrincipal) -> ResourceKind {
        if resource.app_id == MICROSOFT_GRAPH_APP_ID {
            ResourceKind::MicrosoftGraph
        } else if resource.app_id == AAD_GRAPH_APP_ID {
            ResourceKind::AadGraph
        } else {
            ResourceKind::TenantApi
        }
    }

    /// The resource service principal a scope prefix names: a well-known URI, an app id
    /// GUID, or one of an application's identifier URIs (trailing slash kept significant
    /// except for the Microsoft resources, as Entra).
    pub fn resource_by_identifier(&self, identifier: &str) -> Option<&ServicePrincipal> {
        let trimmed = identifier.trim_end_matches('/');
        if trimmed.eq_ignore_ascii_case(MICROSOFT_GRAPH_URI) {
            return self.service_principal_by_app_id(MICROSOFT_GRAPH_APP_ID);
        }
        if trimmed.eq_ignore_ascii_case(AAD_GRAPH_URI) {
            return self.service_principal_by_app_id(AAD_GRAPH_APP_ID);
        }
        if let Ok(app_id) = identifier.parse::<Uuid>() {
            return self.service_principal_by_app_id(app_id);
        }
        let app = self.applications.iter().find(|a| {
            a.identifier_uris
                .iter()
                .any(|u| u.eq_ignore_ascii_case(identifier))
        })?;
        self.service_principal_by_app_id(app.app_id)
    }

    /// The delegated permission named `value` offered by `resource`.
    pub fn offered_scope(
        &self,
        resource: &ServicePrincipal,
        value: &str,
    ) -> Option<OfferedPermission> {
        match self.resource_kind(resource) {
            ResourceKind::MicrosoftGraph => {
                let p = gatehouse_catalog::Catalog::embedded().get(value)?;
                let d = p.delegated.as_ref()?;
                Some(OfferedPermission {
                    id: d.id,
                    value: p.name.clone(),
                    admin_consent_required: d.requires_admin_consent,
                    display_name: d
                        .user_display_name
                        .clone()
                        .unwrap_or_else(|| d.admin_display_name.clone()),
                    description: d
                        .user_description
                        .clone()
                        .unwrap_or_else(|| d.admin_description.clone()),
                })
            }
            ResourceKind::AadGraph => aad_graph_scope(value),
            ResourceKind::TenantApi => {
                let app = self.application_by_app_id(resource.app_id)?;
                app.api
                    .oauth2_permission_scopes
                    .iter()
                    .find(|s| s.is_enabled && s.value.eq_ignore_ascii_case(value))
                    .map(|s| OfferedPermission {
                        id: s.id,
                        value: s.value.clone(),
                        admin_consent_required: s.kind == ScopeConsentType::Admin,
                        display_name: s
                            .user_consent_display_name
                            .clone()
                            .unwrap_or_else(|| s.admin_consent_display_name.clone()),
                        description: s
                            .user_consent_description
                            .clone()
                            .unwrap_or_else(|| s.admin_consent_description.clone()),
                    })
            }
        }
    }

    /// The application permission (app role for applications) with this id on `resource`.
    pub fn offered_app_role(
        &self,
        resource: &ServicePrincipal,
        role_id: Uuid,
    ) -> Option<OfferedPermission> {
        match self.resource_kind(resource) {
            ResourceKind::MicrosoftGraph => {
                let (p, kind) = gatehouse_catalog::Catalog::embedded().by_id(role_id)?;
                if kind != gatehouse_catalog::TokenKind::Application {
                    return None;
                }
                let a = p.application.as_ref()?;
                Some(OfferedPermission {
                    id: a.id,
                    value: p.name.clone(),
                    admin_consent_required: true,
                    display_name: a.admin_display_name.clone(),
                    description: a.admin_description.clone(),
                })
            }
            ResourceKind::AadGraph => AAD_GRAPH_ROLES
                .iter()
                .find(|(id, _)| id.parse::<Uuid>().ok() == Some(role_id))
                .map(|(id, value)| OfferedPermission {
                    id: id.parse().unwrap_or_default(),
                    value: (*value).to_owned(),
                    admin_consent_required: true,
                    display_name: (*value).to_owned(),
                    description: (*value).to_owned(),
                }),
            ResourceKind::TenantApi => {
                let app = self.application_by_app_id(resource.app_id)?;
                app.app_roles
                    .iter()
                    .find(|r| r.id == role_id && r.is_enabled)
                    .map(|r| OfferedPermission {
                        id: r.id,
                        value: r.value.clone(),
                        admin_consent_required: true,
                        display_name: r.display_name.clone(),
                        description: r.description.clone(),
                    })
            }
        }
    }

    /// The application permission named `value` on `resource`, for tenant files and Graph.
    pub fn offered_app_role_by_value(
        &self,
        resource: &ServicePrincipal,
        value: &str,
    ) -> Option<OfferedPermission> {
        match self.resource_kind(resource) {
            ResourceKind::MicrosoftGraph => {
                let p = gatehouse_catalog::Catalog::embedded().get(value)?;
                let a = p.application.as_ref()?;
                self.offered_app_role(resource, a.id)
            }
            ResourceKind::AadGraph => AAD_GRAPH_ROLES
                .iter()
                .find(|(_, v)| v.eq_ignore_ascii_case(value))
                .and_then(|(id, _)| self.offered_app_role(resource, id.parse().ok()?)),
            ResourceKind::TenantApi => {
                let app = self.application_by_app_id(resource.app_id)?;
                let role = app
                    .app_roles
                    .iter()
                    .find(|r| r.value.eq_ignore_ascii_case(value) && r.for_applications())?;
                self.offered_app_role(resource, role.id)
            }
        }
    }

    /// Delegated scopes consented for `client` on `resource`, for `user` (tenant-wide grants
    /// plus the user's own).
    pub fn consented_scopes(
        &self,
        client: &ServicePrincipal,
        resource: &ServicePrincipal,
        user: Uuid,
    ) -> BTreeSet<String> {
        self.oauth2_permission_grants
            .iter()
            .filter(|g| g.client_id == client.id && g.resource_id == resource.id)
            .filter(|g| match g.consent_type {
                ConsentType::AllPrincipals => true,
                ConsentType::Principal => g.principal_id == Some(user),
            })
            .flat_map(|g| g.scopes().map(str::to_owned))
            .collect()
    }

    /// Values of the application permissions (app roles) assigned to `client` on `resource`.
    pub fn granted_app_roles(
        &self,
        client: &ServicePrincipal,
        resource: &ServicePrincipal,
    ) -> Vec<String> {
        let mut roles: Vec<String> = self
            .app_role_assignments
            .iter()
            .filter(|a| a.principal_id == client.id && a.resource_id == resource.id)
            .filter_map(|a| self.offered_app_role(resource, a.app_role_id))
            .map(|p| p.value)
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }

    /// App roles a user holds on a tenant API (user assignments), for `roles` in user tokens.
    pub fn user_app_roles(&self, user: Uuid, resource: &ServicePrincipal) -> Vec<String> {
        if self.resource_kind(resource) != ResourceKind::TenantApi {
            return Vec::new();
        }
        let Some(app) = self.application_by_app_id(resource.app_id) else {
            return Vec::new();
        };
        self.app_role_assignments
            .iter()
            .filter(|a| a.principal_id == user && a.resource_id == resource.id)
            .filter_map(|a| app.app_roles.iter().find(|r| r.id == a.app_role_id))
            .map(|r| r.value.clone())
            .collect()
    }

    /// Directory role template ids held by a principal (user or service principal).
    pub fn directory_roles_of(&self, principal: Uuid) -> Vec<Uuid> {
        let mut roles: Vec<Uuid> = self
            .role_assignments
            .iter()
            .filter(|r| r.principal_id == principal && r.directory_scope_id == "/")
            .map(|r| r.role_definition_id)
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }

    /// `wids` of a user token: the user's tenant-wide roles plus the default member role.
    pub fn wids_of_user(&self, user: Uuid) -> Vec<Uuid> {
        let mut wids = self.directory_roles_of(user);
        wids.push(crate::ids::roles::DEFAULT_MEMBER_USER);
        wids
    }

    pub fn is_admin_who_can_consent_for_all(&self, user: Uuid) -> bool {
        self.directory_roles_of(user)
            .into_iter()
            .any(crate::ids::roles::can_grant_tenant_wide_consent)
    }
}

/// The Azure AD Graph delegated scopes still issued for it, enough to show the
/// wrong-audience case.
fn aad_graph_scope(value: &str) -> Option<OfferedPermission> {
    AAD_GRAPH_SCOPES
        .iter()
        .find(|(_, v, _)| v.eq_ignore_ascii_case(value))
        .map(|(id, v, admin)| OfferedPermission {
            id: id.parse().unwrap_or_default(),
            value: (*v).to_owned(),
            admin_consent_required: *admin,
            display_name: (*v).to_owned(),
            description: format!("Azure AD Graph {v}"),
        })
}

/// Azure AD Graph permission ids (the published ones for 00000002-0000-0000-c000-000000000000).
const AAD_GRAPH_SCOPES: &[(&str, &str, bool)] = &[
    ("311a71cc-e848-46a1-bdf8-97ff7156d8e6", "User.Read", false),
    (
        "a42657d6-7f20-40e3-b6f0-cee03008a62a",
        "Directory.AccessAsUser.All",
        true,
    ),
    (
        "5778995a-e1bf-45b8-affa-663a9f3f4d04",
        "Directory.Read.All",
        true,
    ),
];
const AAD_GRAPH_ROLES: &[(&str, &str)] = &[
    ("5778995a-e1bf-45b8-affa-663a9f3f4d04", "Directory.Read.All"),
    (
        "78c8a3c8-a07e-4b9e-af1b-b5ccab50a175",
        "Directory.ReadWrite.All",
    ),
];

/// Changes made by consent (pages, admin consent, Graph).
impl Directory {
    /// Add scopes to the delegated grant of (client, resource, consent type, principal),
    /// creating the grant if needed, as Entra merges consent.
    pub fn add_delegated_grant(
        &mut self,
        client: Uuid,
        resource: Uuid,
        principal: Option<Uuid>,
        scopes: &[String],
        new_id: impl FnOnce() -> String,
    ) {
        let consent_type = if principal.is_some() {
            ConsentType::Principal
        } else {
            ConsentType::AllPrincipals
        };
        if let Some(g) = self.oauth2_permission_grants.iter_mut().find(|g| {
            g.client_id == client
                && g.resource_id == resource
                && g.consent_type == consent_type
                && g.principal_id == principal
        }) {
            let mut all: Vec<String> = g.scopes().map(str::to_owned).collect();
            for s in scopes {
                if !all.iter().any(|a| a.eq_ignore_ascii_case(s)) {
                    all.push(s.clone());
                }
            }
            g.scope = all.join(" ");
            return;
        }
        self.oauth2_permission_grants.push(OAuth2PermissionGrant {
            id: new_id(),
            client_id: client,
            consent_type,
            principal_id: principal,
            resource_id: resource,
            scope: scopes.join(" "),
        });
    }

    /// Assign an app role (application permission) unless already assigned.
    pub fn add_app_role_assignment(
        &mut self,
        principal: &ServicePrincipal,
        resource: &ServicePrincipal,
        app_role_id: Uuid,
        id: String,
        created: String,
    ) {
        if self.app_role_assignments.iter().any(|a| {
            a.principal_id == principal.id
                && a.resource_id == resource.id
                && a.app_role_id == app_role_id
        }) {
            return;
        }
        self.app_role_assignments.push(AppRoleAssignment {
            id,
            app_role_id,
            principal_id: principal.id,
            principal_type: "ServicePrincipal".to_owned(),
            principal_display_name: Some(principal.display_name.clone()),
            resource_id: resource.id,
            resource_display_name: Some(resource.display_name.clone()),
            created_date_time: Some(created),
        });
    }
}
