//! Assembles the catalog from the JSON files of `data/` at compile time and
//! writes it, in the compact form of `src/blob.rs`, to `OUT_DIR/catalog.bin`,
//! which the library embeds. Parsing ~4.5 MB of JSON, normalising ~19,000
//! catalog paths and resolving GUIDs thus happens once per build instead of
//! once per process.
//!
//! The parsing and assembly code is the library's own (`src/*.rs`, included
//! below), so `Catalog::from_json` and the embedded catalog cannot diverge;
//! a test checks that they are equal.

use std::error::Error;
use std::path::PathBuf;

// Included for `assemble::build` and `blob::encode`; the matching code and
// public helpers they carry along are unused here.
#[allow(dead_code)]
#[path = "src/assemble.rs"]
mod assemble;
#[allow(dead_code)]
#[path = "src/blob.rs"]
mod blob;
#[allow(dead_code)]
#[path = "src/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "src/raw.rs"]
mod raw;
#[allow(dead_code)]
#[path = "src/route.rs"]
mod route;

use model::{CatalogError, IdSource, Permission, PermissionVariant, Scheme};

const FILES: [&str; 3] = [
    "permissions.json",
    "provisioningInfo.json",
    "permissions-descriptions.json",
];

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR not set")?);
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR not set")?);
    println!("cargo::rerun-if-changed=build.rs");
    for src in ["assemble.rs", "blob.rs", "model.rs", "raw.rs", "route.rs"] {
        println!("cargo::rerun-if-changed=src/{src}");
    }
    let mut data = Vec::with_capacity(FILES.len());
    for name in FILES {
        let src = manifest_dir.join("data").join(name);
        println!("cargo::rerun-if-changed={}", src.display());
        data.push(std::fs::read(&src).map_err(|e| format!("{}: {e}", src.display()))?);
    }
    let [permissions, provisioning, descriptions] = data.as_slice() else {
        return Err("expected three data files".into());
    };
    let (perms, router) = assemble::build(permissions, provisioning, descriptions)
        .map_err(|e: CatalogError| format!("data/{e}"))?;
    std::fs::write(out_dir.join("catalog.bin"), blob::encode(&perms, &router))?;
    Ok(())
}
