//! Test support the crates above share (feature `testing`, on in their dev-dependencies):
//! valid messages to start a test from.

use attendance_core::clock::ClockSync;
use attendance_core::punch::PunchKind;

use crate::event::{AttendanceEvent, Source};
use crate::roster::wire::{Change, Face, Op};

/// A valid recognised punch.
pub fn sample() -> AttendanceEvent {
    AttendanceEvent {
        v: 1,
        event_id: uuid::Uuid::now_v7().to_string(),
        employee_id: Some("EMP001".into()),
        kind: PunchKind::In,
        device_id: "KIOSK_01".into(),
        site: "hq".into(),
        source: Source::Upload,
        distance: Some(0.21),
        threshold: Some(0.3),
        embedder: Some("hog-v1".into()),
        reason: None,
        detail: None,
        ts_server: "2026-11-24T09:00:00.000+00:00".into(),
        ts_client: Some("2026-11-24T18:00:00+09:00".into()),
        clock: Some(ClockSync::Synced),
    }
}

/// A real hog-v1 template (one row).
pub fn npy() -> Vec<u8> {
    attendance_face::template::encode(&[attendance_face::Embedding::normalised(vec![1.0; 3528])])
        .unwrap()
}

/// A crop-sized PNG.
pub fn png() -> Vec<u8> {
    attendance_face::encode::png(&image::RgbImage::new(40, 40)).unwrap()
}

pub fn face() -> Face {
    Face {
        face_id: uuid::Uuid::now_v7().to_string(),
        embedder: "hog-v1".into(),
        template: Some(npy()),
        crop: Some(png()),
        quality: 0.8,
        device_id: Some("K1".into()),
        learned: false,
    }
}

pub fn enrol(id: &str, name: &str) -> Change {
    Change {
        change_id: uuid::Uuid::now_v7().to_string(),
        employee_id: id.into(),
        site: "hq".into(),
        device_id: Some("K1".into()),
        ts: "2026-12-03T09:00:00.000+00:00".into(),
        op: Op::Enrol {
            name: name.into(),
            faces: vec![face()],
            retire: Vec::new(),
        },
    }
}
