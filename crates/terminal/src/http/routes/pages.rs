//! `GET /`, `GET /admin`, `GET /assets/{name}`: the door's kiosk page and the admin page,
//! compiled into the binary (a terminal may be offline: no CDN, no files to lose). They
//! hold no key and no personal data; what they show comes from the API with the
//! browser's own access (the terminal itself, or an admin session).

use hyper::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use crate::http::response::{ApiError, Body, full};
use attendance_core::reason::Reason;

/// Scripts and styles from this origin only, no framing by other sites.
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; \
                   style-src 'self'; script-src 'self'; connect-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The assets by name: bytes and media type.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "kiosk.js",
        include_str!("../../../../../assets/web/kiosk.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "admin.js",
        include_str!("../../../../../assets/web/admin.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "common.js",
        include_str!("../../../../../assets/web/common.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "style.css",
        include_str!("../../../../../assets/web/style.css"),
        "text/css; charset=utf-8",
    ),
];

fn page(body: &'static str, media: &'static str) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(media));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    // A new binary brings new pages; revalidating is cheap on a LAN.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

pub(crate) fn kiosk() -> Response<Body> {
    page(
        include_str!("../../../../../assets/web/kiosk.html"),
        "text/html; charset=utf-8",
    )
}

pub(crate) fn admin() -> Response<Body> {
    page(
        include_str!("../../../../../assets/web/admin.html"),
        "text/html; charset=utf-8",
    )
}

pub(crate) fn asset(name: &str) -> Result<Response<Body>, ApiError> {
    ASSETS
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, body, media)| page(body, media))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, Reason::NotFound).detail(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_a_page_names_is_served() {
        let pages = [
            include_str!("../../../../../assets/web/kiosk.html"),
            include_str!("../../../../../assets/web/admin.html"),
        ];
        let mut named = 0;
        for page in pages {
            for part in page.split("/assets/").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                    .collect();
                assert!(asset(&name).is_ok(), "{name}");
                named += 1;
            }
        }
        assert!(named >= 4);
        assert!(asset("../Cargo.toml").is_err());
    }
}
