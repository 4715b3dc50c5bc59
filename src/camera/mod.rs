//! The terminal's camera: one capture task owns the source and publishes the latest frame;
//! analysis runs on the latest frame at its own rate; the stream encodes each output frame
//! to JPEG once for every viewer. A slow consumer only ever sees the newest value (tokio
//! `watch`), so nothing queues.

pub(crate) mod convert;
mod frame;
pub mod overlay;
mod replay;
mod scene;
mod settings;
#[cfg(target_os = "linux")]
mod v4l2;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use image::RgbImage;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::face::liveness::Landmarks;
use crate::face::{
    Embedding, FaceBox, FaceCrop, FacePipeline, FaceQuality, Framing, Rejection, encode,
};
use crate::feed::Guidance;
use crate::i18n::SharedLocale;
use crate::metrics::{CameraScrape, TerminalMetrics};
use crate::shutdown::Shutdown;
pub(crate) use frame::Frame;
use frame::Picture;
use scene::Thumbnail;
pub use settings::{CameraSettings, CameraSpec};

/// Its wire name (`/health`, `/status`) is the variant's in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum CameraState {
    Starting,
    Streaming,
    Unavailable,
}

impl CameraState {
    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The face that passed the gates in a live frame. The crop stays for an enrolment from
/// the camera.
#[derive(Debug, Clone)]
pub(crate) struct LiveFace {
    pub(crate) face: FaceBox,
    pub(crate) quality: FaceQuality,
    /// None when nobody was waiting for a decision (no [`AnalysisWindow`] open as the
    /// analysis started): the overlay and `/status` need only the gates, and embedding
    /// is half an analysis's cost or more (the CNN's two passes take ~19 ms beside
    /// ~15 ms of detection on a 640x480 frame).
    pub(crate) embedding: Option<Embedding>,
    /// The five landmarks, found with the embedding (the liveness guard's input; none
    /// from an embedder that does not find them).
    pub(crate) landmarks: Option<Landmarks>,
    pub(crate) crop: FaceCrop,
}

/// The analysis of the latest frame.
#[derive(Debug, Clone)]
pub(crate) struct LiveAnalysis {
    pub(crate) frame_seq: u64,
    pub(crate) at: Instant,
    pub(crate) frame_size: (u32, u32),
    pub(crate) faces: Vec<FaceBox>,
    pub(crate) verdict: Result<LiveFace, Rejection>,
    pub(crate) detection: Detection,
}

/// How an analysis found its faces. Wire names (`/status`) in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum Detection {
    /// The detector over the whole frame.
    Full,
    /// Only near the one face of the last analysis, at about its size
    /// ([`FacePipeline::analyse_near`]): blind to newcomers elsewhere until the next full
    /// detection, so never while a decision waits.
    Tracked,
    /// Not at all: the frame showed the scene of the last detection (to within noise,
    /// see [`Thumbnail::same_scene`]), whose faces and verdict it carries, without an
    /// embedding.
    Still,
}

impl Detection {
    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }
}

impl LiveAnalysis {
    /// What the screen tells the person: nobody there, ready, or what to change.
    pub(crate) fn guidance(&self) -> Guidance {
        match &self.verdict {
            Ok(_) => Guidance::Ready,
            Err(_) if self.faces.is_empty() => Guidance::Idle,
            Err(r) => Guidance::Adjust {
                reason: r.reason(),
                detail: r.quality_issue(),
            },
        }
    }

    /// This analysis's faces and verdict for a later frame of the same scene.
    fn carried_to(&self, frame_seq: u64) -> LiveAnalysis {
        LiveAnalysis {
            frame_seq,
            at: Instant::now(),
            frame_size: self.frame_size,
            faces: self.faces.clone(),
            verdict: self.verdict.clone().map(|f| LiveFace {
                embedding: None,
                landmarks: None,
                ..f
            }),
            detection: Detection::Still,
        }
    }

    fn of(
        frame_seq: u64,
        a: crate::face::Analysis,
        detection: Detection,
        embedder: Option<&dyn crate::face::Embedder>,
    ) -> LiveAnalysis {
        LiveAnalysis {
            frame_seq,
            at: Instant::now(),
            frame_size: a.frame_size,
            faces: a.faces,
            verdict: a.verdict.map(|acc| LiveFace {
                face: acc.face,
                quality: acc.quality,
                embedding: embedder.map(|e| e.embed(&acc.crop)),
                landmarks: embedder.and_then(|e| e.landmarks(&acc.crop)),
                crop: acc.crop,
            }),
            detection,
        }
    }
}

