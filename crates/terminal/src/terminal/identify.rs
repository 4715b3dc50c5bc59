//! MODE_B: who is in an uploaded photo. The answer types (`crate::answer`) are shared
//! with MODE_A (`live`) and manual punches (`record`).

use std::sync::Arc;

use super::{Deadline, Terminal, TerminalError, blocking};
use crate::answer::{IdentifyAnswer, MatchMode, PunchInput};
use crate::metrics::Stage;
use attendance_face::{Accepted, Decision, Embedding, Rejection};

use super::admission::Slot;
use super::identification::Identification;
use attendance_wire::event::Source;

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
        // part, and `max_concurrent_analyses` bounds it. The work holds it, not this
        // request: a timed-out request's analysis still counts until it ends.
        let slot = Arc::new(self.admission.slot().await?);
        let verdict = self.accept_photo(bytes, slot.clone()).await?;
        self.recorder.check_disk()?;
        // `admit_mode` picked up gallery changes before the analysis.
        let (me, deadline, claim) = (self.clone(), deadline.clone(), mode.clone());
        let answer = blocking(move || {
            let _slot = slot;
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

    /// Decodes and analyses a photo on the blocking pool, holding `slot` until done.
    pub(super) async fn accept_photo(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        slot: Arc<Slot>,
    ) -> Result<Result<Accepted, Rejection>, TerminalError> {
        let me = self.clone();
        blocking(move || {
            let _slot = slot;
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        TempTerminal, drop_once_held, enrol, failure, photo, terminal, terminal_with,
    };
    use super::*;
    use crate::store::AttendanceQuery;
    use crate::terminal::recognizer::GalleryOp;
    use attendance_core::punch::{PunchKind, PunchRequest};
    use attendance_core::reason::Reason;

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_dropped_mid_analysis_keeps_its_place_until_the_analysis_ends() {
        let t = terminal_with(|s| s.max_concurrent_analyses = 1);
        let tm = t.terminal.clone();
        // The request gives up (a timeout drops it) while its photo is analysed.
        let request = {
            let tm = tm.clone();
            async move { ask(&tm, "caltech_p02/2.jpg", PunchKind::In, MatchMode::Identify).await }
        };
        drop_once_held(request, || tm.admission.free() == 0).await;
        let started = std::time::Instant::now();
        assert_eq!(
            tm.admission.free(),
            0,
            "the dropped request's analysis runs on: its place must stay taken"
        );
        while tm.admission.free() == 0 {
            assert!(
                started.elapsed().as_secs() < 30,
                "the place never came back"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}
