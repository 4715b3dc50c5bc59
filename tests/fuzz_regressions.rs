//! Replays the fuzz targets' committed seeds and findings (`fuzz/seeds`, `fuzz/regressions`)
//! through the same entry points the fuzzers drive, on stable Rust: a crash once found
//! stays fixed. The fuzzing itself is `scripts/fuzz` (nightly, minutes per target).

use std::path::{Path, PathBuf};

use attendance::event::{AttendanceEvent, EventBatch, SCHEMA_VERSION, Source};
use attendance::punch::PunchKind;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("image_upload", attendance::fuzz::image_upload),
    ("request_form", attendance::fuzz::request_form),
    ("event_message", attendance::fuzz::event_message),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.is_file());
    out.sort();
    out
}

#[test]
fn every_committed_seed_and_finding_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, target) in TARGETS {
        let mut inputs = files(&root.join("fuzz/seeds").join(name));
        inputs.extend(files(&root.join("fuzz/regressions").join(name)));
        if *name == "image_upload" {
            let demo = files(&root.join("assets/demo"));
            inputs.extend(
                demo.into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "jpg")),
            );
        }
        assert!(!inputs.is_empty(), "{name}: no seeds found");
        for p in inputs {
            let data = std::fs::read(&p).unwrap();
            eprintln!("{name}: {}", p.display());
            target(&data);
        }
    }
}

#[test]
fn the_event_seed_is_a_valid_batch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seed = std::fs::read(root.join("fuzz/seeds/event_message/batch")).unwrap();
    let batch = EventBatch::from_cbor(&seed).expect("the seed decodes");
    assert_eq!(batch.events.len(), 3);
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
    attendance::fuzz::event_message(&batch.to_cbor());
}
