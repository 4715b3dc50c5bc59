//! Roster messages on MQTT (schema v1, CBOR). A public contract like the events: a change
//! that breaks old readers needs a new `v`.
//!
//! - terminal → centre, `attendance/{site}/{device}/roster_changes`, QoS 1: [`ChangeBatch`]
//!   (acknowledged by the same receipts as events, by `change_id`);
//! - terminal → centre, `attendance/{site}/{device}/roster_sync`, QoS 1: [`SyncRequest`];
//! - centre → terminal, `attendance/{site}/{device}/roster`, QoS 1: [`Page`];
//! - centre → site, `attendance/{site}/roster`, QoS 1, retained: [`Head`];
//! - centre → everyone, `attendance/uplink`, QoS 1: [`UplinkOnline`] once subscribed.

use serde::{Deserialize, Serialize};

/// Current roster schema version.
pub const ROSTER_VERSION: u32 = 1;

/// Bytes of face data a [`Page`] carries at most (below the 1 MiB MQTT packet limit,
/// with room for the envelope); a single larger entry still goes alone.
pub const PAGE_BYTES: usize = 768 << 10;

#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    #[error("not CBOR of the roster schema: {0}")]
    Decode(String),
    #[error("unsupported roster schema version {0}")]
    Version(u32),
    #[error("invalid {field}: {why}")]
    Invalid { field: &'static str, why: String },
}

pub(super) fn invalid(field: &'static str, why: impl Into<String>) -> RosterError {
    RosterError::Invalid {
        field,
        why: why.into(),
    }
}

/// One enrolment face as it travels: the template its embedder made and, when the
/// terminal keeps enrolment crops, the crop, so a door with another embedder can
/// re-embed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// UUID the enrolling terminal gave the face: what makes applying a face twice a no-op.
    pub face_id: String,
    /// Embedder of `template` (`hog-v1`, `dlib-resnet-v1`).
    pub embedder: String,
    /// The template as `.npy` bytes; left out of a page for a terminal whose embedder
    /// differs (it cannot use it).
    #[serde(with = "serde_bytes")]
    pub template: Option<Vec<u8>>,
    /// The face crop (PNG), when kept; in a page only for terminals that must re-embed.
    #[serde(with = "serde_bytes")]
    pub crop: Option<Vec<u8>>,
    pub quality: f32,
    /// The terminal that enrolled it.
    pub device_id: Option<String>,
    /// Learned at the door from a confident recognition (`attendance_face::learn`), not
    /// an enrolment photo: bounded per person and replaced through [`Op::Enrol`]'s
    /// `retire`. Added within v1: a reader that ignores it keeps it as an enrolment face.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub learned: bool,
}

impl Face {
    /// Face data bytes (what a page's size budget counts).
    pub fn bytes(&self) -> usize {
        self.template.as_ref().map_or(0, Vec::len) + self.crop.as_ref().map_or(0, Vec::len)
    }
}

/// What a change does to one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Creates the person (or renames them), adds these faces and drops the learned
    /// faces named in `retire` (added within v1, empty when absent: a reader that
    /// ignores it keeps them).
    Enrol {
        name: String,
        faces: Vec<Face>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        retire: Vec<String>,
    },
    /// Erases the person's faces and name everywhere; their attendance stays.
    Delete,
}

/// One change to one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// UUIDv7 from where the change was made: the centre's idempotency key, and the id
    /// its receipt names.
    pub change_id: String,
    pub employee_id: String,
    pub site: String,
    /// Where it was made (`None`: centrally, `attendance-uplink roster`).
    pub device_id: Option<String>,
    /// RFC 3339, UTC.
    pub ts: String,
    pub op: Op,
}

impl Change {
    /// The faces it adds (none for a deletion).
    pub fn faces(&self) -> &[Face] {
        match &self.op {
            Op::Enrol { faces, .. } => faces,
            Op::Delete => &[],
        }
    }
}

/// Changes a terminal made, in the order it made them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeBatch {
    pub v: u32,
    pub changes: Vec<Change>,
}

