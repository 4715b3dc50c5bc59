//! HOG descriptor: imageproc's cell histograms and block layout, plus the block
//! normalisation (L2-Hys) and power law imageproc leaves out.

use image::GrayImage;
use imageproc::hog::{HogOptions, hog};

/// HOG layout, in pixels and cells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HogLayout {
    pub cell: usize,
    /// Block side in cells.
    pub block: usize,
    /// Block stride in cells.
    pub stride: usize,
    pub bins: usize,
    /// Orientation over 360° (dark-to-light polarity kept) instead of 180°.
    pub signed: bool,
    /// Clip of each block-normalised value (Dalal & Triggs' L2-Hys uses 0.2); 1.0 disables.
    pub clip: f32,
}

impl HogLayout {
    /// The spec's OpenCV recipe: 16x16 blocks of 8x8 cells, stride 8, 9 unsigned bins, L2-Hys.
    pub(crate) const SPEC: HogLayout = HogLayout {
        cell: 8,
        block: 2,
        stride: 1,
        bins: 9,
        signed: false,
        clip: 0.2,
    };

    /// Descriptor length for a `side`x`side` window.
    pub(crate) fn len(&self, side: usize) -> usize {
        let cells = side / self.cell;
        let blocks = (cells - self.block) / self.stride + 1;
        blocks * blocks * self.block * self.block * self.bins
    }
}

/// Computes the descriptor of a square window whose side is a multiple of the cell size.
/// Values are block-normalised and clipped; the caller normalises the whole vector.
pub(crate) fn describe(window: &GrayImage, layout: &HogLayout) -> Vec<f32> {
    let opts = HogOptions::new(
        layout.bins,
        layout.signed,
        layout.cell,
        layout.block,
        layout.stride,
    );
    // The window size is chosen by the embedder from the same layout; a mismatch is a
    // programming error, caught by the embedder's unit tests.
    let mut d = hog(window, opts).unwrap_or_else(|e| panic!("HOG layout: {e}"));
    let block_len = layout.block * layout.block * layout.bins;
    if layout.clip < 1.0 {
        for block in d.chunks_mut(block_len) {
            l2_hys(block, layout.clip);
        }
    }
    d
}

/// L2-Hys on one block that imageproc has already L2-normalised: clip every value at
/// `clip`, then normalise again, so no single strong edge dominates the block.
fn l2_hys(block: &mut [f32], clip: f32) {
    for v in block.iter_mut() {
        *v = v.min(clip);
    }
    let n = block.iter().map(|v| v * v).sum::<f32>().sqrt();
    if n > 1e-6 {
        block.iter_mut().for_each(|v| *v /= n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_layout_is_8100_long() {
        assert_eq!(HogLayout::SPEC.len(128), 8100);
        let img = GrayImage::from_fn(128, 128, |x, y| image::Luma([((x * 3 + y) % 255) as u8]));
        let d = describe(&img, &HogLayout::SPEC);
        assert_eq!(d.len(), 8100);
        assert!(d.iter().all(|v| v.is_finite() && *v >= 0.0));
    }

    #[test]
    fn l2_hys_clips_the_dominant_value_then_renormalises() {
        // An L2-normalised block with one strong and one weak orientation.
        let mut b = [0.96f32, 0.28, 0.0];
        l2_hys(&mut b, 0.2);
        // Both clipped to 0.2, then normalised: equal weight.
        let h = std::f32::consts::FRAC_1_SQRT_2;
        for (got, want) in b.iter().zip([h, h, 0.0]) {
            assert!((got - want).abs() < 1e-6, "{b:?}");
        }
        // Values under the clip keep their proportions.
        let mut small = [0.1f32, 0.05, 0.0];
        l2_hys(&mut small, 0.2);
        assert!((small[0] / small[1] - 2.0).abs() < 1e-5, "{small:?}");
        assert!((small.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn the_descriptor_is_clipped_where_imageproc_alone_is_not() {
        // A strong edge beside a faint one: imageproc's plain L2 blocks keep the strong
        // orientation far above the faint one; L2-Hys brings them level.
        let img = GrayImage::from_fn(64, 64, |x, _| {
            image::Luma([match x {
                0..=20 => 0,
                21..=41 => 255,
                _ => 235,
            }])
        });
        let unclipped = describe(
            &img,
            &HogLayout {
                clip: 1.0,
                ..HogLayout::SPEC
            },
        );
        let clipped = describe(&img, &HogLayout::SPEC);
        let max = |d: &[f32]| d.iter().cloned().fold(0.0, f32::max);
        assert!(max(&unclipped) > 0.6, "{}", max(&unclipped));
        assert!(
            max(&clipped) < max(&unclipped),
            "{} vs {}",
            max(&clipped),
            max(&unclipped)
        );
    }
}
