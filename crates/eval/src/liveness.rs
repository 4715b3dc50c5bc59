//! Measures the buddy-punching guard (`face::liveness`) on a dataset folder: how far the
//! nose seems to turn across frames of one still photo held up and moved (which must stay
//! under the rule's `min_turn`), and across photos of one person taken at other moments
//! (a stand-in for a real head, which the dataset has no video of).

use std::path::Path;

use image::RgbImage;
use imageproc::geometric_transformations::{Border, Interpolation, Projection, warp};

use crate::dataset::{EvalError, list_dataset};
use attendance_face::liveness::{nose_offset, turn};
use attendance_face::{DlibEmbedder, FacePipeline, Framing};

/// What [`measure`] saw: the nose offsets of each sample, as the camera's decision would
/// hand them to the rule (`LivenessRule::live`), so a test asks the rule itself.
#[derive(Debug, Clone, Default)]
pub struct LivenessReport {
    /// One per still photo: the offsets across its moved frames.
    pub stills: Vec<Vec<f64>>,
    /// One per run of consecutive photos of a person: the offsets across them.
    pub people: Vec<Vec<f64>>,
    /// Frames where no face passed the gates (left out).
    pub faceless_frames: usize,
}

impl LivenessReport {
    /// The turn of each still photo (for the figures).
    pub fn still_turns(&self) -> Vec<f64> {
        self.stills.iter().map(|o| turn(o)).collect()
    }

    /// The turn of each run of one person's photos (for the figures).
    pub fn person_turns(&self) -> Vec<f64> {
        self.people.iter().map(|o| turn(o)).collect()
    }
}

/// A photo as a hand would hold it up: moved, turned, scaled, and tilted away (the
/// perspective of a sheet turned about 20° about its vertical axis).
fn held_up(photo: &RgbImage) -> Vec<RgbImage> {
    let (w, h) = (photo.width() as f32, photo.height() as f32);
    let mut frames = attendance_face::jitter::frames(photo, 3, 11);
    for (dx, turn_deg, scale) in [(0.06, 9.0f32, 1.12), (-0.05, -8.0, 0.88)] {
        let p = Projection::translate(w / 2.0 + dx * w, h / 2.0)
            * Projection::rotate(turn_deg.to_radians())
            * Projection::scale(scale, scale)
            * Projection::translate(-w / 2.0, -h / 2.0);
        frames.push(warp(photo, p, Interpolation::Bilinear, Border::Replicate));
    }
    let (a, b) = (0.0f32, 0.08f32);
    let from = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
    let to = [
        (w * a, 0.0),
        (w * (1.0 - b), h * b),
        (w * (1.0 - b), h * (1.0 - b)),
        (w * a, h),
    ];
    if let Some(p) = Projection::from_control_points(from, to) {
        frames.push(warp(photo, p, Interpolation::Bilinear, Border::Replicate));
    }
    frames
}

/// Runs the measurement over the first `per_person` photos of each identity (stills) and
/// every run of `run` consecutive photos (people).
pub fn measure(
    dataset: &Path,
    pipeline: &FacePipeline,
    dlib: &DlibEmbedder,
    per_person: usize,
    run: usize,
) -> Result<LivenessReport, EvalError> {
    let mut report = LivenessReport::default();
    let offset_of = |frame: &RgbImage, report: &mut LivenessReport| -> Option<f64> {
        let a = pipeline.analyse(frame, Framing::Unguided);
        match a.verdict {
            Ok(acc) => nose_offset(&dlib.crop_landmarks(&acc.crop)),
            Err(_) => {
                report.faceless_frames += 1;
                None
            }
        }
    };
    for identity in list_dataset(dataset)? {
        let mut photo_offsets = Vec::new();
        for (i, path) in identity.images.iter().enumerate() {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            let Ok(photo) = pipeline.decode(&bytes) else {
                continue;
            };
            let own = offset_of(&photo, &mut report);
            photo_offsets.push(own);
            if i < per_person {
                let mut offsets: Vec<f64> = own.into_iter().collect();
                for f in held_up(&photo) {
                    offsets.extend(offset_of(&f, &mut report));
                }
                if offsets.len() >= 2 {
                    report.stills.push(offsets);
                }
            }
        }
        for w in photo_offsets.windows(run.max(2)) {
            let offsets: Vec<f64> = w.iter().flatten().copied().collect();
            if offsets.len() >= 2 {
                report.people.push(offsets);
            }
        }
    }
    Ok(report)
}
