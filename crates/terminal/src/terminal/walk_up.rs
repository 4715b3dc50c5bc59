//! Walk-up punching: whoever stands in front of the camera is punched without anyone
//! calling `/identify`. A face that passes the gates opens a decision (the MODE_A vote of
//! `live`); the decision is recorded once per appearance — a person standing at the door
//! for a minute is one punch, a stranger one `unknown` — and an appearance ends when the
//! doorway has been empty for a while (`appearance.rs`), a face turns up somewhere else,
//! or the face there is no longer the decided person's ([`RECHECK`]). A try that
//! recognises nobody does not end the tries: the door keeps deciding while the person
//! stands there (`appearance::TRY_FOR`), punches them when a later try recognises them,
//! and records `unknown` once, when the tries run out or the person leaves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::appearance::Appearance;
use super::identification::Identification;
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
    /// Usable faces, nobody recognised: recorded as `unknown` only once the tries are
    /// over (`Appearance::unknown`) or the person has left.
    Unrecognised(Box<Identification>),
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
        // The last `unknown` of the appearance being tried, recorded if the tries end so.
        let mut owed: Option<Box<Identification>> = None;
        loop {
            tokio::select! {
                changed = analyses.changed() => if changed.is_err() { break },
                _ = stop.recv() => break,
            }
            let Some(a) = analyses.borrow_and_update().clone() else {
                continue;
            };
            let due = appearance.observe(a.at, largest(&a), a.verdict.is_ok());
            if appearance.take_left_unknown()
                && let Some(ident) = owed.take()
            {
                self.trying.set(false);
                self.record_walk_up_or_log(*ident).await;
            }
            if !due {
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
                    owed = None;
                    let now = camera.latest_analysis();
                    appearance.decided(Instant::now(), now.as_deref().and_then(largest));
                    (who, checked) = (probe, Instant::now());
                }
                // Somebody else stepped into the same place while a stranger was tried:
                // the stranger's tries end, the newcomer's begin.
                Ok(Attempt::Unrecognised(ident))
                    if owed
                        .as_ref()
                        .is_some_and(|was| !self.same_face(was, &ident)) =>
                {
                    if let Some(was) = owed.replace(ident) {
                        self.record_walk_up_or_log(*was).await;
                    }
                    appearance.renew_tries();
                    appearance.unknown(Instant::now());
                }
                Ok(Attempt::Unrecognised(ident)) if appearance.unknown(Instant::now()) => {
                    owed = None;
                    let probe = ident.probe.clone();
                    if self.record_walk_up_or_log(*ident).await {
                        let now = camera.latest_analysis();
                        appearance.decided(Instant::now(), now.as_deref().and_then(largest));
                        (who, checked) = (probe, Instant::now());
                    }
                }
                // Tries go on.
                Ok(Attempt::Unrecognised(ident)) => owed = Some(ident),
                // The face left or turned away within the window, or did not move like a
                // head: try again while the appearance lasts.
                Ok(Attempt::Again) => appearance.touch(Instant::now()),
                Err(e) => {
                    warn!(error = %e, "walk-up punch failed");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => {}
                        _ = stop.recv() => break,
                    }
                }
            }
            self.trying.set(owed.is_some());
            // The window's analyses are past: go on from the newest.
            analyses.borrow_and_update();
        }
        self.trying.set(false);
        // Stopping while somebody is being tried records nothing for them, as a stop in
        // the middle of a decision window always did: their appearance did not end.
        drop(owed);
    }

    /// Whether two tries saw the same face (as the identity re-check judges it); true
    /// when either has none to compare.
    fn same_face(&self, a: &Identification, b: &Identification) -> bool {
        match (&a.probe, &b.probe) {
            (Some(x), Some(y)) => x.distance(y) <= self.recognizer.rule().threshold,
            _ => true,
        }
    }

    /// Records a walk-up decision; false (logged) when it could not be.
    async fn record_walk_up_or_log(self: &Arc<Self>, ident: Identification) -> bool {
        match self.record_walk_up(ident).await {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %e, "walk-up punch failed");
                false
            }
        }
    }

    /// Records a walk-up decision in the way chosen on the screen, or the default one.
    async fn record_walk_up(self: &Arc<Self>, ident: Identification) -> Result<(), TerminalError> {
        self.recorder.check_disk()?;
        let chosen = self.modes.current();
        let p = PunchInput {
            request: chosen.request,
            device_id: None,
            ts_client: None,
        };
        let me = self.clone();
        blocking(move || me.record(ident, p, Source::Camera, &Deadline::none())).await??;
        if chosen.chosen {
            // A way chosen on the screen is for one punch.
            self.modes.reset();
        }
        Ok(())
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
        if ident.reason == Some(Reason::Unknown) {
            return Ok(Attempt::Unrecognised(Box::new(ident)));
        }
        let probe = ident.probe.clone();
        self.record_walk_up(ident).await?;
        Ok(match refused {
            true => Attempt::Again,
            false => Attempt::Decided(probe),
        })
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
        // The enrolled person standing for 2 s, nobody for 2 s, a stranger for 2 s (one
        // try, then tried again until they leave), nobody for 4 s (held photos: people
        // standing still).
        let chart = "_negatives/no_face_chart.jpg";
        let photos = [
            "caltech_p02/2.jpg",
            chart,
            "_unenrolled/caltech_u01/1.jpg",
            chart,
            chart,
        ];
        let cam = camera(tm, &photos, 2_000).await;
        let rows = walk_up_for(tm, &cam.camera, Duration::from_millis(9_500)).await;
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

    /// Waits (up to 20 s) until the attempts recorded so far satisfy `done`.
    async fn rows_until(
        tm: &Terminal,
        done: impl Fn(&[AttendanceRow]) -> bool,
    ) -> Vec<AttendanceRow> {
        let started = Instant::now();
        loop {
            let r = rows(tm);
            if done(&r) {
                return r;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "never came: {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Walk-up on `camera` until `stop_tx` fires; waits until it tries somebody.
    async fn trying_on(
        tm: &Arc<Terminal>,
        camera: &Arc<Camera>,
    ) -> (
        attendance_core::shutdown::Trigger,
        tokio::task::JoinHandle<()>,
    ) {
        let (stop_tx, stop) = attendance_core::shutdown::channel();
        let mut trying = tm.trying();
        let task = tokio::spawn(tm.clone().walk_up(camera.clone(), stop));
        tokio::time::timeout(Duration::from_secs(10), trying.wait_for(|t| *t))
            .await
            .expect("a try recognised nobody and walk-up went on trying")
            .unwrap();
        (stop_tx, task)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_person_enrolled_while_standing_there_is_punched_without_stepping_away() {
        let t = terminal();
        let tm = &t.terminal;
        enrol(tm, "caltech_p02/2.jpg", "홍길동").await;
        // Somebody not enrolled yet stands at the door...
        let cam = camera(tm, &["caltech_p03/2.jpg"], 60_000).await;
        let (stop_tx, task) = trying_on(tm, &cam.camera).await;
        assert!(rows(tm).is_empty(), "nothing recorded while trying");
        // ...and is enrolled (from the same picture) while they stand there.
        let id = enrol(tm, "caltech_p03/2.jpg", "김철수").await;
        let got = rows_until(tm, |r| !r.is_empty()).await;
        let mut trying = tm.trying();
        tokio::time::timeout(Duration::from_secs(5), trying.wait_for(|t| !*t))
            .await
            .expect("the screen stops saying it is trying")
            .unwrap();
        stop_tx.fire();
        let _ = task.await;
        let who: Vec<(Option<&str>, Option<&str>)> = got
            .iter()
            .map(|r| (r.employee_id.as_deref(), r.reason.as_deref()))
            .collect();
        assert_eq!(
            who,
            [(Some(id.as_str()), None)],
            "punched, no unknown first"
        );
        assert_eq!(rows(tm).len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stranger_standing_ten_seconds_is_one_unknown() {
        let t = terminal();
        let tm = &t.terminal;
        enrol(tm, "caltech_p02/2.jpg", "홍길동").await;
        let cam = camera(tm, &["_unenrolled/caltech_u01/1.jpg"], 60_000).await;
        let started = Instant::now();
        let (stop_tx, task) = trying_on(tm, &cam.camera).await;
        // Tried on for a while, then recorded once, while they still stand there.
        let got = rows_until(tm, |r| !r.is_empty()).await;
        assert!(started.elapsed() >= super::super::appearance::TRY_FOR);
        let reasons: Vec<Option<&str>> = got.iter().map(|r| r.reason.as_deref()).collect();
        assert_eq!(reasons, [Some("unknown")]);
        // Standing on until 10 s: nothing more.
        tokio::time::sleep(Duration::from_secs(10).saturating_sub(started.elapsed())).await;
        stop_tx.fire();
        let _ = task.await;
        assert_eq!(rows(tm).len(), 1, "{:?}", rows(tm));
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
