//! A replay camera for tests, on its own: a HOG pipeline and fresh metrics unless the
//! caller lends its own (the terminal's tests do, so the camera embeds as it matches).
//! No terminal, store or socket.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Camera, CameraSettings, CameraSpec, CameraState, LiveAnalysis};
use crate::metrics::TerminalMetrics;
use attendance_core::shutdown::{self, Trigger};
use attendance_face::{DecodeLimits, FacePipeline, HogEmbedder, PipelineConfig};

/// A replay camera (and its folder), stopped and removed when dropped.
pub(crate) struct TempCamera {
    pub(crate) camera: Arc<Camera>,
    stop: Trigger,
    dir: PathBuf,
}

impl TempCamera {
    /// Stops capture now (the camera then says it is unavailable).
    pub(crate) fn stop(&self) {
        self.stop.fire();
    }
}

impl std::ops::Deref for TempCamera {
    type Target = Camera;
    fn deref(&self) -> &Camera {
        &self.camera
    }
}

impl Drop for TempCamera {
    fn drop(&mut self) {
        self.stop.fire();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A folder of its own under the system's temp dir.
fn reel_dir() -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("att-reel-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The dev photos `photos` one after the other, each for `hold_ms` (looping), analysed
/// 10 times a second with the HOG pipeline.
pub(crate) async fn camera(photos: &[&str], hold_ms: u64) -> TempCamera {
    let settings = CameraSettings {
        replay_hold_ms: hold_ms,
        analysis_fps: 10,
        ..Default::default()
    };
    camera_with(photos, settings).await
}

/// [`camera`] with other settings (`source` is set here).
pub(crate) async fn camera_with(photos: &[&str], settings: CameraSettings) -> TempCamera {
    let frames: Vec<Vec<u8>> = photos
        .iter()
        .map(|p| attendance_face::testing::photo(p))
        .collect();
    camera_of(&frames, settings).await
}

/// Encoded `frames` as the reel, with the HOG pipeline.
pub(crate) async fn camera_of(frames: &[Vec<u8>], settings: CameraSettings) -> TempCamera {
    let pipeline = FacePipeline::new(
        PipelineConfig::default(),
        DecodeLimits::default(),
        Arc::new(HogEmbedder::new()),
    );
    let metrics = Arc::new(TerminalMetrics::new(true, "hq", "T1"));
    camera_on(pipeline, metrics, frames, settings).await
}

/// Encoded `frames` as the reel, analysed by `pipeline`; returns once the camera streams
/// and has analysed a frame.
pub(crate) async fn camera_on(
    pipeline: FacePipeline,
    metrics: Arc<TerminalMetrics>,
    frames: &[Vec<u8>],
    settings: CameraSettings,
) -> TempCamera {
    let dir = reel_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (i, f) in frames.iter().enumerate() {
        std::fs::write(dir.join(format!("{i:03}.jpg")), f).unwrap();
    }
    let (stop, listen) = shutdown::channel();
    let settings = CameraSettings {
        source: CameraSpec::Replay(dir.clone()),
        ..settings
    };
    let camera = Camera::start(
        &settings,
        pipeline,
        attendance_core::i18n::SharedLocale::default(),
        metrics,
        listen,
    )
    .expect("a replay source is a camera");
    let cam = TempCamera { camera, stop, dir };
    for _ in 0..100 {
        if cam.state() == CameraState::Streaming && cam.latest_analysis().is_some() {
            return cam;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replay camera did not start");
}

/// The camera's next `n` analyses, as they are published.
pub(crate) async fn next_analyses(cam: &Camera, n: usize) -> Vec<Arc<LiveAnalysis>> {
    let mut rx = cam.subscribe_analysis();
    rx.borrow_and_update();
    let mut seen = Vec::new();
    while seen.len() < n {
        tokio::time::timeout(Duration::from_secs(10), rx.changed())
            .await
            .expect("the camera keeps analysing")
            .unwrap();
        seen.push(rx.borrow_and_update().clone().unwrap());
    }
    seen
}
