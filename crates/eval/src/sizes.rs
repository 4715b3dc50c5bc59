//! Figures at every gallery size, as distributions: one dev/held-out split hides how
//! much a rule's errors depend on who happens to be enrolled (a 45-person gallery once
//! let 1.1 % of strangers in where dev's 30 let none). For each size, `repeats` random
//! galleries are drawn (seeded, so a run can be repeated) and the protocol is scored on
//! each; the mean and the worst of each rate are reported.
//!
//! A gallery of `size` people holds as many of the dataset's enrolled employees as fit
//! (drawn at random when fewer than all) and distractors drawn at random for the rest.
//! An employee left out of a gallery is a stranger to it: their probes are impostors, as
//! they would be at a door that never enrolled them.

use attendance_face::{Embedding, Gallery, MatchRule};
use serde::Serialize;

use crate::Processed;
use crate::score::score;

/// The rates over `galleries` random galleries of one size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeScore {
    /// People asked for; `gallery` is what the dataset and distractors could fill.
    pub size: usize,
    pub gallery: usize,
    pub galleries: usize,
    /// Mean probes per gallery.
    pub genuine_probes: f64,
    pub impostor_probes: f64,
    pub tar_mean: f64,
    /// The lowest tar of any gallery.
    pub tar_worst: f64,
    pub far_mean: f64,
    /// The highest far of any gallery.
    pub far_worst: f64,
    pub misid_mean: f64,
    pub misid_worst: f64,
}

/// Scores `repeats` random galleries of each of `sizes` people.
pub(crate) fn by_gallery_size(
    identities: &[Processed],
    distractors: &[(String, Vec<Embedding>)],
    blank: &Gallery,
    rule: MatchRule,
    sizes: &[usize],
    repeats: usize,
    seed: u64,
) -> Vec<SizeScore> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let employees: Vec<usize> = (0..identities.len())
        .filter(|&i| identities[i].employee && identities[i].template.is_some())
        .collect();
    sizes
        .iter()
        .map(|&size| {
            let runs: Vec<_> = (0..repeats.max(1))
                .map(|_| {
                    let mut drawn = employees.clone();
                    rng.shuffle(&mut drawn);
                    drawn.truncate(size);
                    let mut pool: Vec<&(String, Vec<Embedding>)> = distractors.iter().collect();
                    rng.shuffle(&mut pool);
                    pool.truncate(size - drawn.len());
                    let pool: Vec<_> = pool.into_iter().cloned().collect();
                    let ids: Vec<Processed> = identities
                        .iter()
                        .enumerate()
                        .map(|(i, id)| match id.employee && !drawn.contains(&i) {
                            // Not enrolled here: a stranger to this gallery.
                            true => Processed {
                                employee: false,
                                template: None,
                                ..id.clone()
                            },
                            false => id.clone(),
                        })
                        .collect();
                    score(&ids, &pool, blank, rule)
                })
                .collect();
            let n = runs.len() as f64;
            let mean = |f: fn(&crate::EvalReport) -> f64| runs.iter().map(f).sum::<f64>() / n;
            let fold = |f: fn(&crate::EvalReport) -> f64, worst: fn(f64, f64) -> f64| {
                runs.iter().map(f).reduce(worst).unwrap_or(0.0)
            };
            SizeScore {
                size,
                gallery: runs.first().map_or(0, |r| r.gallery),
                galleries: runs.len(),
                genuine_probes: mean(|r| r.genuine_probes as f64),
                impostor_probes: mean(|r| r.impostor_probes as f64),
                tar_mean: mean(|r| r.tar),
                tar_worst: fold(|r| r.tar, f64::min),
                far_mean: mean(|r| r.far),
                far_worst: fold(|r| r.far, f64::max),
                misid_mean: mean(|r| r.misid),
                misid_worst: fold(|r| r.misid, f64::max),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;
    use crate::score::tests::DISTANCE_ONLY;

    fn e(v: &[f32]) -> Embedding {
        Embedding::normalised(v.to_vec())
    }

    /// Employees E0..E3 on four axes, each probed once near their template; one
    /// stranger probed once near E0; distractors far from everyone but one near the
    /// stranger.
    fn world() -> (Vec<Processed>, Vec<(String, Vec<Embedding>)>) {
        let axis = |k: usize| {
            let mut v = vec![0.0; 6];
            v[k] = 1.0;
            v
        };
        let mut ids: Vec<Processed> = (0..4)
            .map(|k| Processed {
                name: format!("E{k}"),
                employee: true,
                template: Some(vec![e(&axis(k))]),
                probes: vec![Ok::<_, attendance_core::reason::Reason>(e(&{
                    let mut v = axis(k);
                    v[5] = 0.1;
                    v
                })) as Outcome],
            })
            .collect();
        ids.push(Processed {
            name: "S".into(),
            employee: false,
            template: None,
            probes: vec![Ok(e(&[0.9, 0.0, 0.0, 0.0, 0.3, 0.0]))],
        });
        let distractors = vec![
            (
                "_distractor/near".into(),
                vec![e(&[0.0, 0.0, 0.0, 0.0, 1.0, 0.0])],
            ),
            (
                "_distractor/far".into(),
                vec![e(&[0.0, 0.0, 0.0, 0.0, 0.0, -1.0])],
            ),
        ];
        (ids, distractors)
    }

    #[test]
    fn galleries_are_filled_with_employees_first_then_distractors() {
        let (ids, distractors) = world();
        let s = by_gallery_size(
            &ids,
            &distractors,
            &Gallery::new(6),
            DISTANCE_ONLY,
            &[2, 4, 6, 9],
            10,
            7,
        );
        let got: Vec<(usize, usize, f64)> = s
            .iter()
            .map(|s| (s.size, s.gallery, s.genuine_probes))
            .collect();
        // 2 of the 4 employees (the other two probe as strangers), all 4, all 4 + both
        // distractors, and no more than there are.
        assert_eq!(got, [(2, 2, 2.0), (4, 4, 4.0), (6, 6, 4.0), (9, 6, 4.0)]);
        assert_eq!(s[0].impostor_probes, 3.0);
        assert!(s.iter().all(|s| s.galleries == 10));
    }

    #[test]
    fn the_worst_gallery_is_reported_beside_the_mean() {
        let (ids, distractors) = world();
        // The stranger is let in only by a gallery that holds E0 (their look-alike):
        // half the 2-person galleries, roughly.
        let s = by_gallery_size(
            &ids,
            &distractors,
            &Gallery::new(6),
            DISTANCE_ONLY,
            &[2],
            40,
            1,
        )[0]
        .clone();
        assert_eq!(s.far_worst, 1.0 / 3.0, "{s:?}");
        assert!(s.far_mean > 0.0 && s.far_mean < s.far_worst, "{s:?}");
        assert_eq!((s.tar_worst, s.tar_mean), (1.0, 1.0), "{s:?}");
    }

    #[test]
    fn a_seed_gives_the_same_galleries() {
        let (ids, distractors) = world();
        let run = |seed| {
            by_gallery_size(
                &ids,
                &distractors,
                &Gallery::new(6),
                DISTANCE_ONLY,
                &[2, 5],
                8,
                seed,
            )
        };
        assert_eq!(run(3), run(3));
    }
}
