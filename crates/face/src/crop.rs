//! The face crop every embedder starts from, and which enrolment keeps on disk so a
//! template can be recomputed when the embedder changes.

use image::imageops::FilterType;
use image::{GrayImage, RgbImage};

use super::decode::DecodeLimits;
use super::geometry::FaceBox;

/// Context kept around the face box on each side, as a share of the box size. Embedders
/// choose their own margins and alignment inside it (dlib's chip needs about 0.4).
const CONTEXT: f32 = 0.5;
/// Largest face box side kept in a crop; larger faces are downscaled to this.
const MAX_FACE_SIDE: f32 = 160.0;
/// Side of the largest crop [`FaceCrop::from_frame`] makes (to within rounding).
const MAX_SAVED_SIDE: u32 = (MAX_FACE_SIDE * (1.0 + 2.0 * CONTEXT)) as u32 + 2;

/// An RGB region around one face, with the face box in the region's coordinates.
#[derive(Clone, PartialEq)]
pub struct FaceCrop {
    pub rgb: RgbImage,
    pub face: FaceBox,
}

impl std::fmt::Debug for FaceCrop {
    // Pixels are biometric data and useless in a log line: show the geometry only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceCrop")
            .field("size", &self.rgb.dimensions())
            .field("face", &self.face)
            .finish()
    }
}

impl FaceCrop {
    /// What a saved crop may be: what [`FaceCrop::from_frame`] makes and no more. A crop
    /// from elsewhere (a roster face) is decoded and embedded at every door of a site.
    pub const SAVED_LIMITS: DecodeLimits = DecodeLimits {
        max_bytes: 1 << 20,
        max_side: MAX_SAVED_SIDE,
        max_pixels: MAX_SAVED_SIDE as u64 * MAX_SAVED_SIDE as u64,
        min_side: 8,
    };

    /// Cuts the face and its context out of a frame (parts outside the frame stay black).
    pub(crate) fn from_frame(frame: &RgbImage, face: &FaceBox) -> FaceCrop {
        let side = face.size();
        let pad = side * CONTEXT;
        let (x0, y0) = ((face.x - pad).floor(), (face.y - pad).floor());
        let region_side = (side + 2.0 * pad).ceil().max(1.0) as u32;
        let mut region = RgbImage::new(region_side, region_side);
        // Paste the overlap of the region with the frame.
        let (fw, fh) = frame.dimensions();
        let sx0 = x0.clamp(0.0, fw as f32) as u32;
        let sy0 = y0.clamp(0.0, fh as f32) as u32;
        let sx1 = (x0 + region_side as f32).clamp(0.0, fw as f32) as u32;
        let sy1 = (y0 + region_side as f32).clamp(0.0, fh as f32) as u32;
        if sx1 > sx0 && sy1 > sy0 {
            let part = image::imageops::crop_imm(frame, sx0, sy0, sx1 - sx0, sy1 - sy0);
            image::imageops::replace(
                &mut region,
                &*part,
                i64::from(sx0) - x0 as i64,
                i64::from(sy0) - y0 as i64,
            );
        }
        let local = FaceBox {
            x: face.x - x0,
            y: face.y - y0,
            ..*face
        };
        let scale = (MAX_FACE_SIDE / side).min(1.0);
        if scale < 1.0 {
            let s = ((region_side as f32 * scale).round() as u32).max(1);
            let region = image::imageops::resize(&region, s, s, FilterType::Triangle);
            let k = s as f32 / region_side as f32;
            return FaceCrop {
                rgb: region,
                face: local.scaled(k),
            };
        }
        FaceCrop {
            rgb: region,
            face: local,
        }
    }

    /// A crop made by [`FaceCrop::from_frame`] and stored as an image: the face is the
    /// centred square its context leaves (to within a pixel of rounding).
    pub fn from_saved(rgb: RgbImage) -> FaceCrop {
        let s = rgb.width().min(rgb.height()) as f32;
        let side = s / (1.0 + 2.0 * CONTEXT);
        let at = (s - side) / 2.0;
        FaceCrop {
            rgb,
            face: FaceBox {
                x: at,
                y: at,
                w: side,
                h: side,
                score: 0.0,
            },
        }
    }

    pub(crate) fn gray(&self) -> GrayImage {
        image::DynamicImage::ImageRgb8(self.rgb.clone()).into_luma8()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_keeps_face_position_and_pads_outside() {
        let frame = RgbImage::from_fn(200, 100, |x, _| image::Rgb([(x % 256) as u8, 0, 0]));
        let face = FaceBox {
            x: 10.0,
            y: 10.0,
            w: 40.0,
            h: 40.0,
            score: 3.0,
        };
        let c = FaceCrop::from_frame(&frame, &face);
        assert_eq!(c.rgb.dimensions(), (80, 80));
        assert_eq!((c.face.x, c.face.y), (20.0, 20.0));
        // Region starts at frame x = -10: the first 10 columns are outside, black.
        assert_eq!(c.rgb.get_pixel(5, 40).0, [0, 0, 0]);
        assert_eq!(c.rgb.get_pixel(30, 40).0, [20, 0, 0]);
    }

    #[test]
    fn a_saved_crop_gives_back_its_face_box() {
        let frame = RgbImage::new(640, 480);
        for (x, y, side) in [
            (100.0, 80.0, 120.0),
            (301.4, 97.6, 151.3),
            (200.0, 50.0, 400.0),
        ] {
            let face = FaceBox {
                x,
                y,
                w: side,
                h: side,
                score: 3.0,
            };
            let c = FaceCrop::from_frame(&frame, &face);
            let back = FaceCrop::from_saved(c.rgb.clone());
            for (a, b) in [
                (back.face.x, c.face.x),
                (back.face.y, c.face.y),
                (back.face.w, c.face.w),
            ] {
                assert!((a - b).abs() <= 1.0, "{:?} vs {:?}", back.face, c.face);
            }
        }
    }

    #[test]
    fn large_faces_are_downscaled() {
        let frame = RgbImage::new(1000, 1000);
        let face = FaceBox {
            x: 300.0,
            y: 300.0,
            w: 400.0,
            h: 400.0,
            score: 3.0,
        };
        let c = FaceCrop::from_frame(&frame, &face);
        assert!((c.face.w - MAX_FACE_SIDE).abs() < 1.0);
        assert_eq!(c.rgb.width(), 320);
        // The largest crops, saved, are within what a saved crop may be.
        for side in [159.4, 160.0, 161.0, 400.0] {
            let f = FaceBox {
                w: side,
                h: side,
                ..face
            };
            let png = super::super::encode::png(&FaceCrop::from_frame(&frame, &f).rgb).unwrap();
            super::super::decode::png_dimensions(&png, &FaceCrop::SAVED_LIMITS).unwrap();
        }
    }
}
