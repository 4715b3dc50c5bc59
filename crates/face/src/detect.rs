//! Face detection with SeetaFace (the `rustface` crate), tuned for a person at a door.
//!
//! SeetaFace scans a fixed 40 px window over an image pyramid that always starts at full
//! resolution, so its cost grows with the frame's pixel count, not with the faces we care
//! about. A person at a door fills a good part of the frame, so we detect on a copy
//! downscaled until the smallest face we still want to *see* (a fraction of the frame) is
//! 40 px: a 640x480 frame is scanned at about 320x240, four times fewer windows.

use std::cell::RefCell;
use std::sync::OnceLock;

use image::GrayImage;
use image::imageops::FilterType;
use rustface::{Detector, ImageData, Model};
use serde::{Deserialize, Serialize};

use super::geometry::FaceBox;

/// SeetaFace frontal model v1.0 (BSD-2-Clause, VIPL/ICT-CAS), shipped in the binary so no
/// loose file can go missing. Copied byte for byte from the `rustface` 0.1.7 crate.
static SEETA_MODEL: &[u8] = include_bytes!("../../../assets/seeta/seeta_fd_frontal_v1.0.bin");

/// SeetaFace's fixed scan window.
const WINDOW: f32 = 40.0;

/// Detector settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// Smallest face to find, as a fraction of the frame's shorter side. Faces smaller than
    /// this are background: they neither count as the person nor block them.
    pub min_face_ratio: f32,
    /// Pyramid scale step. SeetaFace defaults to 0.8; 0.7 scans 30 % fewer windows and its
    /// box regression keeps faces found between levels.
    pub pyramid_step: f32,
    /// Sliding-window step in pixels of the scanned copy.
    pub window_step: u32,
    /// Minimum SeetaFace score for a detection.
    pub score_threshold: f32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            min_face_ratio: 0.12,
            pyramid_step: 0.7,
            window_step: 4,
            score_threshold: 2.0,
        }
    }
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        // The bytes are compiled in and covered by a unit test; failure is a build defect.
        rustface::read_model(SEETA_MODEL).expect("embedded SeetaFace model is valid")
    })
}

thread_local! {
    // rustface's detector keeps scratch buffers and is neither Send nor Sync; one per
    // analysis thread, built lazily from the shared parsed model.
    static DETECTOR: RefCell<Option<Box<dyn Detector>>> = const { RefCell::new(None) };
}

/// Finds faces in a grey frame. Boxes are in the frame's coordinates, largest first.
pub(crate) fn detect(gray: &GrayImage, cfg: &DetectorConfig) -> Vec<FaceBox> {
    let (w, h) = gray.dimensions();
    let min_face = (cfg.min_face_ratio * w.min(h) as f32).max(WINDOW);
    scan(gray, cfg, min_face, f32::INFINITY)
}

/// Finds a face seen in an earlier frame again: only in a square twice its size around
/// its centre, only at 0.7 to 1.4 times its size. A tenth of a whole-frame scan or less,
/// and blind to anything else in the frame. Boxes in the frame's coordinates.
pub(crate) fn detect_near(gray: &GrayImage, cfg: &DetectorConfig, seen: &FaceBox) -> Vec<FaceBox> {
    let (w, h) = gray.dimensions();
    let (cx, cy) = seen.centre();
    let side = 2.0 * seen.size();
    let clamp = |v: f32, max: u32| v.clamp(0.0, max as f32) as u32;
    let (x0, y0) = (clamp(cx - side / 2.0, w), clamp(cy - side / 2.0, h));
    let (x1, y1) = (clamp(cx + side / 2.0, w), clamp(cy + side / 2.0, h));
    if x1 <= x0 || y1 <= y0 {
        return Vec::new();
    }
    let region = image::imageops::crop_imm(gray, x0, y0, x1 - x0, y1 - y0).to_image();
    let min_face = (cfg.min_face_ratio * w.min(h) as f32)
        .max(0.7 * seen.size())
        .max(WINDOW);
    let mut faces = scan(&region, cfg, min_face, 1.4 * seen.size());
    for f in &mut faces {
        f.x += x0 as f32;
        f.y += y0 as f32;
    }
    faces
}

