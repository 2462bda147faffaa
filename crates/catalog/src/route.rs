//! Route templates from the catalog, and matching of real request paths
//! against them. The rules are described in the crate documentation.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use crate::blob::{Reader, Writer};
use crate::raw::Str;

/// The placeholder every `{anything}` in a catalog path is normalised to.
pub(crate) const PLACEHOLDER: &str = "{id}";

// ------------------------------------------------------------------ methods

pub(crate) const M_GET: u8 = 1;
pub(crate) const M_POST: u8 = 2;
pub(crate) const M_PUT: u8 = 4;
pub(crate) const M_PATCH: u8 = 8;
pub(crate) const M_DELETE: u8 = 16;

/// Bit for an HTTP method (case-insensitive); `HEAD` counts as `GET`.
pub(crate) fn method_bit(method: &str) -> Option<u8> {
    let m = method.trim();
    if m.eq_ignore_ascii_case("GET") || m.eq_ignore_ascii_case("HEAD") {
        Some(M_GET)
    } else if m.eq_ignore_ascii_case("POST") {
        Some(M_POST)
    } else if m.eq_ignore_ascii_case("PUT") {
        Some(M_PUT)
    } else if m.eq_ignore_ascii_case("PATCH") {
        Some(M_PATCH)
    } else if m.eq_ignore_ascii_case("DELETE") {
        Some(M_DELETE)
    } else {
        None
    }
}

// ------------------------------------------------------------------ schemes (bits)

pub(crate) const S_WORK: u8 = 1;
pub(crate) const S_PERSONAL: u8 = 2;
pub(crate) const S_APP: u8 = 4;

pub(crate) fn scheme_bit(name: &str) -> Option<u8> {
    let n = name.trim();
    if n.eq_ignore_ascii_case("DelegatedWork") {
        Some(S_WORK)
    } else if n.eq_ignore_ascii_case("DelegatedPersonal") {
        Some(S_PERSONAL)
    } else if n.eq_ignore_ascii_case("Application") {
        Some(S_APP)
    } else {
        None
    }
}

// ------------------------------------------------------------------ storage

/// One (permission, pathSet) fact attached to a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Index into `Catalog::perms`.
    pub(crate) perm: u32,
    /// 1 + index into `Router::also`, 0 = no `AlsoRequires`.
    pub(crate) also: u32,
    pub(crate) methods: u8,
    pub(crate) schemes: u8,
    pub(crate) least: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SegKind {
    /// Placeholder only: `{id}`.
    Wild = 0,
    /// Literal text around one or more placeholders: `range(address={id})`.
    Mixed = 1,
    /// No placeholder.
    Literal = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seg {
    start: u16,
    end: u16,
    kind: SegKind,
}

/// One route. Its strings and segments live in the router's text and
/// segment tables (no allocation per route; see [`RouteView`]); in the
/// router, routes are stored as records (see [`Route::read`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Route {
    /// Byte range in the router's text of the normalised template: lower
    /// case, placeholders as `{id}`, e.g. `/users/{id}/memberof`.
    key: (u32, u32),
    /// Byte range in the router's text of the first spelling seen in the
    /// catalog, e.g. `/users/{id}/memberOf`.
    raw: (u32, u32),
    /// Index range in the router's `Seg` records.
    segs: (u32, u32),
    entries_start: u32,
    entries_len: u32,
    methods: u8,
}

/// `list.get(start * size..end * size)` for a `(u32, u32)` range of
/// `size`-byte records.
fn span(list: &[u8], (start, end): (u32, u32), size: usize) -> Option<&[u8]> {
    let start = usize::try_from(start).ok()?.checked_mul(size)?;
    let end = usize::try_from(end).ok()?.checked_mul(size)?;
    list.get(start..end)
}

/// A route with its key and segments resolved.
#[derive(Debug, Clone, Copy)]
struct RouteView<'r> {
    key: &'r str,
    /// `Seg` records (see [`Seg::read`]).
    segs: &'r [u8],
    methods: u8,
}

impl RouteView<'_> {
    fn segs(&self) -> impl Iterator<Item = Seg> + '_ {
        self.segs.chunks_exact(SEG_SIZE).filter_map(Seg::read)
    }

    fn seg_count(&self) -> usize {
        self.segs.len() / SEG_SIZE
    }

    fn seg_str(&self, seg: &Seg) -> &str {
        self.key
            .get(usize::from(seg.start)..usize::from(seg.end))
            .unwrap_or("")
    }

    /// (literal segments, mixed segments, literal bytes): larger is more specific.
    fn specificity(&self) -> (usize, usize, usize) {
        let mut lit = 0;
        let mut mixed = 0;
        let mut bytes = 0;
        for s in self.segs() {
            match s.kind {
                SegKind::Literal => lit += 1,
                SegKind::Mixed => mixed += 1,
                SegKind::Wild => {}
            }
            let text = self.seg_str(&s);
            bytes += text.len() - text.matches(PLACEHOLDER).count() * PLACEHOLDER.len();
        }
        (lit, mixed, bytes)
    }

    fn more_specific_than(&self, other: &RouteView<'_>) -> bool {
        let (a, b) = (self.specificity(), other.specificity());
        if a.0 != b.0 {
            return a.0 > b.0;
        }
        if a.1 != b.1 {
            return a.1 > b.1;
        }
        // Leftmost difference: literal beats mixed beats placeholder.
        for (x, y) in self.segs().zip(other.segs()) {
            if x.kind != y.kind {
                return x.kind > y.kind;
            }
        }
        if a.2 != b.2 {
            return a.2 > b.2;
        }
        self.key < other.key
    }
}

