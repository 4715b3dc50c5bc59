//! What the camera makes of a frame: the faces, the verdict of the gates and (while
//! somebody waits for a decision) the embedding; and the camera's state.

use std::time::Instant;

use attendance_face::liveness::Landmarks;
use attendance_face::{Embedding, FaceBox, FaceCrop, FaceQuality, Rejection};

use crate::feed::Guidance;

/// Its wire name (`/health`, `/status`) is the variant's in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum CameraState {
    Starting,
    Streaming,
    Unavailable,
}

impl CameraState {
    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The face that passed the gates in a live frame. The crop stays for an enrolment from
/// the camera.
#[derive(Debug, Clone)]
pub(crate) struct LiveFace {
    pub(crate) face: FaceBox,
    pub(crate) quality: FaceQuality,
    /// None when nobody was waiting for a decision (no [`super::AnalysisWindow`] open as the
    /// analysis started): the overlay and `/status` need only the gates, and embedding
    /// is half an analysis's cost or more (the CNN's two passes take ~19 ms beside
    /// ~15 ms of detection on a 640x480 frame).
    pub(crate) embedding: Option<Embedding>,
    /// The five landmarks, found with the embedding (the liveness guard's input; none
    /// from an embedder that does not find them).
    pub(crate) landmarks: Option<Landmarks>,
    pub(crate) crop: FaceCrop,
}

/// The analysis of the latest frame.
#[derive(Debug, Clone)]
pub(crate) struct LiveAnalysis {
    pub(crate) frame_seq: u64,
    pub(crate) at: Instant,
    pub(crate) frame_size: (u32, u32),
    pub(crate) faces: Vec<FaceBox>,
    pub(crate) verdict: Result<LiveFace, Rejection>,
    pub(crate) detection: Detection,
}

/// How an analysis found its faces. Wire names (`/status`) in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum Detection {
    /// The detector over the whole frame.
    Full,
    /// Only near the one face of the last analysis, at about its size
    /// ([`FacePipeline::analyse_near`]): blind to newcomers elsewhere until the next full
    /// detection, so never while a decision waits.
    Tracked,
    /// Not at all: the frame showed the scene of the last detection (to within noise,
    /// see [`Thumbnail::same_scene`]), whose faces and verdict it carries, without an
    /// embedding.
    Still,
}

impl Detection {
    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }
}

impl LiveAnalysis {
    /// What the screen tells the person: nobody there, ready, or what to change.
    pub(crate) fn guidance(&self) -> Guidance {
        match &self.verdict {
            Ok(_) => Guidance::Ready,
            Err(_) if self.faces.is_empty() => Guidance::Idle,
            Err(r) => Guidance::Adjust {
                reason: r.reason(),
                detail: r.quality_issue(),
            },
        }
    }

    /// This analysis's faces and verdict for a later frame of the same scene.
    pub(super) fn carried_to(&self, frame_seq: u64) -> LiveAnalysis {
        LiveAnalysis {
            frame_seq,
            at: Instant::now(),
            frame_size: self.frame_size,
            faces: self.faces.clone(),
            verdict: self.verdict.clone().map(|f| LiveFace {
                embedding: None,
                landmarks: None,
                ..f
            }),
            detection: Detection::Still,
        }
    }

    pub(super) fn of(
        frame_seq: u64,
        a: attendance_face::Analysis,
        detection: Detection,
        embedder: Option<&dyn attendance_face::Embedder>,
    ) -> LiveAnalysis {
        LiveAnalysis {
            frame_seq,
            at: Instant::now(),
            frame_size: a.frame_size,
            faces: a.faces,
            verdict: a.verdict.map(|acc| LiveFace {
                face: acc.face,
                quality: acc.quality,
                embedding: embedder.map(|e| e.embed(&acc.crop)),
                landmarks: embedder.and_then(|e| e.landmarks(&acc.crop)),
                crop: acc.crop,
            }),
            detection,
        }
    }
}
