//! The Microsoft Graph permission catalog, embedded in the binary so Gatehouse
//! works offline.
//!
//! # Data
//!
//! Three files from `microsoftgraph/microsoft-graph-devx-content` (MIT,
//! "Copyright (c) 2020 Microsoft Graph", commit `6cbd6bbd`) are kept verbatim
//! in `data/` (see `data/NOTICE`):
//!
//! * `permissions.json`: names, schemes (`DelegatedWork`, `DelegatedPersonal`,
//!   `Application`), consent flags, privilege levels, and which permission
//!   accepts which method on which path (`least=` marks the least-privileged
//!   ones per scheme, `AlsoRequires=` extra permissions);
//! * `provisioningInfo.json` and `permissions-descriptions.json`: the GUIDs.
//!
//! `build.rs` parses them at compile time, with the same code as
//! [`Catalog::from_json`], and embeds the finished catalog in a compact binary
//! form; the first call to [`Catalog::embedded`] loads it (about 2 ms in a
//! release build: no JSON parsing at run time, and the route tables are used
//! in place). The JSON files themselves are not embedded.
//!
//! ## GUIDs
//!
//! `permissions.json` has no GUIDs. A variant's [`PermissionVariant::id`] comes
//! from, by decreasing trust (recorded in [`PermissionVariant::id_source`]):
//! 1. `provisioningInfo.json`, an entry for the scheme that is enabled, not
//!    hidden, whose `environment` lists `public` and whose `resourceAppId` is
//!    `""` or Microsoft Graph's `00000003-0000-0000-c000-000000000000`;
//! 2. `permissions-descriptions.json`;
//! 3. `provisioningInfo.json`, enabled/not hidden/public but another `resourceAppId`
//!    (agrees with the descriptions file in most cases where both exist);
//! 4. `provisioningInfo.json`, any entry with a well-formed id (hidden/disabled);
//! 5. for `DelegatedPersonal` only: the `DelegatedWork` id;
//! 6. a deterministic synthetic id (UUID version 8), for the few permissions
//!    with no GUID anywhere ([`IdSource::Synthetic`]).
//!
//! Permissions that exist only in `permissions-descriptions.json` (`openid`,
//! `profile`, `email`, `offline_access`, ...) are in the catalog too, with no
//! paths. Names are unique case-insensitively; the data's one case-variant
//! duplicate (`Calls.JoinGroupCallasGuest.All` / `...AsGuest.All`) is merged
//! under the spelling known to the GUID files.
//!
//! # Path matching
//!
//! [`Catalog::match_route`] and [`Catalog::accepted`] map a real request
//! (method + path) to one catalog path template, the way Graph does:
//!
//! * A full URL's scheme and host, the query string and fragment are ignored;
//!   so is a leading `/v1.0` or `/beta` segment. Empty segments (`//`, trailing
//!   `/`) are ignored. Each segment is percent-decoded.
//! * Comparison is ASCII case-insensitive; `HEAD` counts as `GET`. A trailing
//!   `()` on a literal segment is ignored (`delta()` = `delta`).
//! * Any catalog placeholder `{anything}` matches one whole segment — a GUID, a
//!   UPN (`adele@contoso.com`), a key-as-segment (`roleTemplateId=62e9...`), a
//!   key in parentheses (`('...')`), etc. — but never a segment starting with
//!   `$` (`$ref`, `$count`, `$value`) nor an OData type cast
//!   (`microsoft.graph.user`). Inside a segment (`range(address={value})`,
//!   `serviceprincipals(appid={value})`) a placeholder matches one or more
//!   characters. Whitespace outside single quotes in a real segment is ignored.
//! * OData path-based addressing `root:/folder/file.xlsx:/workbook` is handled:
//!   everything between `:/` and the next `:` is one segment, matching
//!   `root:/{id}:/workbook`.
//! * If several templates match, the most specific wins: more literal segments,
//!   then more partly-literal segments, then the leftmost difference (literal
//!   over placeholder), then more literal characters. Only templates that have
//!   an entry for the request's method are considered.
//! * If nothing matches, these rewrites are tried, fewest and earliest first,
//!   and the first that matches is used:
//!   1. a trailing `/$ref`, `/$count` or `/$value` is dropped (the catalog has
//!      e.g. `POST /directoryroles/{id}/members` for `.../members/$ref`);
//!   2. `/me` and `/me/...` become `/users/{id}/...` (Graph treats `/me` as an
//!      alias of `/users/{signed-in user}`), so `/me/...` entries are preferred
//!      when the catalog has them;
//!   3. a key in parentheses becomes its own segment:
//!      `/users('id')` / `/users(userPrincipalName='x')` -> `/users/{id}`;
//!   4. OData type-cast segments (`microsoft.graph.user`) are dropped.
//! * Catalog paths carrying a query string (two in this data, e.g.
//!   `/agentRegistry/agentInstances?$filter=...`) are not used for matching.
//!   A few malformed catalog paths are repaired: `{id}}`, `subjectrightsrequests{id}`
//!   (missing `/`), `(team-id)` as a segment, a trailing `/`, stray spaces.
//!
//! # Accepted permissions
//!
//! [`Catalog::accepted`] lists the permissions of the matched template that
//! accept the method for the token kind (`Delegated` = scheme `DelegatedWork`,
//! `Application` = `Application`), least-privileged (`least=` for that scheme)
//! first, then by privilege level (unknown last), then by name. Resource-specific
//! consent permissions (`authorizationType: "RSC"`) are excluded. When one
//! permission appears in several path sets of the same template, it is listed
//! once: least-privileged if any entry says so, and `also_requires` is empty if
//! any entry has no `AlsoRequires` (otherwise the union, in data order).
//! The data does not say whether `AlsoRequires` means all or any of the listed
//! permissions.

