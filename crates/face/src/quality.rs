//! Quality gates: decide whether the detected faces make one usable attempt, and if not,
//! tell the person what to change.

use image::GrayImage;
use image::imageops::FilterType;
use serde::{Deserialize, Serialize};

use super::geometry::{EllipseGuide, FaceBox};
use attendance_core::i18n::Msg;
use attendance_core::reason::{QualityIssue, Reason};

/// Why a frame is not a usable attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    NoFace,
    /// Several faces of comparable size: nobody can tell whose punch it is.
    MultiFace {
        faces: usize,
    },
    /// The face centre is outside the ellipse guide.
    OutOfArea,
    BadQuality(QualityIssue),
}

impl Rejection {
    pub fn reason(&self) -> Reason {
        match self {
            Rejection::NoFace => Reason::NoFace,
            Rejection::MultiFace { .. } => Reason::MultiFace,
            Rejection::OutOfArea => Reason::OutOfArea,
            Rejection::BadQuality(_) => Reason::BadQuality,
        }
    }

    /// What to tell the person: the quality sub-reason when there is one.
    pub fn guidance(&self) -> Msg {
        match self {
            Rejection::BadQuality(q) => Msg::Quality(*q),
            other => Msg::Reason(other.reason()),
        }
    }

    pub fn quality_issue(&self) -> Option<QualityIssue> {
        match self {
            Rejection::BadQuality(q) => Some(*q),
            _ => None,
        }
    }
}

/// Whether the person framed the photo against the on-screen ellipse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A terminal camera frame: the face must be inside the ellipse guide.
    Guided,
    /// An uploaded photo: nobody saw the guide, so where the face sits in the picture says
    /// nothing about whose punch it is or how well it will match.
    Unguided,
}

/// Gate thresholds. Sizes are relative to the frame's shorter side so one setting serves a
/// 640x480 camera and an uploaded 12 MP photo alike.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QualityConfig {
    pub ellipse: EllipseGuide,
    /// Check uploaded photos against the ellipse too (the spec's seed did; off by default
    /// because an upload was never framed against it and off-centre photos then fail).
    pub ellipse_on_uploads: bool,
    /// Face smaller than this share of the short side: "come closer".
    pub min_face_ratio: f32,
    /// Face smaller than this many pixels is too coarse to recognise, whatever the frame.
    pub min_face_px: f32,
    /// Face larger than this share of the short side: "step back".
    pub max_face_ratio: f32,
    /// A face box less visible than this (cut by the frame edge) is "too close".
    pub min_visible: f32,
    /// A second face at least this large relative to the main one makes the frame ambiguous
    /// (smaller ones are people in the background)...
    pub comparable_face_ratio: f32,
    /// ...if the detector is sure of it: weak detections beside a clear face are mostly
    /// patterns in clothes or posters, and must not block the person in front.
    pub sure_face_score: f32,
    /// Mean grey level of the face below this: too dark.
    pub min_brightness: f32,
    /// Mean grey level of the face above this: too bright (washed out).
    pub max_brightness: f32,
    /// Contrast-normalised variance of the Laplacian of the face at 64x64 below this: blurred.
    pub min_sharpness: f32,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            ellipse: EllipseGuide::default(),
            ellipse_on_uploads: false,
            min_face_ratio: 0.18,
            min_face_px: 48.0,
            max_face_ratio: 0.92,
            min_visible: 0.85,
            comparable_face_ratio: 0.6,
            sure_face_score: 10.0,
            min_brightness: 45.0,
            max_brightness: 215.0,
            min_sharpness: 0.02,
        }
    }
}

/// Measured quality of the accepted face; `score()` is stored with templates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceQuality {
    /// Mean grey level of the face's inner region (0-255).
    pub brightness: f32,
    /// Standard deviation of that region's grey levels.
    pub contrast: f32,
    /// Variance of the Laplacian over the grey-level variance, at 64x64.
    pub sharpness: f32,
    /// Face size relative to the frame's shorter side.
    pub size_ratio: f32,
}

