//! The catalogue of causes. Codes are stable: they appear in headers, logs and
//! `gatehouse explain`, and scripts match on them. Never renumber; add.

use serde::Serialize;

/// Sections of the troubleshooting guide (reference/seed-troubleshooting-401-403.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    Consent,
    Permissions,
    TokenType,
    PrivilegedOperation,
    UserAccess,
    WrongResource,
    ConditionalAccess,
    TokenValidity,
    ClientConfiguration,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Consent => "consent",
            Section::Permissions => "permissions",
            Section::TokenType => "token-type",
            Section::PrivilegedOperation => "privileged-operation",
            Section::UserAccess => "user-access",
            Section::WrongResource => "wrong-resource",
            Section::ConditionalAccess => "conditional-access",
            Section::TokenValidity => "token-validity",
            Section::ClientConfiguration => "client-configuration",
        }
    }
}

macro_rules! causes {
    ($( $variant:ident => $code:literal, $section:ident, $summary:literal; )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Cause { $( $variant, )* }

        impl Cause {
            pub const ALL: &'static [Cause] = &[ $( Cause::$variant, )* ];
            /// The stable code, e.g. `GH-CONSENT-MISSING`.
            pub fn code(self) -> &'static str {
                match self { $( Cause::$variant => $code, )* }
            }
            pub fn section(self) -> Section {
                match self { $( Cause::$variant => Section::$section, )* }
            }
            /// One line for a person.
            pub fn summary(self) -> &'static str {
                match self { $( Cause::$variant => $summary, )* }
            }
            pub fn from_code(code: &str) -> Option<Cause> {
                Self::ALL.iter().copied().find(|c| c.code().eq_ignore_ascii_case(code))
            }
        }
    };
}