#[derive(Debug, Default)]
struct Bucket {
    /// Routes whose first segment is a literal, by that literal.
    by_first: HashMap<Box<str>, Vec<u32>>,
    /// Routes whose first segment contains a placeholder.
    other: Vec<u32>,
}

/// All routes of the catalog.
///
/// The route tables stay in their binary form (see `Router::encode`), read
/// record by record when used: for the embedded catalog, `data` borrows the
/// embedded blob, so loading it copies and pages in only the small tables.
#[derive(Debug, Default)]
pub(crate) struct Router {
    data: Cow<'static, [u8]>,
    /// Byte ranges in `data`: every route's key and raw spelling
    /// (concatenated), and the `Seg`, `Route` and `Entry` records.
    text: Range<usize>,
    segs: Range<usize>,
    routes: Range<usize>,
    entries: Range<usize>,
    /// Indexed by segment count.
    buckets: Vec<Bucket>,
    pub(crate) also: Vec<Box<[Box<str>]>>,
    /// Catalog paths that could not be used for matching (e.g. they carry a query string).
    pub(crate) skipped: Vec<Box<str>>,
}

/// The router's tables as built from the catalog, before conversion to
/// the binary form.
#[derive(Debug, Default)]
struct Tables {
    /// Every route's key and raw spelling, concatenated.
    text: String,
    /// Every route's segments, concatenated.
    segs: Vec<Seg>,
    routes: Vec<Route>,
    entries: Vec<Entry>,
    /// Indexed by segment count.
    buckets: Vec<Bucket>,
    pub(crate) also: Vec<Box<[Box<str>]>>,
    /// Catalog paths that could not be used for matching (e.g. they carry a query string).
    pub(crate) skipped: Vec<Box<str>>,
}

/// FxHash-style hasher for the builder's maps: their keys come from the
/// embedded data only, so SipHash's DoS resistance is not needed there, and
/// hashing ~19,000 catalog paths is a visible part of parse time.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

/// Collects entries while the catalog is being built.
#[derive(Debug, Default)]
pub(crate) struct RouterBuilder<'a> {
    /// First raw spelling of each route, in order of first appearance.
    raws: Vec<Box<str>>,
    /// Normalised key -> route.
    by_key: FastMap<Box<str>, u32>,
    /// Raw catalog path (borrowed from the input) -> route, `None` if skipped.
    /// Most raw paths occur in several permissions; this avoids re-normalising.
    by_raw: FastMap<&'a str, Option<u32>>,
    /// (route, entry), in input order.
    entries: Vec<(u32, Entry)>,
    also: Vec<Box<[Box<str>]>>,
    also_index: HashMap<Vec<String>, u32>,
    skipped: Vec<Box<str>>,
}

impl<'a> RouterBuilder<'a> {
    /// A builder pre-sized for about `paths` distinct catalog paths and
    /// `entries` (permission, path) facts.
    pub(crate) fn with_capacity(paths: usize, entries: usize) -> Self {
        RouterBuilder {
            raws: Vec::with_capacity(paths),
            by_key: FastMap::with_capacity_and_hasher(paths, Default::default()),
            by_raw: FastMap::with_capacity_and_hasher(paths, Default::default()),
            entries: Vec::with_capacity(entries),
            ..Default::default()
        }
    }

    /// Interns an `AlsoRequires` list; returns the value for `Entry::also`.
    pub(crate) fn intern_also(&mut self, names: Vec<String>) -> u32 {
        if names.is_empty() {
            return 0;
        }
        if let Some(&i) = self.also_index.get(&names) {
            return i;
        }
        self.also
            .push(names.iter().map(|s| s.clone().into_boxed_str()).collect());
        let idx = u32::try_from(self.also.len()).unwrap_or(u32::MAX);
        self.also_index.insert(names, idx);
        idx
    }

    pub(crate) fn add(&mut self, raw_path: &Str<'a>, entry: Entry) {
        let borrowed = match &raw_path.0 {
            Cow::Borrowed(s) => Some(*s),
            Cow::Owned(_) => None,
        };
        let route = match borrowed.and_then(|s| self.by_raw.get(s)) {
            Some(&cached) => cached,
            None => {
                let route = self.route_for(raw_path.as_str());
                if let Some(s) = borrowed {
                    self.by_raw.insert(s, route);
                }
                route
            }
        };
        if let Some(r) = route {
            self.entries.push((r, entry));
        }
    }

    fn route_for(&mut self, raw_path: &str) -> Option<u32> {
        let Some(key) = normalize_template(raw_path) else {
            if !self.skipped.iter().any(|s| &**s == raw_path) {
                self.skipped.push(raw_path.into());
            }
            return None;
        };
        if let Some(&r) = self.by_key.get(key.as_str()) {
            return Some(r);
        }
        let r = u32::try_from(self.raws.len()).ok()?;
        self.raws.push(raw_path.trim().into());
        self.by_key.insert(key.into_boxed_str(), r);
        Some(r)
    }