mod assemble;
mod blob;
mod model;
mod raw;
mod route;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Serialize;
use uuid::Uuid;

pub use model::{
    CatalogError, IdSource, Permission, PermissionVariant, Scheme, TokenKind, UnknownScheme,
};

// The catalog, assembled from `data/` by build.rs (see `blob`).
static CATALOG_BLOB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/catalog.bin"));

/// Source repository commit the embedded data was taken from.
pub const DATA_SOURCE: &str = "github.com/microsoftgraph/microsoft-graph-devx-content@6cbd6bbd665a877560fdefbad74f3bdb5b57af88";

/// One permission that accepts a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accepted {
    /// Permission name, e.g. `User.Read.All`.
    pub permission: String,
    /// Marked `least=` for this scheme on this path and method.
    pub least_privileged: bool,
    /// Admin consent required for this scheme.
    pub requires_admin_consent: bool,
    /// Privilege level for this scheme.
    pub privilege_level: Option<u8>,
    /// `AlsoRequires=` permissions for this path (usually empty).
    pub also_requires: Vec<String>,
}

/// The catalog route a real request path maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteMatch {
    /// Normalised template: lower case, every placeholder written `{id}`,
    /// e.g. `/users/{id}/memberof`.
    pub template: String,
    /// The template as first spelled in the catalog, e.g. `/users/{id}/memberOf`.
    pub catalog_template: String,
    /// The real text matched by each placeholder, in order: percent-decoded,
    /// single quotes removed (`('abc')` -> `abc`, `appId='x'` -> `appId=x`).
    /// With `me_alias`, the first is `"me"`.
    pub params: Vec<String>,
    /// The path started with `/me` and was matched as `/users/{id}/...`.
    pub me_alias: bool,
}

/// The permission catalog.
#[derive(Debug, Default)]
pub struct Catalog {
    perms: Vec<Permission>,
    /// Lower-cased name -> index.
    by_name: HashMap<Box<str>, u32>,
    ids_delegated: HashMap<Uuid, u32>,
    ids_application: HashMap<Uuid, u32>,
    router: route::Router,
}

