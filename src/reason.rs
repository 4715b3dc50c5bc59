//! Reason codes: the spec's `reason` field, a public contract shared by HTTP answers,
//! attendance rows and MQTT events. Renaming a variant's wire name is a breaking change.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an attempt did not end in a recognised person, or why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
}

impl Reason {
    pub const ALL: [Reason; 20] = [
        Reason::NoFace,
        Reason::MultiFace,
        Reason::OutOfArea,
        Reason::BadQuality,
        Reason::Unknown,
        Reason::CameraUnavailable,
        Reason::InternalError,
        Reason::BadImage,
        Reason::AlreadyEnrolled,
        Reason::UserNotFound,
        Reason::InvalidField,
        Reason::UnsupportedMediaType,
        Reason::PayloadTooLarge,
        Reason::NotFound,
        Reason::MethodNotAllowed,
        Reason::Unauthorized,
        Reason::Forbidden,
        Reason::Busy,
        Reason::Timeout,
        Reason::StorageFull,
    ];

    /// The wire name (`"no_face"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoFace => "no_face",
            Reason::MultiFace => "multi_face",
            Reason::OutOfArea => "out_of_area",
            Reason::BadQuality => "bad_quality",
            Reason::Unknown => "unknown",
            Reason::CameraUnavailable => "camera_unavailable",
            Reason::InternalError => "internal_error",
            Reason::BadImage => "bad_image",
            Reason::AlreadyEnrolled => "already_enrolled",
            Reason::UserNotFound => "user_not_found",
            Reason::InvalidField => "invalid_field",
            Reason::UnsupportedMediaType => "unsupported_media_type",
            Reason::PayloadTooLarge => "payload_too_large",
            Reason::NotFound => "not_found",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::Unauthorized => "unauthorized",
            Reason::Forbidden => "forbidden",
            Reason::Busy => "busy",
            Reason::Timeout => "timeout",
            Reason::StorageFull => "storage_full",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The sub-reason of `bad_quality`: what the person should change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
        match self {
            QualityIssue::TooSmall => "too_small",
            QualityIssue::TooClose => "too_close",
            QualityIssue::TooDark => "too_dark",
            QualityIssue::TooBright => "too_bright",
            QualityIssue::Blurred => "blurred",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde_and_round_trip() {
        for r in Reason::ALL {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
    }
}
