//! The attendance event: what a terminal publishes for every attempt at its door, as a
//! versioned CBOR document. This is a public contract for MQTT subscribers; a change that
//! breaks old readers needs a new `v`.
//!
//! Events carry no face data (no template, no image): only who, when, where and how sure.

use serde::{Deserialize, Serialize};

use crate::punch::PunchKind;
use crate::reason::{QualityIssue, Reason};

/// Current schema version.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// An `f32` distance as the short decimal people expect in JSON and SQL (`0.3`, not
/// `0.30000001192092896`): four decimals are far below any threshold's meaning.
pub(crate) fn decimal(x: f32) -> f64 {
    (f64::from(x) * 1e4).round() / 1e4
}

/// How the attempt reached the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The terminal's own camera (MODE_A).
    Camera,
    /// A photo uploaded to `/identify` (MODE_B).
    Upload,
    /// `POST /attendance` by an admin, no face involved.
    Manual,
}

impl Source {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Source::Camera => "camera",
            Source::Upload => "upload",
            Source::Manual => "manual",
        }
    }
}

/// One attempt at the door (schema v1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AttendanceEvent {
    /// Schema version, [`SCHEMA_VERSION`].
    pub(crate) v: u32,
    /// UUIDv7 assigned by the terminal; the uplink's idempotency key.
    pub(crate) event_id: String,
    /// Recognised employee; `None` for an attempt nobody was recognised in.
    pub(crate) employee_id: Option<String>,
    #[serde(rename = "type")]
    pub(crate) kind: PunchKind,
    pub(crate) device_id: String,
    pub(crate) site: String,
    pub(crate) source: Source,
    /// Distance to the matched (or nearest) template.
    pub(crate) distance: Option<f32>,
    /// Threshold the decision used.
    pub(crate) threshold: Option<f32>,
    /// Embedder name (`hog-v1`, `dlib-resnet-v1`, ...).
    pub(crate) embedder: Option<String>,
    /// Why nobody was recognised; `None` on success.
    pub(crate) reason: Option<Reason>,
    /// Sub-reason of `bad_quality`.
    pub(crate) detail: Option<QualityIssue>,
    /// Terminal time, RFC 3339 UTC.
    pub(crate) ts_server: String,
    /// Client time as the client sent it.
    pub(crate) ts_client: Option<String>,
}

/// Several events in one MQTT message (the outbox publishes in batches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EventBatch {
    pub(crate) v: u32,
    pub(crate) events: Vec<AttendanceEvent>,
}

/// The uplink's receipt to a terminal: these events are committed in MySQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Receipt {
    pub(crate) v: u32,
    pub(crate) event_ids: Vec<String>,
}

impl Receipt {
    pub(crate) fn to_cbor(&self) -> Vec<u8> {
        to_cbor(self)
    }

    pub(crate) fn from_cbor(bytes: &[u8]) -> Result<Receipt, EventError> {
        let r: Receipt =
            ciborium::from_reader(bytes).map_err(|e| EventError::Decode(e.to_string()))?;
        if r.v != SCHEMA_VERSION {
            return Err(EventError::Version(r.v));
        }
        Ok(r)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum EventError {
    #[error("not CBOR of the event schema: {0}")]
    Decode(String),
    #[error("unsupported schema version {0}")]
    Version(u32),
    #[error("invalid {field}: {why}")]
    Invalid { field: &'static str, why: String },
}

fn invalid(field: &'static str, why: impl Into<String>) -> EventError {
    EventError::Invalid {
        field,
        why: why.into(),
    }
}

/// Longest embedder name (the central `embedder` column).
const MAX_EMBEDDER: usize = 32;

/// An RFC 3339 time a `DATETIME(3)` column holds (years 1000-9999: a door whose clock
/// reset to 1970 still has its punches kept). `Err` says why not.
pub(crate) fn check_time(s: &str) -> Result<(), String> {
    use chrono::Datelike;
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| e.to_string())?;
    let year = t.to_utc().year();
    if !(1000..=9999).contains(&year) {
        return Err(format!("year {year} is outside 1000-9999"));
    }
    Ok(())
}

fn check_id(field: &'static str, v: &str) -> Result<(), EventError> {
    crate::config::check_id(v).map_err(|why| invalid(field, why))
}

impl AttendanceEvent {
    /// Checks what the types cannot: a version we speak, and every field within what
    /// the centre's column for it holds (MySQL refusing one event must not be how a bad
    /// one is found).
    pub(crate) fn validate(&self) -> Result<(), EventError> {
        if self.v != SCHEMA_VERSION {
            return Err(EventError::Version(self.v));
        }
        uuid::Uuid::parse_str(&self.event_id).map_err(|e| invalid("event_id", e.to_string()))?;
        if let Some(e) = &self.employee_id {
            check_id("employee_id", e)?;
        }
        check_id("device_id", &self.device_id)?;
        check_id("site", &self.site)?;
        if let Some(e) = &self.embedder
            && (e.is_empty()
                || e.len() > MAX_EMBEDDER
                || !e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(invalid(
                "embedder",
                format!("must be 1-{MAX_EMBEDDER} characters of A-Z a-z 0-9 -"),
            ));
        }
        check_time(&self.ts_server).map_err(|why| invalid("ts_server", why))?;
        if let Some(t) = &self.ts_client
            && (t.len() > 64 || t.chars().any(char::is_control))
        {
            return Err(invalid(
                "ts_client",
                "longer than 64 characters or holds control characters",
            ));
        }
        for (field, v) in [("distance", self.distance), ("threshold", self.threshold)] {
            if v.is_some_and(|d| !d.is_finite() || d < 0.0) {
                return Err(invalid(field, "must be a finite, non-negative number"));
            }
        }
        if self.employee_id.is_none() && self.reason.is_none() {
            return Err(invalid("reason", "required when employee_id is null"));
        }
        Ok(())
    }

    pub(crate) fn to_cbor(&self) -> Vec<u8> {
        to_cbor(self)
    }
}

pub(crate) fn to_cbor<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    // Writing to a Vec cannot fail, and every field type is CBOR-serialisable.
    ciborium::into_writer(v, &mut out).expect("CBOR encoding into memory");
    out
}

impl EventBatch {
    pub(crate) fn to_cbor(&self) -> Vec<u8> {
        to_cbor(self)
    }

