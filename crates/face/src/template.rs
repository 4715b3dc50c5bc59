//! Templates as `.npy` bytes: a 2-D float32 array, one row per enrolment embedding.
//!
//! The spec stores embeddings as NumPy files; keeping the format means an operator can
//! inspect a template with `numpy.load`. Encoding is pure so the store can add encryption
//! and atomic writes around it.

use ndarray::Array2;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

use super::embed::Embedding;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
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
    #[error("template holds {0} rows, more than the {MAX_ROWS} an enrolment makes")]
    TooManyRows(usize),
    #[error("template is {got} bytes, its header promises {want}")]
    Length { got: usize, want: usize },
}

/// Rows one template may hold: an enrolment photo makes one (dlib) or nine (HOG's
/// shifted boxes).
pub(crate) const MAX_ROWS: usize = 32;

/// Encodes template rows as a `(rows, dim)` float32 `.npy` file image.
pub fn encode(rows: &[Embedding]) -> Result<Vec<u8>, TemplateError> {
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

/// Checks a template's header against the embedder's dimension and the bytes that
/// follow it, allocating nothing: `(rows, dim)`. Written by hand because ndarray-npy
/// allocates what a header promises before reading the data, so a 400-byte file whose
/// header said (1, 2^36) asked for 256 GiB and aborted the process.
pub fn check(bytes: &[u8], want_dim: usize) -> Result<(usize, usize), TemplateError> {
    let bad = |why: &str| TemplateError::Format(why.to_owned());
    let rest = bytes
        .strip_prefix(b"\x93NUMPY")
        .ok_or_else(|| bad("no .npy magic"))?;
    let (len_bytes, rest) = match rest.split_first() {
        Some((1, r)) => (2, r.get(1..).ok_or_else(|| bad("truncated header"))?),
        Some((2 | 3, r)) => (4, r.get(1..).ok_or_else(|| bad("truncated header"))?),
        _ => return Err(bad("unknown .npy version")),
    };
    let len = rest
        .get(..len_bytes)
        .ok_or_else(|| bad("truncated header"))?
        .iter()
        .rev()
        .fold(0usize, |n, &b| n << 8 | usize::from(b));
    let header = rest
        .get(len_bytes..len_bytes + len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("truncated header"))?;
    let data_at = bytes.len() - rest.len() + len_bytes + len;
    let field = |key: &str| {
        let at = header.find(&format!("'{key}':"))? + key.len() + 3;
        Some(header[at..].trim_start())
    };
    if !field("descr").is_some_and(|v| v.starts_with("'<f4'")) {
        return Err(bad("not little-endian float32"));
    }
    if !field("fortran_order").is_some_and(|v| v.starts_with("False")) {
        return Err(bad("not in C order"));
    }
    let shape = field("shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split_once(')'))
        .ok_or_else(|| bad("no shape"))?
        .0;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>().map_err(|_| bad("shape is not integers")))
        .collect::<Result<_, _>>()?;
    let (rows, dim) = match dims[..] {
        [n] => (1, n),
        [r, c] => (r, c),
        _ => return Err(bad("not one or two dimensions")),
    };
    if rows == 0 {
        return Err(TemplateError::Empty);
    }
    if dim != want_dim {
        return Err(TemplateError::Dimension {
            got: dim,
            want: want_dim,
        });
    }
    if rows > MAX_ROWS {
        return Err(TemplateError::TooManyRows(rows));
    }
    let want = data_at + rows * dim * 4;
    if bytes.len() != want {
        return Err(TemplateError::Length {
            got: bytes.len(),
            want,
        });
    }
    Ok((rows, dim))
}

/// Decodes and validates a template against the embedder's dimension. A 1-D array (the
/// spec's own format: one embedding) is read as a single row.
pub fn decode(bytes: &[u8], want_dim: usize) -> Result<Vec<Embedding>, TemplateError> {
    check(bytes, want_dim)?;
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
    // Rows and dimension are the header's, which `check` held to the embedder's.
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
            Err(TemplateError::Length { .. })
        ));
        let nan = Array2::from_shape_vec((1, 2), vec![f32::NAN, 1.0]).unwrap();
        let mut b = Vec::new();
        nan.write_npy(&mut b).unwrap();
        assert!(matches!(decode(&b, 2), Err(TemplateError::NotFinite)));
        assert!(matches!(encode(&[]), Err(TemplateError::Empty)));
    }

    /// An `.npy` of `header`'s dict followed by `data` bytes.
    fn npy(dict: &str, data: usize) -> Vec<u8> {
        let mut h = format!("{dict}\n").into_bytes();
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.append(&mut h);
        out.resize(out.len() + data, 0);
        out
    }

    #[test]
    fn the_header_is_checked_before_anything_is_allocated() {
        // The roster attack: a header alone, promising 2^36 floats (256 GiB).
        let bomb = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 68719476736), }",
            0,
        );
        assert!(matches!(
            decode(&bomb, 68719476736),
            Err(TemplateError::Length { got, .. }) if got == bomb.len()
        ));
        assert!(matches!(
            decode(&bomb, 128),
            Err(TemplateError::Dimension { want: 128, .. })
        ));
        // A shape whose byte count overflows is refused on its dimension first.
        let huge = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 128), }",
            0,
        );
        assert!(matches!(
            decode(&huge, 128),
            Err(TemplateError::TooManyRows(_))
        ));
        let ok = |shape: &str, data| {
            npy(
                &format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"),
                data,
            )
        };
        assert_eq!(check(&ok("(2, 3)", 24), 3).unwrap(), (2, 3));
        assert_eq!(check(&ok("(3,)", 12), 3).unwrap(), (1, 3));
        assert!(matches!(
            check(&ok("(2, 3)", 25), 3),
            Err(TemplateError::Length { .. })
        ));
        assert!(matches!(
            check(&ok("(2, 3)", 23), 3),
            Err(TemplateError::Length { .. })
        ));
        assert!(matches!(
            check(&ok("(33, 3)", 396), 3),
            Err(TemplateError::TooManyRows(33))
        ));
        assert!(matches!(
            check(&ok("(0, 3)", 0), 3),
            Err(TemplateError::Empty)
        ));
        assert!(check(&ok("()", 4), 3).is_err());
        assert!(check(&ok("(1, 1, 3)", 12), 3).is_err());
        let be = npy(
            "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }",
            12,
        );
        assert!(matches!(check(&be, 3), Err(TemplateError::Format(_))));
        let f8 = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
            24,
        );
        assert!(matches!(check(&f8, 3), Err(TemplateError::Format(_))));
        for cut in [0, 6, 8, 9, 20] {
            assert!(check(&ok("(3,)", 12)[..cut], 3).is_err(), "cut at {cut}");
        }
        // What encode writes passes, to the byte.
        let row = Embedding::normalised(vec![1.0; 3]);
        let real = encode(&[row.clone(), row]).unwrap();
        assert_eq!(check(&real, 3).unwrap(), (2, 3));
    }
}
