//! The catalog's data types, shared by the library and `build.rs` (which
//! includes this file to build the catalog at compile time).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use uuid::Uuid;

use crate::route;

/// A permission scheme as named in `permissions.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Scheme {
    /// Delegated permission, work or school account.
    DelegatedWork,
    /// Delegated permission, personal Microsoft account.
    DelegatedPersonal,
    /// Application permission (app role).
    Application,
}

impl Scheme {
    /// The name used in the data: `DelegatedWork`, `DelegatedPersonal`, `Application`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::DelegatedWork => "DelegatedWork",
            Scheme::DelegatedPersonal => "DelegatedPersonal",
            Scheme::Application => "Application",
        }
    }

    pub(crate) fn bit(self) -> u8 {
        match self {
            Scheme::DelegatedWork => route::S_WORK,
            Scheme::DelegatedPersonal => route::S_PERSONAL,
            Scheme::Application => route::S_APP,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for [`Scheme::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission scheme {0:?}")]
pub struct UnknownScheme(pub String);

impl FromStr for Scheme {
    type Err = UnknownScheme;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match route::scheme_bit(s) {
            Some(route::S_WORK) => Ok(Scheme::DelegatedWork),
            Some(route::S_PERSONAL) => Ok(Scheme::DelegatedPersonal),
            Some(route::S_APP) => Ok(Scheme::Application),
            _ => Err(UnknownScheme(s.to_owned())),
        }
    }
}

/// Kind of access token: delegated (`scp`) or app-only (`roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum TokenKind {
    /// Token for a signed-in user; maps to [`Scheme::DelegatedWork`].
    Delegated,
    /// App-only token; maps to [`Scheme::Application`].
    Application,
}

impl TokenKind {
    /// The catalog scheme for this token kind.
    pub fn scheme(self) -> Scheme {
        match self {
            TokenKind::Delegated => Scheme::DelegatedWork,
            TokenKind::Application => Scheme::Application,
        }
    }

    /// `Delegated` or `Application`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Delegated => "Delegated",
            TokenKind::Application => "Application",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a [`PermissionVariant::id`] came from (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum IdSource {
    /// provisioningInfo.json, visible Microsoft Graph entry.
    Provisioning,
    /// permissions-descriptions.json.
    Descriptions,
    /// provisioningInfo.json, visible entry with another `resourceAppId`.
    ProvisioningOtherResource,
    /// provisioningInfo.json, hidden or disabled entry.
    ProvisioningHidden,
    /// Deterministic stand-in: no source file has a GUID.
    Synthetic,
}

/// One named permission, e.g. `User.Read.All`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permission {
    /// Name as spelled in the catalog.
    pub name: String,
    /// `DelegatedWork` scheme.
    pub delegated: Option<PermissionVariant>,
    /// `Application` scheme.
    pub application: Option<PermissionVariant>,
    /// `DelegatedPersonal` scheme (personal Microsoft accounts).
    pub delegated_personal: Option<PermissionVariant>,
    /// Resource-specific consent permission (`authorizationType: "RSC"`), not a
    /// tenant-wide Graph permission; never returned by [`Catalog::accepted`](crate::Catalog::accepted).
    pub rsc: bool,
}

impl Permission {
    /// The variant for a scheme.
    pub fn variant(&self, scheme: Scheme) -> Option<&PermissionVariant> {
        match scheme {
            Scheme::DelegatedWork => self.delegated.as_ref(),
            Scheme::DelegatedPersonal => self.delegated_personal.as_ref(),
            Scheme::Application => self.application.as_ref(),
        }
    }

    /// The variant for a token kind.
    pub fn for_kind(&self, kind: TokenKind) -> Option<&PermissionVariant> {
        self.variant(kind.scheme())
    }
}

/// A permission in one scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermissionVariant {
    /// The GUID (oauth2PermissionScope id or appRole id on Microsoft Graph).
    pub id: Uuid,
    /// Admin consent display name.
    pub admin_display_name: String,
    /// Admin consent description (may be empty).
    pub admin_description: String,
    /// User consent display name.
    pub user_display_name: Option<String>,
    /// User consent description.
    pub user_description: Option<String>,
    /// Whether an administrator must consent.
    pub requires_admin_consent: bool,
    /// Privilege level from the data (1 = lowest), if given.
    pub privilege_level: Option<u8>,
    /// Where [`Self::id`] came from.
    pub id_source: IdSource,
}

/// Errors building a catalog from JSON.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A file is not valid JSON or does not have the expected shape.
    #[error("{file}: {source}")]
    Json {
        /// Which file.
        file: &'static str,
        /// The parser error.
        #[source]
        source: serde_json::Error,
    },
}
