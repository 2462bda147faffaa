//! Compact binary form of an assembled catalog.
//!
//! `build.rs` parses the JSON files of `data/` with the same code as
//! [`Catalog::from_json`](crate::Catalog::from_json), encodes the result with
//! [`encode`] into `OUT_DIR/catalog.bin`, and the library embeds that file and
//! [`decode`]s it on first use: no JSON parsing, path normalisation or GUID
//! resolution at run time.
//!
//! Format (all integers little-endian, lengths and counts `u32`): a magic
//! header, the permissions, then the router (see `Router::encode`; its
//! fixed-size record tables are used in place, not copied). A string is its
//! byte length and UTF-8 bytes; an optional value is a `0`/`1` byte, then the
//! value if `1`. The output is deterministic (no hash order). Also compiled
//! into `build.rs`.

use std::borrow::Cow;

use uuid::Uuid;

use crate::route::{Layout, Router};
use crate::{IdSource, Permission, PermissionVariant};

/// Format identifier and version; bump the last byte on any format change.
const MAGIC: &[u8; 8] = b"GHCATv\0\x01";

/// Appends values to a byte buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn pos(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A length or count. The catalog's are far below `u32::MAX`; a larger
    /// one is written as `u32::MAX`, which the reader rejects.
    pub(crate) fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.len(s.len());
        self.bytes(s.as_bytes());
    }

    fn opt_str(&mut self, s: Option<&str>) {
        self.bool(s.is_some());
        if let Some(s) = s {
            self.str(s);
        }
    }
}

/// Reads values written by [`Writer`]; every method returns `None` on
/// truncated or malformed input.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    /// Length of the whole input.
    total: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            total: buf.len(),
        }
    }

    /// Offset of the next byte in the whole input.
    pub(crate) fn pos(&self) -> usize {
        self.total - self.buf.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.buf.split_at_checked(n)?;
        self.buf = tail;
        Some(head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&b, tail) = self.buf.split_first()?;
        self.buf = tail;
        Some(b)
    }

    pub(crate) fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    /// A length or count; `u32::MAX` (an overflowed length) is rejected.
    pub(crate) fn len(&mut self) -> Option<usize> {
        let n = self.u32()?;
        if n == u32::MAX {
            return None;
        }
        usize::try_from(n).ok()
    }

    pub(crate) fn str(&mut self) -> Option<&'a str> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).ok()
    }

    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_owned)
    }

    fn opt_string(&mut self) -> Option<Option<String>> {
        if self.bool()? {
            self.string().map(Some)
        } else {
            Some(None)
        }
    }

    /// A count of items each at least `min_size` bytes long: rejected if the
    /// rest of the input is too short for it, so that a corrupt count cannot
    /// trigger a huge allocation.
    pub(crate) fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = self.len()?;
        (n.checked_mul(min_size)? <= self.buf.len()).then_some(n)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Encodes an assembled catalog.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn encode(perms: &[Permission], router: &Router) -> Vec<u8> {
    let mut w = Writer::default();
    w.bytes(MAGIC);
    w.len(perms.len());
    for p in perms {
        w.str(&p.name);
        w.bool(p.rsc);
        for v in [&p.delegated, &p.application, &p.delegated_personal] {
            w.bool(v.is_some());
            if let Some(v) = v {
                encode_variant(&mut w, v);
            }
        }
    }
    router.encode(&mut w);
    w.buf
}

fn encode_variant(w: &mut Writer, v: &PermissionVariant) {
    w.bytes(v.id.as_bytes());
    w.str(&v.admin_display_name);
    w.str(&v.admin_description);
    w.opt_str(v.user_display_name.as_deref());
    w.opt_str(v.user_description.as_deref());
    w.bool(v.requires_admin_consent);
    w.bool(v.privilege_level.is_some());
    w.u8(v.privilege_level.unwrap_or(0));
    w.u8(match v.id_source {
        IdSource::Provisioning => 0,
        IdSource::Descriptions => 1,
        IdSource::ProvisioningOtherResource => 2,
        IdSource::ProvisioningHidden => 3,
        IdSource::Synthetic => 4,
    });
}

/// Decodes what [`encode`] wrote; `None` if the input is malformed. The
/// router keeps (borrowing, for the embedded blob) `bytes` for its tables.
pub(crate) fn decode(bytes: Cow<'static, [u8]>) -> Option<(Vec<Permission>, Router)> {
    let (perms, layout) = decode_parts(&bytes)?;
    Some((perms, Router::from_layout(bytes, layout)))
}

fn decode_parts(bytes: &[u8]) -> Option<(Vec<Permission>, Layout)> {
    let mut r = Reader::new(bytes);
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let n = r.count(8)?;
    let mut perms = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string()?;
        let rsc = r.bool()?;
        let mut variants = [None, None, None];
        for slot in &mut variants {
            if r.bool()? {
                *slot = Some(decode_variant(&mut r)?);
            }
        }
        let [delegated, application, delegated_personal] = variants;
        perms.push(Permission {
            name,
            delegated,
            application,
            delegated_personal,
            rsc,
        });
    }
    let layout = Router::read(&mut r)?;
    r.is_empty().then_some((perms, layout))
}

fn decode_variant(r: &mut Reader<'_>) -> Option<PermissionVariant> {
    let id = Uuid::from_bytes(r.take(16)?.try_into().ok()?);
    let admin_display_name = r.string()?;
    let admin_description = r.string()?;
    let user_display_name = r.opt_string()?;
    let user_description = r.opt_string()?;
    let requires_admin_consent = r.bool()?;
    let has_level = r.bool()?;
    let level = r.u8()?;
    let id_source = match r.u8()? {
        0 => IdSource::Provisioning,
        1 => IdSource::Descriptions,
        2 => IdSource::ProvisioningOtherResource,
        3 => IdSource::ProvisioningHidden,
        4 => IdSource::Synthetic,
        _ => return None,
    };
    Some(PermissionVariant {
        id,
        admin_display_name,
        admin_description,
        user_display_name,
        user_description,
        requires_admin_consent,
        privilege_level: has_level.then_some(level),
        id_source,
    })
}