impl FaceQuality {
    /// A 0..1 summary used to rank enrolment photos (higher is better).
    pub fn score(&self) -> f32 {
        let light = 1.0 - ((self.brightness - 128.0).abs() / 128.0).min(1.0);
        let sharp = (self.sharpness / 0.5).min(1.0);
        let size = (self.size_ratio / 0.5).min(1.0);
        (light + sharp + size) / 3.0
    }
}

/// Picks the person in front and checks every gate, in the order a person would fix them.
pub(crate) fn assess(
    gray: &GrayImage,
    faces: &[FaceBox],
    cfg: &QualityConfig,
    framing: Framing,
) -> Result<(FaceBox, FaceQuality), Rejection> {
    let (w, h) = gray.dimensions();
    let short = w.min(h) as f32;
    // The largest face is the person nearest the camera.
    let main = FaceBox::largest(faces).ok_or(Rejection::NoFace)?;
    let others = faces
        .iter()
        .filter(|f| **f != main)
        .filter(|f| f.size() >= cfg.comparable_face_ratio * main.size())
        .filter(|f| f.score >= cfg.sure_face_score)
        .count();
    if others > 0 {
        return Err(Rejection::MultiFace { faces: others + 1 });
    }
    let (cx, cy) = main.centre();
    if framing == Framing::Guided && !cfg.ellipse.contains(w, h, cx, cy) {
        return Err(Rejection::OutOfArea);
    }
    let size_ratio = main.size() / short;
    if size_ratio > cfg.max_face_ratio || main.visible_fraction(w, h) < cfg.min_visible {
        return Err(Rejection::BadQuality(QualityIssue::TooClose));
    }
    if size_ratio < cfg.min_face_ratio || main.size() < cfg.min_face_px {
        return Err(Rejection::BadQuality(QualityIssue::TooSmall));
    }
    let q = measure(gray, &main, size_ratio);
    if q.brightness < cfg.min_brightness {
        return Err(Rejection::BadQuality(QualityIssue::TooDark));
    }
    if q.brightness > cfg.max_brightness {
        return Err(Rejection::BadQuality(QualityIssue::TooBright));
    }
    if q.sharpness < cfg.min_sharpness {
        return Err(Rejection::BadQuality(QualityIssue::Blurred));
    }
    Ok((main, q))
}

/// Side of the square the face's inner region is resampled to before measuring: blur is
/// judged at the scale recognition works at, not at the camera's.
const MEASURE_SIDE: u32 = 64;

