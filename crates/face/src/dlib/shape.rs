//! dlib's shape predictor (Kazemi & Sullivan's ensemble of regression trees), for the
//! 5-point model: face box in, eye corners and nose base out.

use super::reader::{ModelError, Reader};

/// One regression tree, flattened: split `i` compares features `idx1[i]` and `idx2[i]`;
/// leaves are rows of `2 * parts` shape updates.
struct Tree {
    idx1: Vec<u32>,
    idx2: Vec<u32>,
    thresh: Vec<f32>,
    leaves: Vec<f32>,
}

/// One cascade level: its trees and where its feature pixels sit relative to the shape.
struct Level {
    trees: Vec<Tree>,
    anchor: Vec<u32>,
    deltas: Vec<[f32; 2]>,
}

pub(crate) struct ShapePredictor {
    initial: Vec<f32>,
    levels: Vec<Level>,
}

/// A face box as dlib sees it: inclusive pixel corners.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DlibRect {
    pub left: i64,
    pub top: i64,
    pub right: i64,
    pub bottom: i64,
}

/// A grey image as the predictor reads it: `(r + g + b) / 3` per pixel, like dlib's
/// `get_pixel_intensity` of an RGB pixel.
pub(crate) struct Intensity<'a> {
    pub width: usize,
    pub height: usize,
    pub data: &'a [u8],
}

impl ShapePredictor {
    /// Parses `shape_predictor_*.dat`.
    pub(crate) fn parse(bytes: &[u8]) -> Result<ShapePredictor, ModelError> {
        let mut r = Reader::new(bytes);
        let version = r.int("shape predictor version")?;
        if version != 1 {
            return Err(r.malformed("shape predictor version", format!("{version}, expected 1")));
        }
        let (rows, cols, initial) = r.matrix("initial shape")?;
        if cols != 1 || rows == 0 || rows % 2 != 0 {
            return Err(r.malformed("initial shape", format!("{rows}x{cols}")));
        }
        let n_levels = r.len("cascade count")?;
        let mut forests = Vec::with_capacity(n_levels);
        for _ in 0..n_levels {
            let n_trees = r.len("tree count")?;
            let mut trees = Vec::with_capacity(n_trees);
            for _ in 0..n_trees {
                let n_splits = r.len("split count")?;
                let (mut idx1, mut idx2, mut thresh) = (Vec::new(), Vec::new(), Vec::new());
                for _ in 0..n_splits {
                    idx1.push(r.count("split idx1")? as u32);
                    idx2.push(r.count("split idx2")? as u32);
                    thresh.push(r.float32("split threshold")?);
                }
                let n_leaves = r.len("leaf count")?;
                if n_leaves != n_splits + 1 {
                    return Err(
                        r.malformed("tree", format!("{n_splits} splits but {n_leaves} leaves"))
                    );
                }
                let mut leaves = Vec::with_capacity(n_leaves * rows);
                for _ in 0..n_leaves {
                    let (lr, lc, v) = r.matrix("leaf")?;
                    if lr != rows || lc != 1 {
                        return Err(r.malformed("leaf", format!("{lr}x{lc}, shape has {rows}")));
                    }
                    leaves.extend(v);
                }
                trees.push(Tree {
                    idx1,
                    idx2,
                    thresh,
                    leaves,
                });
            }
            forests.push(trees);
        }
        let n = r.len("anchor levels")?;
        if n != n_levels {
            return Err(r.malformed("anchors", format!("{n} levels, {n_levels} cascades")));
        }
        let mut anchors = Vec::with_capacity(n);
        for _ in 0..n {
            let k = r.len("anchor count")?;
            let mut a = Vec::with_capacity(k);
            for _ in 0..k {
                let idx = r.count("anchor")?;
                if idx as usize >= rows / 2 {
                    return Err(r.malformed("anchor", format!("part {idx} of {}", rows / 2)));
                }
                a.push(idx as u32);
            }
            anchors.push(a);
        }
        let n = r.len("delta levels")?;
        if n != n_levels {
            return Err(r.malformed("deltas", format!("{n} levels, {n_levels} cascades")));
        }
        let mut levels = Vec::with_capacity(n);
        for (trees, anchor) in forests.into_iter().zip(anchors) {
            let k = r.len("delta count")?;
            if k != anchor.len() {
                return Err(r.malformed("deltas", format!("{k} deltas, {} anchors", anchor.len())));
            }
            let mut deltas = Vec::with_capacity(k);
            for _ in 0..k {
                deltas.push([r.float32("delta x")?, r.float32("delta y")?]);
            }
            for t in &trees {
                if t.idx1.iter().chain(&t.idx2).any(|i| *i as usize >= k) {
                    return Err(r.malformed("tree", "feature index out of range"));
                }
            }
            levels.push(Level {
                trees,
                anchor,
                deltas,
            });
        }
        if !r.at_end() {
            return Err(r.malformed("shape predictor", "trailing bytes"));
        }
        Ok(ShapePredictor { initial, levels })
    }

    pub(crate) fn parts(&self) -> usize {
        self.initial.len() / 2
    }

    /// Landmarks in image pixels, rounded like dlib's `point`.
    pub(crate) fn predict(&self, img: &Intensity<'_>, rect: DlibRect) -> Vec<[i64; 2]> {
        let shape = self.shape(img, rect);
        shape
            .chunks_exact(2)
            .map(|p| unnormalize(rect, p[0], p[1]))
            .collect()
    }

