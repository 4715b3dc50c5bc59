//! `/session`: an admin's browser signs in with the admin key once and gets an HttpOnly
//! cookie and a CSRF token (see `http::session`). `GET` says whether the browser is
//! signed in (and gives the page its CSRF token again after a reload), `DELETE` signs
//! out.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use sha2::Digest;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, SET_COOKIE};
use hyper::{HeaderMap, Request, Response, StatusCode};
use serde_json::json;

use crate::http::App;
use crate::http::auth::{Access, Denied};
use crate::http::request::{fields, read_body};
use crate::http::response::{ApiError, Body, json};
use crate::http::session::{self, cookie_token};
use crate::terminal::TerminalError;
use attendance_core::reason::Reason;

/// `{"signed_in", "csrf", "keys_required"}`.
fn state(signed_in: bool, csrf: Option<&str>, keys_required: bool) -> Response<Body> {
    json(
        StatusCode::OK,
        &json!({
            "signed_in": signed_in,
            "csrf": csrf,
            "keys_required": keys_required,
        }),
    )
}

pub(crate) fn get(app: &Arc<App>, headers: &HeaderMap) -> Response<Body> {
    let required = app.keys().enforced();
    let csrf = app
        .sessions
        .check(cookie_token(headers), None, false, Instant::now())
        .ok();
    state(csrf.is_some() || !required, csrf.as_deref(), required)
}

pub(crate) async fn post(
    app: &Arc<App>,
    req: Request<Incoming>,
    peer: IpAddr,
) -> Result<Response<Body>, ApiError> {
    let secure = app.tls().is_some();
    let now = Instant::now();
    if let Err(wait) = app.sessions.may_sign_in(peer, now) {
        return Err(
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, Reason::TooManyAttempts)
                .detail(format!(
                    "{} failed sign-ins from this address lately; try again later",
                    session::SIGN_IN_FAILURES
                ))
                .retry_after(wait),
        );
    }
    let (parts, body) = read_body(req, 4096).await?;
    let f = fields(&parts, body, &["key"]).await?;
    let key = f.get("key").unwrap_or("");
    let checked = app.keys().authorize(Access::Admin, Some(key));
    if let Err(denied) = checked.and_then(|()| {
        // With no key configured anything would pass: there is nothing to sign in to.
        if app.keys().enforced() {
            Ok(())
        } else {
            Err(Denied::Unauthenticated)
        }
    }) {
        if denied == Denied::Unauthenticated {
            app.sessions.sign_in_failed(peer, now);
        }
        return Err(ApiError::new(denied.status(), denied.reason())
            .detail("an admin key signs in; with no keys configured the API is open"));
    }
    let digest: [u8; 32] = sha2::Sha256::digest(key.as_bytes()).into();
    let (token, csrf) = app
        .sessions
        .open(digest, now)
        .ok_or_else(|| TerminalError::Internal("no random numbers".into()))?;
    let mut r = state(true, Some(&csrf), true);
    let cookie = session::set_cookie(&token, app.sessions.cookie_age(), secure);
    r.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_str(&cookie)
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Reason::InternalError))?,
    );
    Ok(r)
}

pub(crate) fn delete(app: &Arc<App>, headers: &HeaderMap) -> Response<Body> {
    if let Some(token) = cookie_token(headers) {
        app.sessions.close(token);
    }
    let mut r = state(false, None, app.keys().enforced());
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}
