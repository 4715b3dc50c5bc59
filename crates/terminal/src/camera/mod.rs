//! The terminal's camera: one capture task owns the source and publishes the latest frame;
//! analysis runs on the latest frame at its own rate; the stream encodes each output frame
//! to JPEG once for every viewer. A slow consumer only ever sees the newest value (tokio
//! `watch`), so nothing queues.

mod analyse;
mod analysis;
pub(crate) mod convert;
mod frame;
pub mod overlay;
mod replay;
mod scene;
mod settings;
mod stream;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(target_os = "linux")]
mod v4l2;
mod window;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use attendance_core::i18n::SharedLocale;
use attendance_core::shutdown::Shutdown;
use attendance_face::FacePipeline;
use bytes::Bytes;
use tokio::sync::watch;
use tracing::warn;

use crate::metrics::{CameraScrape, TerminalMetrics};
pub(crate) use analysis::{CameraState, Detection, LiveAnalysis};
pub(crate) use frame::Frame;
pub use settings::{CameraSettings, CameraSpec};
pub(crate) use window::AnalysisWindow;

/// Handle on the running camera.
pub(crate) struct Camera {
    settings: CameraSettings,
    locale: SharedLocale,
    pipeline: FacePipeline,
    frames: watch::Receiver<Option<Arc<Frame>>>,
    state: watch::Receiver<CameraState>,
    analysis: watch::Receiver<Option<Arc<LiveAnalysis>>>,
    /// Overlay JPEGs; encoded only while somebody watches.
    stream: watch::Sender<Option<Bytes>>,
    /// Open analysis windows (see [`Waiting`]).
    waiting: Arc<AtomicUsize>,
    stop_capture: Arc<AtomicBool>,
    metrics: Arc<TerminalMetrics>,
}

impl Camera {
    /// Starts capture, analysis and the stream encoder. `None` for `source = "none"`.
    pub(crate) fn start(
        settings: &CameraSettings,
        pipeline: FacePipeline,
        locale: SharedLocale,
        metrics: Arc<TerminalMetrics>,
        stop: Shutdown,
    ) -> Option<Arc<Camera>> {
        let (frames_tx, frames) = watch::channel(None);
        let (state_tx, state) = watch::channel(CameraState::Starting);
        let stop_capture = Arc::new(AtomicBool::new(false));
        match &settings.source {
            CameraSpec::None => return None,
            CameraSpec::Replay(path) => {
                tokio::spawn(replay::run(
                    path.clone(),
                    settings.clone(),
                    frames_tx,
                    state_tx,
                    stop.clone(),
                ));
            }
            #[cfg(target_os = "linux")]
            CameraSpec::V4l2(path) => {
                let (path, cfg, flag) = (path.clone(), settings.clone(), stop_capture.clone());
                let spawned = std::thread::Builder::new()
                    .name("v4l2-capture".into())
                    .spawn(move || v4l2::run(&path, &cfg, &frames_tx, &state_tx, &flag));
                if let Err(e) = spawned {
                    warn!(error = %e, "camera thread did not start");
                }
            }
            #[cfg(not(target_os = "linux"))]
            CameraSpec::V4l2(_) => {
                let _ = state_tx.send(CameraState::Unavailable);
            }
        }
        let (analysis_tx, analysis) = watch::channel(None);
        let (stream, _) = watch::channel(None);
        let camera = Arc::new(Camera {
            settings: settings.clone(),
            locale,
            pipeline,
            frames,
            state,
            analysis,
            stream,
            waiting: Arc::default(),
            stop_capture,
            metrics,
        });
        tokio::spawn(analyse::run(camera.clone(), analysis_tx, stop.clone()));
        tokio::spawn(stream::run(camera.clone(), stop.clone()));
        let flag = camera.stop_capture.clone();
        let mut stop = stop;
        tokio::spawn(async move {
            stop.recv().await;
            flag.store(true, Ordering::Relaxed);
        });
        Some(camera)
    }

    pub(crate) fn state(&self) -> CameraState {
        *self.state.borrow()
    }

    /// When the last frame arrived and the last analysis finished (for the watchdog).
    pub(crate) fn progress(&self) -> attendance_core::systemd::CameraProgress {
        attendance_core::systemd::CameraProgress {
            last_frame: self.latest_frame().map(|f| f.at),
            last_analysis: self.latest_analysis().map(|a| a.at),
        }
    }