causes! {
    RequestMissingParameter => "GH-REQUEST-MISSING-PARAMETER", ClientConfiguration, "A required request parameter is missing.";
    RequestMalformed => "GH-REQUEST-MALFORMED", ClientConfiguration, "The request is malformed.";
    GrantTypeUnsupported => "GH-GRANT-TYPE-UNSUPPORTED", ClientConfiguration, "The grant type is not supported.";
    TenantUnknown => "GH-TENANT-UNKNOWN", ClientConfiguration, "The tenant in the URL does not exist.";
    TenantRequired => "GH-TENANT-REQUIRED", ClientConfiguration, "This flow needs a tenant-specific authority, not common or organizations.";
    ClientUnknown => "GH-CLIENT-UNKNOWN", ClientConfiguration, "No application with this client id exists in the tenant.";
    ClientCredentialMissing => "GH-CLIENT-CREDENTIAL-MISSING", ClientConfiguration, "A confidential client sent no client secret or assertion.";
    ClientSecretInvalid => "GH-CLIENT-SECRET-INVALID", ClientConfiguration, "The client secret does not match any secret of the application.";
    ClientSecretExpired => "GH-CLIENT-SECRET-EXPIRED", ClientConfiguration, "The client secret has expired.";
    ClientAssertionInvalid => "GH-CLIENT-ASSERTION-INVALID", ClientConfiguration, "The client assertion (certificate credential) is not valid.";
    ClientAuthAmbiguous => "GH-CLIENT-AUTH-AMBIGUOUS", ClientConfiguration, "More than one client authentication method was used.";
    PublicClientSentCredential => "GH-PUBLIC-CLIENT-CREDENTIAL", ClientConfiguration, "A public client presented a client secret or assertion.";
    PublicClientFlowsDisabled => "GH-PUBLIC-FLOWS-DISABLED", ClientConfiguration, "The application does not allow public client flows.";
    RedirectUriMismatch => "GH-REDIRECT-URI-MISMATCH", ClientConfiguration, "The redirect URI is not registered for the application.";
    ResponseTypeUnsupported => "GH-RESPONSE-TYPE-UNSUPPORTED", ClientConfiguration, "The response type is not supported.";
    ScopeInvalid => "GH-SCOPE-INVALID", Permissions, "The scope parameter is not valid.";
    ScopeNotDefaultForAppOnly => "GH-SCOPE-NOT-DEFAULT", TokenType, "Client credentials and on-behalf-of need a `/.default` scope.";
    ScopeUnknownPermission => "GH-SCOPE-UNKNOWN-PERMISSION", Permissions, "The resource offers no permission with this name.";
    ScopeMultipleResources => "GH-SCOPE-MULTIPLE-RESOURCES", Permissions, "Scopes for more than one resource in one request.";
    ResourceNotFound => "GH-RESOURCE-NOT-FOUND", WrongResource, "The resource named by the scope does not exist in the tenant.";
    ConsentMissing => "GH-CONSENT-MISSING", Consent, "The user or an administrator has not consented to the requested permissions.";
    ConsentDeclined => "GH-CONSENT-DECLINED", Consent, "The user declined consent.";
    AdminConsentRequired => "GH-CONSENT-ADMIN-REQUIRED", Consent, "The permission needs administrator consent and the user is not an administrator.";
    UserNotFound => "GH-USER-NOT-FOUND", UserAccess, "No user with this name exists in the tenant.";
    UserBadPassword => "GH-USER-BAD-PASSWORD", UserAccess, "The password is wrong.";
    UserLockedOut => "GH-USER-LOCKED-OUT", UserAccess, "The account is locked after too many wrong passwords.";
    UserDisabled => "GH-USER-DISABLED", UserAccess, "The user account is disabled.";
    CodeAlreadyRedeemed => "GH-CODE-REDEEMED", TokenValidity, "The authorization code was already redeemed.";
    GrantExpired => "GH-GRANT-EXPIRED", TokenValidity, "The authorization code or refresh token has expired.";
    GrantMalformed => "GH-GRANT-MALFORMED", TokenValidity, "The authorization code or refresh token is not one Gatehouse issued.";
    GrantClientMismatch => "GH-GRANT-CLIENT-MISMATCH", TokenValidity, "The code or refresh token was issued to another client.";
    GrantRedirectMismatch => "GH-GRANT-REDIRECT-MISMATCH", ClientConfiguration, "The redirect URI differs from the one in the authorization request.";
    GrantRevoked => "GH-GRANT-REVOKED", TokenValidity, "The refresh token was revoked (sign-in sessions revoked, password changed, or reuse detected).";
    PkceRequired => "GH-PKCE-REQUIRED", ClientConfiguration, "A public client must use PKCE.";
    PkceMismatch => "GH-PKCE-MISMATCH", ClientConfiguration, "The code_verifier does not match the code_challenge.";
    PkceMethodUnsupported => "GH-PKCE-METHOD-UNSUPPORTED", ClientConfiguration, "Only the S256 code challenge method is accepted.";
    DeviceCodePending => "GH-DEVICE-CODE-PENDING", TokenValidity, "The user has not finished signing in on the device page yet.";
    DeviceCodeDeclined => "GH-DEVICE-CODE-DECLINED", UserAccess, "The user declined the device sign-in.";
    DeviceCodeExpired => "GH-DEVICE-CODE-EXPIRED", TokenValidity, "The device code has expired.";
    AssertionInvalid => "GH-OBO-ASSERTION-INVALID", TokenValidity, "The assertion for on-behalf-of is not a valid token for this API.";
    InteractionRequired => "GH-INTERACTION-REQUIRED", UserAccess, "The user must sign in interactively (prompt=none).";
    GraphTokenMissing => "GH-TOKEN-MISSING", TokenValidity, "No bearer token was sent.";
    GraphTokenMalformed => "GH-TOKEN-MALFORMED", TokenValidity, "The bearer token is not a JWT.";
    GraphTokenSignature => "GH-TOKEN-SIGNATURE", TokenValidity, "The token's signature does not verify with the issuer's keys.";
    GraphTokenExpired => "GH-TOKEN-EXPIRED", TokenValidity, "The access token has expired.";
    GraphTokenNotYetValid => "GH-TOKEN-NOT-YET-VALID", TokenValidity, "The access token is not valid yet (nbf).";
    GraphWrongAudience => "GH-AUD-WRONG-RESOURCE", WrongResource, "The token was issued for another resource (aud).";
    GraphTokenRevoked => "GH-TOKEN-REVOKED", TokenValidity, "The access token was revoked (its authorization code was replayed).";
    GraphWrongIssuer => "GH-TOKEN-ISSUER", TokenValidity, "The token was issued by another tenant or issuer.";
    MeWithAppToken => "GH-ME-APP-ONLY", TokenType, "/me needs a signed-in user; an app-only token has none.";
    PermissionMissing => "GH-PERMISSION-MISSING", Permissions, "The token carries no permission that this method and path accept.";
    AppPermissionNotConsented => "GH-APP-PERMISSION-NOT-CONSENTED", Consent, "The app requests the application permission but an admin has not granted it.";
    DelegatedTokenForAppPermission => "GH-TOKEN-TYPE-DELEGATED", TokenType, "The app holds the application permission, but it called with a delegated (user) token.";
    AppTokenForDelegatedPermission => "GH-TOKEN-TYPE-APP", TokenType, "The app holds the delegated permission, but it called with an app-only token.";
    DelegatedOnlyOperation => "GH-PRIVILEGED-DELEGATED-ONLY", PrivilegedOperation, "This operation has no application permission; it needs a signed-in administrator.";
    AppDirectoryRoleMissing => "GH-PRIVILEGED-APP-ROLE-MISSING", PrivilegedOperation, "This operation also needs a directory role on the app's service principal.";
    UserRoleMissing => "GH-USER-ROLE-MISSING", UserAccess, "The signed-in user lacks the directory role this operation needs.";
    UserUnlicensed => "GH-USER-UNLICENSED", UserAccess, "The user has no licence with an Exchange Online mailbox.";
    ChangePasswordOtherUser => "GH-PRIVILEGED-CHANGE-PASSWORD-OTHER", PrivilegedOperation, "changePassword works only on the signed-in user's own account.";
    CaeRevoked => "GH-CAE-REVOKED", ConditionalAccess, "The user's sessions were revoked after this CAE token was issued.";
    ResourceNotFoundGraph => "GH-GRAPH-NOT-FOUND", Permissions, "The object does not exist.";
    GraphBadRequest => "GH-GRAPH-BAD-REQUEST", ClientConfiguration, "Graph could not read the request.";
    CaBlocked => "GH-CA-BLOCKED", ConditionalAccess, "A conditional access policy blocks this sign-in.";
    CaMfaRequired => "GH-CA-MFA-REQUIRED", ConditionalAccess, "A conditional access policy requires multi-factor authentication, which this sign-in lacks.";
    CaMfaRegistrationRequired => "GH-CA-MFA-REGISTRATION", ConditionalAccess, "A conditional access policy requires MFA and the user has no authenticator registered.";
    AuthContextRequired => "GH-CA-AUTH-CONTEXT", ConditionalAccess, "This operation needs an authentication context (step-up) that the token does not carry.";
    MfaCodeInvalid => "GH-MFA-CODE-INVALID", UserAccess, "The verification code is wrong or expired.";
    AppAssignmentRequired => "GH-APP-ASSIGNMENT-REQUIRED", UserAccess, "The resource requires an app-role assignment the user or app does not have.";
    ResourceNotInRequiredAccess => "GH-RESOURCE-NOT-REQUESTED", Permissions, "The app asks for a resource its registration does not list in required permissions.";
    UserPasswordExpired => "GH-USER-PASSWORD-EXPIRED", UserAccess, "The user's password has expired.";
    UserFromOtherTenant => "GH-USER-OTHER-TENANT", UserAccess, "The user does not exist in this tenant (guest not invited).";
    TokenForItself => "GH-TOKEN-FOR-ITSELF", ClientConfiguration, "The app requested a token for itself by URI instead of its app id.";
    WrongApiForToken => "GH-AUD-OTHER-API", WrongResource, "The token's audience is another API than the one called.";
    ServerUnavailable => "GH-SERVER-UNAVAILABLE", ClientConfiguration, "Gatehouse could not complete the request (storage failure); retry.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for c in Cause::ALL {
            assert!(c.code().starts_with("GH-"), "{}", c.code());
            assert!(seen.insert(c.code()), "duplicate {}", c.code());
            assert_eq!(Cause::from_code(c.code()), Some(*c));
        }
    }
}
