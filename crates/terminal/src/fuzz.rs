//! The body of the `request_form` fuzz target in `fuzz/` (cargo-fuzz, nightly), behind the
//! `fuzzing` feature so it does not ship in the product. `tests/fuzz_replay.rs` replays
//! every committed seed and finding through it on stable Rust in every test run. It takes
//! arbitrary bytes and must return without panicking; the properties it checks beyond that
//! are asserted here, once.

use futures_util::FutureExt;
use hyper::header::CONTENT_TYPE;

use crate::http::request;

/// Boundary the multipart target declares; inputs that use it reach the part parser.
pub const BOUNDARY: &str = "fuzzboundary";

/// Text fields the request target allows (the union of the API's forms).
const FIELDS: &[&str] = &["type", "name", "employee_id", "device_id", "ts_client"];

/// A request body as `/identify` or `/enroll` parses it. The first byte picks the
/// declared encoding: multipart with [`BOUNDARY`], JSON, or multipart whose boundary is
/// the input's first line; the rest is the body. True if the form parsed.
pub fn request_form(data: &[u8]) -> bool {
    let Some((&selector, mut body)) = data.split_first() else {
        return false;
    };
    let content_type = match selector % 3 {
        0 => format!("multipart/form-data; boundary={BOUNDARY}"),
        1 => "application/json".to_owned(),
        _ => {
            let line = body.split(|&b| b == b'\n').next().unwrap_or_default();
            let boundary = String::from_utf8_lossy(line).trim_end().to_owned();
            body = body.get(line.len() + 1..).unwrap_or_default();
            format!("multipart/form-data; boundary={boundary}")
        }
    };
    let Ok(req) = hyper::Request::builder()
        .header(CONTENT_TYPE, content_type)
        .body(())
    else {
        return false; // not a valid header value: hyper would have refused the request
    };
    let (parts, ()) = req.into_parts();
    let body = bytes::Bytes::copy_from_slice(body);
    // The whole body is in memory, so parsing never waits: a pending future is a bug.
    let parsed = request::fields(&parts, body, FIELDS)
        .now_or_never()
        .expect("form parsing of an in-memory body completed");
    let Ok(f) = parsed else {
        return false;
    };
    for name in FIELDS {
        if let Some(v) = f.get(name) {
            assert!(v.len() <= 1024, "{name} longer than the field limit");
        }
    }
    true
}
