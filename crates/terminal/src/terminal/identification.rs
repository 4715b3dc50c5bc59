//! Who was at the door, before it is recorded: the outcome of one decision in the terms
//! the recorder needs (MODE_A, MODE_B and 1:1 alike).

use attendance_core::reason::{QualityIssue, Reason};
use attendance_face::{Decision, Embedding, FaceCrop, Rejection};

use crate::answer::MatchMode;

/// Who was at the door, before it is recorded.
#[derive(Debug, Clone)]
pub(super) struct Identification {
    /// The recognised employee, if any.
    pub(crate) employee_id: Option<String>,
    /// Distance to the matched (or nearest) template.
    pub(crate) distance: Option<f32>,
    /// Why nobody was recognised.
    pub(crate) reason: Option<Reason>,
    pub(crate) detail: Option<QualityIssue>,
    /// Face crop for the punch thumbnail (when thumbnails are kept).
    pub(crate) thumbnail: Option<FaceCrop>,
    /// 1:1: decided against the claimed person with the verify threshold.
    pub(crate) verify: bool,
    /// Unknown because the face was close to someone but did not stand out (two
    /// look-alikes, a crowded neighbourhood): an employee id would settle it.
    pub(crate) ambiguous: bool,
    /// The last face embedded for a camera decision (walk-up checks who stands there
    /// against it).
    pub(crate) probe: Option<Embedding>,
}

impl Identification {
    fn new(mode: &MatchMode) -> Identification {
        Identification {
            employee_id: None,
            distance: None,
            reason: None,
            detail: None,
            thumbnail: None,
            verify: matches!(mode, MatchMode::Verify { .. }),
            ambiguous: false,
            probe: None,
        }
    }

    pub(super) fn recognised(
        employee_id: String,
        distance: f32,
        mode: &MatchMode,
    ) -> Identification {
        Identification {
            employee_id: Some(employee_id),
            distance: Some(distance),
            ..Identification::new(mode)
        }
    }

    /// Nobody recognised: `unknown` for 1:N, `not_verified` for 1:1.
    pub(super) fn unknown(
        min_distance: Option<f32>,
        ambiguous: bool,
        mode: &MatchMode,
    ) -> Identification {
        Identification {
            distance: min_distance,
            reason: Some(match mode {
                MatchMode::Identify => Reason::Unknown,
                MatchMode::Verify { .. } => Reason::NotVerified,
            }),
            ambiguous,
            ..Identification::new(mode)
        }
    }

    /// Matched someone, but the face did not move like a head (the liveness guard): not
    /// punched, and the matched person is not named.
    pub(super) fn not_live(distance: f32, mode: &MatchMode) -> Identification {
        Identification {
            distance: Some(distance),
            reason: Some(Reason::NotLive),
            ..Identification::new(mode)
        }
    }

    pub(super) fn rejected(r: &Rejection, mode: &MatchMode) -> Identification {
        Identification {
            reason: Some(r.reason()),
            detail: r.quality_issue(),
            ..Identification::new(mode)
        }
    }

    /// A decision of the gallery, with the nearest distance whether matched or not.
    pub(super) fn decided(
        nearest: Option<f32>,
        decision: Decision,
        mode: &MatchMode,
    ) -> Identification {
        match decision {
            Decision::Match {
                employee_id,
                distance,
            } => Identification::recognised(employee_id, distance, mode),
            Decision::Unknown { ambiguous, .. } => {
                Identification::unknown(nearest, ambiguous, mode)
            }
        }
    }
}