/// The frame behind the last detection (full or tracked), and when the last full one
/// ran.
struct Reference {
    thumbnail: Arc<Thumbnail>,
    full_at: Instant,
}

/// New analyses until a deadline: see [`Camera::analyses_for`].
pub(crate) struct AnalysisWindow {
    rx: watch::Receiver<Option<Arc<LiveAnalysis>>>,
    end: tokio::time::Instant,
    _waiting: Waiting,
}

/// One open [`AnalysisWindow`] in the camera's count: faces are embedded while the count
/// is above zero.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    fn new(count: &Arc<AtomicUsize>) -> Waiting {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl AnalysisWindow {
    /// The next frame's analysis; None once the window has passed (or the camera
    /// stopped).
    pub(crate) async fn next(&mut self) -> Option<Arc<LiveAnalysis>> {
        loop {
            match tokio::time::timeout_at(self.end, self.rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
            if let Some(a) = self.rx.borrow_and_update().clone() {
                return Some(a);
            }
        }
    }
}

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
                tokio::spawn(replay_task(
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
        tokio::spawn(analysis_task(camera.clone(), analysis_tx, stop.clone()));
        tokio::spawn(stream_task(camera.clone(), stop.clone()));
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
    pub(crate) fn progress(&self) -> crate::systemd::CameraProgress {
        crate::systemd::CameraProgress {
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
        let mut rx = self.analysis.clone();
        // What is already there was analysed before the request.
        rx.borrow_and_update();
        Some(AnalysisWindow {
            rx,
            end: tokio::time::Instant::now() + window,
            _waiting: Waiting::new(&self.waiting),
        })
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
        encode_jpeg(&img, self.settings.jpeg_quality)
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop_capture.store(true, Ordering::Relaxed);
    }
}

/// The stream's and `/capture`'s JPEG (`None` only for a frame too large for JPEG).
fn encode_jpeg(img: &RgbImage, quality: u8) -> Option<Bytes> {
    encode::jpeg(img, quality).ok().map(Bytes::from)
}

async fn replay_task(
    path: PathBuf,
    cfg: CameraSettings,
    frames: watch::Sender<Option<Arc<Frame>>>,
    state: watch::Sender<CameraState>,
    mut stop: Shutdown,
) {
    let reel = match replay::Reel::open(&path) {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "replay camera unavailable");
            let _ = state.send(CameraState::Unavailable);
            return;
        }
    };
    info!(path = %path.display(), frames = reel.len(), fps = cfg.stream_fps, "replaying as camera");
    let _ = state.send(CameraState::Streaming);
    let period = Duration::from_secs_f64(1.0 / f64::from(cfg.stream_fps.max(1)));
    let hold = Duration::from_millis(cfg.replay_hold_ms).max(period);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut index, mut current, mut shown_since) = (0usize, None::<Arc<Picture>>, Instant::now());
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.recv() => return,
        }
        if current.is_none() || shown_since.elapsed() >= hold {
            if current.is_some() {
                index += 1;
            }
            // Skip files that cannot be read; give up on a reel with none that can.
            let mut tries = 0;
            let picture = loop {
                if let Some(p) = reel.picture(index) {
                    break Some(p);
                }
                index += 1;
                tries += 1;
                if tries >= reel.len() {
                    break None;
                }
            };
            let Some(picture) = picture else {
                warn!(path = %path.display(), "no replay frame can be read");
                let _ = state.send(CameraState::Unavailable);
                return;
            };
            current = Some(picture);
            shown_since = Instant::now();
        }
        seq += 1;
        if let Some(picture) = &current {
            let _ = frames.send(Some(Arc::new(Frame {
                seq,
                at: Instant::now(),
                picture: picture.clone(),
            })));
        }
    }
}

