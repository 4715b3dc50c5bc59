//! Walk-up punching: whoever stands in front of the camera is punched without anyone
//! calling `/identify`. A face that passes the gates opens a decision (the MODE_A vote of
//! `live`); the decision is recorded once per appearance — a person standing at the door
//! for a minute is one punch, a stranger one `unknown` — and an appearance ends when the
//! doorway has been empty for a while (`appearance.rs`), a face turns up somewhere else, or the face there
//! is no longer the decided person's ([`RECHECK`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::appearance::Appearance;
use super::{Deadline, PunchInput, Terminal, TerminalError, blocking};
use crate::answer::MatchMode;
use crate::camera::{Camera, LiveAnalysis};
use attendance_core::reason::Reason;
use attendance_core::shutdown::Shutdown;
use attendance_face::{Embedding, FaceBox};
use attendance_wire::event::Source;

/// While a decided appearance lasts, who stands there is checked this often (one embedded
/// frame): the next person in a queue may step into the same place before the doorway
/// is ever empty.
const RECHECK: Duration = Duration::from_secs(2);

/// What one try at a decision came to.
enum Attempt {
    /// Recorded; the last face embedded for it, to recognise the person by.
    Decided(Option<Embedding>),
    /// Nothing recorded for good: try again while the appearance lasts.
    Again,
}

/// After a failure to decide (the recorder refused, the gallery is too big for 1:N), the
/// next try waits this long.
const RETRY: Duration = Duration::from_secs(2);

/// The first face the camera embeds within a second (None: nobody usable, no camera).
async fn probe_once(camera: &Camera) -> Option<Embedding> {
    let mut window = camera.analyses_for(Duration::from_secs(1))?;
    while let Some(a) = window.next().await {
        if let Ok(face) = &a.verdict
            && let Some(e) = &face.embedding
        {
            return Some(e.clone());
        }
    }
    None
}

/// The largest face of an analysis (the one the gates judged).
fn largest(a: &LiveAnalysis) -> Option<FaceBox> {
    a.faces
        .iter()
        .copied()
        .max_by(|x, y| x.area().total_cmp(&y.area()))
}