    /// Landmarks in image pixels, not rounded (the liveness guard measures sub-pixel
    /// movements of the nose).
    pub(crate) fn predict_precise(&self, img: &Intensity<'_>, rect: DlibRect) -> Vec<[f64; 2]> {
        let shape = self.shape(img, rect);
        shape
            .chunks_exact(2)
            .map(|p| unnormalize_precise(rect, p[0], p[1]))
            .collect()
    }

    /// The shape, in the face box's unit square.
    fn shape(&self, img: &Intensity<'_>, rect: DlibRect) -> Vec<f32> {
        let mut shape = self.initial.clone();
        let mut features: Vec<f32> = Vec::new();
        for level in &self.levels {
            let m = similarity_2x2(&self.initial, &shape);
            features.clear();
            for (delta, &anchor) in level.deltas.iter().zip(&level.anchor) {
                let a = anchor as usize;
                let u = m[0] * delta[0] + m[1] * delta[1] + shape[2 * a];
                let v = m[2] * delta[0] + m[3] * delta[1] + shape[2 * a + 1];
                let [x, y] = unnormalize(rect, u, v);
                features.push(img.at(x, y));
            }
            let dim = shape.len();
            for t in &level.trees {
                let mut i = 0usize;
                while i < t.idx1.len() {
                    let d = features[t.idx1[i] as usize] - features[t.idx2[i] as usize];
                    i = if d > t.thresh[i] {
                        2 * i + 1
                    } else {
                        2 * i + 2
                    };
                }
                let leaf = i - t.idx1.len();
                for (s, l) in shape
                    .iter_mut()
                    .zip(&t.leaves[leaf * dim..(leaf + 1) * dim])
                {
                    *s += l;
                }
            }
        }
        shape
    }
}

impl Intensity<'_> {
    fn at(&self, x: i64, y: i64) -> f32 {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return 0.0;
        }
        f32::from(self.data[y as usize * self.width + x as usize])
    }
}

/// `(r + g + b) / 3` (integer) of an RGB image.
pub(crate) fn intensity_of(rgb: &image::RgbImage) -> Vec<u8> {
    rgb.pixels()
        .map(|p| ((u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2])) / 3) as u8)
        .collect()
}

/// Maps the unit square onto the box (dlib's `unnormalizing_tform`) and rounds to a pixel
/// like dlib's vector-to-point conversion.
fn unnormalize(r: DlibRect, u: f32, v: f32) -> [i64; 2] {
    let [x, y] = unnormalize_precise(r, u, v);
    [(x + 0.5).floor() as i64, (y + 0.5).floor() as i64]
}

fn unnormalize_precise(r: DlibRect, u: f32, v: f32) -> [f64; 2] {
    [
        r.left as f64 + f64::from(u) * (r.right - r.left) as f64,
        r.top as f64 + f64::from(v) * (r.bottom - r.top) as f64,
    ]
}

/// The rotation-and-scale part `[m00, m01, m10, m11]` of the least-squares similarity
/// transform taking shape `from` onto shape `to` (closed form of Umeyama's method in 2-D).
/// Computed in `f64` and rounded to `f32` as dlib does (its `find_similarity_transform`
/// works in double, the predictor casts the matrix to float): in `f32` throughout, a
/// feature pixel now and then lands one pixel over and a tree takes another branch.
pub(crate) fn similarity_2x2(from: &[f32], to: &[f32]) -> [f32; 4] {
    let n = (from.len() / 2) as f64;
    let mean = |s: &[f32], o: usize| {
        s.iter()
            .skip(o)
            .step_by(2)
            .map(|&v| f64::from(v))
            .sum::<f64>()
            / n
    };
    let (fx, fy, tx, ty) = (mean(from, 0), mean(from, 1), mean(to, 0), mean(to, 1));
    let (mut a, mut b, mut norm) = (0f64, 0f64, 0f64);
    for (f, t) in from.chunks_exact(2).zip(to.chunks_exact(2)) {
        let (x, y) = (f64::from(f[0]) - fx, f64::from(f[1]) - fy);
        let (u, v) = (f64::from(t[0]) - tx, f64::from(t[1]) - ty);
        a += x * u + y * v;
        b += x * v - y * u;
        norm += x * x + y * y;
    }
    if norm <= f64::EPSILON {
        return [1.0, 0.0, 0.0, 1.0];
    }
    let (a, b) = ((a / norm) as f32, (b / norm) as f32);
    [a, -b, b, a]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_recovers_rotation_and_scale() {
        let from = [0.0f32, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        // Rotate by 90 degrees, scale 2, shift.
        let to: Vec<f32> = from
            .chunks(2)
            .flat_map(|p| [5.0 - 2.0 * p[1], 3.0 + 2.0 * p[0]])
            .collect();
        let m = similarity_2x2(&from, &to);
        for (got, want) in m.iter().zip([0.0, -2.0, 2.0, 0.0]) {
            assert!((got - want).abs() < 1e-5, "{m:?}");
        }
    }

    #[test]
    fn unnormalize_maps_corners() {
        let r = DlibRect {
            left: 10,
            top: 20,
            right: 110,
            bottom: 120,
        };
        assert_eq!(unnormalize(r, 0.0, 0.0), [10, 20]);
        assert_eq!(unnormalize(r, 1.0, 1.0), [110, 120]);
        assert_eq!(unnormalize(r, 0.5, 0.25), [60, 45]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(ShapePredictor::parse(b"").is_err());
        assert!(ShapePredictor::parse(&[0x01, 0x02]).is_err());
    }
}
