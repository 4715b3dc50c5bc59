//! Templates as `.npy` bytes: a 2-D float32 array, one row per enrolment embedding.
//!
//! The spec stores embeddings as NumPy files; keeping the format means an operator can
//! inspect a template with `numpy.load`. Encoding is pure so the store can add encryption
//! and atomic writes around it.

use ndarray::Array2;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

use super::embed::Embedding;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TemplateError {
    #[error("template has no rows")]
    Empty,
    #[error("template rows have different lengths")]
    Ragged,
    #[error("template is {got}-dimensional, the embedder makes {want}")]
    Dimension { got: usize, want: usize },
    #[error("template holds a non-finite value")]
    NotFinite,
    #[error("not a float32 .npy matrix: {0}")]
    Format(String),
}

/// Encodes template rows as a `(rows, dim)` float32 `.npy` file image.
pub(crate) fn encode(rows: &[Embedding]) -> Result<Vec<u8>, TemplateError> {
    let dim = rows.first().ok_or(TemplateError::Empty)?.dim();
    if rows.iter().any(|r| r.dim() != dim) {
        return Err(TemplateError::Ragged);
    }
    let flat: Vec<f32> = rows
        .iter()
        .flat_map(|r| r.as_slice().iter().copied())
        .collect();
    let arr = Array2::from_shape_vec((rows.len(), dim), flat)
        .map_err(|e| TemplateError::Format(e.to_string()))?;
    let mut out = Vec::with_capacity(128 + rows.len() * dim * 4);
    arr.write_npy(&mut out)
        .map_err(|e| TemplateError::Format(e.to_string()))?;
    Ok(out)
}

/// Decodes and validates a template against the embedder's dimension. A 1-D array (the
/// spec's own format: one embedding) is read as a single row.
pub(crate) fn decode(bytes: &[u8], want_dim: usize) -> Result<Vec<Embedding>, TemplateError> {
    let arr = match Array2::<f32>::read_npy(bytes) {
        Ok(a) => a,
        Err(two_d) => {
            let one = ndarray::Array1::<f32>::read_npy(bytes)
                .map_err(|_| TemplateError::Format(two_d.to_string()))?;
            let n = one.len();
            one.into_shape_with_order((1, n))
                .map_err(|e| TemplateError::Format(e.to_string()))?
        }
    };
    let (rows, dim) = arr.dim();
    if rows == 0 {
        return Err(TemplateError::Empty);
    }
    if dim != want_dim {
        return Err(TemplateError::Dimension {
            got: dim,
            want: want_dim,
        });
    }
    if arr.iter().any(|v| !v.is_finite()) {
        return Err(TemplateError::NotFinite);
    }
    Ok(arr.outer_iter().map(|r| Embedding(r.to_vec())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let rows = vec![
            Embedding::normalised(vec![1.0, 2.0, 3.0]),
            Embedding::normalised(vec![0.0, 1.0, 0.0]),
        ];
        let bytes = encode(&rows).unwrap();
        assert!(bytes.starts_with(b"\x93NUMPY"));
        let back = decode(&bytes, 3).unwrap();
        assert_eq!(back.len(), 2);
        for (a, b) in rows.iter().zip(&back) {
            assert!(a.distance(b) < 1e-6);
        }
    }

    #[test]
    fn reads_the_specs_one_dimensional_files() {
        let one = ndarray::Array1::from(vec![3.0f32, 4.0]);
        let mut bytes = Vec::new();
        one.write_npy(&mut bytes).unwrap();
        let back = decode(&bytes, 2).unwrap();
        assert_eq!(back.len(), 1);
        // Kept as stored: dlib descriptors are not unit length and must not become so.
        assert_eq!(back[0].as_slice(), &[3.0, 4.0]);
    }

    #[test]
    fn rejects_wrong_dimension_garbage_and_nan() {
        let bytes = encode(&[Embedding::normalised(vec![1.0, 0.0])]).unwrap();
        assert!(matches!(
            decode(&bytes, 3),
            Err(TemplateError::Dimension { got: 2, want: 3 })
        ));
        assert!(matches!(
            decode(b"not npy", 2),
            Err(TemplateError::Format(_))
        ));
        assert!(matches!(
            decode(&bytes[..bytes.len() - 3], 2),
            Err(TemplateError::Format(_))
        ));
        let nan = Array2::from_shape_vec((1, 2), vec![f32::NAN, 1.0]).unwrap();
        let mut b = Vec::new();
        nan.write_npy(&mut b).unwrap();
        assert!(matches!(decode(&b, 2), Err(TemplateError::NotFinite)));
        assert!(matches!(encode(&[]), Err(TemplateError::Empty)));
    }
}