impl Terminal {
    /// Watches the camera until `stop`, punching whoever walks up.
    pub(crate) async fn walk_up(self: Arc<Self>, camera: Arc<Camera>, mut stop: Shutdown) {
        let mut analyses = camera.subscribe_analysis();
        let mut appearance = Appearance::default();
        // The decided person's face, and when it was last compared with who stands there.
        let (mut who, mut checked) = (None::<Embedding>, Instant::now());
        loop {
            tokio::select! {
                changed = analyses.changed() => if changed.is_err() { return },
                _ = stop.recv() => return,
            }
            let Some(a) = analyses.borrow_and_update().clone() else {
                continue;
            };
            if !appearance.observe(a.at, largest(&a), a.verdict.is_ok()) {
                if a.verdict.is_ok() && appearance.is_decided() && checked.elapsed() >= RECHECK {
                    checked = Instant::now();
                    if let (Some(was), Some(now)) = (&who, probe_once(&camera).await)
                        && was.distance(&now) > self.recognizer.rule().threshold
                    {
                        debug!("walk-up: somebody else stands there now");
                        appearance.forget();
                    }
                    analyses.borrow_and_update();
                }
                continue;
            }
            match self.walk_up_decision(&camera, &mut appearance).await {
                Ok(Attempt::Decided(probe)) => {
                    let now = camera.latest_analysis();
                    appearance.decided(Instant::now(), now.as_deref().and_then(largest));
                    (who, checked) = (probe, Instant::now());
                }
                // The face left or turned away within the window, or did not move like a
                // head: try again while the appearance lasts.
                Ok(Attempt::Again) => appearance.touch(Instant::now()),
                Err(e) => {
                    warn!(error = %e, "walk-up punch failed");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => {}
                        _ = stop.recv() => return,
                    }
                }
            }
            // The window's analyses are past: go on from the newest.
            analyses.borrow_and_update();
        }
    }

    /// Decides who is at the door and records it; false when the frames showed nobody
    /// usable, or a face that did not move like a head (recorded once per appearance).
    async fn walk_up_decision(
        self: &Arc<Self>,
        camera: &Camera,
        appearance: &mut Appearance,
    ) -> Result<Attempt, TerminalError> {
        let Some(mut window) = camera.analyses_for(self.settings.identify_window) else {
            return Ok(Attempt::Again);
        };
        let mode = MatchMode::Identify;
        self.admit_mode(&mode, &self.settings.device_id).await?;
        let Some(ident) = self.vote(&mut window, &mode).await else {
            return Ok(Attempt::Again);
        };
        let refused = ident.reason == Some(Reason::NotLive);
        if refused && !appearance.refuse() {
            return Ok(Attempt::Again);
        }
        if ident.employee_id.is_none() && ident.reason != Some(Reason::Unknown) && !refused {
            debug!(reason = ?ident.reason, "walk-up: no usable face in the window");
            return Ok(Attempt::Again);
        }
        let probe = ident.probe.clone();
        self.recorder.check_disk()?;
        let chosen = self.modes.current();
        let p = PunchInput {
            request: chosen.request,
            device_id: None,
            ts_client: None,
        };
        let me = self.clone();
        blocking(move || me.record(ident, p, Source::Camera, &Deadline::none())).await??;
        if refused {
            return Ok(Attempt::Again);
        }
        if chosen.chosen {
            // A way chosen on the screen is for one punch.
            self.modes.reset();
        }
        Ok(Attempt::Decided(probe))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{camera, enrol, terminal, terminal_with};
    use super::*;
    use crate::store::{AttendanceQuery, AttendanceRow};
    use attendance_core::punch::{PunchKind, PunchRequest};

    /// Every attempt recorded so far.
    fn rows(tm: &Terminal) -> Vec<AttendanceRow> {
        tm.store()
            .attendance(&AttendanceQuery {
                limit: 100,
                ..Default::default()
            })
            .expect("the attendance log reads")
    }

    /// Runs walk-up punching on `camera` for `d`, then answers what it recorded.
    async fn walk_up_for(
        tm: &Arc<Terminal>,
        camera: &Arc<Camera>,
        d: Duration,
    ) -> Vec<AttendanceRow> {
        let (stop_tx, stop) = attendance_core::shutdown::channel();
        let task = tokio::spawn(tm.clone().walk_up(camera.clone(), stop));
        tokio::time::sleep(d).await;
        stop_tx.fire();
        let _ = task.await;
        rows(tm)
    }

    #[test]
    fn the_liveness_guard_needs_an_embedder_that_finds_landmarks() {
        let dir = super::super::testing::temp_dir("liveness");
        let mut s = super::super::testing::settings(&dir);
        s.liveness = Some(attendance_face::liveness::LivenessRule::DEFAULT);
        let e = Terminal::open(s).err().expect("HOG finds no landmarks");
        assert!(
            matches!(
                e,
                TerminalError::InvalidField {
                    field: "camera.liveness",
                    ..
                }
            ),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_person_standing_at_the_door_is_punched_once_and_a_stranger_recorded_once() {
        let t = terminal();
        let tm = &t.terminal;
        assert_eq!(enrol(tm, "caltech_p02/2.jpg", "홍길동").await, "EMP001");
        // The enrolled person standing for 2 s, nobody for 2 s, a stranger for 2 s,
        // nobody (held photos: people standing still).
        let chart = "_negatives/no_face_chart.jpg";
        let photos = [
            "caltech_p02/2.jpg",
            chart,
            "_unenrolled/caltech_u01/1.jpg",
            chart,
        ];
        let cam = camera(tm, &photos, 2_000).await;
        let rows = walk_up_for(tm, &cam.camera, Duration::from_millis(7_500)).await;
        let who: Vec<(Option<&str>, &str)> = rows
            .iter()
            .map(|r| (r.employee_id.as_deref(), r.reason.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            rows.iter()
                .filter(|r| r.employee_id.as_deref() == Some("EMP001"))
                .count(),
            1,
            "{who:?}"
        );
        assert_eq!(
            rows.iter()
                .filter(|r| r.reason.as_deref() == Some("unknown"))
                .count(),
            1,
            "{who:?}"
        );
        assert!(rows.iter().all(|r| r.source == "camera"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_next_person_stepping_into_the_same_place_is_decided_too() {
        let t = terminal();
        let tm = &t.terminal;
        // The two demo stills: two people, each centred in the guide, one after the other
        // with no empty frame between (the same place, the same size).
        let demo = |f: &str| {
            std::fs::read(format!(
                "{}/assets/demo/{f}",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../..")
            ))
            .unwrap()
        };
        let frames = [
            demo("1_astronaut_eileen_collins.jpg"),
            demo("2_grace_hopper.jpg"),
        ];
        let settings = crate::camera::CameraSettings {
            replay_hold_ms: 5_000,
            analysis_fps: 10,
            ..Default::default()
        };
        let cam = super::super::testing::camera_of(tm, &frames, settings).await;
        let rows = walk_up_for(tm, &cam.camera, Duration::from_millis(9_500)).await;
        let reasons: Vec<Option<&str>> = rows.iter().map(|r| r.reason.as_deref()).collect();
        assert_eq!(reasons, [Some("unknown"), Some("unknown")], "one each");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_way_chosen_on_the_screen_is_for_one_punch() {
        let t = terminal_with(|s| s.walk_up_choice = Duration::from_secs(30));
        let tm = &t.terminal;
        assert_eq!(enrol(tm, "caltech_p02/2.jpg", "홍길동").await, "EMP001");
        tm.modes().choose(PunchRequest::Kind(PunchKind::Out));
        assert!(tm.modes().current().chosen);
        let cam = camera(tm, &["caltech_p02/2.jpg"], 60_000).await;
        let (stop_tx, stop) = attendance_core::shutdown::channel();
        let task = tokio::spawn(tm.clone().walk_up(cam.camera.clone(), stop));
        let mut mode = tm.modes().watch();
        tokio::time::timeout(Duration::from_secs(10), mode.wait_for(|m| !m.chosen))
            .await
            .expect("the choice was used")
            .unwrap();
        stop_tx.fire();
        let _ = task.await;
        let rows = rows(tm);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].kind, PunchKind::Out);
        assert_eq!(tm.modes().current().request, PunchRequest::Auto);
    }
}
