//! 1:1 measured: every probe claiming its own id and everyone else's.

use attendance_face::{Decision, Gallery, MatchRule};

use crate::Outcome;

/// The 1:1 tallies behind the `verify_*` keys.
pub(crate) struct VerifyScores {
    pub(crate) genuine_accepted: usize,
    pub(crate) impostor_attempts: usize,
    pub(crate) false_accepts: usize,
    /// Strangers accepted when claiming the person nearest to them.
    pub(crate) nearest_accepted: usize,
}

/// Every probe that reached matching, as 1:1 claims: its own id (genuine) and everyone
/// else's (zero-effort impostors), decided by `rule.verify`.
pub(crate) fn verify_scores(
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
