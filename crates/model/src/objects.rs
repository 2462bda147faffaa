//! Directory objects in Microsoft Graph's shape.
//!
//! Secrets (password hashes, client-secret hashes) live in `#[serde(skip_serializing_if)]`
//! fields under `gatehouse*` names that Graph responses filter out; they are stored, never shown.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: Uuid,
    pub display_name: String,
    /// The initial `*.onmicrosoft.com` domain; also accepted as `{tenant}` in URLs.
    pub domain: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub user_principal_name: String,
    pub display_name: String,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default = "yes")]
    pub account_enabled: bool,
    #[serde(default)]
    pub assigned_licenses: Vec<AssignedLicense>,
    /// argon2id PHC string; never returned by Graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gatehouse_password_hash: Option<String>,
    /// Unix seconds; tokens issued before are no longer valid (revokeSignInSessions, password change).
    #[serde(default)]
    pub sign_in_sessions_valid_from: Option<i64>,
    /// A registered TOTP authenticator (RFC 6238), base32; never returned by Graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gatehouse_totp_secret: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AssignedLicense {
    pub sku_id: Uuid,
    #[serde(default)]
    pub disabled_plans: Vec<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SubscribedSku {
    pub sku_id: Uuid,
    pub sku_part_number: String,
    pub service_plans: Vec<ServicePlan>,
    pub prepaid_units_enabled: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlan {
    pub service_plan_id: Uuid,
    pub service_plan_name: String,
}

/// Assignment of a directory role (by template id) to a user or a service principal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryRoleAssignment {
    pub id: Uuid,
    pub principal_id: Uuid,
    pub role_definition_id: Uuid,
    #[serde(default = "root_scope")]
    pub directory_scope_id: String,
}

