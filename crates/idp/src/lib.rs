//! The Microsoft identity platform endpoints (Entra ID v2.0): discovery, keys, authorize
//! with its sign-in and consent pages, token (one file per grant), device code, admin
//! consent and logout. Handlers gather facts and render; decisions come from
//! `gatehouse-engine`.

pub mod clock;
pub mod context;
pub mod discovery;
pub mod grants;
pub mod issue;
pub mod pages;
pub mod render;
pub mod router;
pub mod state;

pub use clock::Clock;
pub use router::router;
pub use state::{AppState, IdpConfig};