    pub(crate) fn finish(self) -> Router {
        let RouterBuilder {
            raws,
            by_key,
            by_raw,
            mut entries,
            also,
            also_index,
            skipped,
        } = self;
        drop(by_raw);
        drop(also_index);
        let mut keys: Vec<Option<Box<str>>> = vec![None; raws.len()];
        for (key, r) in by_key {
            if let Some(slot) = usize::try_from(r).ok().and_then(|r| keys.get_mut(r)) {
                *slot = Some(key);
            }
        }
        // Group entries by route, keeping input order within a route.
        entries.sort_by_key(|(r, _)| *r);
        let text_len = raws.iter().map(|r| 2 * r.len() + 8).sum();
        let mut router = Tables {
            text: String::with_capacity(text_len),
            segs: Vec::new(),
            routes: Vec::with_capacity(raws.len()),
            entries: entries.iter().map(|(_, e)| *e).collect(),
            buckets: Vec::new(),
            also,
            skipped,
        };
        let mut next = 0usize;
        for (route_idx, (key, raw)) in keys.into_iter().zip(raws).enumerate() {
            let start = next;
            while entries
                .get(next)
                .is_some_and(|(r, _)| usize::try_from(*r).ok() == Some(route_idx))
            {
                next += 1;
            }
            let Some(key) = key else {
                continue;
            };
            let (Ok(entries_start), Ok(entries_len)) =
                (u32::try_from(start), u32::try_from(next - start))
            else {
                continue;
            };
            let methods = router
                .entries
                .get(start..next)
                .unwrap_or(&[])
                .iter()
                .fold(0, |acc, e| acc | e.methods);
            let segs: Vec<Seg> = split_segments(&key)
                .into_iter()
                .filter_map(|(start, end)| {
                    let text = key.get(start..end)?;
                    let kind = if text == PLACEHOLDER {
                        SegKind::Wild
                    } else if text.contains(PLACEHOLDER) {
                        SegKind::Mixed
                    } else {
                        SegKind::Literal
                    };
                    Some(Seg {
                        start: u16::try_from(start).ok()?,
                        end: u16::try_from(end).ok()?,
                        kind,
                    })
                })
                .collect();
            let Ok(idx) = u32::try_from(router.routes.len()) else {
                continue;
            };
            let nsegs = segs.len();
            let first = segs
                .first()
                .map(|s| (s.kind, key.get(usize::from(s.start)..usize::from(s.end))));
            while router.buckets.len() <= nsegs {
                router.buckets.push(Bucket::default());
            }
            if let Some(bucket) = router.buckets.get_mut(nsegs) {
                match first {
                    Some((SegKind::Literal, Some(text))) => {
                        bucket.by_first.entry(text.into()).or_default().push(idx)
                    }
                    _ => bucket.other.push(idx),
                }
            }
            let Some(key) = push_text(&mut router.text, &key) else {
                continue;
            };
            let Some(raw) = push_text(&mut router.text, &raw) else {
                continue;
            };
            let (Ok(segs_start), Ok(segs_end)) = (
                u32::try_from(router.segs.len()),
                u32::try_from(router.segs.len() + segs.len()),
            ) else {
                continue;
            };
            router.segs.extend_from_slice(&segs);
            router.routes.push(Route {
                key,
                raw,
                segs: (segs_start, segs_end),
                entries_start,
                entries_len,
                methods,
            });
        }
        router.into_router()
    }
}

/// Appends `s` to `text`, returning its byte range.
fn push_text(text: &mut String, s: &str) -> Option<(u32, u32)> {
    let start = u32::try_from(text.len()).ok()?;
    let end = u32::try_from(text.len() + s.len()).ok()?;
    text.push_str(s);
    Some((start, end))
}

// ------------------------------------------------------------------ binary form

/// Size of a `Seg` record: start, end (`u16`), kind (`u8`).
const SEG_SIZE: usize = 5;
/// Size of a `Route` record: key, raw, segs (`u32` pairs), entries start and
/// length (`u32`), methods (`u8`).
const ROUTE_SIZE: usize = 33;
/// Size of an `Entry` record: perm, also (`u32`), methods, schemes, least (`u8`).
const ENTRY_SIZE: usize = 11;

impl SegKind {
    fn from_u8(v: u8) -> Option<SegKind> {
        match v {
            0 => Some(SegKind::Wild),
            1 => Some(SegKind::Mixed),
            2 => Some(SegKind::Literal),
            _ => None,
        }
    }
}

impl Seg {
    fn write(&self, w: &mut Writer) {
        w.u16(self.start);
        w.u16(self.end);
        w.u8(self.kind as u8);
    }

    fn read(rec: &[u8]) -> Option<Seg> {
        let mut r = Reader::new(rec);
        Some(Seg {
            start: r.u16()?,
            end: r.u16()?,
            kind: SegKind::from_u8(r.u8()?)?,
        })
    }
}

impl Route {
    fn write(&self, w: &mut Writer) {
        for (start, end) in [self.key, self.raw, self.segs] {
            w.u32(start);
            w.u32(end);
        }
        w.u32(self.entries_start);
        w.u32(self.entries_len);
        w.u8(self.methods);
    }

    fn read(rec: &[u8]) -> Option<Route> {
        let mut r = Reader::new(rec);
        let mut range = || Some((r.u32()?, r.u32()?));
        let (key, raw, segs) = (range()?, range()?, range()?);
        Some(Route {
            key,
            raw,
            segs,
            entries_start: r.u32()?,
            entries_len: r.u32()?,
            methods: r.u8()?,
        })
    }
}

