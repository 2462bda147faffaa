//! The declarative tenant file (config-as-code): users, roles, licences, applications,
//! their permissions and grants. Documented in docs/tenant-file.md.
//!
//! Building a directory from it needs hashing and key generation, which live elsewhere;
//! they come in through [`CredentialFactory`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::directory::{Directory, DirectoryError};
use crate::ids::{self, roles, skus};
use crate::objects::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    pub tenant: TenantSection,
    #[serde(default)]
    pub users: Vec<UserEntry>,
    #[serde(default)]
    pub apps: Vec<AppEntry>,
    /// Conditional access policies, in Graph's JSON shape (ids generated when absent).
    #[serde(default)]
    pub conditional_access_policies: Vec<crate::objects::ConditionalAccessPolicy>,
    #[serde(default)]
    pub authentication_contexts: Vec<crate::objects::AuthenticationContextClassReference>,
    /// Graph operations that need an authentication context (step-up).
    #[serde(default)]
    pub protected_operations: Vec<crate::objects::ProtectedOperation>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSection {
    pub id: Uuid,
    pub domain: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// Short name used by `gatehouse demo --json` (`users.<key>`) and by references.
    pub key: String,
    pub id: Option<Uuid>,
    /// The part before `@`; the tenant domain is appended.
    pub user_name: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    /// Omitted: a random password is generated and reported with the credentials.
    pub password: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// SKU part numbers, e.g. `SPE_E3`.
    #[serde(default)]
    pub licenses: Vec<String>,
    #[serde(default = "yes")]
    pub account_enabled: bool,
    /// A TOTP authenticator (base32 secret) registered for MFA.
    pub totp_secret: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppEntry {
    pub key: String,
    pub app_id: Option<Uuid>,
    pub display_name: String,
    /// Generate a client secret (reported with the credentials, stored hashed).
    #[serde(default)]
    pub client_secret: bool,
    /// Generate a certificate credential (PEM written to the data directory).
    #[serde(default)]
    pub certificate: bool,
    #[serde(default)]
    pub web_redirect_uris: Vec<String>,
    #[serde(default)]
    pub spa_redirect_uris: Vec<String>,
    #[serde(default)]
    pub public_client_redirect_uris: Vec<String>,
    /// "Allow public client flows": ROPC and device code.
    #[serde(default)]
    pub allow_public_client_flows: bool,
    /// Scopes this app exposes as an API (identifier URI `api://{appId}`).
    #[serde(default)]
    pub expose_scopes: Vec<ExposedScope>,
    /// App roles this app defines.
    #[serde(default)]
    pub app_roles: Vec<AppRoleEntry>,
    /// Access-token version for this API (1 or 2); APIs default to 2.
    pub access_token_version: Option<u8>,
    #[serde(default)]
    pub delegated: Vec<PermissionEntry>,
    #[serde(default)]
    pub application: Vec<PermissionEntry>,
    /// Directory roles assigned to the app's service principal.
    #[serde(default)]
    pub directory_roles: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposedScope {
    pub value: String,
    #[serde(default)]
    pub admin_only: bool,
    pub display_name: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRoleEntry {
    pub value: String,
    pub display_name: String,
    pub description: String,
    /// `Application`, `User`, or both.
    pub member_types: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionEntry {
    /// `https://graph.microsoft.com`, `https://graph.windows.net`, or `app:<key>` for an app of this file.
    pub resource: String,
    pub permissions: Vec<String>,
    /// Delegated: granted for all users (AllPrincipals). Application: assigned.
    /// `false` only lists them in requiredResourceAccess.
    #[serde(default)]
    pub admin_consented: bool,
    /// Delegated only: users (by key) who consented for themselves.
    #[serde(default)]
    pub consented_by: Vec<String>,
}

/// A generated certificate credential for an app.
#[derive(Debug, Clone)]
pub struct GeneratedCertificate {
    pub der_base64: String,
    pub thumbprint_sha1_b64url: String,
    pub thumbprint_sha1_hex: String,
    pub certificate_pem: String,
    pub private_key_pem: String,
}

/// Hashing, randomness and key generation, supplied by the caller.
pub trait CredentialFactory {
    fn new_id(&mut self) -> Uuid;
    fn random_secret(&mut self) -> String;
    fn random_password(&mut self) -> String;
    fn hash_password(&mut self, password: &str) -> Result<String, DirectoryError>;
    fn hash_secret(&mut self, secret: &str) -> String;
    fn certificate(&mut self, subject: &str) -> Result<GeneratedCertificate, DirectoryError>;
    /// Now, as an ISO-8601 string and unix seconds (credentials' start and end).
    fn now(&self) -> (String, i64);
    fn years_from_now(&self, years: i64) -> (String, i64);
}

/// Plaintext credentials produced while building, for `gatehouse demo --json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IssuedCredentials {
    pub users: BTreeMap<String, UserCredential>,
    pub apps: BTreeMap<String, AppCredential>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserCredential {
    pub username: String,
    pub password: String,
    pub object_id: Uuid,
    pub display_name: String,
    pub roles: Vec<String>,
    pub licenses: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppCredential {
    pub client_id: Uuid,
    pub object_id: Uuid,
    pub service_principal_id: Uuid,
    pub display_name: String,
    pub client_secret: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub certificate_pem: Option<String>,
    pub private_key_pem: Option<String>,
    pub certificate_thumbprint: Option<String>,
}

/// The SKUs every tenant built from a file can assign.
pub fn known_skus() -> Vec<SubscribedSku> {
    vec![SubscribedSku {
        sku_id: skus::SPE_E3,
        sku_part_number: "SPE_E3".to_owned(),
        service_plans: vec![ServicePlan {
            service_plan_id: skus::EXCHANGE_S_ENTERPRISE_PLAN,
            service_plan_name: "EXCHANGE_S_ENTERPRISE".to_owned(),
        }],
        prepaid_units_enabled: 25,
    }]
}

/// The first-party service principals every tenant has.
pub fn first_party_service_principals(
    factory: &mut dyn CredentialFactory,
) -> Vec<ServicePrincipal> {
    let make = |id: Uuid, app_id: Uuid, name: &str, uri: &str| ServicePrincipal {
        id,
        app_id,
        display_name: name.to_owned(),
        app_owner_organization_id: Some(
            "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
                .parse()
                .unwrap_or_default(),
        ),
        service_principal_names: vec![app_id.to_string(), uri.to_owned()],
        app_roles: Vec::new(),
        oauth2_permission_scopes: Vec::new(),
        app_role_assignment_required: false,
        account_enabled: true,
        service_principal_type: "Application".to_owned(),
    };
    vec![
        make(
            factory.new_id(),
            ids::MICROSOFT_GRAPH_APP_ID,
            "Microsoft Graph",
            ids::MICROSOFT_GRAPH_URI,
        ),
        make(
            factory.new_id(),
            ids::AAD_GRAPH_APP_ID,
            "Windows Azure Active Directory",
            ids::AAD_GRAPH_URI,
        ),
    ]
}

impl TenantFile {
    pub fn build(
        &self,
        factory: &mut dyn CredentialFactory,
    ) -> Result<(Directory, IssuedCredentials), DirectoryError> {
        let mut dir = Directory::empty(Tenant {
            id: self.tenant.id,
            display_name: self.tenant.display_name.clone(),
            domain: self.tenant.domain.clone(),
        });
        dir.subscribed_skus = known_skus();
        dir.service_principals = first_party_service_principals(factory);
        let mut creds = IssuedCredentials::default();

        for u in &self.users {
            let id = u.id.unwrap_or_else(|| factory.new_id());
            let upn = format!("{}@{}", u.user_name, self.tenant.domain);
            let password = u
                .password
                .clone()
                .unwrap_or_else(|| factory.random_password());
            let mut assigned_licenses = Vec::new();
            for l in &u.licenses {
                let sku = dir
                    .subscribed_skus
                    .iter()
                    .find(|s| s.sku_part_number.eq_ignore_ascii_case(l))
                    .ok_or_else(|| DirectoryError::Invalid(format!("unknown licence {l}")))?;
                assigned_licenses.push(AssignedLicense {
                    sku_id: sku.sku_id,
                    disabled_plans: Vec::new(),
                });
            }
            for r in &u.roles {
                let template = roles::by_display_name(r)
                    .ok_or_else(|| DirectoryError::Invalid(format!("unknown role {r}")))?;
                let assignment_id = factory.new_id();
                dir.role_assignments.push(DirectoryRoleAssignment {
                    id: assignment_id,
                    principal_id: id,
                    role_definition_id: template,
                    directory_scope_id: "/".to_owned(),
                });
            }
            dir.users.push(User {
                id,
                user_principal_name: upn.clone(),
                display_name: u.display_name.clone(),
                given_name: u.given_name.clone(),
                surname: u.surname.clone(),
                mail: Some(upn.clone()),
                account_enabled: u.account_enabled,
                assigned_licenses,
                gatehouse_password_hash: Some(factory.hash_password(&password)?),
                sign_in_sessions_valid_from: None,
                gatehouse_totp_secret: u.totp_secret.clone(),
            });
            creds.users.insert(
                u.key.clone(),
                UserCredential {
                    username: upn,
                    password,
                    object_id: id,
                    display_name: u.display_name.clone(),
                    roles: u.roles.clone(),
                    licenses: u.licenses.clone(),
                },
            );
        }

        // Applications first (so `app:<key>` resources resolve), permissions after.
        for a in &self.apps {
            let app_id = a.app_id.unwrap_or_else(|| factory.new_id());
            let object_id = factory.new_id();
            let (start, _) = factory.now();
            let (end, end_unix) = factory.years_from_now(2);
            let mut app = Application {
                id: object_id,
                app_id,
                display_name: a.display_name.clone(),
                sign_in_audience: "AzureADMyOrg".to_owned(),
                identifier_uris: Vec::new(),
                api: ApiApplication::default(),
                app_roles: Vec::new(),
                required_resource_access: Vec::new(),
                web: RedirectUris {
                    redirect_uris: a.web_redirect_uris.clone(),
                },
                spa: RedirectUris {
                    redirect_uris: a.spa_redirect_uris.clone(),
                },
                public_client: RedirectUris {
                    redirect_uris: a.public_client_redirect_uris.clone(),
                },
                is_fallback_public_client: a.allow_public_client_flows,
                password_credentials: Vec::new(),
                key_credentials: Vec::new(),
            };
            let mut cred = AppCredential {
                client_id: app_id,
                object_id,
                service_principal_id: factory.new_id(),
                display_name: a.display_name.clone(),
                client_secret: None,
                redirect_uri: a
                    .web_redirect_uris
                    .first()
                    .or(a.public_client_redirect_uris.first())
                    .or(a.spa_redirect_uris.first())
                    .cloned(),
                scope: None,
                certificate_pem: None,
                private_key_pem: None,
                certificate_thumbprint: None,
            };
            if a.client_secret {
                let secret = factory.random_secret();
                app.password_credentials.push(PasswordCredential {
                    key_id: factory.new_id(),
                    display_name: Some("gatehouse".to_owned()),
                    hint: secret.chars().take(3).collect(),
                    start_date_time: start.clone(),
                    end_date_time: end.clone(),
                    gatehouse_secret_hash: Some(factory.hash_secret(&secret)),
                    gatehouse_expires: Some(end_unix),
                });
                cred.client_secret = Some(secret);
            }
            if a.certificate {
                let cert = factory.certificate(&a.display_name)?;
                app.key_credentials.push(KeyCredential {
                    key_id: factory.new_id(),
                    display_name: Some(format!("CN={}", a.display_name)),
                    kind: "AsymmetricX509Cert".to_owned(),
                    usage: "Verify".to_owned(),
                    key: cert.der_base64.clone(),
                    custom_key_identifier: cert.thumbprint_sha1_b64url.clone(),
                    start_date_time: start.clone(),
                    end_date_time: end.clone(),
                });
                cred.certificate_pem = Some(cert.certificate_pem);
                cred.private_key_pem = Some(cert.private_key_pem);
                cred.certificate_thumbprint = Some(cert.thumbprint_sha1_hex);
            }
            if !a.expose_scopes.is_empty() || !a.app_roles.is_empty() {
                app.identifier_uris = vec![format!("api://{app_id}")];
                app.api.requested_access_token_version = Some(a.access_token_version.unwrap_or(2));
            }
            for s in &a.expose_scopes {
                app.api.oauth2_permission_scopes.push(PermissionScope {
                    id: factory.new_id(),
                    value: s.value.clone(),
                    kind: if s.admin_only {
                        ScopeConsentType::Admin
                    } else {
                        ScopeConsentType::User
                    },
                    admin_consent_display_name: s.display_name.clone(),
                    admin_consent_description: s.description.clone(),
                    user_consent_display_name: Some(s.display_name.clone()),
                    user_consent_description: Some(s.description.clone()),
                    is_enabled: true,
                });
            }
            if let Some(first) = a.expose_scopes.first() {
                cred.scope = Some(format!("api://{app_id}/{}", first.value));
            }
            for r in &a.app_roles {
                app.app_roles.push(AppRole {
                    id: factory.new_id(),
                    value: r.value.clone(),
                    display_name: r.display_name.clone(),
                    description: r.description.clone(),
                    allowed_member_types: r.member_types.clone(),
                    is_enabled: true,
                });
            }
            dir.service_principals.push(ServicePrincipal {
                id: cred.service_principal_id,
                app_id,
                display_name: a.display_name.clone(),
                app_owner_organization_id: Some(self.tenant.id),
                service_principal_names: std::iter::once(app_id.to_string())
                    .chain(app.identifier_uris.iter().cloned())
                    .collect(),
                app_roles: app.app_roles.clone(),
                oauth2_permission_scopes: app.api.oauth2_permission_scopes.clone(),
                app_role_assignment_required: false,
                account_enabled: true,
                service_principal_type: "Application".to_owned(),
            });
            for r in &a.directory_roles {
                let template = roles::by_display_name(r)
                    .ok_or_else(|| DirectoryError::Invalid(format!("unknown role {r}")))?;
                let id = factory.new_id();
                dir.role_assignments.push(DirectoryRoleAssignment {
                    id,
                    principal_id: cred.service_principal_id,
                    role_definition_id: template,
                    directory_scope_id: "/".to_owned(),
                });
            }
            dir.applications.push(app);
            creds.apps.insert(a.key.clone(), cred);
        }

        for a in &self.apps {
            self.apply_permissions(a, &mut dir, &creds, factory)?;
        }
        for p in &self.conditional_access_policies {
            let mut p = p.clone();
            if p.id.is_nil() {
                p.id = factory.new_id();
            }
            dir.conditional_access_policies.push(p);
        }
        dir.authentication_context_class_references = self.authentication_contexts.clone();
        dir.protected_operations = self.protected_operations.clone();
        Ok((dir, creds))
    }

    fn resource_sp(
        &self,
        dir: &Directory,
        creds: &IssuedCredentials,
        resource: &str,
    ) -> Result<ServicePrincipal, DirectoryError> {
        let found = match resource.strip_prefix("app:") {
            Some(key) => creds
                .apps
                .get(key)
                .and_then(|c| dir.service_principal(c.service_principal_id)),
            None => dir.resource_by_identifier(resource),
        };
        found
            .cloned()
            .ok_or_else(|| DirectoryError::Invalid(format!("unknown resource {resource}")))
    }

    fn apply_permissions(
        &self,
        a: &AppEntry,
        dir: &mut Directory,
        creds: &IssuedCredentials,
        factory: &mut dyn CredentialFactory,
    ) -> Result<(), DirectoryError> {
        let me = creds
            .apps
            .get(&a.key)
            .ok_or_else(|| DirectoryError::NotFound(a.key.clone()))?
            .clone();
        let client = dir
            .service_principal(me.service_principal_id)
            .cloned()
            .ok_or_else(|| DirectoryError::NotFound(a.key.clone()))?;
        let mut required: BTreeMap<Uuid, Vec<ResourceAccess>> = BTreeMap::new();
        for entry in &a.delegated {
            let resource = self.resource_sp(dir, creds, &entry.resource)?;
            let mut values = Vec::new();
            for p in &entry.permissions {
                let offered = dir.offered_scope(&resource, p).ok_or_else(|| {
                    DirectoryError::Invalid(format!(
                        "{} offers no delegated permission {p}",
                        entry.resource
                    ))
                })?;
                required
                    .entry(resource.app_id)
                    .or_default()
                    .push(ResourceAccess {
                        id: offered.id,
                        kind: "Scope".to_owned(),
                    });
                values.push(offered.value);
            }
            let scope = values.join(" ");
            if entry.admin_consented {
                dir.oauth2_permission_grants.push(OAuth2PermissionGrant {
                    id: grant_id(factory),
                    client_id: client.id,
                    consent_type: ConsentType::AllPrincipals,
                    principal_id: None,
                    resource_id: resource.id,
                    scope: scope.clone(),
                });
            }
            for user_key in &entry.consented_by {
                let user = creds
                    .users
                    .get(user_key)
                    .ok_or_else(|| DirectoryError::Invalid(format!("unknown user {user_key}")))?;
                dir.oauth2_permission_grants.push(OAuth2PermissionGrant {
                    id: grant_id(factory),
                    client_id: client.id,
                    consent_type: ConsentType::Principal,
                    principal_id: Some(user.object_id),
                    resource_id: resource.id,
                    scope: scope.clone(),
                });
            }
        }
        for entry in &a.application {
            let resource = self.resource_sp(dir, creds, &entry.resource)?;
            for p in &entry.permissions {
                let offered = dir.offered_app_role_by_value(&resource, p).ok_or_else(|| {
                    DirectoryError::Invalid(format!(
                        "{} offers no application permission {p}",
                        entry.resource
                    ))
                })?;
                required
                    .entry(resource.app_id)
                    .or_default()
                    .push(ResourceAccess {
                        id: offered.id,
                        kind: "Role".to_owned(),
                    });
                if entry.admin_consented {
                    let (created, _) = factory.now();
                    dir.app_role_assignments.push(AppRoleAssignment {
                        id: grant_id(factory),
                        app_role_id: offered.id,
                        principal_id: client.id,
                        principal_type: "ServicePrincipal".to_owned(),
                        principal_display_name: Some(client.display_name.clone()),
                        resource_id: resource.id,
                        resource_display_name: Some(resource.display_name.clone()),
                        created_date_time: Some(created),
                    });
                }
            }
        }
        if let Some(app) = dir
            .applications
            .iter_mut()
            .find(|x| x.app_id == me.client_id)
        {
            app.required_resource_access = required
                .into_iter()
                .map(
                    |(resource_app_id, resource_access)| RequiredResourceAccess {
                        resource_app_id,
                        resource_access,
                    },
                )
                .collect();
        }
        Ok(())
    }
}

/// Graph's grant and assignment ids are opaque base64url strings.
fn grant_id(factory: &mut dyn CredentialFactory) -> String {
    let a = factory.new_id().simple().to_string();
    let b = factory.new_id().simple().to_string();
    format!("{a}{b}").chars().take(43).collect()
}
