//! Serde mirror of the three embedded JSON files.
//!
//! Only the fields the catalog needs are declared; everything else
//! (`$schema`, `ownerInfo`, `allowedMemberTypes`, ...) is skipped by serde
//! without being kept. Strings borrow from the input where the JSON text has
//! no escapes, so parsing allocates little beyond what the final catalog keeps.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// A string that borrows from the input when it can.
///
/// (`Cow<str>` alone always deserializes as `Owned` inside containers.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Str<'a>(pub(crate) Cow<'a, str>);

impl Str<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V(PhantomData))
    }
}

/// A JSON object kept as an ordered list of pairs (no hashing while parsing).
#[derive(Debug)]
pub(crate) struct Pairs<K, V>(pub(crate) Vec<(K, V)>);

impl<K, V> Default for Pairs<K, V> {
    fn default() -> Self {
        Pairs(Vec::new())
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Pairs<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PV<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for PV<K, V> {
            type Value = Pairs<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(pair) = map.next_entry()? {
                    out.push(pair);
                }
                Ok(Pairs(out))
            }
        }
        deserializer.deserialize_map(PV(PhantomData))
    }
}

// ---------------------------------------------------------------- permissions.json

/// Streams the entries of the top-level `"permissions"` object of
/// permissions.json to `f`, one at a time, so the whole file is never held in
/// parsed form. Other top-level keys (`$schema`) are skipped.
pub(crate) fn stream_permissions<'a, F>(json: &'a [u8], mut f: F) -> Result<(), serde_json::Error>
where
    F: FnMut(Str<'a>, RawPermission<'a>),
{
    let mut de = serde_json::Deserializer::from_slice(json);
    de.deserialize_map(TopVisitor { f: &mut f })?;
    de.end()
}

struct TopVisitor<'f, F> {
    f: &'f mut F,
}

impl<'de, F: FnMut(Str<'de>, RawPermission<'de>)> Visitor<'de> for TopVisitor<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the permissions.json object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            if key.as_str() == "permissions" {
                map.next_value_seed(PermissionsSeed { f: &mut *self.f })?;
                seen = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if seen {
            Ok(())
        } else {
            Err(serde::de::Error::missing_field("permissions"))
        }
    }
}

struct PermissionsSeed<'f, F> {
    f: &'f mut F,
}

impl<'de, F: FnMut(Str<'de>, RawPermission<'de>)> DeserializeSeed<'de> for PermissionsSeed<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Str<'de>, RawPermission<'de>)> Visitor<'de> for PermissionsSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of permission name to permission")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some((name, perm)) = map.next_entry::<Str<'de>, RawPermission<'de>>()? {
            (self.f)(name, perm);
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawPermission<'a> {
    #[serde(rename = "authorizationType", borrow, default)]
    pub(crate) authorization_type: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub(crate) schemes: RawSchemes<'a>,
    #[serde(rename = "pathSets", borrow, default)]
    pub(crate) path_sets: Vec<RawPathSet<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawSchemes<'a> {
    #[serde(rename = "DelegatedWork", borrow, default)]
    pub(crate) delegated_work: Option<RawScheme<'a>>,
    #[serde(rename = "DelegatedPersonal", borrow, default)]
    pub(crate) delegated_personal: Option<RawScheme<'a>>,
    #[serde(rename = "Application", borrow, default)]
    pub(crate) application: Option<RawScheme<'a>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawScheme<'a> {
    #[serde(rename = "adminDisplayName", borrow, default)]
    pub(crate) admin_display_name: Option<Str<'a>>,
    #[serde(rename = "adminDescription", borrow, default)]
    pub(crate) admin_description: Option<Str<'a>>,
    #[serde(rename = "userDisplayName", borrow, default)]
    pub(crate) user_display_name: Option<Str<'a>>,
    #[serde(rename = "userDescription", borrow, default)]
    pub(crate) user_description: Option<Str<'a>>,
    #[serde(rename = "requiresAdminConsent", default)]
    pub(crate) requires_admin_consent: Option<bool>,
    #[serde(rename = "privilegeLevel", default)]
    pub(crate) privilege_level: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawPathSet<'a> {
    #[serde(rename = "schemeKeys", borrow, default)]
    pub(crate) scheme_keys: Vec<Str<'a>>,
    #[serde(borrow, default)]
    pub(crate) methods: Vec<Str<'a>>,
    #[serde(borrow, default)]
    pub(crate) paths: Pairs<Str<'a>, Str<'a>>,
}

// ------------------------------------------------------------ provisioningInfo.json

#[derive(Debug, Deserialize)]
pub(crate) struct ProvisioningFile<'a> {
    #[serde(rename = "permissionDeployments", borrow)]
    pub(crate) permission_deployments: Pairs<Str<'a>, Vec<RawDeployment<'a>>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawDeployment<'a> {
    #[serde(borrow, default)]
    pub(crate) id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub(crate) scheme: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub(crate) environment: Option<Str<'a>>,
    #[serde(rename = "isHidden", default)]
    pub(crate) is_hidden: Option<bool>,
    #[serde(rename = "isEnabled", default)]
    pub(crate) is_enabled: Option<bool>,
    #[serde(rename = "resourceAppId", borrow, default)]
    pub(crate) resource_app_id: Option<Str<'a>>,
}

// ---------------------------------------------------- permissions-descriptions.json

#[derive(Debug, Deserialize)]
pub(crate) struct DescriptionsFile<'a> {
    #[serde(rename = "delegatedScopesList", borrow, default)]
    pub(crate) delegated: Vec<RawDescription<'a>>,
    #[serde(rename = "applicationScopesList", borrow, default)]
    pub(crate) application: Vec<RawDescription<'a>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawDescription<'a> {
    #[serde(rename = "adminConsentDescription", borrow, default)]
    pub(crate) admin_consent_description: Option<Str<'a>>,
    #[serde(rename = "adminConsentDisplayName", borrow, default)]
    pub(crate) admin_consent_display_name: Option<Str<'a>>,
    #[serde(rename = "consentDescription", borrow, default)]
    pub(crate) consent_description: Option<Str<'a>>,
    #[serde(rename = "consentDisplayName", borrow, default)]
    pub(crate) consent_display_name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub(crate) id: Option<Str<'a>>,
    #[serde(rename = "isAdmin", default)]
    pub(crate) is_admin: Option<bool>,
    #[serde(rename = "isEnabled", default)]
    pub(crate) is_enabled: Option<bool>,
    #[serde(borrow)]
    pub(crate) value: Str<'a>,
}
