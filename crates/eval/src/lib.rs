//! `attendanced eval`: the terminal evaluation protocol (`../shared/faces/PROTOCOL.md`), to
//! the letter, over the face pipeline (a tool beside it, not part of it).
//!
//! Identities are the dataset's sub-folders not starting with `_` or `.`, sorted by byte
//! order; even positions are employees (first image that enrols is their only template,
//! the others are genuine probes), odd positions are strangers (every image an impostor
//! probe). Every image goes through the full pipeline on one thread.
//!
//! Protocol v2 grows the gallery with distractors: people enrolled from another folder
//! (one template each, never probed), so the figures show what a company-sized gallery
//! does to strangers. `enrol_images` > 1 (not in the protocol, which says 1) measures
//! enrolment from several photos.

mod cohort;
pub mod dataset;
mod learning;
pub mod liveness;
mod pairs;
mod report;
mod score;
mod sequences;
mod sizes;
mod verify;

use std::path::{Path, PathBuf};
use std::time::Instant;

use attendance_core::reason::Reason;
use attendance_face::{Accepted, Embedding, FacePipeline, MatchRule, PipelineError};

use score::gallery_of;
use score::score;
use sequences::sequences;

pub use cohort::write_cohort;
pub use dataset::{CohortChoice, EvalError, Identity, Protocol, list_dataset};
pub use learning::LearningScore;
pub use pairs::{PairsReport, evaluate_pairs};
pub use report::{EvalReport, Evaluation, ImageResult, SequenceScore};
pub use sizes::SizeScore;

/// What the pipeline made of one probe image: an embedding, or why not.
pub(crate) type Outcome = Result<Embedding, Reason>;

/// One identity after processing, in protocol terms.
#[derive(Debug, Clone)]
pub(crate) struct Processed {
    pub name: String,
    /// Even position in the sorted list: enrolled (if any image enrols).
    pub employee: bool,
    /// The enrolment embeddings of the employee's first usable images.
    pub template: Option<Vec<Embedding>>,
    /// Every other image, in order.
    pub probes: Vec<Outcome>,
}

fn accept(pipeline: &FacePipeline, path: &Path) -> Result<Accepted, Reason> {
    let bytes = std::fs::read(path).map_err(|_| Reason::BadImage)?;
    pipeline.accept(&bytes).map_err(|e| match e {
        PipelineError::Decode(_) => Reason::BadImage,
        PipelineError::Rejected(r) => r.reason(),
    })
}

/// Runs the protocol with the pipeline's embedder and the given rule.
pub fn evaluate(
    pipeline: &FacePipeline,
    protocol: &Protocol,
    rule: MatchRule,
) -> Result<Evaluation, EvalError> {
    let identities = list_dataset(&protocol.dataset)?;
    let embedder = pipeline.embedder();
    // Before minutes of embedding: a cohort file that cannot be used fails at once.
    let blank = cohort::blank_gallery(&**embedder, &protocol.cohort)?;
    let mut images = Vec::new();
    // Distractors first: their enrolment is not timed.
    let mut distractors = Vec::new();
    if let Some(dir) = &protocol.distractors {
        let limit = protocol.distractor_limit.unwrap_or(usize::MAX);
        for id in list_dataset(dir)?.into_iter().take(limit) {
            let mut template = None;
            for path in &id.images {
                let outcome = accept(pipeline, path);
                let reason = outcome.as_ref().err().copied();
                let embeddings = match outcome {
                    Ok(a) => template.insert(embedder.enrol(&a.crop)).clone(),
                    Err(_) => Vec::new(),
                };
                images.push(ImageResult::new(&id, path, true, embeddings, reason));
                if template.is_some() {
                    break;
                }
            }
            if let Some(t) = template {
                // Never a dataset identity's name (those cannot start with `_`).
                distractors.push((format!("_distractor/{}", id.name), t));
            }
        }
    }

    let started = Instant::now();
    let mut processed = Vec::with_capacity(identities.len());
    // Every probe photo with its true employee (None for a stranger), for sequences.
    let mut probe_photos: Vec<(Option<String>, PathBuf)> = Vec::new();
    for (pos, id) in identities.iter().enumerate() {
        let employee = pos % 2 == 0;
        let mut template: Option<Vec<Embedding>> = None;
        let mut enrolled_images = 0;
        let mut probes = Vec::new();
        for path in &id.images {
            let outcome = accept(pipeline, path);
            let reason = outcome.as_ref().err().copied();
            let enrols = outcome.is_ok() && employee && enrolled_images < protocol.enrol_images;
            if !enrols {
                probe_photos.push((employee.then(|| id.name.clone()), path.clone()));
            }
            let embeddings = match outcome {
                Ok(a) if enrols => {
                    enrolled_images += 1;
                    let made = embedder.enrol(&a.crop);
                    template
                        .get_or_insert_default()
                        .extend(made.iter().cloned());
                    made
                }
                Ok(a) => {
                    let e = embedder.embed(&a.crop);
                    probes.push(Ok(e.clone()));
                    vec![e]
                }
                Err(r) => {
                    probes.push(Err(r));
                    Vec::new()
                }
            };
            images.push(ImageResult::new(id, path, false, embeddings, reason));
        }
        processed.push(Processed {
            name: id.name.clone(),
            employee,
            template,
            probes,
        });
    }
    let timed = images.iter().filter(|i| !i.distractor).count();
    let ms = if timed == 0 {
        0.0
    } else {
        started.elapsed().as_secs_f64() * 1000.0 / timed as f64
    };
    let mut report = score(&processed, &distractors, &blank, rule);
    report.embedder = embedder.name().to_owned();
    report.ms_per_image = ms;
    if !protocol.gallery_sizes.is_empty() {
        report.gallery_seed = Some(protocol.seed);
        report.sizes = sizes::by_gallery_size(
            &processed,
            &distractors,
            &blank,
            rule,
            &protocol.gallery_sizes,
            protocol.repeats,
            protocol.seed,
        );
    }
    if protocol.learn {
        report.learning = Some(learning::learning(&processed, &distractors, &blank, rule));
    }
    if protocol.sequence_frames > 0 {
        let (gallery, _) = gallery_of(&processed, &distractors, &blank);
        // Employees who never enrolled are left out, as in `score`.
        probe_photos.retain(|(truth, _)| {
            truth.as_ref().is_none_or(|t| {
                processed
                    .iter()
                    .any(|p| &p.name == t && p.template.is_some())
            })
        });
        report.sequences = sequences(
            pipeline,
            &gallery,
            rule,
            &probe_photos,
            protocol.sequence_frames,
            protocol.sequence_tries,
        );
    }
    Ok(Evaluation { report, images })
}
