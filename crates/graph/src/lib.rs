//! Microsoft Graph v1.0 (the directory part) behind Graph's authorization rules, and a
//! minimal Azure AD Graph for the "wrong resource, or vice versa" case.
//!
//! Every request goes through `enforce`: the token and the operation are judged by the
//! engine, a denial is rendered in Graph's shape with our diagnosis header, and only an
//! allowed request reaches the operation.

pub mod aadgraph;
pub mod enforce;
pub mod odata;
pub mod ops;
pub mod reply;

use axum::Router;
use axum::routing::any;
use gatehouse_idp::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1.0/{*rest}", any(ops::dispatch))
        .route("/aadgraph/{tenant}/{*rest}", any(aadgraph::dispatch))
        .with_state(state)
}
