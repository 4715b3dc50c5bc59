//! Reader for dlib's serialization format (dlib/serialize.h), as far as the two face
//! models need it. Written by hand: no crate reads dlib files, and the format is small.
//!
//! - integers: a control byte (low 4 bits: byte count, bit 7: negative) then that many
//!   little-endian bytes;
//! - floats: integer mantissa then integer exponent (value = mantissa * 2^exponent, with
//!   exponents 32000/32001/32002 meaning +inf/-inf/NaN);
//! - strings and vectors: an integer length then the items;
//! - dlib matrices: -rows, -cols, then the elements as floats;
//! - DNN tensors (version 2): version, num_samples, k, nr, nc, then raw little-endian f32.

/// Why a model file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("{what}: file ends early at byte {at}")]
    Truncated { what: String, at: usize },
    #[error("{what} at byte {at}: {why}")]
    Malformed {
        what: String,
        at: usize,
        why: String,
    },
}

/// A cursor over the bytes of a dlib file.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Largest element count we accept for any vector or tensor (the ResNet's biggest tensor
/// has 589,824 values): a corrupt length must not make us allocate gigabytes.
const MAX_ITEMS: u64 = 16 * 1024 * 1024;

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn malformed(&self, what: &str, why: impl Into<String>) -> ModelError {
        ModelError::Malformed {
            what: what.into(),
            at: self.pos,
            why: why.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ModelError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(ModelError::Truncated {
                what: what.into(),
                at: self.pos,
            }),
        }
    }

    /// A signed integer of any width.
    pub(crate) fn int(&mut self, what: &str) -> Result<i64, ModelError> {
        let control = self.take(1, what)?[0];
        let size = usize::from(control & 0x0F);
        if size > 8 {
            return Err(self.malformed(what, format!("integer of {size} bytes")));
        }
        let bytes = self.take(size, what)?;
        let mut v: u64 = 0;
        for (i, b) in bytes.iter().enumerate() {
            v |= u64::from(*b) << (8 * i);
        }
        let v = i64::try_from(v).map_err(|_| self.malformed(what, "integer overflows"))?;
        Ok(if control & 0x80 != 0 { -v } else { v })
    }

    /// A non-negative count or index.
    pub(crate) fn count(&mut self, what: &str) -> Result<u64, ModelError> {
        let v = self.int(what)?;
        u64::try_from(v).map_err(|_| self.malformed(what, format!("negative count {v}")))
    }

    /// A length, bounded by [`MAX_ITEMS`].
    pub(crate) fn len(&mut self, what: &str) -> Result<usize, ModelError> {
        let n = self.count(what)?;
        if n > MAX_ITEMS {
            return Err(self.malformed(what, format!("length {n} is implausible")));
        }
        Ok(n as usize)
    }

    /// A float or double (dlib's portable mantissa/exponent form), as f64.
    pub(crate) fn float(&mut self, what: &str) -> Result<f64, ModelError> {
        let mantissa = self.int(what)?;
        let exponent = self.int(what)?;
        Ok(match exponent {
            32000 => f64::INFINITY,
            32001 => f64::NEG_INFINITY,
            32002 => f64::NAN,
            e if (-1100..1100).contains(&e) => mantissa as f64 * (e as f64).exp2(),
            e => return Err(self.malformed(what, format!("float exponent {e}"))),
        })
    }

    /// A float stored for an `f32` (dlib converts through float, so this is exact).
    pub(crate) fn float32(&mut self, what: &str) -> Result<f32, ModelError> {
        Ok(self.float(what)? as f32)
    }

    pub(crate) fn string(&mut self, what: &str) -> Result<String, ModelError> {
        let n = self.len(what)?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.malformed(what, "not UTF-8"))
    }

    /// Expects a given string (a layer or format tag).
    pub(crate) fn expect_string(&mut self, want: &str) -> Result<(), ModelError> {
        let at = self.pos;
        let got = self.string(want)?;
        if got == want {
            Ok(())
        } else {
            Err(ModelError::Malformed {
                what: want.into(),
                at,
                why: format!("found {got:?}"),
            })
        }
    }

    /// A dlib `matrix<float>` as `(rows, cols, row-major values)`.
    pub(crate) fn matrix(&mut self, what: &str) -> Result<(usize, usize, Vec<f32>), ModelError> {
        let nr = self.int(what)?;
        let nc = self.int(what)?;
        // Current dlib writes negated sizes; older files wrote them positive.
        let (nr, nc) = (nr.unsigned_abs(), nc.unsigned_abs());
        let n = nr
            .checked_mul(nc)
            .filter(|n| *n <= MAX_ITEMS)
            .ok_or_else(|| self.malformed(what, format!("matrix {nr}x{nc} is implausible")))?;
        let mut v = Vec::with_capacity(n as usize);
        for _ in 0..n {
            v.push(self.float32(what)?);
        }
        Ok((nr as usize, nc as usize, v))
    }

    /// A DNN tensor: `(num_samples, k, nr, nc)` and its values.
    pub(crate) fn tensor(&mut self, what: &str) -> Result<([usize; 4], Vec<f32>), ModelError> {
        let version = self.int(what)?;
        if version != 2 {
            return Err(self.malformed(what, format!("tensor version {version}")));
        }
        let mut dims = [0usize; 4];
        for d in &mut dims {
            *d = self.len(what)?;
        }
        let n = dims
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(*d as u64))
            .filter(|n| *n <= MAX_ITEMS)
            .ok_or_else(|| self.malformed(what, format!("tensor {dims:?} is implausible")))?;
        let raw = self.take(n as usize * 4, what)?;
        let values = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok((dims, values))
    }

    /// An alias_tensor header (version 1 and four sizes).
    pub(crate) fn alias_tensor(&mut self, what: &str) -> Result<[usize; 4], ModelError> {
        let version = self.int(what)?;
        if version != 1 {
            return Err(self.malformed(what, format!("alias_tensor version {version}")));
        }
        let mut dims = [0usize; 4];
        for d in &mut dims {
            *d = self.len(what)?;
        }
        Ok(dims)
    }

    /// One of dlib's ASCII booleans.
    pub(crate) fn boolean(&mut self, what: &str) -> Result<bool, ModelError> {
        match self.take(1, what)?[0] {
            b'1' => Ok(true),
            b'0' => Ok(false),
            other => Err(self.malformed(what, format!("boolean byte {other:#04x}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_floats_strings() {
        // 0, 150, -17, 0x8000 and the float 0.04 as dlib writes them.
        let bytes = [
            0x01, 0x00, 0x01, 0x96, 0x81, 0x11, 0x02, 0x00, 0x80, // ints
            0x03, 0x0a, 0xd7, 0xa3, 0x81, 0x1c, // float 0.04
            0x01, 0x04, b'f', b'c', b'_', b'2', // string
        ];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.int("a").unwrap(), 0);
        assert_eq!(r.int("b").unwrap(), 150);
        assert_eq!(r.int("c").unwrap(), -17);
        assert_eq!(r.int("d").unwrap(), 0x8000);
        assert!((r.float32("e").unwrap() - 0.04).abs() < 1e-7);
        r.expect_string("fc_2").unwrap();
        assert!(r.at_end());
    }

    #[test]
    fn truncation_and_garbage_are_errors_not_panics() {
        assert!(matches!(
            Reader::new(&[0x02, 0x01]).int("x"),
            Err(ModelError::Truncated { .. })
        ));
        assert!(matches!(
            Reader::new(&[0x0f]).int("x"),
            Err(ModelError::Malformed { .. })
        ));
        // A tensor claiming a billion values.
        let bytes = [
            0x01, 0x02, 0x04, 0x00, 0xca, 0x9a, 0x3b, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
        ];
        assert!(matches!(
            Reader::new(&bytes).tensor("t"),
            Err(ModelError::Malformed { .. })
        ));
        assert!(Reader::new(&[0x01, 0x03, b'a']).string("s").is_err());
        assert!(Reader::new(b"x").boolean("b").is_err());
    }
}
