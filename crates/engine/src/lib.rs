//! The decision engine: every yes or no Gatehouse gives comes from here.
//!
//! Pure: inputs are the request, facts the caller gathered (a stored code, whether a
//! password matched), a read-only directory and the time. Output is either a value to
//! act on or a [`Denial`], which carries the cause, the evidence, the fix and the exact
//! wire error that Entra or Graph would send. HTTP layers only render `Denial::wire`.

pub mod ca;
pub mod cause;
pub mod denial;
pub mod doctor;
pub mod graph;
pub mod pkce;
pub mod scope;
pub mod token;
pub mod wire;

pub use cause::{Cause, Section};
pub use denial::{Denial, Fact, Step};
pub use wire::{RequestContext, WireError};

/// The strings of a JSON array member (`amr`, `roles`, `wids`, `acrs`); a lone string counts as one.
pub fn strings(v: Option<&serde_json::Value>) -> Vec<String> {
    match v {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(serde_json::Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}
