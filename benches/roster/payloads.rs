//! The roster's CBOR written by hand (`ciborium::Value`, not the crate's types), as a
//! subscriber following the documented schema would: so the bench checks the schema too.

use ciborium::Value;

use crate::common;
use crate::{EMBEDDER, SITE};

pub(crate) fn text(s: &str) -> Value {
    Value::Text(s.into())
}

pub(crate) fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (text(k), v)).collect())
}

pub(crate) fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

pub(crate) fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some(key)))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key} in {v:?}"))
}

pub(crate) fn uint(v: &Value) -> u64 {
    v.as_integer().map(|i| u64::try_from(i).unwrap()).unwrap()
}

/// A dlib-sized template (2 rows of 128 floats, unit length) as `.npy` bytes.
pub(crate) fn template(seed: u64) -> Vec<u8> {
    use ndarray_npy::WriteNpyExt;
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut rows = ndarray::Array2::<f32>::zeros((2, 128));
    for mut r in rows.outer_iter_mut() {
        for v in r.iter_mut() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *v = ((x >> 33) as f32 / (1u64 << 31) as f32) - 0.5;
        }
        let n = r.dot(&r).sqrt();
        r.mapv_inplace(|v| v / n);
    }
    let mut out = Vec::new();
    rows.write_npy(&mut out).unwrap();
    out
}

/// A face crop as a terminal keeps it: a real photo's centre, 150x150 PNG.
pub(crate) fn crop() -> Vec<u8> {
    let img = image::open(common::dev_photo("caltech_p02/2.jpg")).unwrap();
    let (w, h) = (img.width(), img.height());
    let side = w.min(h) / 2;
    let c = img
        .crop_imm((w - side) / 2, (h - side) / 2, side, side)
        .resize_exact(150, 150, image::imageops::FilterType::Triangle);
    let mut out = std::io::Cursor::new(Vec::new());
    c.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// One enrolment change (schema v1), made at terminal `dev`.
pub(crate) fn change(id: &str, dev: &str, n: u64, crop: &[u8]) -> Value {
    let face = map(vec![
        ("face_id", text(&uuid::Uuid::now_v7().to_string())),
        ("embedder", text(EMBEDDER)),
        ("template", Value::Bytes(template(n))),
        ("crop", Value::Bytes(crop.to_vec())),
        ("quality", Value::Float(0.9)),
        ("device_id", text(dev)),
    ]);
    map(vec![
        ("change_id", text(&uuid::Uuid::now_v7().to_string())),
        ("employee_id", text(id)),
        ("site", text(SITE)),
        ("device_id", text(dev)),
        ("ts", text("2026-12-03T09:00:00.000+00:00")),
        (
            "op",
            map(vec![
                ("op", text("enrol")),
                ("name", text(&format!("person {n}"))),
                ("faces", Value::Array(vec![face])),
            ]),
        ),
    ])
}
