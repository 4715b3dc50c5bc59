//! One photo in, one usable face (or the reason there is none) out.

use std::sync::Arc;

use image::imageops::FilterType;
use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use super::crop::FaceCrop;
use super::decode::{DecodeError, DecodeLimits, decode};
use super::detect::{DetectorConfig, detect, detect_near};
use super::embed::Embedder;
use super::geometry::FaceBox;
use super::quality::{FaceQuality, Framing, QualityConfig, Rejection, assess};
use attendance_core::config::{ConfigError, check};

/// Everything that tunes detection and the gates (not the embedder).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    pub detector: DetectorConfig,
    pub quality: QualityConfig,
    /// Frames larger than this on their long side are downscaled first: a 12 MP phone
    /// photo holds no more face than its 1280 px copy, at a tenth of the cost.
    pub working_max_side: u32,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            detector: DetectorConfig::default(),
            quality: QualityConfig::default(),
            working_max_side: 1280,
        }
    }
}

impl PipelineConfig {
    /// Range checks the types cannot express; keys relative to `pipeline`.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let e = &self.quality.ellipse;
        check(
            e.width > 0.0 && e.width <= 1.0 && e.height > 0.0 && e.height <= 1.0,
            "quality.ellipse",
            || {
                format!(
                    "width and height must be in (0, 1], got {} x {}",
                    e.width, e.height
                )
            },
        )?;
        let d = &self.detector;
        check(
            (0.01..=1.0).contains(&d.min_face_ratio),
            "detector.min_face_ratio",
            || format!("must be in [0.01, 1], got {}", d.min_face_ratio),
        )?;
        check(
            (0.5..=0.95).contains(&d.pyramid_step),
            "detector.pyramid_step",
            || format!("must be in [0.5, 0.95], got {}", d.pyramid_step),
        )?;
        check(
            (1..=16).contains(&d.window_step),
            "detector.window_step",
            || format!("must be in 1..=16, got {}", d.window_step),
        )
    }
}

/// A frame that passed every gate.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub face: FaceBox,
    pub quality: FaceQuality,
    pub crop: FaceCrop,
}

/// The analysis of one frame: every face found, and the verdict.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub faces: Vec<FaceBox>,
    pub frame_size: (u32, u32),
    pub verdict: Result<Accepted, Rejection>,
}

/// Why bytes did not yield a usable face.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("rejected: {0:?}")]
    Rejected(Rejection),
}

/// Detection, gates and embedding, shared by every request and the camera loop.
#[derive(Clone)]
pub struct FacePipeline {
    pub config: PipelineConfig,
    pub limits: DecodeLimits,
    embedder: Arc<dyn Embedder>,
}

impl FacePipeline {
    pub fn new(config: PipelineConfig, limits: DecodeLimits, embedder: Arc<dyn Embedder>) -> Self {
        Self {
            config,
            limits,
            embedder,
        }
    }

    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// Detects and checks faces on a decoded frame (a camera frame is `Framing::Guided`).
    pub fn analyse(&self, frame: &RgbImage, framing: Framing) -> Analysis {
        self.analyse_with(frame, framing, |gray, _| {
            detect(gray, &self.config.detector)
        })
    }

    /// [`Self::analyse`] for a frame whose face was at `seen` a moment ago, looking only
    /// there ([`detect_near`]): None when it is not found there. Blind to faces elsewhere,
    /// so never the basis of a decision.
    pub fn analyse_near(
        &self,
        frame: &RgbImage,
        framing: Framing,
        seen: &FaceBox,
    ) -> Option<Analysis> {
        let a = self.analyse_with(frame, framing, |gray, back| {
            detect_near(gray, &self.config.detector, &seen.scaled(1.0 / back))
        });
        (!a.faces.is_empty()).then_some(a)
    }

    /// Scales to the working size, turns grey, finds faces with `find` (given the grey
    /// working copy and the frame-to-working scale), runs the gates.
    fn analyse_with(
        &self,
        frame: &RgbImage,
        framing: Framing,
        find: impl FnOnce(&GrayImage, f32) -> Vec<FaceBox>,
    ) -> Analysis {
        let (w, h) = frame.dimensions();
        let max = self.config.working_max_side.max(64);
        let resized;
        let (work, back) = if w.max(h) > max {
            let k = max as f32 / w.max(h) as f32;
            let (nw, nh) = (
                ((w as f32 * k).round() as u32).max(1),
                ((h as f32 * k).round() as u32).max(1),
            );
            resized = image::imageops::resize(frame, nw, nh, FilterType::Triangle);
            (&resized, w as f32 / nw as f32)
        } else {
            (frame, 1.0)
        };
        let gray: GrayImage = image::DynamicImage::ImageRgb8(work.clone()).into_luma8();
        let faces = find(&gray, back);
        let verdict =
            assess(&gray, &faces, &self.config.quality, framing).map(|(face, quality)| Accepted {
                face: face.scaled(back),
                quality,
                crop: FaceCrop::from_frame(work, &face),
            });
        Analysis {
            faces: faces.iter().map(|f| f.scaled(back)).collect(),
            frame_size: (w, h),
            verdict,
        }
    }

    /// Decode and analyse an uploaded photo: its one usable face, or why there is none.
    /// The ellipse applies only if `quality.ellipse_on_uploads` says so.
    pub fn accept(&self, bytes: &[u8]) -> Result<Accepted, PipelineError> {
        let frame = self.decode(bytes)?;
        self.accept_frame(&frame).map_err(PipelineError::Rejected)
    }

    /// An uploaded photo's pixels, within the decoder's limits.
    pub fn decode(&self, bytes: &[u8]) -> Result<RgbImage, DecodeError> {
        decode(bytes, &self.limits)
    }

    /// A face to embed whatever the gates say, for benchmarks that score every pair
    /// (`eval --pairs --no-gates`), never for a decision: the accepted face, else the
    /// largest one found, else a centred square of half the short side (a benchmark's
    /// photos are centred on the face).
    pub fn face_without_gates(&self, frame: &RgbImage) -> FaceCrop {
        let a = self.analyse(frame, Framing::Unguided);
        if let Ok(accepted) = a.verdict {
            return accepted.crop;
        }
        let face = FaceBox::largest(&a.faces).unwrap_or_else(|| {
            let (w, h) = (frame.width() as f32, frame.height() as f32);
            let side = w.min(h) / 2.0;
            FaceBox {
                x: (w - side) / 2.0,
                y: (h - side) / 2.0,
                w: side,
                h: side,
                score: 0.0,
            }
        });
        FaceCrop::from_frame(frame, &face)
    }

    /// [`Self::accept`] on a decoded photo.
    pub fn accept_frame(&self, frame: &RgbImage) -> Result<Accepted, Rejection> {
        let framing = if self.config.quality.ellipse_on_uploads {
            Framing::Guided
        } else {
            Framing::Unguided
        };
        self.analyse(frame, framing).verdict
    }
}
