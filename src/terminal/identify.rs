//! MODE_B: who is in an uploaded photo. The answer types are shared with MODE_A
//! (`live`) and manual punches (`record`).

use std::sync::Arc;

use super::{Deadline, Terminal, TerminalError, blocking};
use crate::event::Source;
use crate::face::{Accepted, Decision, Embedding, FaceCrop, Nearest, PipelineError, Rejection};
use crate::punch::{PunchKind, PunchRequest};
use crate::reason::{QualityIssue, Reason};

/// Who punches, which way, from where.
#[derive(Debug, Clone)]
pub(crate) struct PunchInput {
    pub(crate) request: PunchRequest,
    pub(crate) device_id: Option<String>,
    pub(crate) ts_client: Option<String>,
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
        /// Distance to the nearest template, when matching happened.
        min_distance: Option<f32>,
        threshold: f32,
        event_id: String,
        ts_server: String,
    },
}

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
}

impl Identification {
    pub(super) fn recognised(employee_id: String, distance: f32) -> Identification {
        Identification {
            employee_id: Some(employee_id),
            distance: Some(distance),
            reason: None,
            detail: None,
            thumbnail: None,
        }
    }

    pub(super) fn unknown(min_distance: Option<f32>) -> Identification {
        Identification {
            employee_id: None,
            distance: min_distance,
            reason: Some(Reason::Unknown),
            detail: None,
            thumbnail: None,
        }
    }

    pub(super) fn rejected(r: &Rejection) -> Identification {
        Identification {
            employee_id: None,
            distance: None,
            reason: Some(r.reason()),
            detail: r.quality_issue(),
            thumbnail: None,
        }
    }

    /// A decision of the gallery, with the nearest distance whether matched or not.
    fn decided(nearest: Option<Nearest>, decision: Decision) -> Identification {
        match decision {
            Decision::Match {
                employee_id,
                distance,
            } => Identification::recognised(employee_id, distance),
            Decision::Unknown { .. } => Identification::unknown(nearest.map(|n| n.distance)),
        }
    }
}

impl Terminal {
    /// MODE_B: identify the person in an uploaded photo and record the attempt.
    pub(crate) async fn identify_photo(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        p: PunchInput,
        deadline: &Deadline,
    ) -> Result<IdentifyAnswer, TerminalError> {
        // The slot is held through the embedding too: on the board the CNN is the costly
        // part, and `max_concurrent_analyses` bounds it.
        let _slot = self.admission.slot().await?;
        let verdict = self.accept_photo(bytes).await?;
        self.check_disk()?;
        let (me, deadline) = (self.clone(), deadline.clone());
        blocking(move || {
            me.refresh_gallery()?;
            let ident = match &verdict {
                Err(rejection) => Identification::rejected(rejection),
                Ok(accepted) => {
                    let probe = me.pipeline.embedder().embed(&accepted.crop);
                    let (nearest, decision) = me.match_probe(&probe);
                    Identification {
                        thumbnail: Some(accepted.crop.clone()),
                        ..Identification::decided(nearest, decision)
                    }
                }
            };
            me.record(ident, p, Source::Upload, &deadline)
        })
        .await?
    }

    /// Decodes and analyses a photo on the blocking pool (the caller holds an analysis
    /// slot).
    pub(super) async fn accept_photo(
        self: &Arc<Self>,
        bytes: Vec<u8>,
    ) -> Result<Result<Accepted, Rejection>, TerminalError> {
        let me = self.clone();
        blocking(move || match me.pipeline.accept(&bytes) {
            Ok(a) => Ok(Ok(a)),
            Err(PipelineError::Rejected(r)) => Ok(Err(r)),
            Err(PipelineError::Decode(d)) => Err(TerminalError::BadImage(d)),
        })
        .await?
    }

    /// Picks up gallery changes another process (the admin CLI) committed. Blocks.
    pub(super) fn refresh_gallery(&self) -> Result<(), TerminalError> {
        self.recognizer.refresh_if_changed(&self.store)?;
        Ok(())
    }

    /// The nearest template and the decision under the current rule.
    pub(super) fn match_probe(&self, probe: &Embedding) -> (Option<Nearest>, Decision) {
        self.recognizer.decide(probe)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{enrol, photo, terminal};
    use super::*;
    use crate::store::AttendanceQuery;

    fn punch(kind: PunchKind) -> PunchInput {
        PunchInput {
            request: PunchRequest::Kind(kind),
            device_id: None,
            ts_client: None,
        }
    }

    #[tokio::test]
    async fn an_enrolled_face_is_punched_and_a_stranger_is_recorded_as_unknown() {
        let t = terminal();
        let tm = &t.terminal;
        let none = Deadline::none();
        assert_eq!(enrol(tm, "caltech_p02/2.jpg", "홍길동").await, "EMP001");

        let a = tm
            .identify_photo(photo("caltech_p02/2.jpg"), punch(PunchKind::In), &none)
            .await
            .unwrap();
        let IdentifyAnswer::Recognised {
            employee_id,
            name,
            kind,
            duplicate,
            event_id,
            ..
        } = a
        else {
            panic!("not recognised: {a:?}");
        };
        assert_eq!((employee_id.as_str(), name.as_str()), ("EMP001", "홍길동"));
        assert_eq!((kind, duplicate), (PunchKind::In, false));
        let event_id = event_id.expect("recorded");

        let a = tm
            .identify_photo(
                photo("_unenrolled/caltech_u01/1.jpg"),
                punch(PunchKind::In),
                &none,
            )
            .await
            .unwrap();
        assert!(
            matches!(
                a,
                IdentifyAnswer::Failed {
                    reason: Reason::Unknown,
                    min_distance: Some(_),
                    ..
                }
            ),
            "{a:?}"
        );
        let rows = tm
            .attendance(AttendanceQuery {
                limit: 10,
                ..AttendanceQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().any(|r| r.event_id == event_id
            && r.employee_id.as_deref() == Some("EMP001")
            && r.device_id.as_deref() == Some("T1")));
        assert!(
            rows.iter()
                .any(|r| r.employee_id.is_none() && r.reason.as_deref() == Some("unknown"))
        );
    }

    #[tokio::test]
    async fn a_photo_without_a_face_is_an_answer_and_undecodable_bytes_an_error() {
        let t = terminal();
        let blank = crate::face::encode::png(&image::RgbImage::new(320, 240)).unwrap();
        let a = t
            .terminal
            .identify_photo(blank, punch(PunchKind::Out), &Deadline::none())
            .await
            .unwrap();
        assert!(
            matches!(
                a,
                IdentifyAnswer::Failed {
                    reason: Reason::NoFace,
                    ..
                }
            ),
            "{a:?}"
        );
        let e = t
            .terminal
            .identify_photo(
                b"not an image".to_vec(),
                punch(PunchKind::In),
                &Deadline::none(),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, TerminalError::BadImage(_)), "{e}");
    }

    #[tokio::test]
    async fn a_request_that_timed_out_before_the_write_records_nothing() {
        let t = terminal();
        let expired = Deadline::new();
        assert!(expired.expire());
        let e = t
            .terminal
            .identify_photo(photo("caltech_p02/2.jpg"), punch(PunchKind::In), &expired)
            .await
            .unwrap_err();
        assert!(matches!(e, TerminalError::TimedOut), "{e}");
        let rows = t
            .terminal
            .attendance(AttendanceQuery {
                limit: 10,
                ..AttendanceQuery::default()
            })
            .await
            .unwrap();
        assert!(rows.is_empty(), "{rows:?}");
        assert_eq!(t.terminal.store().outbox_pending().unwrap(), 0);
    }
}
