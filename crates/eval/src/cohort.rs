//! The background cohort of an evaluation's galleries, and how one is made.

use std::path::Path;
use std::sync::Arc;

use attendance_face::{Cohort, Embedder, FacePipeline, Gallery, template};

use crate::dataset::{CohortChoice, EvalError, list_dataset};

/// An empty gallery for `embedder` with the chosen cohort.
pub(crate) fn blank_gallery(
    embedder: &dyn Embedder,
    choice: &CohortChoice,
) -> Result<Gallery, EvalError> {
    let dim = embedder.dim();
    match choice {
        CohortChoice::Embedder => Ok(Gallery::for_embedder(embedder)),
        CohortChoice::None => Ok(Gallery::new(dim)),
        CohortChoice::File(path) => {
            let fail = |why: String| EvalError::Cohort(path.clone(), why);
            let same_person = embedder
                .cohort()
                .map(|c| c.same_person())
                .ok_or_else(|| fail(format!("{} has no cohort to replace", embedder.name())))?;
            let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
            let cohort = Cohort::from_npy(&bytes, same_person).map_err(|e| fail(e.to_string()))?;
            Gallery::with_cohort(dim, Arc::new(cohort)).map_err(|e| fail(e.to_string()))
        }
    }
}

/// Writes a cohort file: the embedding of each identity's first usable photo in `dir`
/// (every identity, in protocol order), as a `(faces, dim)` float32 `.npy`. Returns how
/// many faces it holds.
pub fn write_cohort(pipeline: &FacePipeline, dir: &Path, out: &Path) -> Result<usize, EvalError> {
    let mut faces = Vec::new();
    for id in list_dataset(dir)? {
        let first = id
            .images
            .iter()
            .find_map(|path| crate::accept(pipeline, path).ok());
        if let Some(a) = first {
            faces.push(pipeline.embedder().embed(&a.crop));
        }
    }
    let bytes =
        template::encode(&faces).map_err(|e| EvalError::Cohort(out.into(), e.to_string()))?;
    std::fs::write(out, bytes).map_err(|e| EvalError::Cohort(out.into(), e.to_string()))?;
    Ok(faces.len())
}
