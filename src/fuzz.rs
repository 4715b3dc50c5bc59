//! Entry points of the fuzz targets in `fuzz/` (cargo-fuzz, nightly), kept in the library
//! so that `tests/fuzz_regressions.rs` replays every committed finding and seed on stable
//! Rust in every test run. Each takes arbitrary bytes and must return without panicking;
//! the properties they check beyond that are asserted here, once.

use std::sync::{Arc, OnceLock};

use futures_util::FutureExt;
use hyper::header::CONTENT_TYPE;

use crate::event::EventBatch;
use crate::face::decode::DecodeLimits;
use crate::face::embed::HogEmbedder;
use crate::face::pipeline::{FacePipeline, PipelineConfig};
use crate::http::request;
use crate::uplink::sink::{self, Decoded, Message};

/// Boundary the multipart target declares; inputs that use it reach the part parser.
pub const BOUNDARY: &str = "fuzzboundary";

/// Text fields the request target allows (the union of the API's forms).
const FIELDS: &[&str] = &["type", "name", "employee_id", "device_id", "ts_client"];

/// An uploaded photo through decode, detection, the gates and (if it passes) embedding:
/// what `/identify` and `/enroll` do with an image, with the production limits.
pub fn image_upload(bytes: &[u8]) {
    static PIPELINE: OnceLock<FacePipeline> = OnceLock::new();
    let pipeline = PIPELINE.get_or_init(|| {
        FacePipeline::new(
            PipelineConfig::default(),
            DecodeLimits::default(),
            Arc::new(HogEmbedder::new()),
        )
    });
    if let Ok(accepted) = pipeline.accept(bytes) {
        let e = pipeline.embedder().embed(&accepted.crop);
        assert_eq!(e.0.len(), pipeline.embedder().dim());
        assert!(e.0.iter().all(|x| x.is_finite()), "non-finite embedding");
    }
}

/// A request body as `/identify` or `/enroll` parses it. The first byte picks the
/// declared encoding: multipart with [`BOUNDARY`], JSON, or multipart whose boundary is
/// the input's first line; the rest is the body.
pub fn request_form(data: &[u8]) {
    let Some((&selector, mut body)) = data.split_first() else {
        return;
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
        return; // not a valid header value: hyper would have refused the request
    };
    let (parts, ()) = req.into_parts();
    let body = bytes::Bytes::copy_from_slice(body);
    // The whole body is in memory, so parsing never waits: a pending future is a bug.
    let parsed = request::fields(&parts, body, FIELDS)
        .now_or_never()
        .expect("form parsing of an in-memory body completed");
    if let Ok(f) = parsed {
        for name in FIELDS {
            if let Some(v) = f.get(name) {
                assert!(v.len() <= 1024, "{name} longer than the field limit");
            }
        }
    }
}

/// An MQTT message on a terminal's events topic as the uplink decodes it, and the rows
/// it would write. A batch that decodes must survive re-encoding unchanged.
pub fn event_message(payload: &[u8]) {
    let m = Message {
        topic: crate::mqtt::events_topic("fuzz", "T1"),
        payload: payload.to_vec(),
    };
    if let Decoded::Events(events) = sink::decode(&m) {
        for e in &events {
            let _ = sink::row(e);
        }
        let again = EventBatch {
            v: crate::event::SCHEMA_VERSION,
            events,
        };
        let round = EventBatch::from_cbor(&again.to_cbor()).expect("re-encoded batch decodes");
        assert_eq!(round, again, "CBOR round trip changed a batch");
    }
    let _ = crate::uplink::decode_to_json(payload);
}
