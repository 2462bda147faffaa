//! Well-known identifiers of the Microsoft cloud, stable across tenants.

use uuid::{Uuid, uuid};

/// Microsoft Graph's application id (`resourceAppId` in requiredResourceAccess).
pub const MICROSOFT_GRAPH_APP_ID: Uuid = uuid!("00000003-0000-0000-c000-000000000000");
/// Azure AD Graph (retired, still issuable), used to show the wrong-audience case.
pub const AAD_GRAPH_APP_ID: Uuid = uuid!("00000002-0000-0000-c000-000000000000");
pub const MICROSOFT_GRAPH_URI: &str = "https://graph.microsoft.com";
pub const AAD_GRAPH_URI: &str = "https://graph.windows.net";

/// Directory role templates (entra-docs permissions-reference.md).
pub mod roles {
    use uuid::{Uuid, uuid};
    pub const GLOBAL_ADMINISTRATOR: Uuid = uuid!("62e90394-69f5-4237-9190-012177145e10");
    pub const PRIVILEGED_ROLE_ADMINISTRATOR: Uuid = uuid!("e8611ab8-c189-46e8-94e1-60213ab1f814");
    pub const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: Uuid =
        uuid!("7be44c8a-adaf-4e2a-84d6-ab2649e08a13");
    pub const USER_ADMINISTRATOR: Uuid = uuid!("fe930be7-5e62-47db-91af-98c3a49a38b1");
    pub const HELPDESK_ADMINISTRATOR: Uuid = uuid!("729827e3-9c14-49f7-bb1b-9608f156bbb8");
    pub const PASSWORD_ADMINISTRATOR: Uuid = uuid!("966707d0-3269-4727-9be2-8c3a10f19b9d");
    pub const AUTHENTICATION_ADMINISTRATOR: Uuid = uuid!("c4e39bd9-1100-46d3-8c65-fb160da0071f");
    pub const APPLICATION_ADMINISTRATOR: Uuid = uuid!("9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3");
    pub const CLOUD_APPLICATION_ADMINISTRATOR: Uuid = uuid!("158c047a-c907-4556-b7ef-446551a6b5f7");
    pub const CONDITIONAL_ACCESS_ADMINISTRATOR: Uuid =
        uuid!("b1be1c3e-b65d-4f19-8427-f6fa0d97feb9");
    pub const DIRECTORY_READERS: Uuid = uuid!("88d8e3e3-8f55-4a1e-953a-9b9898b8876b");
    pub const GLOBAL_READER: Uuid = uuid!("f2ef992c-3afb-46b9-b7cf-a126ee74c451");
    pub const GROUPS_ADMINISTRATOR: Uuid = uuid!("fdd7a751-b60b-444a-984c-02652fe8fa1c");
    pub const EXCHANGE_ADMINISTRATOR: Uuid = uuid!("29232cdf-9323-42fd-ade2-1d097af3e4de");
    pub const LICENSE_ADMINISTRATOR: Uuid = uuid!("4d6ac14f-3453-41d0-bef9-a3e0c569773a");
    /// The default member "User" template, present in `wids` of every member user.
    pub const DEFAULT_MEMBER_USER: Uuid = uuid!("b79fbf4d-3ef9-4689-8143-76b194e85509");

    /// Roles whose holders may grant tenant-wide consent to delegated permissions.
    pub fn can_grant_tenant_wide_consent(role: Uuid) -> bool {
        [
            GLOBAL_ADMINISTRATOR,
            PRIVILEGED_ROLE_ADMINISTRATOR,
            APPLICATION_ADMINISTRATOR,
            CLOUD_APPLICATION_ADMINISTRATOR,
        ]
        .contains(&role)
    }

    /// Display names of the templates Gatehouse knows, for pages and explanations.
    pub fn display_name(role: Uuid) -> Option<&'static str> {
        Some(match role {
            r if r == GLOBAL_ADMINISTRATOR => "Global Administrator",
            r if r == PRIVILEGED_ROLE_ADMINISTRATOR => "Privileged Role Administrator",
            r if r == PRIVILEGED_AUTHENTICATION_ADMINISTRATOR => {
                "Privileged Authentication Administrator"
            }
            r if r == USER_ADMINISTRATOR => "User Administrator",
            r if r == HELPDESK_ADMINISTRATOR => "Helpdesk Administrator",
            r if r == PASSWORD_ADMINISTRATOR => "Password Administrator",
            r if r == AUTHENTICATION_ADMINISTRATOR => "Authentication Administrator",
            r if r == APPLICATION_ADMINISTRATOR => "Application Administrator",
            r if r == CLOUD_APPLICATION_ADMINISTRATOR => "Cloud Application Administrator",
            r if r == CONDITIONAL_ACCESS_ADMINISTRATOR => "Conditional Access Administrator",
            r if r == DIRECTORY_READERS => "Directory Readers",
            r if r == GLOBAL_READER => "Global Reader",
            r if r == GROUPS_ADMINISTRATOR => "Groups Administrator",
            r if r == EXCHANGE_ADMINISTRATOR => "Exchange Administrator",
            r if r == LICENSE_ADMINISTRATOR => "License Administrator",
            r if r == DEFAULT_MEMBER_USER => "User",
            _ => return None,
        })
    }

    /// Template id by display name (case-insensitive), for the tenant file.
    pub fn by_display_name(name: &str) -> Option<Uuid> {
        [
            GLOBAL_ADMINISTRATOR,
            PRIVILEGED_ROLE_ADMINISTRATOR,
            PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
            USER_ADMINISTRATOR,
            HELPDESK_ADMINISTRATOR,
            PASSWORD_ADMINISTRATOR,
            AUTHENTICATION_ADMINISTRATOR,
            APPLICATION_ADMINISTRATOR,
            CLOUD_APPLICATION_ADMINISTRATOR,
            CONDITIONAL_ACCESS_ADMINISTRATOR,
            DIRECTORY_READERS,
            GLOBAL_READER,
            GROUPS_ADMINISTRATOR,
            EXCHANGE_ADMINISTRATOR,
            LICENSE_ADMINISTRATOR,
        ]
        .into_iter()
        .find(|r| display_name(*r).is_some_and(|n| n.eq_ignore_ascii_case(name)))
    }
}

/// Licence SKUs used by the demo tenant (real skuIds of Microsoft 365 plans).
pub mod skus {
    use uuid::{Uuid, uuid};
    /// Microsoft 365 E3 (SPE_E3); includes Exchange Online.
    pub const SPE_E3: Uuid = uuid!("05e9a617-0261-4cee-bb44-138d3ef5d965");
    /// Exchange Online (Plan 1) service plan inside it.
    pub const EXCHANGE_S_ENTERPRISE_PLAN: Uuid = uuid!("efb87545-963c-4e0d-99df-69c6916d9eb0");
}
