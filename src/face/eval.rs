//! The terminal evaluation protocol (`../shared/faces/PROTOCOL.md`), to the letter.
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::embed::Embedding;
use super::gallery::{Decision, Gallery, MatchRule};
use super::pipeline::{Accepted, FacePipeline, PipelineError};
use super::quality::Framing;
use crate::reason::Reason;

const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "pgm", "ppm", "bmp"];

/// The protocol's metrics, printed as one JSON object.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub(crate) embedder: String,
    pub tar: f64,
    pub misid: f64,
    pub fta: f64,
    pub far: f64,
    pub rank1: f64,
    pub tar_at_far1: f64,
    pub(crate) ms_per_image: f64,
    pub identities: usize,
    pub enrolled: usize,
    pub genuine_probes: usize,
    pub impostor_probes: usize,
    pub tar_at_far01: f64,
    /// People in the gallery: employees and distractors enrolled.
    pub gallery: usize,
    pub distractors_enrolled: usize,
    pub(crate) tolerance: f32,
    pub(crate) margin: f32,
    pub(crate) neighbour_ratio: f32,
    pub(crate) verify_tolerance: f32,
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
    /// Threshold that `tar_at_far1` used (1 % quantile of impostors' nearest distances).
    pub(crate) far1_threshold: Option<f32>,
    /// For every probe not accepted as an employee: why (`unknown` after matching, or
    /// the reason it was rejected before matching).
    pub fail_reasons: BTreeMap<String, usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read dataset {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("dataset {0} has no identities")]
    Empty(PathBuf),
    #[error("{0}")]
    Embedder(String),
}

/// What to run the protocol over.
#[derive(Debug, Clone)]
pub struct Protocol {
    pub dataset: PathBuf,
    /// Protocol v2: each of these people's first usable photo joins the gallery.
    pub distractors: Option<PathBuf>,
    /// Only the first N distractor identities.
    pub distractor_limit: Option<usize>,
    /// The first K usable photos of each employee become templates (the protocol's 1).
    pub enrol_images: usize,
    /// Also replay every probe as this many jittered camera frames and decide by the
    /// several-frame vote (0: not measured).
    pub sequence_frames: usize,
}

impl Protocol {
    /// Protocol v1 over `dataset`.
    pub fn new(dataset: impl Into<PathBuf>) -> Self {
        Self {
            dataset: dataset.into(),
            distractors: None,
            distractor_limit: None,
            enrol_images: 1,
            sequence_frames: 0,
        }
    }
}

/// An identity folder and its images, in protocol order.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub images: Vec<PathBuf>,
}

/// Lists identities and their images exactly as the protocol orders them.
pub fn list_dataset(dir: &Path) -> Result<Vec<Identity>, EvalError> {
    let io = |e| EvalError::Io(dir.to_path_buf(), e);
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('_') || name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        let mut images: Vec<(Vec<u8>, PathBuf)> = Vec::new();
        for img in std::fs::read_dir(entry.path()).map_err(io)? {
            let img = img.map_err(io)?;
            let fname = img.file_name();
            let lower = fname.to_string_lossy().to_lowercase();
            let is_image = lower
                .rsplit_once('.')
                .is_some_and(|(_, ext)| IMAGE_EXTENSIONS.contains(&ext));
            if is_image && img.path().is_file() {
                images.push((fname.as_encoded_bytes().to_vec(), img.path()));
            }
        }
        images.sort();
        ids.push((
            name.as_bytes().to_vec(),
            Identity {
                name,
                images: images.into_iter().map(|(_, p)| p).collect(),
            },
        ));
    }
    ids.sort_by(|a, b| a.0.cmp(&b.0));
    if ids.is_empty() {
        return Err(EvalError::Empty(dir.to_path_buf()));
    }
    Ok(ids.into_iter().map(|(_, i)| i).collect())
}

/// What the pipeline made of one probe image: an embedding, or why not.
pub(crate) type Outcome = Result<Embedding, Reason>;

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
    /// Frames that must agree.
    pub votes: usize,
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

/// One identity after processing, in protocol terms.
#[derive(Debug, Clone)]
pub(crate) struct Processed {
    pub(crate) name: String,
    /// Even position in the sorted list: enrolled (if any image enrols).
    pub(crate) employee: bool,
    /// The enrolment embeddings of the employee's first usable images.
    pub(crate) template: Option<Vec<Embedding>>,
    /// Every other image, in order.
    pub(crate) probes: Vec<Outcome>,
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
    let mut report = score(&processed, &distractors, embedder.dim(), rule);
    report.embedder = embedder.name().to_owned();
    report.ms_per_image = ms;
    if protocol.sequence_frames > 0 {
        let (gallery, _) = gallery_of(&processed, &distractors, embedder.dim());
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
        );
    }
    Ok(Evaluation { report, images })
}

