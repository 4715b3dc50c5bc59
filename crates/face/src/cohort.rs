//! A background cohort: faces of people who are never enrolled, against which every
//! gallery's neighbourhoods are measured (`gallery.rs`).
//!
//! Why: the neighbour ratio (`rule.rs`) compares a match with how crowded face space is
//! around the probe and around the matched person. A gallery of 50 people samples that
//! space so thinly that a stranger's neighbours look far away and the ratio lets them in
//! (dev, 20 random galleries of 50: up to 3.9 % of strangers); at 1,000 people the same
//! ratio lets none in. Measured over the gallery *and* a fixed cohort, every gallery
//! sees at least the cohort's density, so one ratio holds from 20 people to 1,000.
//! Adding cohort faces can only shrink a neighbourhood, so a cohort makes decisions
//! stricter, never looser; a cohort unlike the enrolled people (another population)
//! merely weighs less.
//!
//! A cohort face is as near to an enrolled photo of the same person as two photos of one
//! person are: such a face is that person, already in the gallery, not a neighbour, and
//! is set aside while they are enrolled (`Cohort::same_person`).

use std::sync::Arc;

use ndarray::Array2;
use ndarray_npy::ReadNpyExt;

/// The faces of the cohort, one row each, with the distance under which a cohort face is
/// taken for an enrolled person.
#[derive(Debug, PartialEq)]
pub struct Cohort {
    dim: usize,
    /// Row-major, `dim` values a face.
    rows: Vec<f32>,
    same_person: f32,
}

/// A cohort file that is not a finite float32 `(faces, dim)` matrix.
#[derive(Debug, thiserror::Error)]
#[error("cohort file: {0}")]
pub struct CohortError(String);

impl Cohort {
    /// Faces of `dim` values each, one after the other in `rows`.
    pub fn new(dim: usize, rows: Vec<f32>, same_person: f32) -> Result<Cohort, CohortError> {
        if dim == 0 || !rows.len().is_multiple_of(dim) {
            return Err(CohortError(format!(
                "{} values are not rows of {dim}",
                rows.len()
            )));
        }
        if rows.iter().any(|v| !v.is_finite()) {
            return Err(CohortError("a non-finite value".into()));
        }
        Ok(Cohort {
            dim,
            rows,
            same_person,
        })
    }

    /// Reads a `(faces, dim)` float32 `.npy` image, as `attendanced eval --write-cohort`
    /// makes it (`template::encode`).
    pub fn from_npy(bytes: &[u8], same_person: f32) -> Result<Cohort, CohortError> {
        let arr = Array2::<f32>::read_npy(bytes).map_err(|e| CohortError(e.to_string()))?;
        Cohort::new(arr.ncols(), arr.iter().copied().collect(), same_person)
    }

    /// Number of faces.
    pub fn len(&self) -> usize {
        self.rows.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Each face's values.
    pub(crate) fn faces(&self) -> std::slice::ChunksExact<'_, f32> {
        self.rows.chunks_exact(self.dim)
    }

    /// A cohort face this near an enrolled template is taken for that person.
    pub fn same_person(&self) -> f32 {
        self.same_person
    }
}

/// The cohort shipped with dlib's ResNet (`dlib-resnet-v1`): one photo of each of the
/// 988 (of 1,000) LFW people of `../shared/faces/distractors` (public; `SOURCES.md` there),
/// described by this crate's own pipeline with `attendanced eval --dataset
/// ../shared/faces/distractors --embedder dlib-resnet --write-cohort FILE`. Compiled in:
/// a calibration constant of the embedder, like its thresholds, not a file that can go
/// missing on a door.
pub(crate) fn dlib_resnet_v1() -> Result<Arc<Cohort>, CohortError> {
    static BYTES: &[u8] = include_bytes!("../cohort/dlib-resnet-v1.npy");
    // dlib's photos of one person are mostly under 0.4 apart, two people's over 0.5.
    Cohort::from_npy(BYTES, 0.40).map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(a: &[f32]) -> f32 {
        a.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    #[test]
    fn the_shipped_cohort_is_988_dlib_faces() {
        let c = dlib_resnet_v1().unwrap();
        assert_eq!((c.len(), c.dim()), (988, 128));
        // Raw dlib descriptors (not normalised) of different people: none as near the
        // first as one person's photos are to each other.
        let faces: Vec<&[f32]> = c.faces().collect();
        assert!(faces.iter().all(|f| (0.5..2.0).contains(&norm(f))));
        let apart =
            |a: &[f32], b: &[f32]| norm(&a.iter().zip(b).map(|(x, y)| x - y).collect::<Vec<_>>());
        let nearest = faces[1..]
            .iter()
            .map(|f| apart(faces[0], f))
            .fold(f32::INFINITY, f32::min);
        assert!(nearest > c.same_person(), "{nearest}");
    }

    #[test]
    fn refuses_ragged_or_non_finite_rows() {
        assert!(Cohort::new(3, vec![0.0; 5], 0.4).is_err());
        assert!(Cohort::new(0, vec![], 0.4).is_err());
        assert!(Cohort::new(2, vec![f32::NAN; 2], 0.4).is_err());
        assert!(Cohort::from_npy(b"not npy", 0.4).is_err());
        let bytes = crate::template::encode(&[crate::Embedding(vec![1.0, 2.0])]).unwrap();
        assert_eq!(Cohort::from_npy(&bytes, 0.4).unwrap().dim(), 2);
    }
}
