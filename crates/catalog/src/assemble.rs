//! Builds the catalog's permissions and routes from the three input files.
//!
//! Also compiled into `build.rs`, which runs it on the embedded data.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::raw::{
    self, DescriptionsFile, ProvisioningFile, RawDeployment, RawDescription, RawPermission,
    RawScheme, Str,
};
use crate::route::{self, Entry, Router, RouterBuilder};
use crate::{CatalogError, IdSource, Permission, PermissionVariant, Scheme};

/// Microsoft Graph's application id.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

pub(crate) fn build(
    permissions: &[u8],
    provisioning: &[u8],
    descriptions: &[u8],
) -> Result<(Vec<Permission>, Router), CatalogError> {
    let prov_file: ProvisioningFile<'_> =
        serde_json::from_slice(provisioning).map_err(|source| CatalogError::Json {
            file: "provisioningInfo.json",
            source,
        })?;
    let desc_file: DescriptionsFile<'_> =
        serde_json::from_slice(descriptions).map_err(|source| CatalogError::Json {
            file: "permissions-descriptions.json",
            source,
        })?;
    let ids = IdSources::new(&prov_file, &desc_file);

    let mut perms: Vec<Permission> = Vec::with_capacity(1024);
    // Lower-cased name -> index into `perms`.
    let mut by_lower: HashMap<String, u32> = HashMap::with_capacity(1024);
    // Sized for the current data (~7,300 distinct paths, ~19,000 path entries).
    let mut router = RouterBuilder::with_capacity(8 * 1024, 20 * 1024);

    // permissions.json is processed one permission at a time as it is parsed.
    raw::stream_permissions(permissions, |name, raw| {
        let name = name.as_str();
        let Some(idx) = add_permission(&ids, &mut perms, &mut by_lower, name, &raw) else {
            return;
        };
        for ps in &raw.path_sets {
            let schemes = ps
                .scheme_keys
                .iter()
                .filter_map(|s| route::scheme_bit(s.as_str()))
                .fold(0, |a, b| a | b);
            let methods = ps
                .methods
                .iter()
                .filter_map(|m| route::method_bit(m.as_str()))
                .fold(0, |a, b| a | b);
            if schemes == 0 || methods == 0 {
                continue;
            }
            for (path, value) in ps.paths.0.iter() {
                let (least, also_names) = parse_path_value(value.as_str());
                let also = router.intern_also(also_names);
                router.add(
                    path,
                    Entry {
                        perm: idx,
                        also,
                        methods,
                        schemes,
                        least: least & schemes,
                    },
                );
            }
        }
    })
    .map_err(|source| CatalogError::Json {
        file: "permissions.json",
        source,
    })?;

    // Permissions only present in permissions-descriptions.json (openid,
    // profile, email, offline_access, ...): no paths, but real ids.
    let mut extra: Vec<(
        String,
        Option<&RawDescription<'_>>,
        Option<&RawDescription<'_>>,
    )> = Vec::new();
    let mut extra_of: HashMap<String, usize> = HashMap::new();
    for (list, is_app) in [
        (&desc_file.delegated, false),
        (&desc_file.application, true),
    ] {
        for d in list {
            if d.is_enabled == Some(false) {
                continue;
            }
            let lower = d.value.as_str().to_lowercase();
            if by_lower.contains_key(&lower) {
                continue;
            }
            let slot = match extra_of.get(&lower) {
                Some(&i) => i,
                None => {
                    extra_of.insert(lower, extra.len());
                    extra.push((d.value.as_str().to_owned(), None, None));
                    extra.len() - 1
                }
            };
            if let Some(e) = extra.get_mut(slot) {
                let target = if is_app { &mut e.2 } else { &mut e.1 };
                if target.is_none() {
                    *target = Some(d);
                }
            }
        }
    }
    for (name, del, app) in extra {
        let delegated = del.map(|_| ids.variant(&name, Scheme::DelegatedWork, None, None));
        let application = app.map(|_| ids.variant(&name, Scheme::Application, None, None));
        perms.push(Permission {
            name,
            rsc: false,
            delegated,
            application,
            delegated_personal: None,
        });
    }

    // Free the GUID sources before the router is compacted (lower peak heap).
    drop(ids);
    drop(desc_file);
    drop(prov_file);
    Ok((perms, router.finish()))
}

