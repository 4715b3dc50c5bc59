//! The protocol's matching and metrics over the processed identities.

use std::collections::BTreeMap;

use attendance_core::reason::Reason;
use attendance_face::{Decision, Embedding, Gallery, MatchRule};

use crate::verify::verify_scores;

use crate::report::EvalReport;
use crate::{Outcome, Processed};

/// The protocol's matching and metrics over processed identities.
/// `distractors` are extra people's templates: in the gallery, never probed.
pub(crate) fn score(
    identities: &[Processed],
    distractors: &[(String, Vec<Embedding>)],
    blank: &Gallery,
    rule: MatchRule,
) -> EvalReport {
    let (gallery, enrolled) = gallery_of(identities, distractors, blank);
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
        cohort: gallery.cohort_in_use(),
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
        sizes: Vec::new(),
        gallery_seed: None,
        learning: None,
        verify_tolerance: rule.verify_threshold,
        verify_tar: rate(verify.genuine_accepted, ng),
        verify_far: rate(verify.false_accepts, verify.impostor_attempts),
        verify_impostor_attempts: verify.impostor_attempts,
        verify_far_nearest: rate(verify.nearest_accepted, ni),
        fail_reasons,
    }
}

/// The gallery of the employees who enrolled (an employee whose images all fail to enrol
/// is left out) and the distractors, in an empty gallery like `blank` (its dimension and
/// cohort); and how many employees are in it.
pub(crate) fn gallery_of(
    identities: &[Processed],
    distractors: &[(String, Vec<Embedding>)],
    blank: &Gallery,
) -> (Gallery, usize) {
    let mut gallery = blank.empty_like();
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

/// k of n as a share; 0 when there were none.
pub(crate) fn rate(k: usize, n: usize) -> f64 {
    if n == 0 { 0.0 } else { k as f64 / n as f64 }
}

/// Linear-interpolated quantile (numpy's default), or None for no values.
pub(crate) fn quantile(values: &mut [f32], q: f64) -> Option<f32> {
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
pub(crate) mod tests {
    use super::*;

    /// Accept within 0.5, nothing else checked.
    pub(crate) const DISTANCE_ONLY: MatchRule = MatchRule {
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
        let r = score(&ids, &[], &Gallery::new(3), rule);
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
            &Gallery::new(3),
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
        let r = score(
            &ids,
            &[("_distractor/D".into(), vec![distractor])],
            &Gallery::new(3),
            rule,
        );
        assert_eq!((r.gallery, r.distractors_enrolled, r.enrolled), (2, 1, 1));
        assert_eq!((r.genuine_probes, r.impostor_probes), (1, 2));
        assert_eq!((r.tar, r.misid, r.rank1), (0.0, 1.0, 0.0));
        assert_eq!(r.far, 0.5);
        let without = score(&ids, &[], &Gallery::new(3), rule);
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
