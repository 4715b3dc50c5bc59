//! The face pipeline: decode → detect → quality gates → crop → embed → 1:N match.
//!
//! Pure computation on bytes and pixels, no I/O beyond reading the evaluation dataset, so
//! it is tested and benchmarked on its own. HTTP, camera and storage call into it.

pub mod crop;
pub mod decode;
pub mod detect;
pub mod embed;
pub mod eval;
pub mod gallery;
pub mod geometry;
pub mod hog;
pub mod pipeline;
pub mod quality;
pub mod template;

pub use crop::FaceCrop;
pub use decode::{DecodeError, DecodeLimits};
pub use embed::{Embedder, Embedding, HogEmbedder};
pub use gallery::{Decision, Gallery, MatchRule, Nearest};
pub use geometry::{EllipseGuide, FaceBox};
pub use pipeline::{Accepted, Analysis, FacePipeline, PipelineConfig, PipelineError};
pub use quality::{FaceQuality, QualityConfig, Rejection};

use std::path::Path;
use std::sync::Arc;

/// The embedder a configuration names: `auto` picks the best one available.
pub fn embedder_by_name(name: &str, _models_dir: &Path) -> Result<Arc<dyn Embedder>, String> {
    match name {
        "auto" | "hog" => Ok(Arc::new(HogEmbedder::new())),
        "hog-spec" => Ok(Arc::new(HogEmbedder::spec())),
        other => Err(format!("embedder {other:?} is not available in this build")),
    }
}