/// A terminal asks for its site's changes after `since`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub v: u32,
    /// The last revision the terminal applied (0: nothing yet).
    pub since: u64,
    /// The terminal's embedder: templates of others are left out, crops sent instead.
    pub embedder: String,
}

/// One change as the centre recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub revision: u64,
    pub change: Change,
}

/// The answer to a [`SyncRequest`]: the site's changes in `(since, up_to]`, in revision
/// order. `up_to < head` means more pages follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub v: u32,
    pub site: String,
    pub since: u64,
    pub up_to: u64,
    /// The site's latest revision when the page was made.
    pub head: u64,
    pub entries: Vec<Entry>,
}

/// The site's latest revision, retained so a terminal learns it on connecting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    pub v: u32,
    pub site: String,
    pub revision: u64,
}

/// An uplink has (re)subscribed: what terminals sent before may have been dropped by a
/// broker that forgot the subscription (Mosquitto forgets shared subscriptions when it
/// restarts), so unconfirmed events and unanswered requests go again now rather than
/// after the receipt timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UplinkOnline {
    pub v: u32,
    /// Random per uplink process start.
    pub instance: String,
    pub ts: String,
}

/// Decodes a roster message and checks its version.
pub fn decode<T: serde::de::DeserializeOwned + Versioned>(bytes: &[u8]) -> Result<T, RosterError> {
    let v: T = ciborium::from_reader(bytes).map_err(|e| RosterError::Decode(e.to_string()))?;
    if v.version() != ROSTER_VERSION {
        return Err(RosterError::Version(v.version()));
    }
    Ok(v)
}

/// CBOR of a roster message.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    crate::event::to_cbor(v)
}

/// Messages that carry a schema version.
pub trait Versioned {
    fn version(&self) -> u32;
}

macro_rules! versioned {
    ($($t:ty),*) => {$(
        impl Versioned for $t {
            fn version(&self) -> u32 {
                self.v
            }
        }
    )*};
}
versioned!(ChangeBatch, SyncRequest, Page, Head, UplinkOnline);

impl ChangeBatch {
    /// Decodes and validates: every change must be valid for the batch to be.
    pub fn from_cbor(bytes: &[u8]) -> Result<ChangeBatch, RosterError> {
        let b: ChangeBatch = decode(bytes)?;
        b.changes.iter().try_for_each(Change::validate)?;
        Ok(b)
    }
}

