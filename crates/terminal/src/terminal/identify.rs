//! MODE_B: who is in an uploaded photo. The answer types (`crate::answer`) are shared
//! with MODE_A (`live`) and manual punches (`record`).

use std::sync::Arc;
use std::time::Instant;

use super::{Deadline, Terminal, TerminalError, blocking};
use crate::answer::{IdentifyAnswer, MatchMode, PunchInput};
use crate::metrics::Stage;
use attendance_core::reason::{QualityIssue, Reason};
use attendance_face::{Accepted, Decision, Embedding, FaceCrop, Rejection};
use attendance_wire::event::Source;

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
    fn decided(nearest: Option<f32>, decision: Decision, mode: &MatchMode) -> Identification {
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

impl Terminal {
    /// MODE_B: identify (or verify) the person in an uploaded photo and record the
    /// attempt.
    pub(crate) async fn identify_photo(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        p: PunchInput,
        mode: MatchMode,
        deadline: &Deadline,
    ) -> Result<IdentifyAnswer, TerminalError> {
        let device = self.device_of(&p);
        self.admit_mode(&mode, &device).await?;
        // The slot is held through the embedding too: on the board the CNN is the costly
        // part, and `max_concurrent_analyses` bounds it.
        let _slot = self.admission.slot().await?;
        let verdict = self.accept_photo(bytes).await?;
        self.check_disk()?;
        // `admit_mode` picked up gallery changes before the analysis.
        let (me, deadline, claim) = (self.clone(), deadline.clone(), mode.clone());
        let answer = blocking(move || {
            let ident = match &verdict {
                Err(rejection) => Identification::rejected(rejection, &claim),
                Ok(accepted) => {
                    let probe = me.metrics.timed(Stage::Embed, || {
                        me.pipeline.embedder().embed(&accepted.crop)
                    });
                    let (nearest, decision) = me.match_probe(&probe, &claim);
                    Identification {
                        thumbnail: Some(accepted.crop.clone()),
                        ..Identification::decided(nearest, decision, &claim)
                    }
                }
            };
            me.record(ident, p, Source::Upload, &deadline)
        })
        .await??;
        self.note_claim(&mode, &device, &answer);
        Ok(answer)
    }

    /// Decodes and analyses a photo on the blocking pool (the caller holds an analysis
    /// slot).
    pub(super) async fn accept_photo(
        self: &Arc<Self>,
        bytes: Vec<u8>,
    ) -> Result<Result<Accepted, Rejection>, TerminalError> {
        let me = self.clone();
        blocking(move || {
            let frame = me
                .metrics
                .timed(Stage::Decode, || me.pipeline.decode(&bytes))
                .map_err(TerminalError::BadImage)?;
            Ok(me
                .metrics
                .timed(Stage::Detect, || me.pipeline.accept_frame(&frame)))
        })
        .await?
    }

    /// Picks up gallery changes another process (the admin CLI) committed. Blocks.
    pub(super) fn refresh_gallery(&self) -> Result<(), TerminalError> {
        self.recognizer.refresh_if_changed(&self.store)?;
        Ok(())
    }

    /// The distance that decided (nearest person, or the claimed one) and the decision
    /// under the current rule.
    pub(super) fn match_probe(
        &self,
        probe: &Embedding,
        mode: &MatchMode,
    ) -> (Option<f32>, Decision) {
        self.metrics
            .timed(Stage::Match, || self.recognizer.decide(probe, mode))
    }

    /// Refuses what cannot be answered before any analysis: a claim of nobody, or 1:N
    /// on a gallery larger than the embedder can tell apart (unless the operator allows
    /// it). Picks up gallery changes first.
    pub(super) async fn admit_mode(
        self: &Arc<Self>,
        mode: &MatchMode,
        device: &str,
    ) -> Result<(), TerminalError> {
        if let MatchMode::Verify { employee_id } = mode
            && !self.claims().allowed(employee_id, device, Instant::now())
        {
            return Err(TerminalError::TooManyClaims {
                employee_id: employee_id.clone(),
            });
        }
        let (me, mode) = (self.clone(), mode.clone());
        blocking(move || {
            me.refresh_gallery()?;
            match mode {
                MatchMode::Verify { employee_id } => match me.store.user(&employee_id)? {
                    Some(_) => Ok(()),
                    None => Err(TerminalError::UserNotFound(employee_id)),
                },
                MatchMode::Identify => {
                    let people = me.recognizer.size().1;
                    match me.identify_limit() {
                        Some(limit) if people > limit => {
                            Err(TerminalError::VerifyRequired { people, limit })
                        }
                        _ => Ok(()),
                    }
                }
            }
        })
        .await?
    }

    /// The device an attempt is recorded under: the request's, else the terminal's.
    pub(super) fn device_of(&self, p: &PunchInput) -> String {
        p.device_id
            .clone()
            .unwrap_or_else(|| self.settings.device_id.clone())
    }

    /// Counts a failed 1:1 claim against the id and the device.
    pub(super) fn note_claim(&self, mode: &MatchMode, device: &str, answer: &IdentifyAnswer) {
        if let (
            MatchMode::Verify { employee_id },
            IdentifyAnswer::Failed {
                reason: Reason::NotVerified,
                ..
            },
        ) = (mode, answer)
        {
            self.claims().failed(employee_id, device, Instant::now());
        }
    }

    fn claims(&self) -> std::sync::MutexGuard<'_, super::claims::Claims> {
        // A panic while holding it leaves at worst a missing count.
        self.claims.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gallery size above which 1:N is refused: the embedder's, unless the operator
    /// allowed 1:N beyond it.
    pub(crate) fn identify_limit(&self) -> Option<usize> {
        let limit = self.recognizer.embedder().calibration().identify_limit;
        limit.filter(|_| !self.settings.face.identify_beyond_limit)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{TempTerminal, enrol, failure, photo, terminal, terminal_with};
    use super::*;
    use crate::store::AttendanceQuery;
    use crate::terminal::recognizer::GalleryOp;
    use attendance_core::punch::{PunchKind, PunchRequest};

    /// Identifies (or verifies) the dev photo `file` as a `kind` punch.
    async fn ask(
        t: &Arc<Terminal>,
        file: &str,
        kind: PunchKind,
        mode: MatchMode,
    ) -> Result<IdentifyAnswer, TerminalError> {
        t.identify_photo(photo(file), punch(kind), mode, &Deadline::none())
            .await
    }

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
        assert_eq!(enrol(tm, "caltech_p02/2.jpg", "홍길동").await, "EMP001");

        let a = ask(tm, "caltech_p02/2.jpg", PunchKind::In, MatchMode::Identify)
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

        let a = ask(
            tm,
            "_unenrolled/caltech_u01/1.jpg",
            PunchKind::In,
            MatchMode::Identify,
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

    /// `n` made-up people straight into the in-memory gallery (enrolling that many
    /// photos would test enrolment, not the limit).
    fn crowd(t: &TempTerminal, n: usize) {
        let dim = t.terminal.recognizer.embedder().dim();
        for i in 0..n {
            let mut v = vec![0.1; dim];
            v[i % dim] = 1.0;
            v[(7 * i + 3) % dim] += 0.5;
            t.terminal.recognizer.apply(&[GalleryOp::Add(
                format!("X{i}"),
                vec![Embedding::normalised(v)],
            )]);
        }
    }

    #[tokio::test]
    async fn past_the_embedders_limit_a_face_alone_is_refused_and_verification_still_works() {
        let t = terminal();
        let tm = &t.terminal;
        let limit = tm.identify_limit().expect("HOG has a 1:N limit");
        assert_eq!(enrol(tm, "caltech_p02/2.jpg", "홍길동").await, "EMP001");
        crowd(&t, limit);
        assert!(!tm.health().await.identifies());
        let e = ask(tm, "caltech_p02/3.jpg", PunchKind::In, MatchMode::Identify)
            .await
            .unwrap_err();
        assert!(
            matches!(e, TerminalError::VerifyRequired { people, limit: l } if people == limit + 1 && l == limit),
            "{e}"
        );
        let claim = |id: &str| MatchMode::Verify {
            employee_id: id.into(),
        };
        let a = ask(tm, "caltech_p02/3.jpg", PunchKind::In, claim("EMP001"))
            .await
            .unwrap();
        assert!(
            matches!(&a, IdentifyAnswer::Recognised { employee_id, .. } if employee_id == "EMP001"),
            "{a:?}"
        );
        let a = ask(
            tm,
            "_unenrolled/caltech_u01/1.jpg",
            PunchKind::Out,
            claim("EMP001"),
        )
        .await
        .unwrap();
        assert_eq!(failure(&a), Some(Reason::NotVerified), "{a:?}");
        let e = ask(tm, "caltech_p02/3.jpg", PunchKind::In, claim("EMP404"))
            .await
            .unwrap_err();
        assert!(matches!(e, TerminalError::UserNotFound(_)), "{e}");

        // The operator allowed 1:N beyond the limit: answered.
        let allowed = terminal_with(|s| s.face.identify_beyond_limit = true);
        assert_eq!(allowed.terminal.identify_limit(), None);
        crowd(&allowed, limit + 1);
        assert!(allowed.terminal.health().await.identifies());
        let a = ask(
            &allowed.terminal,
            "caltech_p02/3.jpg",
            PunchKind::In,
            MatchMode::Identify,
        )
        .await
        .unwrap();
        assert_eq!(failure(&a), Some(Reason::Unknown), "{a:?}");
    }

    #[tokio::test]
    async fn a_face_too_close_to_call_asks_for_the_id_and_verification_answers_it() {
        let t = terminal_with(|s| s.face.verify_tolerance = Some(0.45));
        let tm = &t.terminal;
        assert_eq!(enrol(tm, "caltech_p02/2.jpg", "홍길동").await, "EMP001");
        // A look-alike: another person with the very same template.
        let accepted = tm.pipeline().accept(&photo("caltech_p02/2.jpg")).unwrap();
        let twin = tm.pipeline().embedder().enrol(&accepted.crop);
        tm.recognizer
            .apply(&[GalleryOp::Add("TWIN".into(), twin.to_vec())]);
        let a = ask(tm, "caltech_p02/3.jpg", PunchKind::In, MatchMode::Identify)
            .await
            .unwrap();
        assert!(
            matches!(
                a,
                IdentifyAnswer::Failed {
                    reason: Reason::Unknown,
                    ambiguous: true,
                    ..
                }
            ),
            "{a:?}"
        );
        let claim = MatchMode::Verify {
            employee_id: "EMP001".into(),
        };
        let a = ask(tm, "caltech_p02/3.jpg", PunchKind::In, claim)
            .await
            .unwrap();
        assert!(
            matches!(&a, IdentifyAnswer::Recognised { employee_id, threshold, .. }
                if employee_id == "EMP001" && *threshold == 0.45),
            "{a:?}"
        );
        // A stranger far from everyone is plainly unknown.
        let a = ask(
            tm,
            "_unenrolled/caltech_u01/1.jpg",
            PunchKind::In,
            MatchMode::Identify,
        )
        .await
        .unwrap();
        assert!(
            matches!(
                a,
                IdentifyAnswer::Failed {
                    ambiguous: false,
                    ..
                }
            ),
            "{a:?}"
        );
    }

    #[tokio::test]
    async fn repeated_failed_claims_of_an_id_are_refused_for_a_while() {
        let t = terminal();
        let tm = &t.terminal;
        assert_eq!(enrol(tm, "caltech_p02/2.jpg", "홍길동").await, "EMP001");
        let claim = || MatchMode::Verify {
            employee_id: "EMP001".into(),
        };
        let stranger = "_unenrolled/caltech_u01/1.jpg";
        for _ in 0..super::super::claims::PER_ID {
            let a = ask(tm, stranger, PunchKind::In, claim()).await.unwrap();
            assert_eq!(failure(&a), Some(Reason::NotVerified), "{a:?}");
        }
        // Now even the right face is refused, before any analysis and unrecorded.
        let recorded = tm.store().outbox_pending().unwrap();
        let e = ask(tm, "caltech_p02/3.jpg", PunchKind::In, claim())
            .await
            .unwrap_err();
        assert!(matches!(e, TerminalError::TooManyClaims { .. }), "{e}");
        assert_eq!(tm.store().outbox_pending().unwrap(), recorded);
        // 1:N is not rationed.
        let a = ask(tm, "caltech_p02/3.jpg", PunchKind::In, MatchMode::Identify)
            .await
            .unwrap();
        assert!(matches!(a, IdentifyAnswer::Recognised { .. }), "{a:?}");
    }

    #[tokio::test]
    async fn a_photo_without_a_face_is_an_answer_and_undecodable_bytes_an_error() {
        let t = terminal();
        let blank = attendance_face::encode::png(&image::RgbImage::new(320, 240)).unwrap();
        let a = t
            .terminal
            .identify_photo(
                blank,
                punch(PunchKind::Out),
                MatchMode::Identify,
                &Deadline::none(),
            )
            .await
            .unwrap();
        assert_eq!(failure(&a), Some(Reason::NoFace), "{a:?}");
        let e = t
            .terminal
            .identify_photo(
                b"not an image".to_vec(),
                punch(PunchKind::In),
                MatchMode::Identify,
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
            .identify_photo(
                photo("caltech_p02/2.jpg"),
                punch(PunchKind::In),
                MatchMode::Identify,
                &expired,
            )
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
