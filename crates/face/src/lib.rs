//! The face pipeline: decode → detect → quality gates → crop → embed → 1:N match.
//!
//! Pure computation on bytes and pixels, no I/O beyond reading the evaluation dataset, so
//! it is tested and benchmarked on its own. HTTP, camera and storage call into it.

pub mod cohort;
pub(crate) mod crop;
pub mod decode;
pub(crate) mod detect;
pub mod dlib;
pub mod embed;
pub mod encode;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub(crate) mod gallery;
pub(crate) mod geometry;
pub(crate) mod hog;
pub mod jitter;
pub mod learn;
pub mod liveness;
pub(crate) mod pipeline;
pub(crate) mod quality;
pub(crate) mod rule;
mod settings;
pub mod template;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod vote;

pub use cohort::Cohort;
pub use crop::FaceCrop;
pub use decode::{DecodeError, DecodeLimits};
pub use dlib::DlibEmbedder;
pub use embed::{Calibration, Embedder, Embedding, HogEmbedder};
pub use gallery::Gallery;
pub use geometry::{EllipseGuide, FaceBox};
pub use pipeline::{Accepted, Analysis, FacePipeline, PipelineConfig, PipelineError};
pub use quality::{FaceQuality, Framing, QualityConfig, Rejection};
pub use rule::{Decision, MatchRule, Nearest, RuleOverrides};
pub use settings::template_dim;
pub use settings::{EmbedderChoice, FaceSettings};
