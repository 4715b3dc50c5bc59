//! Face boxes and the on-screen ellipse guide, in frame pixel coordinates.

use serde::{Deserialize, Serialize};

/// An axis-aligned face box in the frame's pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    /// Detector confidence (SeetaFace score; higher is surer).
    pub score: f32,
}

impl FaceBox {
    pub fn centre(&self) -> (f32, f32) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }

    /// Length of the box's longer side.
    pub(crate) fn size(&self) -> f32 {
        self.w.max(self.h)
    }

    pub fn area(&self) -> f32 {
        self.w * self.h
    }

    /// The largest of `faces` (the person nearest the camera); None when there are none.
    pub fn largest(faces: &[FaceBox]) -> Option<FaceBox> {
        faces
            .iter()
            .copied()
            .max_by(|a, b| a.area().total_cmp(&b.area()))
    }

    /// Scales the box about the origin (used to map boxes found on a downscaled copy).
    pub(crate) fn scaled(&self, s: f32) -> FaceBox {
        FaceBox {
            x: self.x * s,
            y: self.y * s,
            w: self.w * s,
            h: self.h * s,
            score: self.score,
        }
    }

    /// Share of the box's area that lies inside a `w`x`h` frame.
    pub(crate) fn visible_fraction(&self, w: u32, h: u32) -> f32 {
        let ix = (self.x + self.w).min(w as f32) - self.x.max(0.0);
        let iy = (self.y + self.h).min(h as f32) - self.y.max(0.0);
        if ix <= 0.0 || iy <= 0.0 || self.area() <= 0.0 {
            return 0.0;
        }
        ix * iy / self.area()
    }
}

/// The ellipse a person centres their face in, as fractions of the frame.
///
/// `width`/`height` are the ellipse's full axes relative to the frame (the spec's
/// `ellipse_width = w * 0.35`, `ellipse_height = h * 0.55`), centred in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EllipseGuide {
    pub width: f32,
    pub height: f32,
}

impl Default for EllipseGuide {
    fn default() -> Self {
        Self {
            width: 0.35,
            height: 0.55,
        }
    }
}

impl EllipseGuide {
    /// Centre and semi-axes `(cx, cy, a, b)` in pixels for a `w`x`h` frame.
    pub fn in_frame(&self, w: u32, h: u32) -> (f32, f32, f32, f32) {
        (
            w as f32 / 2.0,
            h as f32 / 2.0,
            self.width * w as f32 / 2.0,
            self.height * h as f32 / 2.0,
        )
    }

    /// Whether a point lies inside (or on) the ellipse.
    pub(crate) fn contains(&self, w: u32, h: u32, px: f32, py: f32) -> bool {
        let (cx, cy, a, b) = self.in_frame(w, h);
        if a <= 0.0 || b <= 0.0 {
            return false;
        }
        let dx = (px - cx) / a;
        let dy = (py - cy) / b;
        dx * dx + dy * dy <= 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32, y: f32, w: f32, h: f32) -> FaceBox {
        FaceBox {
            x,
            y,
            w,
            h,
            score: 1.0,
        }
    }

    #[test]
    fn ellipse_contains_centre_not_corner() {
        let g = EllipseGuide::default();
        assert!(g.contains(640, 480, 320.0, 240.0));
        assert!(!g.contains(640, 480, 10.0, 10.0));
        // Semi-axes are 112 x 132 px: just inside and just outside horizontally.
        assert!(g.contains(640, 480, 320.0 + 111.0, 240.0));
        assert!(!g.contains(640, 480, 320.0 + 113.0, 240.0));
    }

    #[test]
    fn visible_fraction_of_clipped_box() {
        let f = b(-50.0, 0.0, 100.0, 100.0).visible_fraction(640, 480);
        assert!((f - 0.5).abs() < 1e-6);
    }
}
