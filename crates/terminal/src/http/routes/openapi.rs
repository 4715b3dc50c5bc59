//! `GET /openapi.json`: the API's contract (`docs/openapi.json`, compiled in). The
//! router's tests fail when a route is missing from it, and the integration tests
//! validate every answer against it.

use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use crate::http::response::{Body, full};

pub(crate) const DOCUMENT: &str = include_str!("../../../../../docs/openapi.json");

pub(crate) fn get() -> Response<Body> {
    let mut r = Response::new(full(DOCUMENT));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}
