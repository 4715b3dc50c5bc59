//! What the terminal answers a punch attempt with: shared by the rules that make the answer
//! (`terminal`), the screen's feed that shows it (`feed`) and the API that returns it
//! (`http`), so none of them imports another for it.

use attendance_core::i18n::Msg;
use attendance_core::punch::{PunchKind, PunchRequest};
use attendance_core::reason::{QualityIssue, Reason};

/// Who punches, which way, from where.
#[derive(Debug, Clone)]
pub(crate) struct PunchInput {
    pub(crate) request: PunchRequest,
    pub(crate) device_id: Option<String>,
    pub(crate) ts_client: Option<String>,
}

/// 1:N (who is this?) or 1:1 (is this the person they say they are: a typed PIN, a
/// badge, a QR code on a kiosk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchMode {
    Identify,
    Verify { employee_id: String },
}

impl MatchMode {
    /// The answer's `mode`.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            MatchMode::Identify => "identify",
            MatchMode::Verify { .. } => "verify",
        }
    }
}

/// The answer to an identification (or a manual punch).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IdentifyAnswer {
    Recognised {
        employee_id: String,
        name: String,
        distance: f32,
        threshold: f32,
        kind: PunchKind,
        /// Same punch again inside the duplicate window: nothing new recorded.
        duplicate: bool,
        /// The recorded event (none for a duplicate).
        event_id: Option<String>,
        ts_server: String,
    },
    Failed {
        reason: Reason,
        detail: Option<QualityIssue>,
        /// Close to someone without standing out: an employee id (1:1) would settle it.
        ambiguous: bool,
        /// Distance to the nearest template, when matching happened.
        min_distance: Option<f32>,
        threshold: f32,
        event_id: String,
        ts_server: String,
    },
}

impl IdentifyAnswer {
    /// What the person at the door reads: the one choice of message for the API's answer
    /// and the screen's feed alike.
    pub(crate) fn message(&self) -> Msg {
        match self {
            IdentifyAnswer::Recognised {
                duplicate: true, ..
            } => Msg::DuplicatePunch,
            IdentifyAnswer::Recognised { .. } => Msg::Recognised,
            IdentifyAnswer::Failed {
                detail: Some(q), ..
            } => Msg::Quality(*q),
            // Close to someone, too close to call: the way in is the employee id.
            IdentifyAnswer::Failed {
                reason: Reason::Unknown,
                ambiguous: true,
                ..
            } => Msg::Ambiguous,
            IdentifyAnswer::Failed { reason, .. } => Msg::Reason(*reason),
        }
    }
}
