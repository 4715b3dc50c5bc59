//! The MQTT contract's CBOR made by hand, as a door that is not ours would make it:
//! events, roster changes, and the template of the roster attack.
#![allow(dead_code)]

use ciborium::Value;

use super::sites::HQ1;

pub fn text(s: &str) -> Value {
    Value::Text(s.into())
}

pub fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (text(k), v)).collect())
}

pub fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

pub fn uuid() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// One attendance event (schema v1) of `site`, from `device`, with `embedder`.
pub fn event(site: &str, device: &str, embedder: &str) -> Value {
    map(vec![
        ("v", Value::Integer(1.into())),
        ("event_id", text(&uuid())),
        ("employee_id", text(HQ1)),
        ("type", text("IN")),
        ("device_id", text(device)),
        ("site", text(site)),
        ("source", text("manual")),
        ("distance", Value::Null),
        ("threshold", Value::Null),
        ("embedder", text(embedder)),
        ("reason", Value::Null),
        ("detail", Value::Null),
        ("ts_server", text("2026-12-05T09:00:00.000+00:00")),
        ("ts_client", Value::Null),
    ])
}

pub fn batch(events: Vec<Value>) -> Vec<u8> {
    cbor(&map(vec![
        ("v", Value::Integer(1.into())),
        ("events", Value::Array(events)),
    ]))
}

/// A roster change (schema v1) of `site`, made at `device`.
pub fn change(site: &str, device: &str, employee_id: &str, op: Value) -> Value {
    map(vec![
        ("change_id", text(&uuid())),
        ("employee_id", text(employee_id)),
        ("site", text(site)),
        ("device_id", text(device)),
        ("ts", text("2026-12-05T09:00:00.000+00:00")),
        ("op", op),
    ])
}

pub fn enrol_op(name: &str, faces: Vec<Value>) -> Value {
    map(vec![
        ("op", text("enrol")),
        ("name", text(name)),
        ("faces", Value::Array(faces)),
    ])
}

pub fn delete_op() -> Value {
    map(vec![("op", text("delete"))])
}

pub fn face(embedder: &str, template: Vec<u8>) -> Value {
    map(vec![
        ("face_id", text(&uuid())),
        ("embedder", text(embedder)),
        ("template", Value::Bytes(template)),
        ("crop", Value::Null),
        ("quality", Value::Float(0.9)),
        ("device_id", text("R")),
    ])
}

/// A face learned at the door (`learned`, contract 1.1).
pub fn learned_face(embedder: &str, template: Vec<u8>) -> Value {
    let mut f = face(embedder, template);
    if let Value::Map(m) = &mut f {
        m.push((text("learned"), Value::Bool(true)));
    }
    f
}

/// A dlib-sized template (one row of 128 floats).
pub fn dlib_template() -> Vec<u8> {
    use ndarray_npy::WriteNpyExt;
    let mut out = Vec::new();
    ndarray::Array2::<f32>::from_elem((1, 128), 0.08)
        .write_npy(&mut out)
        .unwrap();
    out
}

pub fn changes(list: Vec<Value>) -> Vec<u8> {
    cbor(&map(vec![
        ("v", Value::Integer(1.into())),
        ("changes", Value::Array(list)),
    ]))
}

/// The 402-byte template of the report: an `.npy` header promising (1, 2^36) floats.
pub fn template_bomb() -> Vec<u8> {
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 68719476736), }";
    let mut header = format!("{dict:<391}").into_bytes();
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(&header);
    out
}
