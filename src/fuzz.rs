//! Entry points of the fuzz targets in `fuzz/` (cargo-fuzz, nightly), behind the
//! `fuzzing` feature so they do not ship in the product. The tests below replay every
//! committed seed and finding through them on stable Rust in every test run. Each takes
//! arbitrary bytes and must return without panicking; the properties they check beyond
//! that are asserted here, once. They return what they made of the input, so the replay
//! can tell a seed that is accepted from one that is refused.

use std::sync::{Arc, OnceLock};

use futures_util::FutureExt;
use hyper::header::CONTENT_TYPE;

use crate::event::EventBatch;
use crate::face::decode::DecodeLimits;
use crate::face::embed::HogEmbedder;
use crate::face::pipeline::{FacePipeline, PipelineConfig};
use crate::http::request;
use crate::uplink::decode::{Decoded, Message, decode};
use crate::uplink::sink;

/// Boundary the multipart target declares; inputs that use it reach the part parser.
pub const BOUNDARY: &str = "fuzzboundary";

/// Text fields the request target allows (the union of the API's forms).
const FIELDS: &[&str] = &["type", "name", "employee_id", "device_id", "ts_client"];

/// An uploaded photo through decode, detection, the gates and (if it passes) embedding:
/// what `/identify` and `/enroll` do with an image, with the production limits. True if
/// a face passed the gates.
pub fn image_upload(bytes: &[u8]) -> bool {
    static PIPELINE: OnceLock<FacePipeline> = OnceLock::new();
    let pipeline = PIPELINE.get_or_init(|| {
        FacePipeline::new(
            PipelineConfig::default(),
            DecodeLimits::default(),
            Arc::new(HogEmbedder::new()),
        )
    });
    let Ok(accepted) = pipeline.accept(bytes) else {
        return false;
    };
    let e = pipeline.embedder().embed(&accepted.crop);
    assert_eq!(e.0.len(), pipeline.embedder().dim());
    assert!(e.0.iter().all(|x| x.is_finite()), "non-finite embedding");
    true
}

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

/// An MQTT message on a terminal's events topic as the uplink decodes it, and the rows
/// it would write. A batch that decodes must survive re-encoding unchanged. The number
/// of events, if it is a valid batch.
pub fn event_message(payload: &[u8]) -> Option<usize> {
    let m = Message {
        topic: crate::mqtt::device_topic("fuzz", "T1", crate::mqtt::DeviceTopic::Events),
        payload: payload.to_vec(),
    };
    let decoded = match decode(&m) {
        Decoded::Events { terminal, events } => {
            for e in &events {
                let _ = sink::row(e, &terminal);
            }
            let again = EventBatch {
                v: crate::event::SCHEMA_VERSION,
                events,
            };
            let round = EventBatch::from_cbor(&again.to_cbor()).expect("re-encoded batch decodes");
            assert_eq!(round, again, "CBOR round trip changed a batch");
            Some(again.events.len())
        }
        Decoded::Changes(_) => unreachable!("an events topic decodes as events or dead"),
        Decoded::Dead(_) => None,
    };
    let _ = crate::uplink::decode_to_json(payload);
    decoded
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::event::{AttendanceEvent, SCHEMA_VERSION, Source};
    use crate::punch::PunchKind;

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// The files of a committed folder; a missing folder fails (it would replay nothing).
    fn files(dir: &Path) -> Vec<PathBuf> {
        let rd = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e} (the folder must exist)", dir.display()));
        let mut out: Vec<PathBuf> = rd
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.is_file())
            .collect();
        out.sort();
        out
    }

    fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let found: Vec<_> = files(&root().join("fuzz").join(kind).join(target))
            .into_iter()
            .map(|p| {
                let data = std::fs::read(&p).unwrap();
                (p, data)
            })
            .collect();
        assert!(!found.is_empty(), "{kind}/{target}: no inputs");
        found
    }

    #[test]
    fn every_seed_and_finding_of_the_image_target_runs_clean() {
        let mut accepted = 0;
        for (p, data) in inputs("seeds", "image_upload") {
            accepted += usize::from(image_upload(&data));
            eprintln!("seed {}", p.display());
        }
        // The seeds are small copies of the demo faces; at least one must reach the
        // embedder, or the fuzzer explores nothing past the gates.
        assert!(accepted >= 1, "no seed passed the gates");
        for (p, data) in inputs("regressions", "image_upload") {
            assert!(!image_upload(&data), "{} was accepted", p.display());
        }
        let demo: Vec<_> = files(&root().join("assets/demo"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
            .collect();
        assert!(!demo.is_empty());
        for p in demo {
            assert!(image_upload(&std::fs::read(&p).unwrap()), "{}", p.display());
        }
    }

    #[test]
    fn every_seed_and_finding_of_the_form_target_runs_clean() {
        for (p, data) in inputs("seeds", "request_form") {
            assert!(request_form(&data), "seed {} did not parse", p.display());
        }
        for (p, data) in inputs("regressions", "request_form") {
            // Refused or parsed: either, without a panic.
            let parsed = request_form(&data);
            eprintln!("{}: parsed {parsed}", p.display());
        }
    }

    #[test]
    fn every_seed_and_finding_of_the_event_target_runs_clean() {
        let seeds: Vec<_> = inputs("seeds", "event_message")
            .into_iter()
            .map(|(p, data)| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, event_message(&data))
            })
            .collect();
        assert!(
            seeds.contains(&("batch".into(), Some(3))),
            "the batch seed is a valid batch of three: {seeds:?}"
        );
        for (p, data) in inputs("regressions", "event_message") {
            assert_eq!(event_message(&data), None, "{} was accepted", p.display());
        }
    }

    #[test]
    fn a_valid_batch_survives_the_event_target() {
        let e = AttendanceEvent {
            v: SCHEMA_VERSION,
            event_id: "0190f000-0000-7000-8000-000000000001".into(),
            employee_id: Some("EMP001".into()),
            kind: PunchKind::In,
            device_id: "T1".into(),
            site: "fuzz".into(),
            source: Source::Camera,
            distance: Some(0.31),
            threshold: Some(0.53),
            embedder: Some("dlib-resnet-v1".into()),
            reason: None,
            detail: None,
            ts_server: "2026-01-05T00:00:00.000Z".into(),
            ts_client: Some("2026-01-05T09:00:00+09:00".into()),
        };
        let batch = EventBatch {
            v: SCHEMA_VERSION,
            events: vec![e],
        };
        assert_eq!(event_message(&batch.to_cbor()), Some(1));
    }
}