/// Adds one permissions.json entry, or merges it into an earlier entry whose
/// name differs only by case (the data has "Calls.JoinGroupCallasGuest.All"
/// next to "Calls.JoinGroupCallAsGuest.All"). The spelling the GUID files
/// know exactly wins; its schemes replace the other's, missing ones are kept.
/// Returns the permission's index.
fn add_permission(
    ids: &IdSources<'_, '_>,
    perms: &mut Vec<Permission>,
    by_lower: &mut HashMap<String, u32>,
    name: &str,
    raw: &RawPermission<'_>,
) -> Option<u32> {
    let rsc = raw
        .authorization_type
        .as_ref()
        .is_some_and(|t| t.as_str().eq_ignore_ascii_case("RSC"));
    let lower = name.to_lowercase();
    if let Some(&idx) = by_lower.get(&lower) {
        let perm = perms.get_mut(usize::try_from(idx).ok()?)?;
        let canonical = ids.knows_exactly(name) && !ids.knows_exactly(&perm.name);
        if canonical {
            perm.name = name.to_owned();
            perm.rsc = rsc;
        }
        let s = &raw.schemes;
        if let Some(w) = &s.delegated_work
            && (canonical || perm.delegated.is_none())
        {
            perm.delegated = Some(ids.variant(name, Scheme::DelegatedWork, Some(w), None));
        }
        if let Some(a) = &s.application
            && (canonical || perm.application.is_none())
        {
            perm.application = Some(ids.variant(name, Scheme::Application, Some(a), None));
        }
        if let Some(p) = &s.delegated_personal
            && (canonical || perm.delegated_personal.is_none())
        {
            let fallback = perm.delegated.as_ref().map(|v| (v.id, v.id_source));
            perm.delegated_personal =
                Some(ids.variant(name, Scheme::DelegatedPersonal, Some(p), fallback));
        }
        return Some(idx);
    }
    let idx = u32::try_from(perms.len()).ok()?;
    let s = &raw.schemes;
    let delegated = s
        .delegated_work
        .as_ref()
        .map(|w| ids.variant(name, Scheme::DelegatedWork, Some(w), None));
    let application = s
        .application
        .as_ref()
        .map(|a| ids.variant(name, Scheme::Application, Some(a), None));
    let delegated_personal = s.delegated_personal.as_ref().map(|p| {
        let fallback = delegated.as_ref().map(|v| (v.id, v.id_source));
        ids.variant(name, Scheme::DelegatedPersonal, Some(p), fallback)
    });
    perms.push(Permission {
        name: name.to_owned(),
        delegated,
        application,
        delegated_personal,
        rsc,
    });
    by_lower.insert(lower, idx);
    Some(idx)
}