static EMBEDDED: OnceLock<Result<Catalog, CatalogError>> = OnceLock::new();
static EMPTY: OnceLock<Catalog> = OnceLock::new();

impl Catalog {
    /// The embedded catalog, loaded on first use (from the compact form
    /// `build.rs` assembled from the JSON files at compile time).
    ///
    /// The embedded data is checked by this crate's tests; should it ever fail
    /// to parse, this returns an empty catalog (see [`Catalog::try_embedded`]).
    pub fn embedded() -> &'static Catalog {
        match Self::try_embedded() {
            Ok(c) => c,
            Err(_) => EMPTY.get_or_init(Catalog::default),
        }
    }

    /// The embedded catalog, or the error that parsing it produced.
    pub fn try_embedded() -> Result<&'static Catalog, &'static CatalogError> {
        EMBEDDED
            .get_or_init(|| {
                let (perms, router) =
                    blob::decode(Cow::Borrowed(CATALOG_BLOB)).ok_or_else(|| {
                        CatalogError::Json {
                            file: "catalog.bin",
                            source: serde::de::Error::custom("embedded catalog data is corrupt"),
                        }
                    })?;
                Ok(Catalog::from_parts(perms, router))
            })
            .as_ref()
    }

    /// Builds a catalog from the contents of `permissions.json`,
    /// `provisioningInfo.json` and `permissions-descriptions.json`.
    pub fn from_json(
        permissions_json: &[u8],
        provisioning_json: &[u8],
        descriptions_json: &[u8],
    ) -> Result<Catalog, CatalogError> {
        let (perms, router) =
            assemble::build(permissions_json, provisioning_json, descriptions_json)?;
        Ok(Catalog::from_parts(perms, router))
    }

    pub(crate) fn from_parts(perms: Vec<Permission>, router: route::Router) -> Catalog {
        let mut by_name = HashMap::with_capacity(perms.len());
        let mut ids_delegated = HashMap::new();
        let mut ids_application = HashMap::new();
        for (i, p) in perms.iter().enumerate() {
            let Ok(i) = u32::try_from(i) else {
                break;
            };
            by_name
                .entry(p.name.to_lowercase().into_boxed_str())
                .or_insert(i);
            if let Some(v) = &p.delegated {
                ids_delegated.entry(v.id).or_insert(i);
            }
            if let Some(v) = &p.application {
                ids_application.entry(v.id).or_insert(i);
            }
        }
        Catalog {
            perms,
            by_name,
            ids_delegated,
            ids_application,
            router,
        }
    }

    fn perm(&self, idx: u32) -> Option<&Permission> {
        self.perms.get(usize::try_from(idx).ok()?)
    }

    /// Case-insensitive lookup by name (`"user.read"` finds `User.Read`).
    pub fn get(&self, name: &str) -> Option<&Permission> {
        let name = name.trim();
        let idx = match self.by_name.get(name) {
            Some(&i) => i,
            None => *self.by_name.get(name.to_lowercase().as_str())?,
        };
        self.perm(idx)
    }

    /// Lookup by GUID. When a GUID is both a delegated and an application id
    /// (the data has one: `User.Export.All`), the application variant wins;
    /// use [`Catalog::by_id_and_kind`] to choose.
    pub fn by_id(&self, id: Uuid) -> Option<(&Permission, TokenKind)> {
        self.by_id_and_kind(id, TokenKind::Application)
            .map(|p| (p, TokenKind::Application))
            .or_else(|| {
                self.by_id_and_kind(id, TokenKind::Delegated)
                    .map(|p| (p, TokenKind::Delegated))
            })
    }

    /// Lookup by GUID among delegated (`DelegatedWork`) or application ids.
    pub fn by_id_and_kind(&self, id: Uuid, kind: TokenKind) -> Option<&Permission> {
        let map = match kind {
            TokenKind::Delegated => &self.ids_delegated,
            TokenKind::Application => &self.ids_application,
        };
        self.perm(*map.get(&id)?)
    }

    /// Number of permissions.
    pub fn len(&self) -> usize {
        self.perms.len()
    }

    /// True if the catalog has no permissions.
    pub fn is_empty(&self) -> bool {
        self.perms.is_empty()
    }

    /// All permissions, in catalog order.
    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.perms.iter()
    }

    /// Number of distinct normalised path templates.
    pub fn route_count(&self) -> usize {
        self.router.len()
    }

    /// Catalog paths not used for matching (they carry a query string).
    pub fn skipped_paths(&self) -> impl Iterator<Item = &str> {
        self.router.skipped.iter().map(|s| &**s)
    }

    /// Which permissions accept this method on this real request path for this
    /// token kind, least-privileged first. Empty if the path is unknown, the
    /// method is not in the catalog for it, or no permission of this kind
    /// accepts it (e.g. app-only `/me`).
    pub fn accepted(&self, method: &str, path: &str, kind: TokenKind) -> Vec<Accepted> {
        self.accepted_for_scheme(method, path, kind.scheme())
    }

    /// [`Catalog::accepted`] for any scheme, including `DelegatedPersonal`.
    pub fn accepted_for_scheme(&self, method: &str, path: &str, scheme: Scheme) -> Vec<Accepted> {
        let Some(m) = self.router.find(method, path) else {
            return Vec::new();
        };
        let Some(mbit) = route::method_bit(method) else {
            return Vec::new();
        };
        let sbit = scheme.bit();
        // (perm index, least, also: None = some entry without AlsoRequires)
        let mut merged: Vec<(u32, bool, Option<Vec<String>>)> = Vec::new();
        for e in self.router.entries(m.route) {
            if e.methods & mbit == 0 || e.schemes & sbit == 0 {
                continue;
            }
            if self.perm(e.perm).is_none_or(|p| p.rsc) {
                continue;
            }
            let also = self.router.also(e.also);
            let least = e.least & sbit != 0;
            match merged.iter_mut().find(|(p, _, _)| *p == e.perm) {
                Some(slot) => {
                    slot.1 |= least;
                    if also.is_empty() {
                        slot.2 = None;
                    } else if let Some(list) = slot.2.as_mut() {
                        for a in also {
                            if !list.iter().any(|x| x.as_str() == &**a) {
                                list.push(a.to_string());
                            }
                        }
                    }
                }
                None => {
                    let list =
                        (!also.is_empty()).then(|| also.iter().map(|a| a.to_string()).collect());
                    merged.push((e.perm, least, list));
                }
            }
        }
        let mut out: Vec<Accepted> = merged
            .into_iter()
            .filter_map(|(idx, least, also)| {
                let p = self.perm(idx)?;
                let v = p.variant(scheme);
                Some(Accepted {
                    permission: p.name.clone(),
                    least_privileged: least,
                    requires_admin_consent: v
                        .map(|v| v.requires_admin_consent)
                        .unwrap_or(scheme == Scheme::Application),
                    privilege_level: v.and_then(|v| v.privilege_level),
                    also_requires: also.unwrap_or_default(),
                })
            })
            .collect();
        out.sort_by(|a, b| {
            b.least_privileged
                .cmp(&a.least_privileged)
                .then_with(|| {
                    a.privilege_level
                        .unwrap_or(u8::MAX)
                        .cmp(&b.privilege_level.unwrap_or(u8::MAX))
                })
                .then_with(|| a.permission.cmp(&b.permission))
        });
        out
    }

    /// The catalog route for a real request path, e.g.
    /// `/users/8f2e.../memberOf` -> `/users/{id}/memberof`; `None` if no
    /// catalog entry matches the method and path.
    pub fn match_route(&self, method: &str, path: &str) -> Option<RouteMatch> {
        let m = self.router.find(method, path)?;
        Some(RouteMatch {
            template: self.router.key(m.route).to_owned(),
            catalog_template: self.router.raw(m.route).to_owned(),
            params: m.params,
            me_alias: m.me_alias,
        })
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests;