    /// What `/metrics` shows of the camera.
    pub(crate) fn scrape(&self) -> CameraScrape {
        CameraScrape {
            streaming: self.state() == CameraState::Streaming,
            captured: self.latest_frame().map_or(0, |f| f.seq),
            viewers: self.stream.receiver_count(),
        }
    }

    pub(crate) fn latest_frame(&self) -> Option<Arc<Frame>> {
        self.frames.borrow().clone()
    }

    pub(crate) fn latest_analysis(&self) -> Option<Arc<LiveAnalysis>> {
        self.analysis.borrow().clone()
    }

    /// A receiver of overlay JPEGs for one viewer (starts the encoder if idle).
    pub(crate) fn subscribe_stream(&self) -> watch::Receiver<Option<Bytes>> {
        self.stream.subscribe()
    }

    pub(crate) fn subscribe_analysis(&self) -> watch::Receiver<Option<Arc<LiveAnalysis>>> {
        self.analysis.clone()
    }

    /// The analyses of frames yet to come, for `window` from now (MODE_A's vote,
    /// enrolment from the camera), with their faces embedded from the next analysis on
    /// (one already running when the window opens may come without); None when the
    /// camera is not streaming.
    pub(crate) fn analyses_for(&self, window: Duration) -> Option<AnalysisWindow> {
        if self.state() != CameraState::Streaming {
            return None;
        }
        Some(AnalysisWindow::open(
            self.analysis.clone(),
            window,
            &self.waiting,
        ))
    }

