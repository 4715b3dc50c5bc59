//! The terminal's operations — identify, enrol, punch, administer — on top of the face
//! pipeline and the store. Transport-free: the HTTP handlers and the CLI call these.
//!
//! One file per job: start-up (`open`), admission to the analysis (`admission`), who is
//! at the door from a photo (`identify`) or from the camera's frames (`live`, voting with
//! `face::vote`), recording the attempt and answering it (`record`), enrolment from a
//! photo or the camera (`enrol`, `gather`), user and record administration (`admin`),
//! and `/health` (`health`).

mod admin;
mod admission;
mod appearance;
mod claims;
mod clock;
mod deadline;
mod enrol;
mod error;
mod gather;
mod health;
mod identification;
mod identify;
pub(crate) mod input;
mod learn;
mod live;
mod mode;
mod mode_switch;
mod open;
mod recognizer;
mod record;
mod reembed;
mod roster;
mod thumbnails;
mod walk_up;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};

use crate::metrics::TerminalMetrics;
use crate::store::roster::Fleet;
use crate::store::{Paths, StorageSettings, Store};
use admission::Admission;
use attendance_core::punch::{PunchRequest, PunchSettings};
use attendance_face::liveness::LivenessRule;
use attendance_face::{FacePipeline, FaceSettings};
use recognizer::Recognizer;
use record::Recorder;

use crate::answer::{IdentifyAnswer, PunchInput};
pub(crate) use deadline::Deadline;
pub(crate) use enrol::{EnrolAnswer, EnrolInput};
pub(crate) use error::TerminalError;
pub(crate) use health::Health;
pub(crate) use mode_switch::ModeSwitch;

/// What the terminal's operations need from the configuration. Nothing here changes while
/// the daemon runs: the live decision rule is the recognizer's, set through
/// [`Terminal::set_rule`].
#[derive(Debug, Clone)]
pub(crate) struct TerminalSettings {
    /// The terminal's id, for attempts whose request names no `device_id`.
    pub(crate) device_id: String,
    pub(crate) site: String,
    pub(crate) paths: Paths,
    pub(crate) storage: StorageSettings,
    pub(crate) face: FaceSettings,
    pub(crate) punch: PunchSettings,
    /// Largest photo accepted (the HTTP body limit), also the decoder's byte limit.
    pub(crate) max_upload_bytes: usize,
    pub(crate) max_concurrent_analyses: usize,
    pub(crate) max_queued_analyses: usize,
    /// MODE_A: how long the camera's frames are watched, and how many must agree.
    pub(crate) identify_window: Duration,
    pub(crate) identify_votes: usize,
    /// Enrolment from the camera: how long frames are gathered, and how many kept.
    pub(crate) enrol_window: Duration,
    pub(crate) enrol_frames: usize,
    /// Set when the terminal shares its site's roster.
    pub(crate) fleet: Option<Fleet>,
    /// Whether metrics are recorded (`http.metrics`).
    pub(crate) metrics: bool,
    /// Walk-up punching's way: the default, and how long a screen's choice holds.
    pub(crate) walk_up_mode: PunchRequest,
    pub(crate) walk_up_choice: Duration,
    /// The buddy-punching guard for camera decisions (`camera.liveness`), if on.
    pub(crate) liveness: Option<LivenessRule>,
    /// Walk-up punches may teach their person a template (`camera.learn_at_door`).
    pub(crate) learn_at_door: bool,
}

