//! The face pipeline: decode → detect → quality gates → crop → embed → 1:N match.
//!
//! Pure computation on bytes and pixels, no I/O beyond reading the evaluation dataset, so
//! it is tested and benchmarked on its own. HTTP, camera and storage call into it.

pub mod crop;
pub mod decode;
pub mod detect;
pub mod dlib;
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
pub use dlib::DlibEmbedder;
pub use embed::{Embedder, Embedding, HogEmbedder};
pub use gallery::{Decision, Gallery, MatchRule, Nearest};
pub use geometry::{EllipseGuide, FaceBox};
pub use pipeline::{Accepted, Analysis, FacePipeline, PipelineConfig, PipelineError};
pub use quality::{FaceQuality, Framing, QualityConfig, Rejection};

use std::path::Path;
use std::sync::Arc;

/// The embedder a configuration names: `auto` is dlib's ResNet when its model files are
/// in `models_dir`, else HOG (a terminal without the models still works, less well).
pub fn embedder_by_name(name: &str, models_dir: &Path) -> Result<Arc<dyn Embedder>, String> {
    let dlib = || {
        DlibEmbedder::load(models_dir)
            .map(|e| Arc::new(e) as Arc<dyn Embedder>)
            .map_err(|e| {
                format!("dlib-resnet: {e} (scripts/fetch-models downloads the model files)")
            })
    };
    match name {
        "auto" if DlibEmbedder::available(models_dir) => dlib(),
        "auto" | "hog" => Ok(Arc::new(HogEmbedder::new())),
        "hog-spec" => Ok(Arc::new(HogEmbedder::spec())),
        "dlib-resnet" => dlib(),
        other => Err(format!(
            "unknown embedder {other:?}: expected auto, hog, hog-spec or dlib-resnet"
        )),
    }
}
