//! A photo replayed as a camera would show it: each frame a little shifted, scaled,
//! turned and brighter or darker than the last, as a person standing at the door is.
//! `eval --sequence-frames` measures the several-frame vote on such sequences (a
//! replayed identical frame would prove nothing about a vote).

use image::RgbImage;
use imageproc::geometric_transformations::{Border, Interpolation, Projection, warp};

/// How far a frame strays from the photo at most.
const SHIFT: f32 = 0.03; // of the width and height
const SCALE: f32 = 0.04; // ± share
const TURN_DEGREES: f32 = 3.0;
const LIGHT: f32 = 0.10; // ± share of brightness

/// `n` jittered frames of `photo`, the same for the same `seed`.
pub fn frames(photo: &RgbImage, n: usize, seed: u64) -> Vec<RgbImage> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    // Uniform in [-1, 1) (a linear congruential generator: no dependency for a test
    // fixture).
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    let (w, h) = (photo.width() as f32, photo.height() as f32);
    (0..n)
        .map(|_| {
            let (dx, dy) = (next() * SHIFT * w, next() * SHIFT * h);
            let scale = 1.0 + next() * SCALE;
            let turn = (next() * TURN_DEGREES).to_radians();
            let light = 1.0 + next() * LIGHT;
            // About the centre: move it to the origin, scale and turn, move it back.
            let p = Projection::translate(w / 2.0 + dx, h / 2.0 + dy)
                * Projection::rotate(turn)
                * Projection::scale(scale, scale)
                * Projection::translate(-w / 2.0, -h / 2.0);
            // The edges stretch, as the room around a face would be there in a real frame.
            let mut f = warp(photo, p, Interpolation::Bilinear, Border::Replicate);
            f.pixels_mut().for_each(|px| {
                px.0.iter_mut()
                    .for_each(|c| *c = (f32::from(*c) * light).round().clamp(0.0, 255.0) as u8)
            });
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn frames_differ_from_each_other_a_little_and_repeat_for_a_seed() {
        let photo = RgbImage::from_fn(120, 90, |x, y| Rgb([(x * 2) as u8, (y * 2) as u8, 90]));
        let a = frames(&photo, 4, 7);
        assert_eq!(a.len(), 4);
        assert_eq!(a, frames(&photo, 4, 7));
        let diff = |x: &RgbImage, y: &RgbImage| {
            x.as_raw()
                .iter()
                .zip(y.as_raw())
                .map(|(p, q)| (i32::from(*p) - i32::from(*q)).abs() as f64)
                .sum::<f64>()
                / x.as_raw().len() as f64
        };
        for f in &a {
            assert_eq!(f.dimensions(), photo.dimensions());
            // Different from the photo, but not another picture (mean change well under
            // a quarter of the range).
            let d = diff(f, &photo);
            assert!(d > 0.5 && d < 40.0, "{d}");
        }
        assert!(diff(&a[0], &a[1]) > 0.5);
    }
}
