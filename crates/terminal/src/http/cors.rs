//! CORS from a configured allow-list only (the spec's `cors.py`): a browser page served
//! from an allowed origin (an HR dashboard) may call the API; any other origin gets no
//! CORS headers, so the browser blocks it. Credentials are never allowed cross-origin —
//! keys travel in headers the page sets itself.

use hyper::HeaderMap;
use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, HOST, HeaderValue, ORIGIN, VARY,
};

/// The headers to add for a request with these headers, if its origin is allowed.
pub(crate) fn headers_for(allowed: &[String], request: &HeaderMap) -> Option<HeaderMap> {
    let origin = request.get(ORIGIN)?;
    let o = origin.to_str().ok()?;
    if !allowed.iter().any(|a| a == o) {
        return None;
    }
    let mut h = HeaderMap::new();
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(VARY, HeaderValue::from_static("Origin"));
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    h.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, x-api-key, content-type, accept-language"),
    );
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    Some(h)
}

/// Whether a changing request may come from the page that sent it: no `Origin` (not a
/// browser, or a same-origin request of an old one), the terminal's own pages (the
/// `Origin` names the `Host` asked for), or an origin `http.cors_allow_origins` lists.
/// A page elsewhere can make a browser send a form here (a "simple" request needs no
/// preflight), never with a key: this refuses it when no key was presented.
pub(crate) fn origin_allowed(allowed: &[String], request: &HeaderMap) -> bool {
    let Some(origin) = request.get(ORIGIN) else {
        return true;
    };
    let Ok(o) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a == o) {
        return true;
    }
    let authority = o
        .strip_prefix("http://")
        .or_else(|| o.strip_prefix("https://"));
    let host = request.get(HOST).and_then(|h| h.to_str().ok());
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changing_requests_come_from_the_terminals_pages_or_listed_origins() {
        let allowed = vec!["https://hr.example.com".to_owned()];
        let mut req = HeaderMap::new();
        req.insert(HOST, HeaderValue::from_static("10.0.0.5:5000"));
        assert!(
            origin_allowed(&allowed, &req),
            "no Origin: not a cross-site page"
        );
        for (origin, ok) in [
            ("http://10.0.0.5:5000", true),
            ("https://hr.example.com", true),
            ("https://evil.example", false),
            ("http://10.0.0.5:5001", false),
            ("null", false),
        ] {
            req.insert(ORIGIN, HeaderValue::from_static(origin));
            assert_eq!(origin_allowed(&allowed, &req), ok, "{origin}");
        }
    }

    #[test]
    fn only_listed_origins_get_headers_and_never_a_wildcard() {
        let allowed = vec!["https://hr.example.com".to_owned()];
        let mut req = HeaderMap::new();
        assert!(headers_for(&allowed, &req).is_none(), "no Origin, no CORS");
        req.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(headers_for(&allowed, &req).is_none());
        req.insert(ORIGIN, HeaderValue::from_static("https://hr.example.com"));
        let h = headers_for(&allowed, &req).unwrap();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://hr.example.com");
        assert!(!h.contains_key(hyper::header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
        assert!(headers_for(&[], &req).is_none(), "empty list: CORS off");
    }
}