/// Measures the inner 70 % of the face box (skin, eyes, nose, mouth; little background).
pub(crate) fn measure(gray: &GrayImage, face: &FaceBox, size_ratio: f32) -> FaceQuality {
    let (w, h) = gray.dimensions();
    let inset = 0.15;
    let x0 = (face.x + face.w * inset).clamp(0.0, w as f32 - 1.0) as u32;
    let y0 = (face.y + face.h * inset).clamp(0.0, h as f32 - 1.0) as u32;
    let x1 = (face.x + face.w * (1.0 - inset)).clamp(x0 as f32 + 1.0, w as f32) as u32;
    let y1 = (face.y + face.h * (1.0 - inset)).clamp(y0 as f32 + 1.0, h as f32) as u32;
    let region = image::imageops::crop_imm(gray, x0, y0, x1 - x0, y1 - y0).to_image();
    let small = image::imageops::resize(&region, MEASURE_SIDE, MEASURE_SIDE, FilterType::Triangle);
    let px = small.as_raw();
    let n = px.len() as f32;
    let mean = px.iter().map(|&p| f32::from(p)).sum::<f32>() / n;
    let var = px
        .iter()
        .map(|&p| (f32::from(p) - mean).powi(2))
        .sum::<f32>()
        / n;
    let s = MEASURE_SIDE as usize;
    let mut lap = Vec::with_capacity((s - 2) * (s - 2));
    for y in 1..s - 1 {
        for x in 1..s - 1 {
            let at = |xx: usize, yy: usize| f32::from(px[yy * s + xx]);
            lap.push(at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4.0 * at(x, y));
        }
    }
    let lm = lap.iter().sum::<f32>() / lap.len() as f32;
    let lv = lap.iter().map(|v| (v - lm).powi(2)).sum::<f32>() / lap.len() as f32;
    FaceQuality {
        brightness: mean,
        contrast: var.sqrt(),
        sharpness: if var > 1.0 { lv / var } else { 0.0 },
        size_ratio,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, s: f32) -> FaceBox {
        FaceBox {
            x,
            y,
            w: s,
            h: s,
            score: 20.0,
        }
    }

    fn noisy(w: u32, h: u32, base: u8) -> GrayImage {
        // Deterministic texture so sharpness is high and brightness is `base` on average.
        GrayImage::from_fn(w, h, |x, y| {
            let v = ((x * 7 + y * 13) % 17) as i32 * 4 - 32;
            image::Luma([(i32::from(base) + v).clamp(0, 255) as u8])
        })
    }

    #[test]
    fn no_faces_is_no_face() {
        let g = noisy(640, 480, 128);
        assert_eq!(
            assess(&g, &[], &QualityConfig::default(), Framing::Guided).unwrap_err(),
            Rejection::NoFace
        );
    }

    #[test]
    fn small_background_face_does_not_block() {
        let g = noisy(640, 480, 128);
        let faces = [face(240.0, 140.0, 160.0), face(10.0, 10.0, 40.0)];
        let (main, _) = assess(&g, &faces, &QualityConfig::default(), Framing::Guided).unwrap();
        assert_eq!(main.x, 240.0);
    }

    #[test]
    fn comparable_second_face_is_multi_face() {
        let g = noisy(640, 480, 128);
        let faces = [face(240.0, 140.0, 160.0), face(20.0, 20.0, 120.0)];
        assert_eq!(
            assess(&g, &faces, &QualityConfig::default(), Framing::Guided).unwrap_err(),
            Rejection::MultiFace { faces: 2 }
        );
    }

    #[test]
    fn weak_second_detection_does_not_block() {
        let g = noisy(640, 480, 128);
        let mut ghost = face(20.0, 20.0, 140.0);
        ghost.score = 3.0;
        assert!(
            assess(
                &g,
                &[face(240.0, 140.0, 160.0), ghost],
                &QualityConfig::default(),
                Framing::Guided
            )
            .is_ok()
        );
    }

    #[test]
    fn off_centre_small_close_dark_bright() {
        let cfg = QualityConfig::default();
        let g = noisy(640, 480, 128);
        let r =
            |faces: &[FaceBox], g: &GrayImage| assess(g, faces, &cfg, Framing::Guided).unwrap_err();
        assert_eq!(r(&[face(0.0, 0.0, 160.0)], &g), Rejection::OutOfArea);
        // An uploaded photo is not held to the guide.
        assert!(assess(&g, &[face(10.0, 10.0, 160.0)], &cfg, Framing::Unguided).is_ok());
        assert_eq!(
            r(&[face(300.0, 220.0, 40.0)], &g),
            Rejection::BadQuality(QualityIssue::TooSmall)
        );
        assert_eq!(
            r(&[face(100.0, 0.0, 460.0)], &g),
            Rejection::BadQuality(QualityIssue::TooClose)
        );
        assert_eq!(
            r(&[face(240.0, 140.0, 160.0)], &noisy(640, 480, 15)),
            Rejection::BadQuality(QualityIssue::TooDark)
        );
        assert_eq!(
            r(&[face(240.0, 140.0, 160.0)], &noisy(640, 480, 240)),
            Rejection::BadQuality(QualityIssue::TooBright)
        );
    }

    #[test]
    fn flat_face_is_blurred() {
        let g = GrayImage::from_fn(640, 480, |x, _| image::Luma([100 + (x / 64) as u8]));
        assert_eq!(
            assess(
                &g,
                &[face(240.0, 140.0, 160.0)],
                &QualityConfig::default(),
                Framing::Guided
            )
            .unwrap_err(),
            Rejection::BadQuality(QualityIssue::Blurred)
        );
    }
}