impl Entry {
    fn write(&self, w: &mut Writer) {
        w.u32(self.perm);
        w.u32(self.also);
        w.u8(self.methods);
        w.u8(self.schemes);
        w.u8(self.least);
    }

    fn read(rec: &[u8]) -> Option<Entry> {
        let mut r = Reader::new(rec);
        Some(Entry {
            perm: r.u32()?,
            also: r.u32()?,
            methods: r.u8()?,
            schemes: r.u8()?,
            least: r.u8()?,
        })
    }
}

fn write_indices(w: &mut Writer, list: &[u32]) {
    w.len(list.len());
    for &i in list {
        w.u32(i);
    }
}

fn read_indices(r: &mut Reader<'_>) -> Option<Vec<u32>> {
    let n = r.count(4)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.u32()?);
    }
    Some(out)
}

/// Skips a table of `size`-byte records (count, then records); returns its
/// byte range in the reader's input.
fn read_table(r: &mut Reader<'_>, size: usize) -> Option<Range<usize>> {
    let n = r.count(size)?;
    let start = r.pos();
    r.take(n.checked_mul(size)?)?;
    Some(start..r.pos())
}

/// Where [`Router::read`] found the parts of a router in its input.
#[derive(Debug)]
pub(crate) struct Layout {
    text: Range<usize>,
    segs: Range<usize>,
    routes: Range<usize>,
    entries: Range<usize>,
    buckets: Vec<Bucket>,
    also: Vec<Box<[Box<str>]>>,
    skipped: Vec<Box<str>>,
}

impl Tables {
    /// Converts to the binary form.
    fn into_router(self) -> Router {
        let mut w = Writer::default();
        w.bytes(self.text.as_bytes());
        let text = 0..w.pos();
        for seg in &self.segs {
            seg.write(&mut w);
        }
        let segs = text.end..w.pos();
        for route in &self.routes {
            route.write(&mut w);
        }
        let routes = segs.end..w.pos();
        for entry in &self.entries {
            entry.write(&mut w);
        }
        let entries = routes.end..w.pos();
        Router {
            data: Cow::Owned(w.into_bytes()),
            text,
            segs,
            routes,
            entries,
            buckets: self.buckets,
            also: self.also,
            skipped: self.skipped,
        }
    }
}

impl Router {
    fn table(&self, range: &Range<usize>) -> &[u8] {
        self.data.get(range.clone()).unwrap_or(&[])
    }

    /// Writes the router for [`Router::read`] (see `blob`): the text, then
    /// each record table as a count and the records, then the buckets (maps
    /// sorted by key, so the output does not depend on hash order), the
    /// `AlsoRequires` lists and the skipped paths.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn encode(&self, w: &mut Writer) {
        let text = self.table(&self.text);
        w.len(text.len());
        w.bytes(text);
        for (range, size) in [
            (&self.segs, SEG_SIZE),
            (&self.routes, ROUTE_SIZE),
            (&self.entries, ENTRY_SIZE),
        ] {
            let table = self.table(range);
            w.len(table.len() / size);
            w.bytes(table);
        }
        w.len(self.buckets.len());
        for bucket in &self.buckets {
            let mut firsts: Vec<(&Box<str>, &Vec<u32>)> = bucket.by_first.iter().collect();
            firsts.sort_unstable_by(|a, b| a.0.cmp(b.0));
            w.len(firsts.len());
            for (first, routes) in firsts {
                w.str(first);
                write_indices(w, routes);
            }
            write_indices(w, &bucket.other);
        }
        w.len(self.also.len());
        for list in &self.also {
            w.len(list.len());
            for name in list.iter() {
                w.str(name);
            }
        }
        w.len(self.skipped.len());
        for path in &self.skipped {
            w.str(path);
        }
    }

    /// Reads what [`Router::encode`] wrote; `None` if malformed. The record
    /// tables are only located (see [`Router::from_layout`]); their records
    /// are checked when used.
    pub(crate) fn read(r: &mut Reader<'_>) -> Option<Layout> {
        let n = r.len()?;
        let start = r.pos();
        r.take(n)?;
        let text = start..r.pos();
        let segs = read_table(r, SEG_SIZE)?;
        let routes = read_table(r, ROUTE_SIZE)?;
        let entries = read_table(r, ENTRY_SIZE)?;
        let n = r.count(8)?;
        let mut buckets = Vec::with_capacity(n);
        for _ in 0..n {
            let nfirst = r.count(8)?;
            let mut by_first = HashMap::with_capacity(nfirst);
            for _ in 0..nfirst {
                let first: Box<str> = r.str()?.into();
                by_first.insert(first, read_indices(r)?);
            }
            let other = read_indices(r)?;
            buckets.push(Bucket { by_first, other });
        }
        let n = r.count(4)?;
        let mut also = Vec::with_capacity(n);
        for _ in 0..n {
            let len = r.count(4)?;
            let mut list = Vec::with_capacity(len);
            for _ in 0..len {
                list.push(Box::<str>::from(r.str()?));
            }
            also.push(list.into_boxed_slice());
        }
        let n = r.count(4)?;
        let mut skipped = Vec::with_capacity(n);
        for _ in 0..n {
            skipped.push(Box::<str>::from(r.str()?));
        }
        Some(Layout {
            text,
            segs,
            routes,
            entries,
            buckets,
            also,
            skipped,
        })
    }

    /// The router [`Router::read`] found in `data`.
    pub(crate) fn from_layout(data: Cow<'static, [u8]>, layout: Layout) -> Router {
        Router {
            data,
            text: layout.text,
            segs: layout.segs,
            routes: layout.routes,
            entries: layout.entries,
            buckets: layout.buckets,
            also: layout.also,
            skipped: layout.skipped,
        }
    }
}

