//! Why an operation did not happen. Face outcomes (no face, unknown, ...) are not errors:
//! they are answers, and recorded.

use crate::store::StoreError;
use attendance_core::reason::Reason;
use attendance_face::DecodeError;
use attendance_face::encode::EncodeError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TerminalError {
    #[error("bad image: {0}")]
    BadImage(#[from] DecodeError),
    #[error("{field}: {why}")]
    InvalidField { field: &'static str, why: String },
    #[error("no user {0}")]
    UserNotFound(String),
    #[error("face already enrolled as {employee_id}")]
    AlreadyEnrolled {
        employee_id: String,
        name: String,
        distance: f32,
    },
    #[error("too many analyses in progress")]
    Busy,
    /// The request's deadline passed before anything was written (see [`super::Deadline`]).
    #[error("the request's deadline passed; nothing was recorded")]
    TimedOut,
    #[error("disk almost full ({free_mb} MB free)")]
    StorageFull { free_mb: u64 },
    /// 1:N refused: more people enrolled than the embedder can tell apart.
    #[error(
        "{people} people enrolled, more than this embedder identifies reliably ({limit}): send employee_id to verify 1:1"
    )]
    VerifyRequired { people: usize, limit: usize },
    /// Too many failed 1:1 claims of this id, or from this device, lately.
    #[error("too many failed verifications of {employee_id} or from this device: try again later")]
    TooManyClaims { employee_id: String },
    #[error("camera unavailable")]
    CameraUnavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl TerminalError {
    pub(crate) fn reason(&self) -> Reason {
        match self {
            TerminalError::BadImage(_) => Reason::BadImage,
            TerminalError::InvalidField { .. } => Reason::InvalidField,
            TerminalError::UserNotFound(_) => Reason::UserNotFound,
            TerminalError::AlreadyEnrolled { .. } => Reason::AlreadyEnrolled,
            TerminalError::Busy => Reason::Busy,
            TerminalError::TimedOut => Reason::Timeout,
            TerminalError::StorageFull { .. } => Reason::StorageFull,
            TerminalError::CameraUnavailable => Reason::CameraUnavailable,
            TerminalError::VerifyRequired { .. } => Reason::VerifyRequired,
            TerminalError::TooManyClaims { .. } => Reason::TooManyAttempts,
            TerminalError::Internal(_) => Reason::InternalError,
        }
    }
}

impl From<StoreError> for TerminalError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UserNotFound(id) => TerminalError::UserNotFound(id),
            StoreError::NameRequired(_) => TerminalError::InvalidField {
                field: "name",
                why: "required for a new user".into(),
            },
            other => TerminalError::Internal(other.to_string()),
        }
    }
}

impl From<EncodeError> for TerminalError {
    fn from(e: EncodeError) -> Self {
        TerminalError::Internal(e.to_string())
    }
}
