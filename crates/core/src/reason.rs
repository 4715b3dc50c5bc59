//! Reason codes: the spec's `reason` field, a public contract shared by HTTP answers,
//! attendance rows and MQTT events. Renaming a variant's wire name is a breaking change.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an attempt did not end in a recognised person, or why a request was refused.
///
/// The wire names come from serde's and strum's `snake_case` (one derive each, compared
/// variant by variant in the tests); [`Reason::iter`] lists every variant, so no list is
/// kept by hand.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Reason {
    // Face pipeline outcomes (spec).
    NoFace,
    MultiFace,
    OutOfArea,
    BadQuality,
    Unknown,
    CameraUnavailable,
    InternalError,
    // Additions of this implementation.
    BadImage,
    AlreadyEnrolled,
    UserNotFound,
    InvalidField,
    UnsupportedMediaType,
    PayloadTooLarge,
    NotFound,
    MethodNotAllowed,
    Unauthorized,
    Forbidden,
    Busy,
    Timeout,
    StorageFull,
    /// 1:1: the face is not the claimed employee's.
    NotVerified,
    /// 1:N refused on this terminal (gallery too large for its embedder): send an
    /// `employee_id`.
    VerifyRequired,
    /// 1:1 refused for a while: too many failed claims of the id or from the device.
    TooManyAttempts,
    /// The buddy-punching guard (`camera.liveness`): the face did not move like a head
    /// over the decision's frames (a photo held up, or a person standing perfectly still).
    NotLive,
}

impl Reason {
    /// The wire name (`"no_face"`, ...).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every reason, in declaration order.
    pub fn iter() -> impl Iterator<Item = Reason> {
        <Reason as strum::IntoEnumIterator>::iter()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The sub-reason of `bad_quality`: what the person should change.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum QualityIssue {
    /// Face too small: the person is too far away.
    TooSmall,
    /// Face too large or cut by the frame edge: too close.
    TooClose,
    TooDark,
    TooBright,
    Blurred,
}

impl QualityIssue {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every issue, in declaration order.
    pub fn iter() -> impl Iterator<Item = QualityIssue> {
        <QualityIssue as strum::IntoEnumIterator>::iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::iter() {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), r);
            assert!(seen.insert(r.as_str()), "{r:?} shares its wire name");
        }
        for q in QualityIssue::iter() {
            let json = serde_json::to_string(&q).unwrap();
            assert_eq!(json, format!("\"{}\"", q.as_str()));
        }
        // The spec's seven codes keep their names.
        for spec in [
            "no_face",
            "multi_face",
            "out_of_area",
            "bad_quality",
            "unknown",
            "camera_unavailable",
            "internal_error",
        ] {
            assert!(seen.contains(spec), "{spec}");
        }
    }
}
