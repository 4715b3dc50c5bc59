//! MODE_A: who is in front of the terminal's camera. The camera analyses and embeds its
//! frames; this watches those analyses for a short window, matches each, lets the frames
//! vote (`face::vote`) and records the decision. The camera knows nothing of punches.

use std::sync::Arc;

use super::identification::Identification;
use super::{Deadline, IdentifyAnswer, PunchInput, Terminal, TerminalError, blocking};
use crate::answer::MatchMode;
use crate::camera::{AnalysisWindow, Camera};
use attendance_face::liveness::{nose_offset, turn};
use attendance_face::vote::{self, FrameOutcome, Verdict};
use attendance_wire::event::Source;
use tracing::debug;

impl Terminal {
    /// Watches the camera's analyses for up to `identify_window`, decides from several
    /// agreeing frames, records the attempt.
    pub(crate) async fn identify_live(
        self: &Arc<Self>,
        camera: &Camera,
        p: PunchInput,
        mode: MatchMode,
        deadline: &Deadline,
    ) -> Result<IdentifyAnswer, TerminalError> {
        let mut window = camera
            .analyses_for(self.settings.identify_window)
            .ok_or(TerminalError::CameraUnavailable)?;
        let device = self.device_of(&p);
        self.admit_mode(&mode, &device).await?;
        let ident = match self.vote(&mut window, &mode).await {
            Some(ident) => ident,
            // Streaming but nothing analysed in the window: the terminal is at fault.
            None => return Err(TerminalError::CameraUnavailable),
        };
        self.recorder.check_disk()?;
        let (me, deadline) = (self.clone(), deadline.clone());
        let answer = blocking(move || me.record(ident, p, Source::Camera, &deadline)).await??;
        self.note_claim(&mode, &device, &answer);
        Ok(answer)
    }

    /// Matches the window's faces until enough frames agree (or the window passes) and
    /// tallies them; None when no frame was analysed in the window.
    pub(super) async fn vote(
        &self,
        window: &mut AnalysisWindow,
        mode: &MatchMode,
    ) -> Option<Identification> {
        let votes = self.settings.identify_votes;
        let liveness = self.settings.liveness;
        let mut frames: Vec<FrameOutcome> = Vec::new();
        // Where the nose sat across the eye line in each face (the liveness guard).
        let mut offsets: Vec<f64> = Vec::new();
        let mut probe = None;
        let live = |offsets: &[f64]| liveness.is_none_or(|rule| rule.live(offsets));
        // With the guard on, agreeing frames are not enough: the window goes on until
        // the head has moved too (or it passes).
        while !(vote::decided(&frames, votes) && live(&offsets)) {
            let Some(a) = window.next().await else {
                break;
            };
            frames.push(match &a.verdict {
                Err(r) => FrameOutcome::Rejected(*r),
                Ok(face) => {
                    // Analysed before this request waited: not evidence either way.
                    let Some(embedding) = &face.embedding else {
                        continue;
                    };
                    offsets.extend(face.landmarks.as_ref().and_then(nose_offset));
                    probe = Some(embedding.clone());
                    let (nearest, decision) = self.match_probe(embedding, mode);
                    FrameOutcome::Matched { decision, nearest }
                }
            });
        }
        let ident = match vote::tally(&frames, votes) {
            Verdict::Recognised { distance, .. } if !live(&offsets) => {
                debug!(turn = turn(&offsets), frames = offsets.len(), "not live");
                Identification::not_live(distance, mode)
            }
            Verdict::Recognised {
                employee_id,
                distance,
                ..
            } => Identification::recognised(employee_id, distance, mode),
            Verdict::Unknown {
                min_distance,
                ambiguous,
            } => Identification::unknown(min_distance, ambiguous, mode),
            Verdict::Rejected(r) => Identification::rejected(&r, mode),
            Verdict::NoFrames => return None,
        };
        Some(Identification { probe, ..ident })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{camera, enrol, failure, terminal};
    use super::*;
    use attendance_core::punch::{PunchKind, PunchRequest};
    use attendance_core::reason::Reason;

    fn input() -> PunchInput {
        PunchInput {
            request: PunchRequest::Kind(PunchKind::In),
            device_id: None,
            ts_client: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_person_in_front_of_the_camera_is_punched_from_agreeing_frames() {
        let t = terminal();
        let tm = &t.terminal;
        let none = Deadline::none();
        assert_eq!(enrol(tm, "caltech_p02/2.jpg", "홍길동").await, "EMP001");
        let cam = camera(tm, &["caltech_p02/2.jpg"], 60_000).await;
        let a = tm
            .identify_live(&cam, input(), MatchMode::Identify, &none)
            .await
            .unwrap();
        assert!(
            matches!(&a, IdentifyAnswer::Recognised { employee_id, kind: PunchKind::In, duplicate: false, .. } if employee_id == "EMP001"),
            "{a:?}"
        );
        let rows = tm
            .store()
            .attendance(&crate::store::AttendanceQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].source, "camera");
    }

    /// The next `n` analyses the camera publishes: whether each holds an accepted face,
    /// and whether that face was embedded.
    async fn next_analyses(cam: &Camera, n: usize) -> Vec<(bool, bool)> {
        super::super::testing::next_analyses(cam, n)
            .await
            .iter()
            .map(|a| match &a.verdict {
                Ok(f) => (true, f.embedding.is_some()),
                Err(_) => (false, false),
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_camera_embeds_only_while_somebody_waits_for_a_decision() {
        let t = terminal();
        let tm = &t.terminal;
        let cam = camera(tm, &["caltech_p02/2.jpg"], 60_000).await;
        // Nobody waiting: the gates run (the face is accepted), the embedder does not.
        assert_eq!(next_analyses(&cam, 3).await, vec![(true, false); 3]);
        // A window open: from the analysis after the one in flight, every face embedded.
        let window = cam
            .analyses_for(std::time::Duration::from_secs(30))
            .unwrap();
        let seen = next_analyses(&cam, 4).await;
        assert_eq!(seen[1..], [(true, true); 3], "{seen:?}");
        // Closed again: back to the gates only.
        drop(window);
        let seen = next_analyses(&cam, 4).await;
        assert_eq!(seen[1..], [(true, false); 3], "{seen:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stranger_is_unknown_and_no_camera_frames_is_camera_unavailable() {
        let t = terminal();
        let tm = &t.terminal;
        // An empty gallery: nobody can be recognised.
        let cam = camera(tm, &["_unenrolled/caltech_u01/1.jpg"], 60_000).await;
        let a = tm
            .identify_live(&cam, input(), MatchMode::Identify, &Deadline::none())
            .await
            .unwrap();
        assert_eq!(failure(&a), Some(Reason::Unknown), "{a:?}");
        cam.stop();
        // Capture stopped: once the camera no longer says it streams, nothing to watch.
        let mut polls = 0;
        while cam.state() == crate::camera::CameraState::Streaming {
            assert!(
                polls < 250,
                "the camera still streams 5 s after it was stopped"
            );
            polls += 1;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let e = tm
            .identify_live(&cam, input(), MatchMode::Identify, &Deadline::none())
            .await
            .unwrap_err();
        assert!(matches!(e, TerminalError::CameraUnavailable), "{e}");
    }
}