    /// Decodes and validates a message: every event must be valid for the batch to be.
    pub(crate) fn from_cbor(bytes: &[u8]) -> Result<EventBatch, EventError> {
        let batch: EventBatch =
            ciborium::from_reader(bytes).map_err(|e| EventError::Decode(e.to_string()))?;
        if batch.v != SCHEMA_VERSION {
            return Err(EventError::Version(batch.v));
        }
        batch
            .events
            .iter()
            .try_for_each(AttendanceEvent::validate)?;
        Ok(batch)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> AttendanceEvent {
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
        }
    }

    #[test]
    fn batch_round_trips_through_cbor() {
        let mut unknown = sample();
        unknown.employee_id = None;
        unknown.reason = Some(Reason::Unknown);
        let b = EventBatch {
            v: 1,
            events: vec![sample(), unknown],
        };
        let bytes = b.to_cbor();
        assert_eq!(EventBatch::from_cbor(&bytes).unwrap(), b);
    }

    #[test]
    fn field_names_are_the_documented_ones() {
        let v: ciborium::Value = ciborium::from_reader(&sample().to_cbor()[..]).unwrap();
        let keys: Vec<String> = v
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_text().unwrap().to_owned())
            .collect();
        assert_eq!(
            keys,
            [
                "v",
                "event_id",
                "employee_id",
                "type",
                "device_id",
                "site",
                "source",
                "distance",
                "threshold",
                "embedder",
                "reason",
                "detail",
                "ts_server",
                "ts_client"
            ]
        );
    }

    #[test]
    fn garbage_and_invalid_events_are_refused() {
        assert!(matches!(
            EventBatch::from_cbor(b"\xff\x00garbage"),
            Err(EventError::Decode(_))
        ));
        let mut bad = sample();
        bad.event_id = "not-a-uuid".into();
        let b = EventBatch {
            v: 1,
            events: vec![bad],
        };
        assert!(matches!(
            EventBatch::from_cbor(&b.to_cbor()),
            Err(EventError::Invalid {
                field: "event_id",
                ..
            })
        ));
        let b = EventBatch {
            v: 2,
            events: vec![],
        };
        assert!(matches!(
            EventBatch::from_cbor(&b.to_cbor()),
            Err(EventError::Version(2))
        ));
        let mut anon = sample();
        anon.employee_id = None;
        assert!(
            anon.validate().is_err(),
            "an unrecognised attempt needs a reason"
        );
    }

    #[test]
    fn every_field_fits_its_central_column() {
        let field_of = |e: AttendanceEvent| match e.validate() {
            Err(EventError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let mut e = sample();
        e.embedder = Some("x".repeat(40));
        assert_eq!(field_of(e), "embedder");
        let mut e = sample();
        e.device_id = "K".repeat(51);
        assert_eq!(field_of(e), "device_id");
        let mut e = sample();
        e.device_id = "A1;DROP".into();
        assert_eq!(field_of(e), "device_id");
        let mut e = sample();
        e.site = "hq/x".into();
        assert_eq!(field_of(e), "site");
        let mut e = sample();
        e.employee_id = Some("=cmd|' /C calc'!A0".into());
        assert_eq!(field_of(e), "employee_id");
        let mut e = sample();
        e.ts_server = "0001-01-01T00:00:00Z".into();
        assert_eq!(field_of(e), "ts_server");
        let mut e = sample();
        e.ts_client = Some("2026-01-01\u{0}".into());
        assert_eq!(field_of(e), "ts_client");
        let mut e = sample();
        e.distance = Some(f32::NAN);
        assert_eq!(field_of(e), "distance");
        // A door whose clock reset to 1970 keeps its punches.
        let mut e = sample();
        e.ts_server = "1970-01-01T00:00:03.000+00:00".into();
        e.validate().unwrap();
    }
}
