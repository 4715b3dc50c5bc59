//! MODE_A measured: probes replayed as jittered camera frames and decided by the vote.

use std::path::PathBuf;

use attendance_face::{FacePipeline, Framing, Gallery, MatchRule};

use crate::score::rate;

use crate::report::SequenceScore;

/// Every probe photo replayed as `frames` jittered camera frames (`jitter`), each
/// analysed as a camera frame would be, matched, and decided as MODE_A does: frames in
/// order until `votes` agree (`vote`), for 1, 2 and 3 votes.
pub(crate) fn sequences(
    pipeline: &FacePipeline,
    gallery: &Gallery,
    rule: MatchRule,
    photos: &[(Option<String>, PathBuf)],
    frames: usize,
) -> Vec<SequenceScore> {
    use attendance_face::vote::{self, FrameOutcome, Verdict};
    // Each photo's frames, matched once; the vote is replayed over them per setting.
    let replays: Vec<(Option<&str>, Vec<FrameOutcome>)> = photos
        .iter()
        .enumerate()
        .filter_map(|(i, (truth, path))| {
            let bytes = std::fs::read(path).ok()?;
            let photo = attendance_face::decode::decode(&bytes, &pipeline.limits).ok()?;
            let outcomes = attendance_face::jitter::frames(&photo, frames, i as u64)
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