fn root_scope() -> String {
    "/".to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PermissionScope {
    pub id: Uuid,
    pub value: String,
    #[serde(rename = "type")]
    pub kind: ScopeConsentType,
    pub admin_consent_display_name: String,
    pub admin_consent_description: String,
    #[serde(default)]
    pub user_consent_display_name: Option<String>,
    #[serde(default)]
    pub user_consent_description: Option<String>,
    #[serde(default = "yes")]
    pub is_enabled: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ScopeConsentType {
    User,
    Admin,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    pub id: Uuid,
    pub value: String,
    pub display_name: String,
    pub description: String,
    pub allowed_member_types: Vec<String>,
    #[serde(default = "yes")]
    pub is_enabled: bool,
}

impl AppRole {
    pub fn for_applications(&self) -> bool {
        self.allowed_member_types.iter().any(|t| t == "Application")
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApiApplication {
    #[serde(default)]
    pub oauth2_permission_scopes: Vec<PermissionScope>,
    /// 2 gives v2.0 access tokens; null/1 gives v1.0, as Entra.
    #[serde(default)]
    pub requested_access_token_version: Option<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAccess {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RequiredResourceAccess {
    pub resource_app_id: Uuid,
    pub resource_access: Vec<ResourceAccess>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RedirectUris {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredential {
    pub key_id: Uuid,
    #[serde(default)]
    pub display_name: Option<String>,
    /// First three characters of the secret, as Graph shows.
    pub hint: String,
    pub start_date_time: String,
    pub end_date_time: String,
    /// Keyed SHA-256 of the secret (base64url); never returned by Graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gatehouse_secret_hash: Option<String>,
    /// Unix seconds of `end_date_time`, for expiry checks without re-parsing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gatehouse_expires: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyCredential {
    pub key_id: Uuid,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub usage: String,
    /// base64 (standard) DER of the X.509 certificate, as Graph's `key`.
    pub key: String,
    /// SHA-1 thumbprint, base64url, as `x5t` in client assertions.
    pub custom_key_identifier: String,
    pub start_date_time: String,
    pub end_date_time: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: Uuid,
    pub app_id: Uuid,
    pub display_name: String,
    #[serde(default = "my_org")]
    pub sign_in_audience: String,
    #[serde(default)]
    pub identifier_uris: Vec<String>,
    #[serde(default)]
    pub api: ApiApplication,
    #[serde(default)]
    pub app_roles: Vec<AppRole>,
    #[serde(default)]
    pub required_resource_access: Vec<RequiredResourceAccess>,
    #[serde(default)]
    pub web: RedirectUris,
    #[serde(default)]
    pub spa: RedirectUris,
    #[serde(default)]
    pub public_client: RedirectUris,
    /// "Allow public client flows" (ROPC, device code, IWA) in the portal.
    #[serde(default)]
    pub is_fallback_public_client: bool,
    #[serde(default)]
    pub password_credentials: Vec<PasswordCredential>,
    #[serde(default)]
    pub key_credentials: Vec<KeyCredential>,
}

fn my_org() -> String {
    "AzureADMyOrg".to_owned()
}

impl Application {
    /// A public client has no credential to present (no web redirect and no secrets).
    pub fn is_public_client(&self) -> bool {
        self.password_credentials.is_empty()
            && self.key_credentials.is_empty()
            && (self.is_fallback_public_client
                || !self.public_client.redirect_uris.is_empty()
                || !self.spa.redirect_uris.is_empty())
    }

    pub fn all_redirect_uris(&self) -> impl Iterator<Item = (&str, RedirectKind)> {
        self.web
            .redirect_uris
            .iter()
            .map(|u| (u.as_str(), RedirectKind::Web))
            .chain(
                self.spa
                    .redirect_uris
                    .iter()
                    .map(|u| (u.as_str(), RedirectKind::Spa)),
            )
            .chain(
                self.public_client
                    .redirect_uris
                    .iter()
                    .map(|u| (u.as_str(), RedirectKind::PublicClient)),
            )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    Web,
    Spa,
    PublicClient,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    pub id: Uuid,
    pub app_id: Uuid,
    pub display_name: String,
    #[serde(default)]
    pub app_owner_organization_id: Option<Uuid>,
    #[serde(default)]
    pub service_principal_names: Vec<String>,
    #[serde(default)]
    pub app_roles: Vec<AppRole>,
    #[serde(default)]
    pub oauth2_permission_scopes: Vec<PermissionScope>,
    #[serde(default)]
    pub app_role_assignment_required: bool,
    #[serde(default = "yes")]
    pub account_enabled: bool,
    #[serde(default = "application_type")]
    pub service_principal_type: String,
}

fn application_type() -> String {
    "Application".to_owned()
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ConsentType {
    AllPrincipals,
    Principal,
}

/// A delegated-permission grant (consent), as `oAuth2PermissionGrant`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2PermissionGrant {
    pub id: String,
    pub client_id: Uuid,
    pub consent_type: ConsentType,
    pub principal_id: Option<Uuid>,
    pub resource_id: Uuid,
    pub scope: String,
}

impl OAuth2PermissionGrant {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }
}

/// An app-role assignment: an application permission when the principal is a service principal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    pub id: String,
    pub app_role_id: Uuid,
    pub principal_id: Uuid,
    pub principal_type: String,
    #[serde(default)]
    pub principal_display_name: Option<String>,
    pub resource_id: Uuid,
    #[serde(default)]
    pub resource_display_name: Option<String>,
    #[serde(default)]
    pub created_date_time: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: Uuid,
    pub display_name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub mail_nickname: String,
    #[serde(default)]
    pub mail_enabled: bool,
    #[serde(default = "yes")]
    pub security_enabled: bool,
    #[serde(default)]
    pub group_types: Vec<String>,
    /// Member object ids (users, service principals, groups); Graph shows them via /members.
    #[serde(default)]
    pub gatehouse_members: Vec<Uuid>,
}

/// A conditional access policy, in Graph's shape (the fields Gatehouse evaluates).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConditionalAccessPolicy {
    #[serde(default)]
    pub id: Uuid,
    pub display_name: String,
    /// `enabled`, `disabled` or `enabledForReportingButNotEnforced`.
    pub state: String,
    #[serde(default)]
    pub conditions: CaConditions,
    #[serde(default)]
    pub grant_controls: Option<CaGrantControls>,
    #[serde(default)]
    pub created_date_time: Option<String>,
    #[serde(default)]
    pub modified_date_time: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CaConditions {
    #[serde(default)]
    pub users: CaUsers,
    #[serde(default)]
    pub applications: CaApplications,
    #[serde(default)]
    pub client_app_types: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CaUsers {
    #[serde(default)]
    pub include_users: Vec<String>,
    #[serde(default)]
    pub exclude_users: Vec<String>,
    #[serde(default)]
    pub include_groups: Vec<String>,
    #[serde(default)]
    pub exclude_groups: Vec<String>,
    #[serde(default)]
    pub include_roles: Vec<String>,
    #[serde(default)]
    pub exclude_roles: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CaApplications {
    #[serde(default)]
    pub include_applications: Vec<String>,
    #[serde(default)]
    pub exclude_applications: Vec<String>,
    #[serde(default)]
    pub include_authentication_context_class_references: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CaGrantControls {
    #[serde(default = "or")]
    pub operator: String,
    #[serde(default)]
    pub built_in_controls: Vec<String>,
}

fn or() -> String {
    "OR".to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationContextClassReference {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "yes")]
    pub is_available: bool,
}

/// A Graph operation that needs an authentication context (step-up), as Entra's
/// "protected actions": a token without `acrs` containing the context is challenged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProtectedOperation {
    pub method: String,
    /// A Graph path template as in the permission catalog, e.g. `/users/{id}`.
    pub path: String,
    /// `c1` … `c99`.
    pub authentication_context: String,
}
