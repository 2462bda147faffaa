//! The gate in front of every Graph operation.

use gatehouse_engine::RequestContext;
use gatehouse_engine::graph::{self, GraphCall, RequestFacts, TokenFacts};
use gatehouse_idp::AppState;
use gatehouse_idp::context::request_context;
use gatehouse_jose::jws;
use http::HeaderMap;

/// The bearer token as Graph sees it.
pub fn token_facts(state: &AppState, headers: &HeaderMap) -> TokenFacts {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return TokenFacts::Missing;
    };
    let Some(token) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
    else {
        return TokenFacts::Missing;
    };
    if token.is_empty() {
        return TokenFacts::Missing;
    }
    match jws::verify(&state.keyring, token) {
        Ok(claims) => TokenFacts::Verified(claims),
        Err(e) => match jws::decode_unverified(token) {
            Ok(d) => TokenFacts::BadSignature(e.to_string(), d.claims),
            Err(_) => TokenFacts::NotJwt,
        },
    }
}

pub struct Allowed {
    pub call: GraphCall,
    pub ctx: RequestContext,
}

/// Authenticate and authorize; a denial comes back rendered.
pub async fn enforce(
    state: &AppState,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    facts: &RequestFacts,
) -> Result<Allowed, axum::response::Response> {
    let ctx = request_context(state, headers, None);
    let dir = state.directory();
    let issuer_v2 = format!("{}/{}/v2.0", state.config.public_base, dir.tenant.id);
    let facts_token = token_facts(state, headers);
    let revoked = match &facts_token {
        TokenFacts::Verified(claims) => match claims.get("uti").and_then(|u| u.as_str()) {
            Some(uti) => {
                matches!(state.store.get_handle("at", uti).await, Ok(Some(h)) if h.revoked)
            }
            None => false,
        },
        _ => false,
    };
    let decided =
        graph::authenticate(&dir, facts_token, revoked, &issuer_v2, ctx.unix()).and_then(|call| {
            graph::authorize(&dir, &call, method, path, facts, &state.config.public_base)
                .map(|()| call)
        });
    match decided {
        Ok(call) => Ok(Allowed { call, ctx }),
        Err(d) => Err(crate::reply::denial(state, &d, &ctx, "graph").await),
    }
}