// ------------------------------------------------------------------ normalisation

/// Normalises a catalog path into the route key, or `None` if it cannot be
/// used for matching (it carries a query string, or is empty).
///
/// Lower-cases, drops whitespace and a trailing `/`, turns every `{name}` into
/// `{id}`, and repairs the few malformed spellings in the data:
/// `{id}}` (stray brace), `subjectrightsrequests{id}` (missing `/`) and
/// `(team-id)` used as a whole segment.
pub(crate) fn normalize_template(raw: &str) -> Option<String> {
    if raw.contains('?') {
        return None;
    }
    let mut out = String::with_capacity(raw.len() + 8);
    let mut last: Option<char> = None;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        if c == '{' {
            // Placeholder: swallow up to the closing brace (and any stray extra ones).
            for d in chars.by_ref() {
                if d == '}' {
                    break;
                }
            }
            while chars.peek() == Some(&'}') {
                chars.next();
            }
            if last.is_some_and(|p| p.is_ascii_alphanumeric()) {
                out.push('/');
            }
            out.push_str(PLACEHOLDER);
            last = Some('}');
        } else if c.is_ascii() {
            let l = c.to_ascii_lowercase();
            out.push(l);
            last = Some(l);
        } else {
            for l in c.to_lowercase() {
                out.push(l);
                last = Some(l);
            }
        }
    }
    let trimmed = out.trim_end_matches('/');
    if trimmed.is_empty() {
        return None;
    }
    let mut key = String::with_capacity(trimmed.len() + 1);
    for (start, end) in split_segments(trimmed) {
        let seg = trimmed.get(start..end).unwrap_or("");
        key.push('/');
        if is_paren_name(seg) {
            key.push_str(PLACEHOLDER);
        } else {
            key.push_str(seg);
        }
    }
    if key.is_empty() { None } else { Some(key) }
}