/// Analyses the latest frame at `analysis_fps` (`idle_analysis_fps` while nobody is in
/// view and nobody waits), on the blocking pool, up to `analysis_threads` frames at once,
/// publishing in frame order and skipping ticks rather than queueing; embeds faces only
/// while an [`AnalysisWindow`] is open. While nobody waits, a frame that shows the scene
/// of the last detection carries its result over, and a face in view is looked for only
/// near where it was, for at most `redetect_ms` after a full detection while a face is
/// in view: an empty doorway or a person standing costs a decode and a thumbnail a
/// frame, a person moving a small scan.
async fn analysis_task(
    camera: Arc<Camera>,
    out: watch::Sender<Option<Arc<LiveAnalysis>>>,
    mut stop: Shutdown,
) {
    let period = Duration::from_secs_f64(1.0 / f64::from(camera.settings.analysis_fps.max(1)));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let s = &camera.settings;
    let idle_every = (s.analysis_fps / s.idle_analysis_fps.max(1)).max(1);
    let redetect = Duration::from_millis(s.redetect_ms);
    let threads = s.analysis_threads();
    let (mut last_seq, mut skipped) = (0, 0);
    let mut reference: Option<Reference> = None;
    let mut in_flight = FuturesOrdered::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                let done: Result<Option<(LiveAnalysis, Option<Thumbnail>)>, _> = done;
                if let Ok(Some((a, thumbnail))) = done {
                    if let Some(thumbnail) = thumbnail {
                        let full_at = match (&reference, a.detection) {
                            (Some(r), Detection::Tracked) => r.full_at,
                            _ => a.at,
                        };
                        reference = Some(Reference {
                            thumbnail: Arc::new(thumbnail),
                            full_at,
                        });
                    }
                    let _ = out.send(Some(Arc::new(a)));
                }
                continue;
            }
            _ = stop.recv() => return,
        }
        if in_flight.len() >= threads {
            continue;
        }
        let Some(frame) = camera.latest_frame() else {
            continue;
        };
        if frame.seq == last_seq {
            continue;
        }
        let waiting = camera.waiting.load(Ordering::SeqCst) > 0;
        let latest = camera.latest_analysis();
        let in_view = latest.as_ref().is_none_or(|a| !a.faces.is_empty());
        if !due(waiting || in_view, &mut skipped, idle_every) {
            continue;
        }
        // The frames that came and went since the last one analysed.
        let passed_over = frame.seq.saturating_sub(last_seq + 1);
        last_seq = frame.seq;
        // What a frame may build on instead of a full detection: never while a
        // decision waits (it needs embedded frames, and every face in them), never
        // while an analysis in flight may bring something newer, and with a face in
        // view never `redetect` after a full detection (an empty scene that has not
        // changed has nobody new in it).
        let before = match (&reference, latest) {
            (Some(r), Some(a))
                if !waiting
                    && in_flight.is_empty()
                    && (a.faces.is_empty() || r.full_at.elapsed() < redetect) =>
            {
                Some((r.thumbnail.clone(), a))
            }
            _ => None,
        };
        let pipeline = camera.pipeline.clone();
        let embed = waiting;
        let metrics = camera.metrics.clone();
        in_flight.push_back(tokio::task::spawn_blocking(move || {
            // Decoded here, off the runtime; a frame that does not decode is dropped.
            let Some(rgb) = frame.rgb() else {
                metrics.frame_dropped();
                return None;
            };
            metrics.frame_analysed(passed_over);
            let thumbnail = Thumbnail::of(rgb);
            if let Some((scene, a)) = before {
                if thumbnail.same_scene(&scene) {
                    return Some((a.carried_to(frame.seq), None));
                }
                if let [seen] = a.faces[..]
                    && let Some(t) = pipeline.analyse_near(rgb, Framing::Guided, &seen)
                {
                    let live = LiveAnalysis::of(frame.seq, t, Detection::Tracked, None);
                    return Some((live, Some(thumbnail)));
                }
            }
            let a = pipeline.analyse(rgb, Framing::Guided);
            let embedder = embed.then(|| pipeline.embedder().as_ref());
            let live = LiveAnalysis::of(frame.seq, a, Detection::Full, embedder);
            Some((live, Some(thumbnail)))
        }));
    }
}