    /// The latest frame as JPEG, with the overlay if `preview`.
    pub(crate) fn capture_jpeg(&self, preview: bool) -> Option<Bytes> {
        let frame = self.latest_frame()?;
        let rgb = frame.rgb()?;
        let img = if preview {
            let a = self.latest_analysis();
            overlay::draw(
                rgb,
                a.as_deref(),
                &self.pipeline.config.quality.ellipse,
                self.locale.get(),
            )
        } else {
            rgb.clone()
        };
        stream::encode_jpeg(&img, self.settings.jpeg_quality)
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop_capture.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::analyse::due;
    use super::testing::{camera, camera_of, camera_with, next_analyses};
    use super::{CameraSettings, CameraState, Detection};
    use attendance_face::testing::photo;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_still_scene_keeps_its_detection_until_the_recheck() {
        // One photo: every frame the same scene; 10 analyses a second, recheck 1 s.
        let cam = camera(&["caltech_p02/2.jpg"], 60_000).await;
        let seen = next_analyses(&cam, 25).await;
        assert!(seen.iter().all(|a| a.detection != Detection::Tracked));
        let fresh: Vec<_> = seen
            .iter()
            .filter(|a| a.detection == Detection::Full)
            .collect();
        // 25 analyses take 2.5 s or more: two whole-frame scans at least, and (below)
        // never two within the 1 s recheck.
        assert!(
            fresh.len() >= 2,
            "a detection a second: {:?}",
            seen.iter().map(|a| a.detection).collect::<Vec<_>>()
        );
        for a in &seen {
            let f = a.verdict.as_ref().expect("the photo's face is accepted");
            assert_eq!(a.faces.len(), 1);
            assert!(f.embedding.is_none(), "nobody waits");
        }
        let gaps = fresh.windows(2).map(|w| w[1].at - w[0].at);
        assert!(
            gaps.clone().all(|g| g >= Duration::from_millis(900)),
            "{:?}",
            gaps.collect::<Vec<_>>()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_empty_scene_that_does_not_change_is_not_detected_again() {
        let settings = CameraSettings {
            analysis_fps: 10,
            idle_analysis_fps: 10,
            ..CameraSettings::default()
        };
        let cam = camera_with(&["_negatives/no_face_chart.jpg"], settings).await;
        // 2.5 s, more than twice the 1 s a face in view would be detected again after.
        let seen = next_analyses(&cam, 25).await;
        let kinds: Vec<_> = seen.iter().map(|a| a.detection).collect();
        assert!(kinds.iter().all(|k| *k == Detection::Still), "{kinds:?}");
        assert!(seen.iter().all(|a| a.faces.is_empty()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_change_of_scene_is_detected_at_once_not_at_the_recheck() {
        // A face and a chart without one, 400 ms each; no recheck within the test.
        let settings = CameraSettings {
            replay_hold_ms: 400,
            analysis_fps: 10,
            redetect_ms: 60_000,
            ..CameraSettings::default()
        };
        let photos = ["caltech_p02/2.jpg", "_negatives/no_face_chart.jpg"];
        let cam = camera_with(&photos, settings).await;
        let seen = next_analyses(&cam, 30).await;
        let in_view: Vec<bool> = seen.iter().map(|a| !a.faces.is_empty()).collect();
        let switches = in_view.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(switches >= 4, "the face came and went: {in_view:?}");
        // The carrying was on (else every switch would be a whole-frame scan anyway):
        // each photo is held for ~4 analyses, so most of them are still when the
        // machine keeps up; under a loaded test run far fewer are.
        let kinds: Vec<_> = seen.iter().map(|a| a.detection).collect();
        assert!(
            kinds.iter().filter(|k| **k == Detection::Still).count() >= 3,
            "{kinds:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_moving_face_is_followed_near_where_it_was() {
        let face = image::load_from_memory(&photo("caltech_p02/2.jpg"))
            .unwrap()
            .to_rgb8();
        // The photo on a 640x480 frame, 16 px further right each frame and back.
        let frames: Vec<Vec<u8>> = [0, 16, 32, 48, 32, 16]
            .iter()
            .map(|dx| {
                let mut f = image::RgbImage::from_pixel(640, 480, image::Rgb([110; 3]));
                image::imageops::replace(&mut f, &face, 80 + dx, 90);
                attendance_face::encode::jpeg(&f, 90).unwrap()
            })
            .collect();
        let settings = CameraSettings {
            replay_hold_ms: 150,
            analysis_fps: 10,
            redetect_ms: 60_000,
            ..CameraSettings::default()
        };
        let cam = camera_of(&frames, settings).await;
        let seen = next_analyses(&cam, 30).await;
        let tracked: Vec<_> = seen
            .iter()
            .filter(|a| a.detection == Detection::Tracked)
            .collect();
        let kinds: Vec<_> = seen.iter().map(|a| a.detection).collect();
        // Each picture is held for ~1.5 analyses: the first sees it move (tracked),
        // a second sees it again (still).
        assert!(tracked.len() >= 10, "{kinds:?}");
        assert!(tracked.iter().all(|a| a.faces.len() == 1), "{kinds:?}");
        let xs: Vec<f32> = tracked.iter().map(|a| a.faces[0].x).collect();
        let span =
            xs.iter().fold(f32::MIN, |m, x| m.max(*x)) - xs.iter().fold(f32::MAX, |m, x| m.min(*x));
        assert!(span >= 30.0, "the box followed the face: {xs:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn analyses_run_side_by_side_and_are_published_in_frame_order() {
        // A face (embedded: slow) and a chart (no face: fast) in turn, every frame
        // analysed, three at a time: later frames often finish first.
        let settings = CameraSettings {
            stream_fps: 30,
            analysis_fps: 30,
            analysis_threads: Some(3),
            redetect_ms: 0,
            ..CameraSettings::default()
        };
        let photos = ["caltech_p02/2.jpg", "_negatives/no_face_chart.jpg"];
        let cam = camera_with(&photos, settings).await;
        let _window = cam.analyses_for(Duration::from_secs(60)).unwrap();
        let seen = next_analyses(&cam, 60).await;
        let seqs: Vec<u64> = seen.iter().map(|a| a.frame_seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        assert!(
            seen.iter().any(|a| a.faces.is_empty()) && seen.iter().any(|a| !a.faces.is_empty())
        );
    }

    #[test]
    fn an_empty_scene_is_analysed_every_nth_tick_a_busy_one_every_tick() {
        let mut skipped = 0;
        let idle: Vec<bool> = (0..6).map(|_| due(false, &mut skipped, 3)).collect();
        assert_eq!(idle, [false, false, true, false, false, true]);
        // A face (or a waiting request) makes every tick due and restarts the count.
        assert!(!due(false, &mut skipped, 3) && skipped == 1);
        assert!(due(true, &mut skipped, 3) && skipped == 0);
        assert!(due(true, &mut skipped, 3));
        assert!(!due(false, &mut skipped, 3));
        // idle_analysis_fps == analysis_fps: never skips.
        assert!((0..4).all(|_| due(false, &mut skipped, 1)));
    }

    #[test]
    fn camera_states_have_their_documented_wire_names() {
        let names = [
            CameraState::Starting,
            CameraState::Streaming,
            CameraState::Unavailable,
        ]
        .map(CameraState::as_str);
        assert_eq!(names, ["starting", "streaming", "unavailable"]);
    }
}