/// `(team-id)`: a whole segment that is a parenthesised name, used in the data
/// where `{team-id}` was meant.
fn is_paren_name(seg: &str) -> bool {
    seg.len() > 2
        && seg.starts_with('(')
        && seg.ends_with(')')
        && seg.get(1..seg.len() - 1).is_some_and(|inner| {
            inner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Splits a path into non-empty segments, returned as byte ranges.
///
/// `/` separates segments, except inside OData path-based addressing
/// (`root:/folder/file.xlsx:/workbook`): after a `:/`, everything up to and
/// including the next `:` is one segment (`folder/file.xlsx:`); if there is
/// no closing `:`, the rest of the path is.
pub(crate) fn split_segments(path: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut seg_start = 0usize;
    let mut colon_mode = false;
    let mut prev_opening_colon = false;
    for (i, b) in path.bytes().enumerate() {
        let mut closing = false;
        match b {
            b'/' if !colon_mode => {
                if prev_opening_colon {
                    colon_mode = true;
                }
                if i > seg_start {
                    out.push((seg_start, i));
                }
                seg_start = i + 1;
            }
            b':' if colon_mode => {
                colon_mode = false;
                closing = true;
            }
            _ => {}
        }
        prev_opening_colon = b == b':' && !closing;
    }
    if path.len() > seg_start {
        out.push((seg_start, path.len()));
    }
    out
}

/// Turns a real request path into decoded segments: drops scheme and host of a
/// full URL, the query string and fragment, a leading `/v1.0` or `/beta`, and
/// empty segments; percent-decodes each segment.
pub(crate) fn request_segments(path: &str) -> Vec<String> {
    let mut p = path.trim();
    for scheme in ["https://", "http://"] {
        if p.len() >= scheme.len()
            && p.get(..scheme.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        {
            let rest = p.get(scheme.len()..).unwrap_or("");
            p = rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("");
        }
    }
    if let Some(i) = p.find(['?', '#']) {
        p = p.get(..i).unwrap_or("");
    }
    let mut segs: Vec<String> = split_segments(p)
        .into_iter()
        .filter_map(|(s, e)| p.get(s..e))
        .map(|s| {
            let decoded = percent_encoding::percent_decode_str(s).decode_utf8_lossy();
            strip_ws_outside_quotes(&decoded)
        })
        .filter(|s| !s.is_empty())
        .collect();
    if segs
        .first()
        .is_some_and(|s| s.eq_ignore_ascii_case("v1.0") || s.eq_ignore_ascii_case("beta"))
    {
        segs.remove(0);
    }
    segs
}

/// Drops whitespace next to `(`, `)`, `,` and `=` inside parentheses (outside
/// single quotes), so `f(a=1, b=2)` compares equal to the catalog's `f(a={x},b={y})`.
/// Other whitespace (e.g. in file names) is kept.
fn strip_ws_outside_quotes(s: &str) -> String {
    if !s.contains('(') || !s.chars().any(char::is_whitespace) {
        return s.to_owned();
    }
    let is_punct = |c: char| matches!(c, '(' | ')' | ',' | '=');
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut quoted = false;
    let mut depth = 0usize;
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c.is_whitespace() && !quoted && depth > 0 {
            let prev = chars
                .get(..i)
                .and_then(|p| p.iter().rev().find(|c| !c.is_whitespace()));
            let next = chars
                .get(i + 1..)
                .and_then(|n| n.iter().find(|c| !c.is_whitespace()));
            if prev.is_some_and(|&p| is_punct(p)) || next.is_some_and(|&n| is_punct(n)) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

// ------------------------------------------------------------------ matching

/// Result of matching a request path.
#[derive(Debug, Clone)]
pub(crate) struct Matched {
    pub(crate) route: u32,
    pub(crate) params: Vec<String>,
    pub(crate) me_alias: bool,
}

fn is_dollar_suffix(s: &str) -> bool {
    ["$ref", "$count", "$value"]
        .iter()
        .any(|x| s.eq_ignore_ascii_case(x))
}

fn is_type_cast(s: &str) -> bool {
    s.len() > 16
        && s.get(..16)
            .is_some_and(|p| p.eq_ignore_ascii_case("microsoft.graph."))
}

/// `users('id')` / `users(userPrincipalName='x')` -> (`users`, `'id'`).
fn split_key_segment(s: &str) -> Option<(&str, &str)> {
    let open = s.find('(')?;
    if open == 0 || !s.ends_with(')') {
        return None;
    }
    let name = s.get(..open)?;
    let inner = s.get(open + 1..s.len() - 1)?;
    if inner.is_empty() || name.contains(['(', ')']) {
        return None;
    }
    Some((name, inner))
}

const T_SUFFIX: u8 = 1;
const T_ME: u8 = 2;
const T_KEYS: u8 = 4;
const T_CASTS: u8 = 8;

impl Router {
    pub(crate) fn len(&self) -> usize {
        self.routes.len() / ROUTE_SIZE
    }

    /// Every route as (normalised template, union of method bits).
    #[cfg(test)]
    pub(crate) fn templates(&self) -> impl Iterator<Item = (&str, u8)> {
        (0..self.len())
            .filter_map(|i| self.view(u32::try_from(i).ok()?))
            .map(|v| (v.key, v.methods))
    }

    pub(crate) fn key(&self, route: u32) -> &str {
        self.view(route).map(|v| v.key).unwrap_or("")
    }

    pub(crate) fn raw(&self, route: u32) -> &str {
        self.route(route)
            .and_then(|r| self.text(r.raw))
            .unwrap_or("")
    }

    fn text(&self, range: (u32, u32)) -> Option<&str> {
        std::str::from_utf8(span(self.table(&self.text), range, 1)?).ok()
    }

    fn view(&self, idx: u32) -> Option<RouteView<'_>> {
        let r = self.route(idx)?;
        Some(RouteView {
            key: self.text(r.key)?,
            segs: span(self.table(&self.segs), r.segs, SEG_SIZE)?,
            methods: r.methods,
        })
    }

    fn route(&self, idx: u32) -> Option<Route> {
        let rec = span(
            self.table(&self.routes),
            (idx, idx.checked_add(1)?),
            ROUTE_SIZE,
        )?;
        Route::read(rec)
    }

    pub(crate) fn entries(&self, route: u32) -> impl Iterator<Item = Entry> + '_ {
        self.route(route)
            .and_then(|r| {
                let end = r.entries_start.checked_add(r.entries_len)?;
                span(
                    self.table(&self.entries),
                    (r.entries_start, end),
                    ENTRY_SIZE,
                )
            })
            .unwrap_or(&[])
            .chunks_exact(ENTRY_SIZE)
            .filter_map(Entry::read)
    }

    pub(crate) fn also(&self, idx: u32) -> &[Box<str>] {
        if idx == 0 {
            return &[];
        }
        usize::try_from(idx - 1)
            .ok()
            .and_then(|i| self.also.get(i))
            .map(|b| &**b)
            .unwrap_or(&[])
    }

    /// Matches `method` + real `path`; see the crate docs for the rules.
    pub(crate) fn find(&self, method: &str, path: &str) -> Option<Matched> {
        let method = method_bit(method)?;
        let segs = request_segments(path);
        if segs.is_empty() {
            return None;
        }
        let applicable = |t: u8| -> bool {
            match t {
                T_SUFFIX => segs.last().is_some_and(|s| is_dollar_suffix(s)),
                T_ME => segs.first().is_some_and(|s| s.eq_ignore_ascii_case("me")),
                T_KEYS => segs.iter().any(|s| split_key_segment(s).is_some()),
                T_CASTS => segs.iter().any(|s| is_type_cast(s)),
                _ => false,
            }
        };
        for mask in 0u8..16 {
            let all_applicable = [T_SUFFIX, T_ME, T_KEYS, T_CASTS]
                .iter()
                .all(|&t| mask & t == 0 || applicable(t));
            if !all_applicable {
                continue;
            }
            let candidate = transform(&segs, mask);
            if let Some((route, params)) = self.best(method, &candidate) {
                return Some(Matched {
                    route,
                    params,
                    me_alias: mask & T_ME != 0,
                });
            }
        }
        None
    }

    fn best(&self, method: u8, segs: &[Cow<'_, str>]) -> Option<(u32, Vec<String>)> {
        let bucket = self.buckets.get(segs.len())?;
        let first = segs.first()?.to_ascii_lowercase();
        let literal = bucket
            .by_first
            .get(first.as_str())
            .map(|v| v.as_slice())
            .unwrap_or(&[]);
        let mut best: Option<(u32, RouteView<'_>)> = None;
        for &idx in literal.iter().chain(bucket.other.iter()) {
            let Some(route) = self.view(idx) else {
                continue;
            };
            if route.methods & method == 0 {
                continue;
            }
            if !self.matches(&route, segs, None) {
                continue;
            }
            if best.is_none_or(|(_, b)| route.more_specific_than(&b)) {
                best = Some((idx, route));
            }
        }
        let (idx, route) = best?;
        let mut params = Vec::new();
        self.matches(&route, segs, Some(&mut params));
        Some((idx, params))
    }

    fn matches(
        &self,
        route: &RouteView<'_>,
        segs: &[Cow<'_, str>],
        mut params: Option<&mut Vec<String>>,
    ) -> bool {
        if route.seg_count() != segs.len() {
            return false;
        }
        for (seg, real) in route.segs().zip(segs.iter()) {
            let pattern = route.seg_str(&seg);
            match seg.kind {
                SegKind::Literal => {
                    if !literal_eq(pattern, real) {
                        return false;
                    }
                }
                SegKind::Wild => {
                    // `$ref`, `$count`, `microsoft.graph.user`, ... are never ids.
                    if real.starts_with('$') || is_type_cast(real) {
                        return false;
                    }
                    if let Some(p) = params.as_deref_mut() {
                        p.push(unquote(real));
                    }
                }
                SegKind::Mixed => {
                    let mut caps = Vec::new();
                    if !glob(pattern, real, &mut caps) {
                        return false;
                    }
                    if let Some(p) = params.as_deref_mut() {
                        p.extend(
                            caps.into_iter()
                                .filter_map(|(s, e)| real.get(s..e))
                                .map(unquote),
                        );
                    }
                }
            }
        }
        true
    }
}

fn transform<'a>(segs: &'a [String], mask: u8) -> Vec<Cow<'a, str>> {
    let mut out: Vec<Cow<'a, str>> = segs.iter().map(|s| Cow::Borrowed(s.as_str())).collect();
    if mask & T_SUFFIX != 0 && out.last().is_some_and(|s| is_dollar_suffix(s)) {
        out.pop();
    }
    if mask & T_CASTS != 0 {
        out.retain(|s| !is_type_cast(s));
    }
    if mask & T_KEYS != 0 {
        let mut split = Vec::with_capacity(out.len() + 2);
        for s in out {
            match split_key_segment(&s) {
                Some((name, inner)) => {
                    split.push(Cow::Owned(name.to_owned()));
                    split.push(Cow::Owned(inner.to_owned()));
                }
                None => split.push(s),
            }
        }
        out = split;
    }
    if mask & T_ME != 0 && out.first().is_some_and(|s| s.eq_ignore_ascii_case("me")) {
        out.remove(0);
        out.insert(0, Cow::Borrowed("me"));
        out.insert(0, Cow::Borrowed("users"));
    }
    out
}

/// Literal comparison: ASCII case-insensitive, and `delta()` == `delta`.
fn literal_eq(pattern: &str, real: &str) -> bool {
    let strip = |s: &str| -> usize {
        if s.ends_with("()") {
            s.len() - 2
        } else {
            s.len()
        }
    };
    let (p, r) = (
        pattern.get(..strip(pattern)).unwrap_or(pattern),
        real.get(..strip(real)).unwrap_or(real),
    );
    p.eq_ignore_ascii_case(r)
}

/// Removes single quotes around a captured value: `'abc'` -> `abc`,
/// `appId='abc'` -> `appId=abc`.
fn unquote(s: &str) -> String {
    let strip = |v: &str| -> String {
        if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
            v.get(1..v.len() - 1).unwrap_or(v).replace("''", "'")
        } else {
            v.to_owned()
        }
    };
    match s.split_once('=') {
        Some((k, v)) if !k.contains('\'') => format!("{k}={}", strip(v)),
        _ => strip(s),
    }
}

fn find_ci(hay: &str, needle: &str, from: usize, limit: usize) -> Option<usize> {
    if needle.is_empty() {
        return (from <= limit).then_some(from);
    }
    let last = limit.checked_sub(needle.len())?;
    (from..=last).find(|&i| {
        hay.get(i..i + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(needle))
    })
}

/// Matches `real` against a segment pattern where each `{id}` stands for one or
/// more characters; literal text compares ASCII case-insensitively. Pushes the
/// byte range of each placeholder into `caps`.
fn glob(pattern: &str, real: &str, caps: &mut Vec<(usize, usize)>) -> bool {
    let pieces: Vec<&str> = pattern.split(PLACEHOLDER).collect();
    let (Some(first), Some(last)) = (pieces.first(), pieces.last()) else {
        return false;
    };
    if pieces.len() == 1 {
        return literal_eq(pattern, real);
    }
    let n = real.len();
    if n < first.len() + last.len() {
        return false;
    }
    if !real
        .get(..first.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(first))
    {
        return false;
    }
    let tail_start = n - last.len();
    if !real
        .get(tail_start..)
        .is_some_and(|p| p.eq_ignore_ascii_case(last))
    {
        return false;
    }
    let mut pos = first.len();
    let middle = pieces.get(1..pieces.len() - 1).unwrap_or(&[]);
    for piece in middle {
        // The placeholder before `piece` takes at least one character.
        let Some(found) = find_ci(real, piece, pos + 1, tail_start) else {
            return false;
        };
        caps.push((pos, found));
        pos = found + piece.len();
    }
    if tail_start <= pos {
        return false;
    }
    caps.push((pos, tail_start));
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn template_normalisation() {
        assert_eq!(
            normalize_template("/users/{id}/memberOf").unwrap(),
            "/users/{id}/memberof"
        );
        assert_eq!(
            normalize_template("/applications/{id}}/repair").unwrap(),
            "/applications/{id}/repair"
        );
        assert_eq!(
            normalize_template(
                "/privacy/subjectrightsrequests{subjectrightsrequestid}/getfinalreport"
            )
            .unwrap(),
            "/privacy/subjectrightsrequests/{id}/getfinalreport"
        );
        assert_eq!(
            normalize_template("/teams/(team-id)/channels/{id}/messages/{id}").unwrap(),
            "/teams/{id}/channels/{id}/messages/{id}"
        );
        assert_eq!(
            normalize_template(
                "/servicePrincipals/microsoft.graph.agentIdentityBlueprintPrincipal/{id}/sponsors/"
            )
            .unwrap(),
            "/serviceprincipals/microsoft.graph.agentidentityblueprintprincipal/{id}/sponsors"
        );
        assert_eq!(
            normalize_template("/x/resizedrange(deltarows={value}, deltacolumns={value})").unwrap(),
            "/x/resizedrange(deltarows={id},deltacolumns={id})"
        );
        assert_eq!(
            normalize_template("/directoryroles(roletemplateid={value})/members").unwrap(),
            "/directoryroles(roletemplateid={id})/members"
        );
        assert!(normalize_template("/agentRegistry/agentInstances?$filter=x eq '{id}'").is_none());
        assert!(normalize_template("/").is_none());
    }

    #[test]
    fn segment_splitting() {
        let p = "/me/drive/root:/Folder/Book.xlsx:/workbook/worksheets";
        let segs: Vec<&str> = split_segments(p)
            .into_iter()
            .map(|(s, e)| &p[s..e])
            .collect();
        assert_eq!(
            segs,
            [
                "me",
                "drive",
                "root:",
                "Folder/Book.xlsx:",
                "workbook",
                "worksheets"
            ]
        );
        let p = "/me/drive/root:/Folder/Book.xlsx";
        let segs: Vec<&str> = split_segments(p)
            .into_iter()
            .map(|(s, e)| &p[s..e])
            .collect();
        assert_eq!(segs, ["me", "drive", "root:", "Folder/Book.xlsx"]);
        let p = "//users///x/";
        let segs: Vec<&str> = split_segments(p)
            .into_iter()
            .map(|(s, e)| &p[s..e])
            .collect();
        assert_eq!(segs, ["users", "x"]);
    }

    #[test]
    fn request_path_cleanup() {
        assert_eq!(
            request_segments("/v1.0/users/a%40b.com/memberOf?$top=5#x"),
            ["users", "a@b.com", "memberOf"]
        );
        assert_eq!(request_segments("/BETA/me"), ["me"]);
        assert_eq!(
            request_segments("https://graph.microsoft.com/v1.0/users"),
            ["users"]
        );
        assert_eq!(request_segments("/v1.0"), Vec::<String>::new());
        assert_eq!(
            request_segments("/x/f(a=1, b='x y')"),
            ["x", "f(a=1,b='x y')"]
        );
        assert_eq!(
            request_segments("/x/f( a = 1 ,b=x y)"),
            ["x", "f(a=1,b=x y)"]
        );
        assert_eq!(
            request_segments("/x/My%20File%20(1).txt"),
            ["x", "My File (1).txt"]
        );
    }

    #[test]
    fn glob_matching() {
        let mut caps = Vec::new();
        assert!(glob(
            "range(address={id})",
            "Range(address='A1:B2')",
            &mut caps
        ));
        assert_eq!(caps, [(14, 21)]);
        caps.clear();
        assert!(glob(
            "cell(row={id},column={id})",
            "cell(row=1,column=22)",
            &mut caps
        ));
        assert_eq!(caps, [(9, 10), (18, 20)]);
        caps.clear();
        assert!(!glob(
            "cell(row={id},column={id})",
            "cell(row=,column=2)",
            &mut caps
        ));
        assert!(!glob(
            "range(address={id})",
            "range(addr='A1')",
            &mut Vec::new()
        ));
        assert!(!glob("{id}:", "folder", &mut Vec::new()));
        assert!(glob("{id}:", "folder/x.xlsx:", &mut Vec::new()));
    }

    #[test]
    fn unquoting() {
        assert_eq!(unquote("'abc'"), "abc");
        assert_eq!(unquote("appId='abc'"), "appId=abc");
        assert_eq!(unquote("roleTemplateId=62e9"), "roleTemplateId=62e9");
        assert_eq!(unquote("'o''brien'"), "o'brien");
        assert_eq!(unquote("plain"), "plain");
    }

    #[test]
    fn literal_parens() {
        assert!(literal_eq("delta", "delta()"));
        assert!(literal_eq("delta", "Delta"));
        assert!(!literal_eq("delta", "deltas"));
    }
}
