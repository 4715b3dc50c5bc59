//! Learning at the door, the policy: when a confident recognition becomes one more
//! template of its person, and which learned template it replaces. Pure, so the
//! terminal does exactly what `eval --learn` measured.
//!
//! A face changes (glasses, a beard, a haircut, age) while its enrolment photo does not;
//! commercial terminals follow it by keeping recent confident matches as templates. The
//! risk is a wrong lesson: a look-alike taught as somebody would be let in for good. So
//! the bar to learn is above acceptance ([`MatchRule::confident`]), the lessons per
//! person are bounded ([`LEARNED`], the most redundant replaced, the enrolment photos
//! never), and a face the gallery already holds (nearly the same as one of the person's
//! templates) is not written again — that would wear the card for nothing.

use crate::{Decision, Embedding, MatchRule, Nearest};

/// Learned templates kept per person (their enrolment templates are never replaced).
/// The smallest bound past which `eval --learn` gains nothing (dev + 1,000 distractors,
/// tar on later visits: 4 → 0.929, 6 → 0.941, 8 → 0.941; far 0 and no wrong lesson at
/// each): a bigger one only costs storage, roster traffic and search time.
pub const LEARNED: usize = 6;

/// A probe this close to one of the person's templates, as a fraction of the match
/// threshold, adds nothing the gallery lacks.
const REDUNDANT: f32 = 0.5;

/// What a confident recognition teaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lesson {
    /// Not confident enough, or the face adds nothing: nothing is written.
    None,
    /// Keep the probe as a learned template, retiring the learned ones at these indices
    /// (of the `learned` given) to stay within [`LEARNED`]: one at the bound, more when
    /// two doors learned for the same person at the same moment and the site's copy
    /// went past it.
    Learn { retire: Vec<usize> },
}

/// Whether `probe`, which `rule` matched to `employee_id` with `nearest`, may teach
/// them: it must also pass the confident rule for the same person.
pub fn confident(rule: &MatchRule, employee_id: &str, nearest: Option<Nearest>) -> bool {
    matches!(rule.confident().decide(nearest),
        Decision::Match { employee_id: e, .. } if e == employee_id)
}

/// What a confident probe of a person with these `enrolled` and `learned` templates
/// teaches.
pub fn lesson(
    rule: &MatchRule,
    enrolled: &[Embedding],
    learned: &[Embedding],
    probe: &Embedding,
) -> Lesson {
    let closest = enrolled
        .iter()
        .chain(learned)
        .map(|t| t.distance(probe))
        .fold(f32::INFINITY, f32::min);
    if closest < rule.threshold * REDUNDANT {
        return Lesson::None;
    }
    // Past the bound, the most redundant learned template goes, one at a time: the one
    // nearest to another of the person's templates still kept, the probe included (it
    // will be one of them).
    let mut retire: Vec<usize> = Vec::new();
    while learned.len() - retire.len() >= LEARNED {
        let kept = |i: usize| !retire.contains(&i);
        let nearest_other = |i: usize| {
            enrolled
                .iter()
                .chain(std::iter::once(probe))
                .chain(
                    learned
                        .iter()
                        .enumerate()
                        .filter(|&(j, _)| j != i && kept(j))
                        .map(|(_, e)| e),
                )
                .map(|e| e.distance(&learned[i]))
                .fold(f32::INFINITY, f32::min)
        };
        let Some(most) = (0..learned.len())
            .filter(|&i| kept(i))
            .min_by(|&a, &b| nearest_other(a).total_cmp(&nearest_other(b)))
        else {
            break;
        };
        retire.push(most);
    }
    Lesson::Learn { retire }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(x: f32, y: f32) -> Embedding {
        Embedding(vec![x, y])
    }

    fn rule() -> MatchRule {
        MatchRule {
            threshold: 0.5,
            margin: 0.01,
            neighbour_ratio: 1.0,
            verify_threshold: 0.5,
        }
    }

    fn nearest(id: &str, distance: f32, runner_up: f32) -> Option<Nearest> {
        Some(Nearest {
            employee_id: id.into(),
            distance,
            runner_up: Some(runner_up),
            probe_crowding: None,
            match_crowding: None,
        })
    }

    #[test]
    fn only_a_match_well_inside_the_rule_for_the_same_person_is_confident() {
        let r = rule();
        assert!(confident(&r, "A", nearest("A", 0.30, 0.9)));
        // Accepted (0.48 < 0.5) but not a tenth inside the threshold.
        assert!(!confident(&r, "A", nearest("A", 0.48, 0.9)));
        // Accepted, but the runner-up within four margins.
        assert!(!confident(&r, "A", nearest("A", 0.30, 0.33)));
        assert!(!confident(&r, "B", nearest("A", 0.30, 0.9)));
        assert!(!confident(&r, "A", None));
    }

    #[test]
    fn a_face_the_gallery_holds_teaches_nothing_and_a_new_one_is_kept() {
        let r = rule();
        let enrolled = [e(0.0, 0.0)];
        assert_eq!(lesson(&r, &enrolled, &[], &e(0.2, 0.0)), Lesson::None);
        assert_eq!(
            lesson(&r, &enrolled, &[], &e(0.3, 0.0)),
            Lesson::Learn { retire: vec![] }
        );
        // Near a learned one counts too.
        assert_eq!(
            lesson(&r, &enrolled, &[e(0.4, 0.0)], &e(0.4, 0.1)),
            Lesson::None
        );
    }

    #[test]
    fn a_person_past_the_bound_is_brought_back_within_it() {
        // Two past the bound (two doors learned at once): three go, the new face makes
        // the bound.
        let r = rule();
        let over = LEARNED + 2;
        let learned: Vec<Embedding> = (0..over).map(|k| e(k as f32, 5.0)).collect();
        let Lesson::Learn { retire } = lesson(&r, &[e(0.0, 0.0)], &learned, &e(99.0, 99.0)) else {
            panic!("a new face teaches");
        };
        assert_eq!(retire.len(), 3, "{retire:?}");
        assert!(retire.iter().all(|&i| i < over) && retire.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn past_the_bound_the_most_redundant_learned_template_is_retired() {
        let r = rule();
        let enrolled = [e(0.0, 0.0)];
        // Learned 1 sits close to the enrolment photo: it is the redundant one. The rest
        // of the bound is far from everything.
        let mut learned = vec![e(0.0, 1.0), e(0.27, 0.0)];
        learned.extend((2..LEARNED).map(|k| e(10.0 * k as f32, 10.0)));
        assert_eq!(
            lesson(&r, &enrolled, &learned, &e(0.0, -1.0)),
            Lesson::Learn { retire: vec![1] }
        );
        // The probe counts as one of theirs: the learned face it nearly repeats goes.
        assert_eq!(
            lesson(&r, &enrolled, &learned, &e(0.0, 1.26)),
            Lesson::Learn { retire: vec![0] }
        );
    }
}