/// Parses a path value such as `least=DelegatedWork,Application;AlsoRequires=X,Y`.
fn parse_path_value(value: &str) -> (u8, Vec<String>) {
    let mut least = 0u8;
    let mut also = Vec::new();
    for part in value.split(';') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.eq_ignore_ascii_case("least") {
            least |= v
                .split(',')
                .filter_map(route::scheme_bit)
                .fold(0, |a, b| a | b);
        } else if k.eq_ignore_ascii_case("AlsoRequires") {
            also.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    (least, also)
}

fn nonempty(s: Option<&Str<'_>>) -> Option<String> {
    s.map(|s| s.as_str().trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Lookup of GUIDs and description texts.
struct IdSources<'f, 'a> {
    /// Lower-cased name -> deployments.
    prov: HashMap<String, Vec<&'f RawDeployment<'a>>>,
    prov_exact: HashSet<&'f str>,
    /// Lower-cased name -> first description entry (delegated, application).
    desc_del: HashMap<String, &'f RawDescription<'a>>,
    desc_app: HashMap<String, &'f RawDescription<'a>>,
    desc_exact: HashSet<&'f str>,
}

impl<'f, 'a> IdSources<'f, 'a> {
    fn new(prov: &'f ProvisioningFile<'a>, desc: &'f DescriptionsFile<'a>) -> Self {
        let mut s = IdSources {
            prov: HashMap::new(),
            prov_exact: HashSet::new(),
            desc_del: HashMap::new(),
            desc_app: HashMap::new(),
            desc_exact: HashSet::new(),
        };
        for (name, deps) in &prov.permission_deployments.0 {
            s.prov_exact.insert(name.as_str());
            s.prov
                .entry(name.as_str().to_lowercase())
                .or_default()
                .extend(deps.iter());
        }
        for (list, map) in [
            (&desc.delegated, &mut s.desc_del),
            (&desc.application, &mut s.desc_app),
        ] {
            for d in list {
                if d.is_enabled == Some(false) {
                    continue;
                }
                map.entry(d.value.as_str().to_lowercase()).or_insert(d);
            }
        }
        for d in desc.delegated.iter().chain(desc.application.iter()) {
            s.desc_exact.insert(d.value.as_str());
        }
        s
    }

    fn knows_exactly(&self, name: &str) -> bool {
        self.prov_exact.contains(name) || self.desc_exact.contains(name)
    }

    fn description(&self, name: &str, scheme: Scheme) -> Option<&'f RawDescription<'a>> {
        let map = match scheme {
            Scheme::Application => &self.desc_app,
            Scheme::DelegatedWork | Scheme::DelegatedPersonal => &self.desc_del,
        };
        map.get(&name.to_lowercase()).copied()
    }

    /// The GUID for `name` in `scheme`, by decreasing trust:
    /// 1. provisioningInfo.json, enabled, not hidden, environment lists `public`,
    ///    resourceAppId `""` or Microsoft Graph's;
    /// 2. permissions-descriptions.json;
    /// 3. provisioningInfo.json, enabled, not hidden, `public`, any resourceAppId;
    /// 4. provisioningInfo.json, any entry with a well-formed id;
    /// 5. (DelegatedPersonal only) the DelegatedWork id;
    /// 6. a synthetic, deterministic id.
    fn id(
        &self,
        name: &str,
        scheme: Scheme,
        fallback: Option<(Uuid, IdSource)>,
    ) -> (Uuid, IdSource) {
        let deps: Vec<(&RawDeployment<'a>, Uuid)> = self
            .prov
            .get(&name.to_lowercase())
            .map(|v| v.as_slice())
            .unwrap_or(&[])
            .iter()
            .filter(|d| {
                d.scheme
                    .as_ref()
                    .is_some_and(|s| s.as_str() == scheme.as_str())
            })
            .filter_map(|d| {
                let id = Uuid::parse_str(d.id.as_ref()?.as_str().trim()).ok()?;
                Some((*d, id))
            })
            .collect();
        let visible = |d: &RawDeployment<'_>| -> bool {
            d.is_enabled == Some(true)
                && d.is_hidden != Some(true)
                && d.environment.as_ref().is_some_and(|e| {
                    e.as_str()
                        .split(';')
                        .any(|x| x.trim().eq_ignore_ascii_case("public"))
                })
        };
        let graph = |d: &RawDeployment<'_>| -> bool {
            d.resource_app_id.as_ref().is_none_or(|r| {
                r.as_str().is_empty() || r.as_str().eq_ignore_ascii_case(GRAPH_APP_ID)
            })
        };
        if let Some((_, id)) = deps.iter().find(|(d, _)| visible(d) && graph(d)) {
            return (*id, IdSource::Provisioning);
        }
        let desc_scheme = match scheme {
            Scheme::DelegatedPersonal => None,
            other => Some(other),
        };
        if let Some(id) = desc_scheme
            .and_then(|s| self.description(name, s))
            .and_then(|d| Uuid::parse_str(d.id.as_ref()?.as_str().trim()).ok())
        {
            return (id, IdSource::Descriptions);
        }
        if let Some((_, id)) = deps.iter().find(|(d, _)| visible(d)) {
            return (*id, IdSource::ProvisioningOtherResource);
        }
        if let Some((_, id)) = deps.first() {
            return (*id, IdSource::ProvisioningHidden);
        }
        if let Some(fb) = fallback {
            return fb;
        }
        (synthetic_id(name, scheme), IdSource::Synthetic)
    }

    fn variant(
        &self,
        name: &str,
        scheme: Scheme,
        raw: Option<&RawScheme<'_>>,
        fallback_id: Option<(Uuid, IdSource)>,
    ) -> PermissionVariant {
        let (id, id_source) = self.id(name, scheme, fallback_id);
        let desc = self.description(name, scheme);
        let admin_display_name = raw
            .and_then(|r| nonempty(r.admin_display_name.as_ref()))
            .or_else(|| desc.and_then(|d| nonempty(d.admin_consent_display_name.as_ref())))
            .or_else(|| raw.and_then(|r| nonempty(r.user_display_name.as_ref())))
            .unwrap_or_else(|| name.to_owned());
        let admin_description = raw
            .and_then(|r| nonempty(r.admin_description.as_ref()))
            .or_else(|| desc.and_then(|d| nonempty(d.admin_consent_description.as_ref())))
            .or_else(|| raw.and_then(|r| nonempty(r.user_description.as_ref())))
            .unwrap_or_default();
        let user_display_name = raw
            .and_then(|r| nonempty(r.user_display_name.as_ref()))
            .or_else(|| desc.and_then(|d| nonempty(d.consent_display_name.as_ref())));
        let user_description = raw
            .and_then(|r| nonempty(r.user_description.as_ref()))
            .or_else(|| desc.and_then(|d| nonempty(d.consent_description.as_ref())));
        let requires_admin_consent = raw
            .and_then(|r| r.requires_admin_consent)
            .or_else(|| desc.and_then(|d| d.is_admin))
            .unwrap_or(scheme == Scheme::Application);
        let privilege_level = raw
            .and_then(|r| r.privilege_level)
            .and_then(|p| u8::try_from(p).ok());
        PermissionVariant {
            id,
            admin_display_name,
            admin_description,
            user_display_name,
            user_description,
            requires_admin_consent,
            privilege_level,
            id_source,
        }
    }
}

/// Deterministic stand-in GUID (RFC 9562 version 8) for the few permissions
/// that have no GUID in any source file.
fn synthetic_id(name: &str, scheme: Scheme) -> Uuid {
    fn fnv1a(seed: u64, data: &[u8]) -> u64 {
        data.iter().fold(seed, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
    let input = format!(
        "gatehouse-catalog:{}:{}",
        scheme.as_str(),
        name.to_lowercase()
    );
    let hi = fnv1a(0xcbf2_9ce4_8422_2325, input.as_bytes());
    let lo = fnv1a(0x6c62_272e_07bb_0142, input.as_bytes());
    let mut bytes = [0u8; 16];
    for (dst, src) in bytes
        .iter_mut()
        .zip(hi.to_be_bytes().into_iter().chain(lo.to_be_bytes()))
    {
        *dst = src;
    }
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}