/// Whether this analysis tick runs: always when `busy` (a face in view or somebody
/// waiting), else every `idle_every`-th tick, counted in `skipped`.
fn due(busy: bool, skipped: &mut u32, idle_every: u32) -> bool {
    if busy || *skipped + 1 >= idle_every {
        *skipped = 0;
        true
    } else {
        *skipped += 1;
        false
    }
}

/// Draws and encodes each new frame (at most `stream_fps` a second) while at least one
/// viewer watches. Driven by frame arrival, so capture and stream do not drift apart.
async fn stream_task(camera: Arc<Camera>, mut stop: Shutdown) {
    let min_gap = Duration::from_secs_f64(0.9 / f64::from(camera.settings.stream_fps.max(1)));
    let mut frames = camera.frames.clone();
    let mut last = Instant::now() - min_gap;
    loop {
        tokio::select! {
            changed = frames.changed() => if changed.is_err() { break },
            _ = stop.recv() => break,
        }
        let Some(frame) = frames.borrow_and_update().clone() else {
            continue;
        };
        if camera.stream.receiver_count() == 0 || last.elapsed() < min_gap {
            continue;
        }
        last = Instant::now();
        let cam = camera.clone();
        let jpeg = tokio::task::spawn_blocking(move || {
            let a = cam.latest_analysis();
            let img = overlay::draw(
                frame.rgb()?,
                a.as_deref(),
                &cam.pipeline.config.quality.ellipse,
                cam.locale.get(),
            );
            encode_jpeg(&img, cam.settings.jpeg_quality)
        })
        .await;
        if let Ok(Some(jpeg)) = jpeg {
            let _ = camera.stream.send(Some(jpeg));
        }
    }
    // Viewers see the end of the stream.
    let _ = camera.stream.send(None);
}

#[cfg(test)]
mod tests {
    use super::{CameraSettings, CameraState, Detection, due};
    use crate::terminal::testing::{
        camera, camera_of, camera_with, next_analyses, photo, terminal,
    };
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_still_scene_keeps_its_detection_until_the_recheck() {
        let t = terminal();
        // One photo: every frame the same scene; 10 analyses a second, recheck 1 s.
        let cam = camera(&t.terminal, &["caltech_p02/2.jpg"], 60_000).await;
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
        let t = terminal();
        let settings = CameraSettings {
            analysis_fps: 10,
            idle_analysis_fps: 10,
            ..CameraSettings::default()
        };
        let cam = camera_with(&t.terminal, &["_negatives/no_face_chart.jpg"], settings).await;
        // 2.5 s, more than twice the 1 s a face in view would be detected again after.
        let seen = next_analyses(&cam, 25).await;
        let kinds: Vec<_> = seen.iter().map(|a| a.detection).collect();
        assert!(kinds.iter().all(|k| *k == Detection::Still), "{kinds:?}");
        assert!(seen.iter().all(|a| a.faces.is_empty()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_change_of_scene_is_detected_at_once_not_at_the_recheck() {
        let t = terminal();
        // A face and a chart without one, 400 ms each; no recheck within the test.
        let settings = CameraSettings {
            replay_hold_ms: 400,
            analysis_fps: 10,
            redetect_ms: 60_000,
            ..CameraSettings::default()
        };
        let photos = ["caltech_p02/2.jpg", "_negatives/no_face_chart.jpg"];
        let cam = camera_with(&t.terminal, &photos, settings).await;
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
        let t = terminal();
        let face = image::load_from_memory(&photo("caltech_p02/2.jpg"))
            .unwrap()
            .to_rgb8();
        // The photo on a 640x480 frame, 16 px further right each frame and back.
        let frames: Vec<Vec<u8>> = [0, 16, 32, 48, 32, 16]
            .iter()
            .map(|dx| {
                let mut f = image::RgbImage::from_pixel(640, 480, image::Rgb([110; 3]));
                image::imageops::replace(&mut f, &face, 80 + dx, 90);
                crate::face::encode::jpeg(&f, 90).unwrap()
            })
            .collect();
        let settings = CameraSettings {
            replay_hold_ms: 150,
            analysis_fps: 10,
            redetect_ms: 60_000,
            ..CameraSettings::default()
        };
        let cam = camera_of(&t.terminal, &frames, settings).await;
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
        let t = terminal();
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
        let cam = camera_with(&t.terminal, &photos, settings).await;
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