/// The terminal's operations over narrower handles: each job gets the one it needs
/// (the outbox publisher the recorder's wake-up, the screen route the mode switch).
pub(crate) struct Terminal {
    settings: TerminalSettings,
    store: Arc<Store>,
    /// The gallery and the decision rule.
    recognizer: Recognizer,
    pipeline: FacePipeline,
    /// Who may be analysed now.
    admission: Admission,
    /// Failed 1:1 claims, per claimed id and per device.
    claims: std::sync::Mutex<claims::Claims>,
    /// Enrolments are checked for duplicates and written one at a time, so two photos of
    /// one face enrolled at the same moment cannot both pass (see `people_writer`).
    enrol_lock: Arc<Mutex<()>>,
    /// Writes the attempts and tells the outbox and the feed.
    recorder: Arc<Recorder>,
    /// Which way the next walk-up punch goes.
    modes: Arc<ModeSwitch>,
    /// Whether walk-up is still trying the person in view, for the screen.
    trying: crate::feed::Trying,
    metrics: Arc<TerminalMetrics>,
}

impl Terminal {
    /// The one writer of people (enrolments, deletions, roster pages). Owned, so the
    /// blocking work holds it: a request that times out mid-write does not let the next
    /// writer in before its write has ended.
    async fn people_writer(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.enrol_lock.clone().lock_owned().await
    }

    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The analysis the camera shares (same gates, same embedder).
    pub(crate) fn pipeline(&self) -> &FacePipeline {
        &self.pipeline
    }

    /// What the terminal and its camera record for `/metrics`.
    pub(crate) fn metrics(&self) -> &Arc<TerminalMetrics> {
        &self.metrics
    }

    /// The terminal's id and its site.
    pub(crate) fn device_id(&self) -> &str {
        &self.settings.device_id
    }

    pub(crate) fn site(&self) -> &str {
        &self.settings.site
    }

    /// Records attempts (manual punches directly), wakes the outbox, feeds `/events`.
    pub(crate) fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    /// Which way the next walk-up punch goes (a screen button may choose).
    pub(crate) fn modes(&self) -> &Arc<ModeSwitch> {
        &self.modes
    }

    /// Whether walk-up is still trying to recognise the person in view.
    pub(crate) fn trying(&self) -> watch::Receiver<bool> {
        self.trying.watch()
    }

    /// Name of the active embedder, stored with every template and attempt.
    pub(crate) fn embedder_name(&self) -> &'static str {
        self.recognizer.embedder().name()
    }

    /// Applies a re-read `[face]` tolerance and margin (SIGHUP); the embedder stays.
    pub(crate) fn set_rule(&self, face: &FaceSettings) {
        self.recognizer
            .set_rule(face.rule(self.recognizer.embedder().as_ref()));
    }
}

impl Terminal {
    /// Records an identification with the threshold of the rule that decided it.
    /// Blocks.
    fn record(
        &self,
        ident: identification::Identification,
        p: PunchInput,
        source: attendance_wire::event::Source,
        deadline: &Deadline,
    ) -> Result<IdentifyAnswer, TerminalError> {
        let rule = self.recognizer.rule();
        let threshold = if ident.verify {
            rule.verify_threshold
        } else {
            rule.threshold
        };
        self.recorder.record(ident, threshold, p, source, deadline)
    }
}

/// Runs blocking work (SQLite, pixels) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, TerminalError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TerminalError::Internal(format!("worker failed: {e}")))
}

#[cfg(test)]
pub(crate) mod testing {
    //! A terminal on a temporary folder with the HOG embedder: every operation runs
    //! without the daemon, the models or a socket.

    use super::*;
    use attendance_face::EmbedderChoice;

    pub(crate) struct TempTerminal {
        pub(crate) terminal: Arc<Terminal>,
        pub(crate) dir: std::path::PathBuf,
    }

    impl Drop for TempTerminal {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub(crate) fn settings(dir: &std::path::Path) -> TerminalSettings {
        let storage = StorageSettings::default();
        TerminalSettings {
            device_id: "T1".into(),
            site: "hq".into(),
            paths: storage.paths(dir),
            storage,
            face: FaceSettings {
                embedder: EmbedderChoice::Hog,
                ..FaceSettings::default()
            },
            punch: PunchSettings::default(),
            max_upload_bytes: 10 << 20,
            max_concurrent_analyses: 2,
            max_queued_analyses: 4,
            identify_window: Duration::from_millis(1500),
            identify_votes: 2,
            enrol_window: Duration::from_millis(3000),
            enrol_frames: 3,
            fleet: None,
            metrics: true,
            walk_up_mode: PunchRequest::Auto,
            walk_up_choice: Duration::from_secs(10),
            liveness: None,
            learn_at_door: true,
        }
    }

