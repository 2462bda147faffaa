//! `GET /{tenant}/oauth2/v2.0/logout`: end the browser session. Redirects only to a URI
//! registered on some application (no open redirector).

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use gatehouse_jose::secrets::handle_digest;
use http::{HeaderMap, HeaderValue, StatusCode};

use super::flow::{clear_session_cookie, cookie};
use crate::grants::Form;
use crate::render::{html, page_headers};
use crate::state::AppState;

pub async fn logout_get(
    State(state): State<AppState>,
    Path(_tenant): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(raw) = cookie(&headers, "gh_session") {
        let _ = state
            .store
            .delete_handle("session", &handle_digest(raw))
            .await;
    }
    let dir = state.directory();
    let target = Form::parse(query.unwrap_or_default().as_bytes())
        .ok()
        .and_then(|f| {
            let uri = f.get("post_logout_redirect_uri")?.to_owned();
            let registered = dir
                .applications
                .iter()
                .any(|a| gatehouse_engine::token::redirect_uri_registered(a, &uri));
            registered.then(|| match f.get("state") {
                Some(s) => format!(
                    "{uri}{}state={}",
                    if uri.contains('?') { '&' } else { '?' },
                    form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                ),
                None => uri,
            })
        });
    let mut r = match target.and_then(|t| HeaderValue::from_str(&t).ok()) {
        Some(loc) => {
            let mut r = (StatusCode::FOUND, "").into_response();
            r.headers_mut().insert("location", loc);
            page_headers(r.headers_mut());
            r
        }
        None => html(
            StatusCode::OK,
            state.pages.message(
                "You signed out of your account",
                "It's a good idea to close all browser windows.",
            ),
        ),
    };
    clear_session_cookie(&mut r);
    r
}
