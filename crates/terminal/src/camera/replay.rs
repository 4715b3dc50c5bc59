//! `replay:PATH`: a folder of images (sorted by name) or a Motion-JPEG file, looped as if
//! a camera delivered them. For demos, tests and terminals without a camera.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use attendance_core::shutdown::Shutdown;
use tokio::sync::watch;
use tracing::{info, warn};

use super::convert::split_mjpeg;
use super::frame::{Frame, Picture, Raw};
use super::{CameraSettings, CameraState};

const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "bmp", "ppm", "pgm"];

/// The frames to replay, read lazily: only the current one is read, and decoded only if
/// somebody looks at it (as a camera's frames are).
pub(crate) enum Reel {
    Files(Vec<PathBuf>),
    Mjpeg(Vec<u8>, Vec<(usize, usize)>),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ReplayError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: no images or JPEG frames to replay")]
    Empty(PathBuf),
    #[error("{0}: its first frame does not decode")]
    Undecodable(PathBuf),
}

impl Reel {
    pub(crate) fn open(path: &Path) -> Result<Reel, ReplayError> {
        let io = |e| ReplayError::Io(path.to_path_buf(), e);
        let reel = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                            IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                        })
                })
                .collect();
            files.sort();
            Reel::Files(files)
        } else {
            let data = std::fs::read(path).map_err(io)?;
            let spans = split_mjpeg(&data)
                .into_iter()
                .map(|f| {
                    let start = f.as_ptr() as usize - data.as_ptr() as usize;
                    (start, start + f.len())
                })
                .collect();
            Reel::Mjpeg(data, spans)
        };
        if reel.is_empty() {
            return Err(ReplayError::Empty(path.to_path_buf()));
        }
        // One frame that decodes makes it a camera; later damaged frames are dropped
        // like a USB camera's.
        if reel.picture(0).and_then(|p| p.rgb().map(|_| ())).is_none() {
            return Err(ReplayError::Undecodable(path.to_path_buf()));
        }
        Ok(reel)
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Reel::Files(f) => f.len(),
            Reel::Mjpeg(_, s) => s.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frame `i` (modulo the length), not decoded yet; None for a file that cannot be
    /// read (the caller skips it).
    pub(crate) fn picture(&self, i: usize) -> Option<std::sync::Arc<Picture>> {
        let i = i % self.len().max(1);
        let raw = match self {
            Reel::Files(files) => Raw::File(std::fs::read(&files[i]).ok()?),
            Reel::Mjpeg(data, spans) => {
                let (a, b) = spans[i];
                Raw::Mjpeg(data[a..b].to_vec())
            }
        };
        Some(Picture::new(raw))
    }
}

/// Plays the reel at `path` as the camera's frames until `stop` (then unavailable).
pub(super) async fn run(
    path: PathBuf,
    cfg: CameraSettings,
    frames: watch::Sender<Option<Arc<Frame>>>,
    state: watch::Sender<CameraState>,
    mut stop: Shutdown,
) {
    let reel = match Reel::open(&path) {
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
            _ = stop.recv() => {
                // Stopped: no identification may wait for frames that will not come.
                let _ = state.send(CameraState::Unavailable);
                return;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_and_mjpeg_file() {
        let demo = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("assets/demo");
        let reel = Reel::open(&demo).unwrap();
        assert_eq!(reel.len(), 2);
        let frame = |reel: &Reel, i| reel.picture(i).unwrap().rgb().map(|p| p.dimensions());
        assert_eq!(frame(&reel, 0), Some((640, 480)));
        assert_eq!(frame(&reel, 3), Some((640, 480)), "loops");

        let dir = std::env::temp_dir().join(format!("att-reel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut mjpeg = Vec::new();
        for f in ["1_astronaut_eileen_collins.jpg", "2_grace_hopper.jpg"] {
            mjpeg.extend(std::fs::read(demo.join(f)).unwrap());
        }
        let file = dir.join("demo.mjpeg");
        std::fs::write(&file, &mjpeg).unwrap();
        let reel = Reel::open(&file).unwrap();
        assert_eq!(reel.len(), 2);
        assert_eq!(frame(&reel, 1), Some((640, 480)));
        std::fs::write(&file, b"nothing here").unwrap();
        assert!(matches!(Reel::open(&file), Err(ReplayError::Empty(_))));
        // JPEG markers around garbage: frames, but none a camera could show.
        std::fs::write(
            &file,
            [&[0xff, 0xd8][..], b"garbage", &[0xff, 0xd9]].concat(),
        )
        .unwrap();
        assert!(
            matches!(Reel::open(&file), Err(ReplayError::Undecodable(_))),
            "{:?}",
            Reel::open(&file).err()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