    pub(crate) fn temp_dir(tag: &str) -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("att-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A fresh terminal; `tweak` adjusts the settings first.
    pub(crate) fn terminal_with(tweak: impl FnOnce(&mut TerminalSettings)) -> TempTerminal {
        let dir = temp_dir("terminal");
        let mut s = settings(&dir);
        tweak(&mut s);
        let terminal = Arc::new(Terminal::open(s).expect("terminal opens"));
        TempTerminal { terminal, dir }
    }

    pub(crate) fn terminal() -> TempTerminal {
        terminal_with(|_| {})
    }

    pub(crate) fn new_person(name: &str) -> EnrolInput {
        EnrolInput {
            employee_id: None,
            name: Some(name.into()),
            device_id: None,
        }
    }

    /// Enrols the dev photo `file` as a new person named `name`; their id.
    pub(crate) async fn enrol(t: &Arc<Terminal>, file: &str, name: &str) -> String {
        match t
            .enrol_photo(photo(file), new_person(name), &Deadline::none())
            .await
            .unwrap()
        {
            EnrolAnswer::Enrolled { employee_id, .. } => employee_id,
            other => panic!("{file} not enrolled: {other:?}"),
        }
    }

    pub(crate) use attendance_face::testing::photo;

    /// Spawns `request` and drops it, as a timeout drops a request, once `held()` says
    /// its work holds its place (a slot, the people writer); fails if it never does.
    pub(crate) async fn drop_once_held<T: Send + 'static>(
        request: impl std::future::Future<Output = T> + Send + 'static,
        held: impl Fn() -> bool,
    ) {
        let task = tokio::spawn(request);
        let started = std::time::Instant::now();
        while !held() {
            assert!(
                started.elapsed().as_secs() < 10,
                "the request's work was never seen holding its place"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        task.abort();
        assert!(task.await.is_err(), "the request was dropped, not answered");
    }

    pub(crate) use crate::camera::testing::{TempCamera, next_analyses};

    /// A replay camera showing `photos` one after the other, each for `hold_ms`
    /// (looping), analysed 10 times a second by the terminal's own pipeline; returns
    /// once it streams and has analysed a frame.
    pub(crate) async fn camera(t: &Terminal, photos: &[&str], hold_ms: u64) -> TempCamera {
        let settings = crate::camera::CameraSettings {
            replay_hold_ms: hold_ms,
            analysis_fps: 10,
            ..Default::default()
        };
        camera_with(t, photos, settings).await
    }

    /// [`camera`] with other settings (`source` is set here).
    pub(crate) async fn camera_with(
        t: &Terminal,
        photos: &[&str],
        settings: crate::camera::CameraSettings,
    ) -> TempCamera {
        let frames: Vec<Vec<u8>> = photos.iter().map(|p| photo(p)).collect();
        camera_of(t, &frames, settings).await
    }

    /// Encoded `frames` as the reel, analysed by the terminal's pipeline.
    pub(crate) async fn camera_of(
        t: &Terminal,
        frames: &[Vec<u8>],
        settings: crate::camera::CameraSettings,
    ) -> TempCamera {
        let (pipeline, metrics) = (t.pipeline().clone(), t.metrics().clone());
        crate::camera::testing::camera_on(pipeline, metrics, frames, settings).await
    }

    /// The reason of a failed answer; None when somebody was recognised.
    pub(crate) fn failure(a: &IdentifyAnswer) -> Option<attendance_core::reason::Reason> {
        match a {
            IdentifyAnswer::Failed { reason, .. } => Some(*reason),
            IdentifyAnswer::Recognised { .. } => None,
        }
    }
}
