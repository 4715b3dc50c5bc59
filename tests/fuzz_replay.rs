//! Every committed seed and finding of the fuzz targets in `fuzz/`, replayed through the
//! targets' bodies (each crate's `fuzz` module, feature `fuzzing`, which the dev-dependencies
//! turn on) on stable Rust in every test run.

use std::path::{Path, PathBuf};

use attendance::event::{AttendanceEvent, EventBatch, SCHEMA_VERSION, Source};
use attendance::punch::PunchKind;
use attendance_face::fuzz::image_upload;
use attendance_terminal::fuzz::request_form;
use attendance_uplink::fuzz::event_message;

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
        clock: None,
    };
    let batch = EventBatch {
        v: SCHEMA_VERSION,
        events: vec![e],
    };
    assert_eq!(event_message(&batch.to_cbor()), Some(1));
}
