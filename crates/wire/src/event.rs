//! The attendance event: what a terminal publishes for every attempt at its door, as a
//! versioned CBOR document. This is a public contract for MQTT subscribers; a change that
//! breaks old readers needs a new `v`.
//!
//! Events carry no face data (no template, no image): only who, when, where and how sure.

use serde::{Deserialize, Serialize};

use attendance_core::clock::{ClockSync, floor};
use attendance_core::punch::PunchKind;
use attendance_core::reason::{QualityIssue, Reason};

/// Current schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// An `f32` distance as the short decimal people expect in JSON and SQL (`0.3`, not
/// `0.30000001192092896`): four decimals are far below any threshold's meaning.
/// Formats a time the way events carry it and every table stores it: RFC 3339, UTC,
/// milliseconds, `+00:00` (fixed width, so text order is time order).
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

pub fn decimal(x: f32) -> f64 {
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
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Camera => "camera",
            Source::Upload => "upload",
            Source::Manual => "manual",
        }
    }
}

/// One attempt at the door (schema v1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttendanceEvent {
    /// Schema version, [`SCHEMA_VERSION`].
    pub v: u32,
    /// UUIDv7 assigned by the terminal; the uplink's idempotency key.
    pub event_id: String,
    /// Recognised employee; `None` for an attempt nobody was recognised in.
    pub employee_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: PunchKind,
    pub device_id: String,
    pub site: String,
    pub source: Source,
    /// Distance to the matched (or nearest) template.
    pub distance: Option<f32>,
    /// Threshold the decision used.
    pub threshold: Option<f32>,
    /// Embedder name (`hog-v1`, `dlib-resnet-v1`, ...).
    pub embedder: Option<String>,
    /// Why nobody was recognised; `None` on success.
    pub reason: Option<Reason>,
    /// Sub-reason of `bad_quality`.
    pub detail: Option<QualityIssue>,
    /// Terminal time, RFC 3339 UTC.
    pub ts_server: String,
    /// Client time as the client sent it.
    pub ts_client: Option<String>,
    /// Whether `ts_server` was taken on a synchronised clock: `unsynced` may be 1970 or
    /// days old; `corrected` was unsynced and has been recomputed from the time since
    /// boot when the clock synchronised (the same `event_id` sent again, which the
    /// centre applies). Added within v1: absent from doors that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockSync>,
}

/// Several events in one MQTT message (the outbox publishes in batches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    pub v: u32,
    pub events: Vec<AttendanceEvent>,
}

/// The uplink's receipt to a terminal: these events are committed in MySQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub v: u32,
    pub event_ids: Vec<String>,
}

impl Receipt {
    pub fn to_cbor(&self) -> Vec<u8> {
        to_cbor(self)
    }

    pub fn from_cbor(bytes: &[u8]) -> Result<Receipt, EventError> {
        let r: Receipt =
            ciborium::from_reader(bytes).map_err(|e| EventError::Decode(e.to_string()))?;
        if r.v != SCHEMA_VERSION {
            return Err(EventError::Version(r.v));
        }
        Ok(r)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
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
pub fn check_time(s: &str) -> Result<(), String> {
    use chrono::Datelike;
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| e.to_string())?;
    let year = t.to_utc().year();
    if !(1000..=9999).contains(&year) {
        return Err(format!("year {year} is outside 1000-9999"));
    }
    Ok(())
}

fn check_id(field: &'static str, v: &str) -> Result<(), EventError> {
    attendance_core::config::check_id(v).map_err(|why| invalid(field, why))
}

impl AttendanceEvent {
    /// Checks what the types cannot: a version we speak, and every field within what
    /// the centre's column for it holds (MySQL refusing one event must not be how a bad
    /// one is found).
    pub fn validate(&self) -> Result<(), EventError> {
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

    pub fn to_cbor(&self) -> Vec<u8> {
        to_cbor(self)
    }

    /// What the centre records of the door's clock: what the door said, except that a
    /// time before [`floor`] was never synchronised, whatever it says (`None`: a door
    /// that does not say, with a believable time).
    pub fn judged_clock(&self) -> Option<ClockSync> {
        let before_floor = chrono::DateTime::parse_from_rfc3339(&self.ts_server)
            .is_ok_and(|t| t.to_utc() < floor());
        if before_floor {
            return Some(ClockSync::Unsynced);
        }
        self.clock
    }
}

pub fn to_cbor<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    // Writing to a Vec cannot fail, and every field type is CBOR-serialisable.
    ciborium::into_writer(v, &mut out).expect("CBOR encoding into memory");
    out
}

impl EventBatch {
    pub fn to_cbor(&self) -> Vec<u8> {
        to_cbor(self)
    }

    /// Decodes and validates a message: every event must be valid for the batch to be.
    pub fn from_cbor(bytes: &[u8]) -> Result<EventBatch, EventError> {
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
mod tests {
    use super::*;
    use crate::testing::sample;

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
                "ts_client",
                "clock"
            ]
        );
    }

    #[test]
    fn the_clock_is_a_v1_addition_old_readers_skip() {
        let mut e = sample();
        e.clock = Some(ClockSync::Unsynced);
        let bytes = e.to_cbor();
        assert_eq!(
            ciborium::from_reader::<AttendanceEvent, _>(&bytes[..]).unwrap(),
            e
        );
        // What a door before it sent still reads: the clock not said.
        e.clock = None;
        let old = e.to_cbor();
        assert!(!old.windows(5).any(|w| w == b"clock"));
        let read: AttendanceEvent = ciborium::from_reader(&old[..]).unwrap();
        assert_eq!(read.clock, None);
        assert_eq!(e.judged_clock(), None);
    }

    #[test]
    fn a_time_before_the_floor_is_unsynchronised_whatever_the_door_says() {
        let mut e = sample();
        assert_eq!(e.judged_clock(), Some(ClockSync::Synced));
        e.ts_server = "1970-01-01T00:00:03.000+00:00".into();
        for said in [None, Some(ClockSync::Synced), Some(ClockSync::Corrected)] {
            e.clock = said;
            assert_eq!(e.judged_clock(), Some(ClockSync::Unsynced), "{said:?}");
        }
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
