//! What an evaluation reports: the protocol's metrics and every image's raw result.

use std::collections::BTreeMap;
use std::path::Path;

use attendance_core::reason::Reason;
use attendance_face::Embedding;
use serde::Serialize;

use crate::dataset::Identity;

/// The protocol's metrics, printed as one JSON object.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub embedder: String,
    pub tar: f64,
    pub misid: f64,
    pub fta: f64,
    pub far: f64,
    pub rank1: f64,
    pub tar_at_far1: f64,
    pub ms_per_image: f64,
    pub identities: usize,
    pub enrolled: usize,
    pub genuine_probes: usize,
    pub impostor_probes: usize,
    pub tar_at_far01: f64,
    /// People in the gallery: employees and distractors enrolled.
    pub gallery: usize,
    pub distractors_enrolled: usize,
    /// Cohort faces the neighbourhoods were measured against (those taken for an
    /// enrolled person set aside).
    pub cohort: usize,
    pub tolerance: f32,
    pub margin: f32,
    pub neighbour_ratio: f32,
    pub verify_tolerance: f32,
    /// 1:1: genuine probes accepted when they claim their own id (fta counts as a
    /// miss, as in `tar`).
    pub verify_tar: f64,
    /// 1:1, per attempt: every probe that reached matching claiming every enrolled
    /// person (distractors too) other than its own.
    pub verify_far: f64,
    pub verify_impostor_attempts: usize,
    /// 1:1, the informed impostor: each stranger claims the enrolled person they
    /// resemble most.
    pub verify_far_nearest: f64,
    /// Probes replayed as camera frames, decided by 1, 2 and 3 agreeing frames
    /// (`--sequence-frames`; empty when not measured).
    pub sequences: Vec<SequenceScore>,
    /// Random galleries of each size (`--gallery-sizes`; empty when not measured), and
    /// the seed they were drawn with.
    pub sizes: Vec<crate::SizeScore>,
    pub gallery_seed: Option<u64>,
    /// Visits in time order with learning at the door (`--learn`; None when not
    /// measured).
    pub learning: Option<crate::LearningScore>,
    /// Threshold that `tar_at_far1` used (1 % quantile of impostors' nearest distances).
    pub far1_threshold: Option<f32>,
    /// For every probe not accepted as an employee: why (`unknown` after matching, or
    /// the reason it was rejected before matching).
    pub fail_reasons: BTreeMap<String, usize>,
}

/// One image's raw result (`eval --dump`), to compare two builds number by number or to
/// replay other decision rules over the same descriptors: its embeddings (several for an
/// enrolment), or the reason it got none.
#[derive(Debug, Clone, Serialize)]
pub struct ImageResult {
    /// `identity/file`, as under its folder.
    pub image: String,
    /// From the distractors' folder (enrolled, never probed).
    pub distractor: bool,
    pub embeddings: Vec<Vec<f32>>,
    pub reason: Option<Reason>,
}

/// The several-frame vote on replayed sequences (MODE_A's decision).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SequenceScore {
    /// Frames that must agree (0 when fused).
    pub votes: usize,
    /// Decided once per window on the mean of its usable frames' embeddings, not by a
    /// vote of frame decisions.
    pub fused: bool,
    /// Decision windows a person standing there was given (walk-up's tries).
    pub tries: usize,
    /// Genuine sequences punched as the right person.
    pub tar: f64,
    pub misid: f64,
    /// Strangers' sequences punched as somebody.
    pub far: f64,
    /// Mean frames analysed before a genuine sequence was decided (at 5 analyses a
    /// second, 0.2 s each).
    pub frames_to_decide: f64,
}

/// The metrics and every image's result behind them.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub report: EvalReport,
    pub images: Vec<ImageResult>,
}

impl ImageResult {
    pub fn new(
        id: &Identity,
        path: &Path,
        distractor: bool,
        embeddings: Vec<Embedding>,
        reason: Option<Reason>,
    ) -> Self {
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        Self {
            image: format!("{}/{file}", id.name),
            distractor,
            embeddings: embeddings.into_iter().map(|e| e.0).collect(),
            reason,
        }
    }
}