/// SeetaFace over `gray` for faces of `min_face` px up to `max_face` (or the image's
/// short side), on a copy downscaled so that `min_face` is the 40 px window.
fn scan(gray: &GrayImage, cfg: &DetectorConfig, min_face: f32, max_face: f32) -> Vec<FaceBox> {
    let (w, h) = gray.dimensions();
    let scale = (WINDOW / min_face).min(1.0);
    let (sw, sh) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    // SeetaFace computes `width - 40` unsigned: anything under ~42 px must not reach it.
    if sw.min(sh) < WINDOW as u32 + 4 {
        return Vec::new();
    }
    let small;
    let scan = if (sw, sh) == (w, h) {
        gray
    } else {
        small = image::imageops::resize(gray, sw, sh, FilterType::Triangle);
        &small
    };
    // Capping the largest face 2 px under the short side keeps the pyramid's smallest
    // level at >= 40 px despite float truncation (its `width - 40` would wrap).
    let largest = (max_face * scale).min((sw.min(sh) - 2) as f32).max(WINDOW) as u32;
    let raw = DETECTOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let det = slot.get_or_insert_with(|| rustface::create_detector_with_model(model().clone()));
        det.set_min_face_size(WINDOW as u32);
        det.set_max_face_size(largest);
        det.set_pyramid_scale_factor(cfg.pyramid_step.clamp(0.5, 0.95));
        det.set_slide_window_step(cfg.window_step.max(1), cfg.window_step.max(1));
        det.set_score_thresh(f64::from(cfg.score_threshold.max(0.01)));
        det.detect(&ImageData::new(scan.as_raw(), sw, sh))
    });
    let back = w as f32 / sw as f32;
    let mut faces: Vec<FaceBox> = raw
        .iter()
        .map(|f| {
            let r = f.bbox();
            FaceBox {
                x: r.x() as f32,
                y: r.y() as f32,
                w: r.width() as f32,
                h: r.height() as f32,
                score: f.score() as f32,
            }
            .scaled(back)
        })
        .collect();
    faces.sort_by(|a, b| b.area().total_cmp(&a.area()));
    faces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_model_parses() {
        assert!(model().get_hierarchy_count() > 0);
    }

    #[test]
    fn a_face_is_found_again_near_where_it_was_and_only_there() {
        let bytes = crate::testing::photo("caltech_p02/2.jpg");
        let gray = image::load_from_memory(&bytes).unwrap().to_luma8();
        let cfg = DetectorConfig::default();
        let seen = detect(&gray, &cfg)[0];
        // The same photo 14 px further right and 6 down.
        let (w, h) = gray.dimensions();
        let mut moved = GrayImage::from_pixel(w + 14, h + 6, image::Luma([110]));
        image::imageops::replace(&mut moved, &gray, 14, 6);
        let near = detect_near(&moved, &cfg, &seen);
        assert_eq!(near.len(), 1, "{near:?}");
        let (dx, dy) = (near[0].x - seen.x, near[0].y - seen.y);
        // Boxes move in window steps: 4 px of a copy scanned at ~0.4 here.
        assert!(
            (dx - 14.0).abs() <= 10.0 && (dy - 6.0).abs() <= 10.0,
            "{seen:?} -> {near:?}"
        );
        assert!((near[0].size() / seen.size() - 1.0).abs() < 0.2, "{near:?}");
        // Far from the face (the top-left corner) nothing is looked for, and a box at
        // or beyond the border neither panics nor finds anything.
        for (x, y) in [(0.0, 0.0), (-200.0, -200.0), (w as f32, h as f32)] {
            let elsewhere = FaceBox { x, y, ..seen };
            assert!(detect_near(&gray, &cfg, &elsewhere).is_empty(), "{x},{y}");
        }
        let huge = FaceBox {
            w: 4000.0,
            h: 4000.0,
            ..seen
        };
        let _ = detect_near(&gray, &cfg, &huge);
    }

    #[test]
    fn tiny_and_flat_frames_find_nothing_without_panicking() {
        let cfg = DetectorConfig::default();
        for (w, h) in [(1, 1), (41, 41), (43, 300), (300, 43), (44, 44), (97, 61)] {
            let img = GrayImage::from_pixel(w, h, image::Luma([128]));
            assert!(detect(&img, &cfg).is_empty(), "{w}x{h}");
        }
    }
}
