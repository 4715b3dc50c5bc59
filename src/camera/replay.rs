//! `replay:PATH`: a folder of images (sorted by name) or a Motion-JPEG file, looped as if
//! a camera delivered them. For demos, tests and terminals without a camera.

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::convert::{mjpeg_to_rgb, split_mjpeg};
use crate::face::{DecodeLimits, decode::decode};

const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "bmp", "ppm", "pgm"];

/// The frames to replay, read lazily: only the current one is decoded.
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

    /// Decodes frame `i` (modulo the length). A frame that fails to decode is skipped by
    /// the caller; the replay goes on.
    pub(crate) fn frame(&self, i: usize, limits: &DecodeLimits) -> Option<RgbImage> {
        let i = i % self.len().max(1);
        match self {
            Reel::Files(files) => std::fs::read(&files[i])
                .ok()
                .and_then(|b| decode(&b, limits).ok()),
            Reel::Mjpeg(data, spans) => {
                let (a, b) = spans[i];
                mjpeg_to_rgb(&data[a..b], limits).ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_and_mjpeg_file() {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
        let reel = Reel::open(&demo).unwrap();
        assert_eq!(reel.len(), 2);
        let limits = DecodeLimits::default();
        assert_eq!(reel.frame(0, &limits).unwrap().dimensions(), (640, 480));
        assert!(reel.frame(3, &limits).is_some(), "loops");

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
        assert!(reel.frame(1, &limits).is_some());
        std::fs::write(&file, b"nothing here").unwrap();
        assert!(matches!(Reel::open(&file), Err(ReplayError::Empty(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
