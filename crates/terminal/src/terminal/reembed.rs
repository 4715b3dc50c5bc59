//! Re-embedding after an embedder change: every user without a template for the active
//! embedder gets one computed from the enrolment crops kept with their other templates,
//! so switching HOG → dlib (or a model update) does not mean re-enrolling the staff.

use tracing::{info, warn};

use crate::store::{NewFace, NewTemplate, Store, StoreError};
use attendance_face::decode::decode;
use attendance_face::{Embedder, Embedding, FaceCrop, template};

/// What re-embedding did.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ReembedReport {
    /// Templates written for the active embedder.
    pub(crate) templates: usize,
    /// Crops that could not be read or decoded (their users may still need re-enrolling).
    pub(crate) failed: usize,
}

/// The template rows of a saved enrolment crop (PNG) and their `.npy` bytes: what
/// re-embedding after an embedder change and a roster face of another embedder both do.
pub(super) fn embed_crop(
    embedder: &dyn Embedder,
    png: &[u8],
) -> Result<(Vec<Embedding>, Vec<u8>), String> {
    let rgb = decode(png, &FaceCrop::SAVED_LIMITS).map_err(|e| e.to_string())?;
    let rows = embedder.enrol(&FaceCrop::from_saved(rgb));
    let npy = template::encode(&rows).map_err(|e| e.to_string())?;
    Ok((rows, npy))
}

/// Writes a template of `embedder` for each stored crop of a user who has none.
pub(crate) fn reembed_missing(
    store: &Store,
    embedder: &dyn Embedder,
) -> Result<ReembedReport, StoreError> {
    let crops = store.crops_without(embedder.name())?;
    let mut report = ReembedReport::default();
    if crops.is_empty() {
        return Ok(report);
    }
    info!(
        embedder = embedder.name(),
        crops = crops.len(),
        "re-embedding enrolment crops for the new embedder"
    );
    for c in crops {
        let png = match store.read_file(&c.path) {
            Ok(b) => b,
            Err(e) => {
                warn!(employee_id = %c.employee_id, file = %c.path.display(), error = %e, "enrolment crop unreadable");
                report.failed += 1;
                continue;
            }
        };
        let npy = match embed_crop(embedder, &png) {
            Ok((_, npy)) => npy,
            Err(e) => {
                warn!(employee_id = %c.employee_id, file = %c.path.display(), error = %e, "enrolment crop undecodable");
                report.failed += 1;
                continue;
            }
        };
        store.enrol(&NewTemplate {
            employee_id: Some(&c.employee_id),
            name: None,
            embedder: embedder.name(),
            device_id: c.device_id.as_deref(),
            faces: &[NewFace {
                template: &npy,
                // The new template keeps its own copy, so deleting either template
                // later leaves the other re-embeddable.
                crop_png: Some(&png),
                quality: c.quality,
                face_id: None,
                learned: false,
            }],
            // The centre has the crop; a door re-embeds for itself.
            publish: false,
        })?;
        report.templates += 1;
    }
    Ok(report)
}
