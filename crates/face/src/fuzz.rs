//! The body of the `image_upload` fuzz target in `fuzz/` (cargo-fuzz, nightly), behind the
//! `fuzzing` feature so it does not ship in the product. `tests/fuzz_replay.rs` replays
//! every committed seed and finding through it on stable Rust in every test run. It takes
//! arbitrary bytes and must return without panicking; the properties it checks beyond that
//! are asserted here, once.

use std::sync::{Arc, OnceLock};

use crate::decode::DecodeLimits;
use crate::embed::HogEmbedder;
use crate::pipeline::{FacePipeline, PipelineConfig};

/// An uploaded photo through decode, detection, the gates and (if it passes) embedding:
/// what `/identify` and `/enroll` do with an image, with the production limits. True if
/// a face passed the gates.
pub fn image_upload(bytes: &[u8]) -> bool {
    static PIPELINE: OnceLock<FacePipeline> = OnceLock::new();
    let pipeline = PIPELINE.get_or_init(|| {
        FacePipeline::new(
            PipelineConfig::default(),
            DecodeLimits::default(),
            Arc::new(HogEmbedder::new()),
        )
    });
    let Ok(accepted) = pipeline.accept(bytes) else {
        return false;
    };
    let e = pipeline.embedder().embed(&accepted.crop);
    assert_eq!(e.0.len(), pipeline.embedder().dim());
    assert!(e.0.iter().all(|x| x.is_finite()), "non-finite embedding");
    true
}