impl ImageResult {
    fn new(
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

/// The protocol's matching and metrics over processed identities.
/// `distractors` are extra people's templates: in the gallery, never probed.
pub(crate) fn score(
    identities: &[Processed],
    distractors: &[(String, Vec<Embedding>)],
    dim: usize,
    rule: MatchRule,
) -> EvalReport {
    let (gallery, enrolled) = gallery_of(identities, distractors, dim);
    // (true employee for genuine probes, outcome)
    let mut probes: Vec<(Option<&str>, &Outcome)> = Vec::new();
    for id in identities {
        if !id.employee {
            probes.extend(id.probes.iter().map(|o| (None, o)));
        } else if id.template.is_some() {
            probes.extend(id.probes.iter().map(|o| (Some(id.name.as_str()), o)));
        }
    }

    let mut fail_reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut fail = |r: Reason| *fail_reasons.entry(r.as_str().to_owned()).or_default() += 1;
    let (mut ng, mut ni) = (0usize, 0usize);
    let (mut accepted_right, mut misid, mut fta, mut far, mut rank1) = (0, 0, 0, 0, 0);
    let mut impostor_nearest: Vec<f32> = Vec::new();
    // Genuine probes that reached matching, to re-decide at the FAR-1 % threshold.
    let mut genuine_nearest = Vec::new();

    for &(truth, outcome) in &probes {
        match truth {
            Some(_) => ng += 1,
            None => ni += 1,
        }
        let e = match outcome {
            Ok(e) => e,
            Err(r) => {
                if truth.is_some() {
                    fta += 1;
                }
                fail(*r);
                continue;
            }
        };
        let nearest = gallery.nearest(e);
        let decision = rule.decide(nearest.clone());
        match truth {
            Some(truth) => {
                if nearest.as_ref().is_some_and(|n| n.employee_id == truth) {
                    rank1 += 1;
                }
                match decision {
                    Decision::Match { employee_id, .. } if employee_id == truth => {
                        accepted_right += 1
                    }
                    Decision::Match { .. } => misid += 1,
                    Decision::Unknown { .. } => fail(Reason::Unknown),
                }
                genuine_nearest.push((truth, nearest));
            }
            None => {
                if let Some(n) = &nearest {
                    impostor_nearest.push(n.distance);
                }
                match decision {
                    Decision::Match { .. } => far += 1,
                    Decision::Unknown { .. } => fail(Reason::Unknown),
                }
            }
        }
    }

    // Genuine probes accepted as the right person with the threshold at the impostors'
    // q-quantile nearest distance (the rule's margin kept).
    let verify = verify_scores(&gallery, &probes, rule);

    let mut tar_at = |q: f64| {
        let threshold = quantile(&mut impostor_nearest, q);
        let right = threshold.map_or(0, |threshold| {
            let at = MatchRule { threshold, ..rule };
            genuine_nearest
                .iter()
                .filter(|(truth, n)| {
                    matches!(at.decide(n.clone()),
                        Decision::Match { employee_id, .. } if employee_id == *truth)
                })
                .count()
        });
        (threshold, right)
    };
    let (far1_threshold, tar_at_far1) = tar_at(0.01);
    let (_, tar_at_far01) = tar_at(0.001);

    EvalReport {
        embedder: String::new(),
        tar: rate(accepted_right, ng),
        misid: rate(misid, ng),
        fta: rate(fta, ng),
        far: rate(far, ni),
        rank1: rate(rank1, ng),
        tar_at_far1: rate(tar_at_far1, ng),
        tar_at_far01: rate(tar_at_far01, ng),
        gallery: gallery.people(),
        distractors_enrolled: distractors.len(),
        ms_per_image: 0.0,
        identities: identities.len(),
        enrolled,
        genuine_probes: ng,
        impostor_probes: ni,
        tolerance: rule.threshold,
        margin: rule.margin,
        neighbour_ratio: rule.neighbour_ratio,
        far1_threshold,
        sequences: Vec::new(),
        verify_tolerance: rule.verify_threshold,
        verify_tar: rate(verify.genuine_accepted, ng),
        verify_far: rate(verify.false_accepts, verify.impostor_attempts),
        verify_impostor_attempts: verify.impostor_attempts,
        verify_far_nearest: rate(verify.nearest_accepted, ni),
        fail_reasons,
    }
}

/// The gallery of the employees who enrolled (an employee whose images all fail to enrol
/// is left out) and the distractors; and how many employees are in it.
fn gallery_of(
    identities: &[Processed],
    distractors: &[(String, Vec<Embedding>)],
    dim: usize,
) -> (Gallery, usize) {
    let mut gallery = Gallery::new(dim);
    let mut enrolled = 0;
    let employees = identities
        .iter()
        .filter(|id| id.employee)
        .filter_map(|id| Some((&id.name, id.template.as_ref()?)));
    for (name, template) in distractors
        .iter()
        .map(|(n, t)| (n, t))
        .chain(employees.inspect(|_| enrolled += 1))
    {
        for e in template {
            // The dimension is the embedder's own: cannot mismatch.
            let _ = gallery.add(name, e);
        }
    }
    (gallery, enrolled)
}

/// Every probe photo replayed as `frames` jittered camera frames (`jitter`), each
/// analysed as a camera frame would be, matched, and decided as MODE_A does: frames in
/// order until `votes` agree (`vote`), for 1, 2 and 3 votes.
fn sequences(
    pipeline: &FacePipeline,
    gallery: &Gallery,
    rule: MatchRule,
    photos: &[(Option<String>, PathBuf)],
    frames: usize,
) -> Vec<SequenceScore> {
    use super::vote::{self, FrameOutcome, Verdict};
    // Each photo's frames, matched once; the vote is replayed over them per setting.
    let replays: Vec<(Option<&str>, Vec<FrameOutcome>)> = photos
        .iter()
        .enumerate()
        .filter_map(|(i, (truth, path))| {
            let bytes = std::fs::read(path).ok()?;
            let photo = super::decode::decode(&bytes, &pipeline.limits).ok()?;
            let outcomes = super::jitter::frames(&photo, frames, i as u64)
                .iter()
                .map(|f| match pipeline.analyse(f, Framing::Unguided).verdict {
                    Err(r) => FrameOutcome::Rejected(r),
                    Ok(a) => {
                        let nearest = gallery.nearest(&pipeline.embedder().embed(&a.crop));
                        FrameOutcome::Matched {
                            nearest: nearest.as_ref().map(|n| n.distance),
                            decision: rule.decide(nearest),
                        }
                    }
                })
                .collect();
            Some((truth.as_deref(), outcomes))
        })
        .collect();
    (1..=3)
        .map(|votes| {
            let (mut ng, mut ni, mut right, mut misid, mut far, mut used) = (0, 0, 0, 0, 0, 0);
            for (truth, outcomes) in &replays {
                // MODE_A stops watching once someone has the votes.
                let n = (1..=outcomes.len())
                    .find(|&n| vote::decided(&outcomes[..n], votes))
                    .unwrap_or(outcomes.len());
                let verdict = vote::tally(&outcomes[..n], votes);
                let who = match &verdict {
                    Verdict::Recognised { employee_id, .. } => Some(employee_id.as_str()),
                    _ => None,
                };
                match truth {
                    Some(t) => {
                        ng += 1;
                        match who {
                            Some(w) if w == *t => {
                                right += 1;
                                used += n;
                            }
                            Some(_) => misid += 1,
                            None => {}
                        }
                    }
                    None => {
                        ni += 1;
                        far += usize::from(who.is_some());
                    }
                }
            }
            SequenceScore {
                votes,
                tar: rate(right, ng),
                misid: rate(misid, ng),
                far: rate(far, ni),
                frames_to_decide: rate(used, right),
            }
        })
        .collect()
}

/// The 1:1 tallies behind the `verify_*` keys.
struct VerifyScores {
    genuine_accepted: usize,
    impostor_attempts: usize,
    false_accepts: usize,
    /// Strangers accepted when claiming the person nearest to them.
    nearest_accepted: usize,
}

/// Every probe that reached matching, as 1:1 claims: its own id (genuine) and everyone
/// else's (zero-effort impostors), decided by `rule.verify`.
fn verify_scores(
    gallery: &Gallery,
    probes: &[(Option<&str>, &Outcome)],
    rule: MatchRule,
) -> VerifyScores {
    let mut v = VerifyScores {
        genuine_accepted: 0,
        impostor_attempts: 0,
        false_accepts: 0,
        nearest_accepted: 0,
    };
    let accepted = |who: &str, d: f32| matches!(rule.verify(who, Some(d)), Decision::Match { .. });
    for (truth, outcome) in probes {
        let Ok(e) = outcome else { continue };
        let distances = gallery.distances(e);
        for &(who, d) in &distances {
            if Some(who) == *truth {
                v.genuine_accepted += usize::from(accepted(who, d));
            } else {
                v.impostor_attempts += 1;
                v.false_accepts += usize::from(accepted(who, d));
            }
        }
        if truth.is_none() {
            let nearest = distances.iter().min_by(|a, b| a.1.total_cmp(&b.1));
            v.nearest_accepted += usize::from(nearest.is_some_and(|&(w, d)| accepted(w, d)));
        }
    }
    v
}

/// k of n as a share; 0 when there were none.
fn rate(k: usize, n: usize) -> f64 {
    if n == 0 { 0.0 } else { k as f64 / n as f64 }
}

/// Linear-interpolated quantile (numpy's default), or None for no values.
fn quantile(values: &mut [f32], q: f64) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f32::total_cmp);
    let pos = (values.len() - 1) as f64 * q;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = (pos - lo as f64) as f32;
    Some(values[lo] + (values[hi] - values[lo]) * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accept within 0.5, nothing else checked.
    const DISTANCE_ONLY: MatchRule = MatchRule {
        threshold: 0.5,
        margin: 0.0,
        neighbour_ratio: f32::INFINITY,
        verify_threshold: 0.5,
    };

    fn e(v: &[f32]) -> Outcome {
        Ok(Embedding::normalised(v.to_vec()))
    }

    fn id(
        name: &str,
        employee: bool,
        template: Option<Outcome>,
        probes: Vec<Outcome>,
    ) -> Processed {
        Processed {
            name: name.into(),
            employee,
            template: template.map(|t| vec![t.unwrap()]),
            probes,
        }
    }

    #[test]
    fn score_follows_the_protocol() {
        let rule = DISTANCE_ONLY;
        // A: first image failed (an fta probe), second enrolled, third is close to it.
        // B: stranger; one image near A (accepted: far), one far away.
        // C: employee who never enrolled: left out entirely.
        let ids = [
            id(
                "A",
                true,
                Some(e(&[1.0, 0.0, 0.0])),
                vec![Err(Reason::NoFace), e(&[0.95, 0.1, 0.0])],
            ),
            id(
                "B",
                false,
                None,
                vec![e(&[0.9, 0.2, 0.0]), e(&[0.0, 0.0, 1.0])],
            ),
            id("C", true, None, vec![Err(Reason::BadQuality)]),
        ];
        let r = score(&ids, &[], 3, rule);
        assert_eq!((r.enrolled, r.genuine_probes, r.impostor_probes), (1, 2, 2));
        assert_eq!((r.tar, r.fta, r.misid, r.rank1), (0.5, 0.5, 0.0, 0.5));
        assert_eq!(r.far, 0.5);
        assert_eq!(r.fail_reasons.get("no_face"), Some(&1));
        assert_eq!(r.fail_reasons.get("unknown"), Some(&1));
        assert_eq!(r.fail_reasons.get("bad_quality"), None);
        // 1 % quantile of impostor distances is the smaller one (~0.22): the genuine
        // probe (~0.11) is still accepted.
        assert_eq!(r.tar_at_far1, 0.5);
        // 1:1: A's probe claims A (accepted; the failed one counts as a miss); each of
        // B's two claims A (one within 0.5). B claiming whom they resemble: the same.
        assert_eq!((r.verify_tar, r.verify_impostor_attempts), (0.5, 2));
        assert_eq!((r.verify_far, r.verify_far_nearest), (0.5, 0.5));
        let strict = score(
            &ids,
            &[],
            3,
            MatchRule {
                verify_threshold: 0.15,
                ..rule
            },
        );
        assert_eq!((strict.verify_tar, strict.verify_far), (0.5, 0.0));
    }

    #[test]
    fn distractors_join_the_gallery_and_are_never_probed() {
        let rule = DISTANCE_ONLY;
        // A's probe is nearer the distractor than A's template: misidentified. The
        // stranger B is accepted as the distractor: a false accept.
        let ids = [
            id(
                "A",
                true,
                Some(e(&[1.0, 0.0, 0.0])),
                vec![e(&[0.0, 1.0, 0.3])],
            ),
            id(
                "B",
                false,
                None,
                vec![e(&[0.0, 0.9, 0.4]), e(&[0.0, 0.0, -1.0])],
            ),
        ];
        let distractor = Embedding::normalised(vec![0.0, 1.0, 0.35]);
        let r = score(&ids, &[("_distractor/D".into(), vec![distractor])], 3, rule);
        assert_eq!((r.gallery, r.distractors_enrolled, r.enrolled), (2, 1, 1));
        assert_eq!((r.genuine_probes, r.impostor_probes), (1, 2));
        assert_eq!((r.tar, r.misid, r.rank1), (0.0, 1.0, 0.0));
        assert_eq!(r.far, 0.5);
        let without = score(&ids, &[], 3, rule);
        assert_eq!((without.gallery, without.far, without.misid), (1, 0.0, 0.0));
    }

    #[test]
    fn quantile_matches_numpy_linear() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&mut v, 0.0), Some(1.0));
        assert_eq!(quantile(&mut v, 0.5), Some(3.0));
        assert!((quantile(&mut v, 0.01).unwrap() - 1.04).abs() < 1e-6);
        assert_eq!(quantile(&mut [], 0.5), None);
    }
}
