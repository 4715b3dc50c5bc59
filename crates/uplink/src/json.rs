//! `attendance-uplink decode`: the CBOR messages as JSON, for people and `jq`.

use serde_json::json;

use attendance_wire::event::{AttendanceEvent, EventBatch};

/// `attendance-uplink decode`: one message (an event batch or a single event) as JSON.
pub fn decode_to_json(bytes: &[u8]) -> Result<serde_json::Value, String> {
    if let Ok(b) = ciborium::from_reader::<EventBatch, _>(bytes) {
        return Ok(json!(b.events.iter().map(event_json).collect::<Vec<_>>()));
    }
    if let Ok(e) = ciborium::from_reader::<AttendanceEvent, _>(bytes) {
        return Ok(event_json(&e));
    }
    if let Ok(s) = ciborium::from_reader::<attendance_wire::mqtt::Stats, _>(bytes) {
        return serde_json::to_value(s).map_err(|e| e.to_string());
    }
    let v: ciborium::Value = ciborium::from_reader(bytes).map_err(|e| format!("not CBOR: {e}"))?;
    Err(format!("CBOR, but not an attendance message: {v:?}"))
}

fn event_json(e: &AttendanceEvent) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        for k in ["distance", "threshold"] {
            if let Some(f) = obj.get(k).and_then(|x| x.as_f64()) {
                obj.insert(k.into(), json!((f * 1e4).round() / 1e4));
            }
        }
    }
    v
}

/// Parses hex text (as `mosquitto_sub -F %x` prints) into bytes; whitespace is ignored.
pub fn from_hex(s: &str) -> Result<Vec<u8>, String> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    // Named as the user typed it (the crate reports a byte of a multi-byte character).
    if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("not hex: {c:?}"));
    }
    hex::decode(s).map_err(|e| format!("not hex: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_json_for_humans() {
        let e = AttendanceEvent {
            v: 1,
            event_id: uuid::Uuid::now_v7().to_string(),
            employee_id: Some("EMP001".into()),
            kind: attendance_core::punch::PunchKind::In,
            device_id: "K1".into(),
            site: "hq".into(),
            source: attendance_wire::event::Source::Camera,
            distance: Some(0.21),
            threshold: Some(0.3),
            embedder: Some("hog-v1".into()),
            reason: None,
            detail: None,
            ts_server: "2026-01-01T00:00:00.000+00:00".into(),
            ts_client: None,
            clock: None,
        };
        let b = EventBatch {
            v: 1,
            events: vec![e.clone()],
        }
        .to_cbor();
        let j = decode_to_json(&b).unwrap();
        assert_eq!(j[0]["employee_id"], "EMP001");
        assert_eq!(j[0]["distance"], 0.21);
        assert_eq!(j[0]["type"], "IN");
        assert_eq!(decode_to_json(&e.to_cbor()).unwrap()["source"], "camera");
        assert!(decode_to_json(b"\xff").is_err());
        assert_eq!(from_hex("a1 0f\n").unwrap(), vec![0xa1, 0x0f]);
        assert!(from_hex("abc").is_err());
        // Not ASCII: an error, not a panic on a character boundary.
        assert_eq!(from_hex("aéb").unwrap_err(), "not hex: 'é'");
        assert!(from_hex("éé").is_err());
    }
}
