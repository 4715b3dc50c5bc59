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

use super::embed::Embedding;

/// The faces of the cohort, one row each, with the distance under which a cohort face is
/// taken for an enrolled person.
#[derive(Debug, PartialEq)]
pub struct Cohort {
    rows: Vec<Embedding>,
    same_person: f32,
}

/// A cohort file that is not a finite float32 `(faces, dim)` matrix.
#[derive(Debug, thiserror::Error)]
#[error("cohort file: {0}")]
pub struct CohortError(String);

impl Cohort {
    pub fn new(rows: Vec<Embedding>, same_person: f32) -> Result<Cohort, CohortError> {
        let dim = rows.first().map_or(0, Embedding::dim);
        if rows
            .iter()
            .any(|r| r.dim() != dim || r.as_slice().iter().any(|v| !v.is_finite()))
        {
            return Err(CohortError(
                "rows of different lengths or non-finite".into(),
            ));
        }
        Ok(Cohort { rows, same_person })
    }

    /// Reads a `(faces, dim)` float32 `.npy` image, as `attendanced eval --write-cohort`
    /// makes it (`template::encode`).
    pub fn from_npy(bytes: &[u8], same_person: f32) -> Result<Cohort, CohortError> {
        let arr = Array2::<f32>::read_npy(bytes).map_err(|e| CohortError(e.to_string()))?;
        let rows = arr
            .rows()
            .into_iter()
            .map(|r| Embedding(r.to_vec()))
            .collect();
        Cohort::new(rows, same_person)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Its dimension (0 when empty).
    pub fn dim(&self) -> usize {
        self.rows.first().map_or(0, Embedding::dim)
    }

    pub(crate) fn rows(&self) -> &[Embedding] {
        &self.rows
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

    #[test]
    fn the_shipped_cohort_is_988_dlib_faces() {
        let c = dlib_resnet_v1().unwrap();
        assert_eq!((c.len(), c.dim()), (988, 128));
        // Raw dlib descriptors (not normalised), all different people.
        let norms: Vec<f32> = c
            .rows()
            .iter()
            .map(|r| r.distance(&Embedding(vec![0.0; 128])))
            .collect();
        assert!(norms.iter().all(|n| (0.5..2.0).contains(n)), "{norms:?}");
        assert!(c.rows()[0].distance(&c.rows()[1]) > c.same_person());
    }

    #[test]
    fn refuses_ragged_or_non_finite_rows() {
        assert!(Cohort::new(vec![Embedding(vec![0.0; 3]), Embedding(vec![0.0; 2])], 0.4).is_err());
        assert!(Cohort::new(vec![Embedding(vec![f32::NAN; 2])], 0.4).is_err());
        assert!(Cohort::from_npy(b"not npy", 0.4).is_err());
        let bytes = crate::template::encode(&[Embedding(vec![1.0, 2.0])]).unwrap();
        assert_eq!(Cohort::from_npy(&bytes, 0.4).unwrap().dim(), 2);
    }
}
