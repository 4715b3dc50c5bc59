//! The face pipeline: decode → detect → quality gates → crop → embed → 1:N match.
//!
//! Pure computation on bytes and pixels, no I/O beyond reading the evaluation dataset, so
//! it is tested and benchmarked on its own. HTTP, camera and storage call into it.

pub(crate) mod crop;
pub mod decode;
pub(crate) mod detect;
pub mod dlib;
pub mod embed;
pub(crate) mod encode;
pub mod eval;
pub(crate) mod gallery;
pub(crate) mod geometry;
pub(crate) mod hog;
pub(crate) mod jitter;
pub mod liveness;
pub mod liveness_eval;
pub(crate) mod pipeline;
pub(crate) mod quality;
mod settings;
pub(crate) mod template;
pub(crate) mod vote;

pub(crate) use crop::FaceCrop;
pub use decode::{DecodeError, DecodeLimits};
pub use dlib::DlibEmbedder;
pub use embed::{Calibration, Embedder, Embedding, HogEmbedder};
pub use gallery::{Decision, Gallery, MatchRule, Nearest, RuleOverrides};
pub(crate) use geometry::{EllipseGuide, FaceBox};
pub use pipeline::{Accepted, Analysis, FacePipeline, PipelineConfig, PipelineError};
pub use quality::{FaceQuality, Framing, QualityConfig, Rejection};
pub(crate) use settings::template_dim;
pub use settings::{EmbedderChoice, FaceSettings};