impl Page {
    /// Decodes a page and checks its range and order, which everything after it relies
    /// on. Its entries are checked one by one where they are applied
    /// ([`Entry::validate`]), so one bad entry is skipped and counted, not the page.
    pub fn from_cbor(bytes: &[u8]) -> Result<Page, RosterError> {
        let p: Page = decode(bytes)?;
        if p.up_to < p.since || p.head < p.up_to {
            return Err(invalid("up_to", "must lie between since and head"));
        }
        let mut last = p.since;
        for e in &p.entries {
            if e.revision <= last || e.revision > p.up_to {
                return Err(invalid(
                    "revision",
                    "entries must be in (since, up_to], ascending",
                ));
            }
            last = e.revision;
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::enrol;

    #[test]
    fn changes_round_trip_with_bytes_as_cbor_byte_strings() {
        let mut delete = enrol("hq-K1-002", "x");
        delete.op = Op::Delete;
        let b = ChangeBatch {
            v: 1,
            changes: vec![enrol("hq-K1-001", "홍길동"), delete],
        };
        let bytes = encode(&b);
        assert_eq!(ChangeBatch::from_cbor(&bytes).unwrap(), b);
        // Face data as byte strings (major type 2), not arrays of integers: a third the size.
        let v: ciborium::Value = ciborium::from_reader(&bytes[..]).unwrap();
        let first = &v.as_map().unwrap()[1].1.as_array().unwrap()[0];
        let op = &first
            .as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_text() == Some("op"))
            .unwrap()
            .1;
        assert_eq!(op.as_map().unwrap()[0].1.as_text(), Some("enrol"));
        let faces = op
            .as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_text() == Some("faces"))
            .unwrap()
            .1
            .as_array()
            .unwrap();
        let template = faces[0]
            .as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_text() == Some("template"))
            .unwrap();
        assert!(template.1.is_bytes(), "{:?}", template.1);
    }

    /// A v1 change as readers before learning wrote and read it.
    #[derive(Debug, Serialize, Deserialize)]
    struct OldEnrol {
        op: String,
        name: String,
        faces: Vec<OldFace>,
    }
    #[derive(Debug, Serialize, Deserialize)]
    struct OldFace {
        face_id: String,
    }

    #[test]
    fn learned_faces_and_retirements_are_v1_additions_old_readers_skip() {
        let mut c = enrol("E1", "x");
        if let Op::Enrol { faces, retire, .. } = &mut c.op {
            faces[0].learned = true;
            retire.push("0193a1b2-0000-7000-8000-000000000001".into());
        }
        let bytes = encode(&c);
        assert_eq!(ciborium::from_reader::<Change, _>(&bytes[..]).unwrap(), c);
        // An old reader takes the change as an enrolment of the face.
        let v: ciborium::Value = ciborium::from_reader(&bytes[..]).unwrap();
        let op = v
            .as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_text() == Some("op"))
            .unwrap()
            .1
            .clone();
        let old: OldEnrol = op.deserialized().unwrap();
        assert_eq!((old.op.as_str(), old.faces.len()), ("enrol", 1));
        // What an old writer sent still reads: nothing learned, nothing retired.
        let old_bytes = encode(&Change {
            op: Op::Enrol {
                name: "x".into(),
                faces: vec![crate::testing::face()],
                retire: Vec::new(),
            },
            ..c.clone()
        });
        assert!(!old_bytes.windows(6).any(|w| w == b"retire"));
        assert!(!old_bytes.windows(7).any(|w| w == b"learned"));
        let read: Change = ciborium::from_reader(&old_bytes[..]).unwrap();
        assert!(
            matches!(&read.op, Op::Enrol { faces, retire, .. } if retire.is_empty() && !faces[0].learned)
        );
    }

    #[test]
    fn invalid_changes_and_versions_are_refused() {
        let mut bad = enrol("has space", "x");
        assert!(matches!(
            bad.validate(),
            Err(RosterError::Invalid {
                field: "employee_id",
                ..
            })
        ));
        bad = enrol("E1", " ");
        assert!(matches!(
            bad.validate(),
            Err(RosterError::Invalid { field: "name", .. })
        ));
        bad = enrol("E1", "x");
        if let Op::Enrol { faces, .. } = &mut bad.op {
            faces[0].template = None;
            faces[0].crop = None;
        }
        assert!(bad.validate().is_err());
        let b = ChangeBatch {
            v: 2,
            changes: vec![],
        };
        assert!(matches!(
            ChangeBatch::from_cbor(&encode(&b)),
            Err(RosterError::Version(2))
        ));
        assert!(matches!(
            ChangeBatch::from_cbor(b"\xff"),
            Err(RosterError::Decode(_))
        ));
    }

    #[test]
    fn pages_must_be_in_revision_order_within_their_range() {
        let page = |revs: &[u64], up_to| Page {
            v: 1,
            site: "hq".into(),
            since: 2,
            up_to,
            head: 9,
            entries: revs
                .iter()
                .map(|&revision| Entry {
                    revision,
                    change: enrol("E1", "x"),
                })
                .collect(),
        };
        assert!(Page::from_cbor(&encode(&page(&[3, 5], 5))).is_ok());
        assert!(
            Page::from_cbor(&encode(&page(&[5, 3], 5))).is_err(),
            "out of order"
        );
        assert!(
            Page::from_cbor(&encode(&page(&[2], 5))).is_err(),
            "not after since"
        );
        assert!(
            Page::from_cbor(&encode(&page(&[6], 5))).is_err(),
            "beyond up_to"
        );
        assert!(
            Page::from_cbor(&encode(&page(&[], 10))).is_err(),
            "beyond head"
        );
    }
}
