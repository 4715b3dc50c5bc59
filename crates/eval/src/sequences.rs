//! MODE_A measured: probes replayed as jittered camera frames and decided by the vote.

use std::path::PathBuf;

use attendance_face::{FacePipeline, Framing, Gallery, MatchRule};

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
    use attendance_face::vote::{self, FrameOutcome, Verdict};
    // Each photo's frames, matched once; the vote is replayed over them per setting.
    let replays: Vec<(Option<&str>, Vec<FrameOutcome>)> = photos
        .iter()
        .enumerate()
        .filter_map(|(i, (truth, path))| {
            let bytes = std::fs::read(path).ok()?;
            let photo = attendance_face::decode::decode(&bytes, &pipeline.limits).ok()?;
            // The first window's frames are the same whatever `tries` is.
            let outcomes = attendance_face::jitter::frames(&photo, frames * tries, i as u64)
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
    let settings = (1..=3).flat_map(|votes| {
        let more = (tries > 1).then_some((votes, tries));
        std::iter::once((votes, 1)).chain(more)
    });
    settings
        .map(|(votes, tries)| {
            let (mut ng, mut ni, mut right, mut misid, mut far, mut used) = (0, 0, 0, 0, 0, 0);
            for (truth, outcomes) in &replays {
                let (mut who, mut n) = (None, 0);
                for window in outcomes.chunks(frames).take(tries) {
                    // MODE_A stops watching once someone has the votes.
                    let k = (1..=window.len())
                        .find(|&k| vote::decided(&window[..k], votes))
                        .unwrap_or(window.len());
                    n += k;
                    if let Verdict::Recognised { employee_id, .. } =
                        vote::tally(&window[..k], votes)
                    {
                        who = Some(employee_id);
                        break;
                    }
                }
                let who = who.as_deref();
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
                tries,
                tar: rate(right, ng),
                misid: rate(misid, ng),
                far: rate(far, ni),
                frames_to_decide: rate(used, right),
            }
        })
        .collect()
}
