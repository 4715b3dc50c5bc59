//! MODE_A measured: probes replayed as jittered camera frames and decided by the vote.

use std::path::PathBuf;

use attendance_face::{Decision, Embedding, FacePipeline, Framing, Gallery, MatchRule};

use crate::score::rate;

use crate::report::SequenceScore;

/// Every probe photo replayed as `frames` jittered camera frames (`jitter`), each
/// analysed as a camera frame would be, matched, and decided as MODE_A does: frames in
/// order until `votes` agree (`vote`), for 1, 2 and 3 votes. With `tries` > 1 also as
/// walk-up decides a person who stands there: window after window of `frames` new
/// frames, until one recognises somebody or `tries` windows have recognised nobody (what
/// several tries do to far).
pub(crate) fn sequences(
    pipeline: &FacePipeline,
    gallery: &Gallery,
    rule: MatchRule,
    photos: &[(Option<String>, PathBuf)],
    frames: usize,
    tries: usize,
) -> Vec<SequenceScore> {
    let tries = tries.max(1);
    use attendance_face::vote::FrameOutcome;
    // Each photo's frames, matched once (with their embeddings, for fusion); the
    // decisions are replayed over them per setting.
    let replays: Vec<Replay> = photos
        .iter()
        .enumerate()
        .filter_map(|(i, (truth, path))| {
            let bytes = std::fs::read(path).ok()?;
            let photo = attendance_face::decode::decode(&bytes, &pipeline.limits).ok()?;
            // The first window's frames are the same whatever `tries` is.
            let frames = attendance_face::jitter::frames(&photo, frames * tries, i as u64)
                .iter()
                .map(|f| match pipeline.analyse(f, Framing::Unguided).verdict {
                    Err(r) => (FrameOutcome::Rejected(r), None),
                    Ok(a) => {
                        let e = pipeline.embedder().embed(&a.crop);
                        let nearest = gallery.nearest(&e);
                        let outcome = FrameOutcome::Matched {
                            nearest: nearest.as_ref().map(|n| n.distance),
                            decision: rule.decide(nearest),
                        };
                        (outcome, Some(e))
                    }
                })
                .unzip();
            Some(Replay {
                truth: truth.as_deref(),
                outcomes: frames.0,
                embeddings: frames.1,
            })
        })
        .collect();
    let ways = [1, 2, 3].map(Way::Votes).into_iter().chain([Way::Fused]);
    let settings = ways.flat_map(|way| {
        let more = (tries > 1).then_some((way, tries));
        std::iter::once((way, 1)).chain(more)
    });
    settings
        .map(|(way, tries)| {
            let (mut ng, mut ni, mut right, mut misid, mut far, mut used) = (0, 0, 0, 0, 0, 0);
            for r in &replays {
                let (mut who, mut n) = (None, 0);
                for w in 0..tries {
                    let at = (w * frames).min(r.outcomes.len())
                        ..((w + 1) * frames).min(r.outcomes.len());
                    let (k, found) = decide(
                        way,
                        &r.outcomes[at.clone()],
                        &r.embeddings[at],
                        gallery,
                        rule,
                    );
                    n += k;
                    if found.is_some() {
                        who = found;
                        break;
                    }
                }
                match r.truth {
                    Some(t) => {
                        ng += 1;
                        match who.as_deref() {
                            Some(w) if w == t => {
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
                votes: match way {
                    Way::Votes(v) => v,
                    Way::Fused => 0,
                },
                fused: way == Way::Fused,
                tries,
                tar: rate(right, ng),
                misid: rate(misid, ng),
                far: rate(far, ni),
                frames_to_decide: rate(used, right),
            }
        })
        .collect()
}

/// One probe photo replayed: its frames' outcomes and embeddings (None: refused).
struct Replay<'a> {
    truth: Option<&'a str>,
    outcomes: Vec<attendance_face::vote::FrameOutcome>,
    embeddings: Vec<Option<Embedding>>,
}

/// How a window of frames is decided.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Way {
    /// MODE_A's vote: frames in order until this many agree.
    Votes(usize),
    /// The mean of the window's usable embeddings, decided once at the window's end.
    Fused,
}

/// A window's decision: the frames it took, and who was recognised.
fn decide(
    way: Way,
    outcomes: &[attendance_face::vote::FrameOutcome],
    embeddings: &[Option<Embedding>],
    gallery: &Gallery,
    rule: MatchRule,
) -> (usize, Option<String>) {
    use attendance_face::vote::{self, Verdict};
    match way {
        Way::Votes(votes) => {
            // MODE_A stops watching once someone has the votes.
            let k = (1..=outcomes.len())
                .find(|&k| vote::decided(&outcomes[..k], votes))
                .unwrap_or(outcomes.len());
            match vote::tally(&outcomes[..k], votes) {
                Verdict::Recognised { employee_id, .. } => (k, Some(employee_id)),
                _ => (k, None),
            }
        }
        Way::Fused => {
            let usable: Vec<&Embedding> = embeddings.iter().flatten().collect();
            let Some(first) = usable.first() else {
                return (outcomes.len(), None);
            };
            let mut mean = vec![0.0f32; first.0.len()];
            for e in &usable {
                mean.iter_mut()
                    .zip(&e.0)
                    .for_each(|(m, x)| *m += x / usable.len() as f32);
            }
            match rule.decide(gallery.nearest(&Embedding(mean))) {
                Decision::Match { employee_id, .. } => (outcomes.len(), Some(employee_id)),
                Decision::Unknown { .. } => (outcomes.len(), None),
            }
        }
    }
}
