//! Learning at the door, measured before it is built (`eval --learn`): commercial
//! terminals add a confidently recognised face as one more template of its person, so
//! the gallery follows a face that changes (glasses, a beard, age). Here every probe is
//! a visit, in time order (each identity's photos in protocol order, round by round);
//! a visit the default rule accepts teaches the person it was taken for (whoever it
//! really was: a wrong lesson is exactly the risk) by the terminal's own policy
//! (`attendance_face::learn`: confident, not redundant, at most [`learn::LEARNED`] kept). Reported: tar on each employee's later visits (the second half of
//! their photos) without and with learning, far and misid with it, how many lessons
//! were wrong, and a poisoning attempt: every stranger presents all their photos
//! [`POISON_ROUNDS`] times over, learning on; what their last round lets in is counted.

use std::collections::HashMap;

use attendance_face::learn;
use attendance_face::{Decision, Embedding, Gallery, MatchRule};
use serde::Serialize;

use crate::score::{gallery_of, rate};
use crate::{Outcome, Processed};

/// How many times over a stranger presents all their photos in the poisoning attempt.
pub const POISON_ROUNDS: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LearningScore {
    /// Genuine visits in the second half of each employee's photos.
    pub later_visits: usize,
    pub tar_later_without: f64,
    pub tar_later_with: f64,
    pub far_without: f64,
    pub far_with: f64,
    pub misid_with: f64,
    /// Templates learned, and how many from a visit of somebody else.
    pub learned: usize,
    pub learned_wrong: usize,
    /// The poisoning attempt: strangers' photos (each stranger alone at a door, after
    /// [`POISON_ROUNDS`] - 1 rounds of all their photos) let in in the last round,
    /// without and with learning; more with learning means lessons from them stuck.
    pub poison_photos: usize,
    pub poison_accepted_without: usize,
    pub poison_accepted_with: usize,
}

/// A gallery that may learn.
struct Learner {
    gallery: Gallery,
    /// Per person: the templates they were enrolled with, and the learned ones.
    templates: HashMap<String, (Vec<Embedding>, Vec<Embedding>)>,
    rule: MatchRule,
    learn: bool,
    learned: usize,
    learned_wrong: usize,
}

impl Learner {
    fn new(
        ids: &[Processed],
        distractors: &[(String, Vec<Embedding>)],
        blank: &Gallery,
        rule: MatchRule,
        learn: bool,
    ) -> Self {
        let (gallery, _) = gallery_of(ids, distractors, blank);
        let enrolled = ids
            .iter()
            .filter(|i| i.employee)
            .filter_map(|i| Some((i.name.clone(), i.template.clone()?)));
        let templates = distractors
            .iter()
            .cloned()
            .chain(enrolled)
            .map(|(n, t)| (n, (t, Vec::new())))
            .collect();
        Learner {
            gallery,
            templates,
            rule,
            learn,
            learned: 0,
            learned_wrong: 0,
        }
    }

    /// One visit of `truth` (None: a stranger): whom the door took them for.
    fn visit(&mut self, truth: Option<&str>, probe: &Embedding) -> Option<String> {
        let nearest = self.gallery.nearest(probe);
        let Decision::Match { employee_id, .. } = self.rule.decide(nearest.clone()) else {
            return None;
        };
        if self.learn && learn::confident(&self.rule, &employee_id, nearest) {
            let wrong = truth != Some(employee_id.as_str());
            self.teach(&employee_id, probe, wrong);
        }
        Some(employee_id)
    }

    /// Teaches `who` the probe as the terminal would (`learn::lesson`).
    fn teach(&mut self, who: &str, probe: &Embedding, wrong: bool) {
        let Some((enrolled, learned)) = self.templates.get_mut(who) else {
            return;
        };
        let learn::Lesson::Learn { retire } = learn::lesson(&self.rule, enrolled, learned, probe)
        else {
            return;
        };
        *learned = std::mem::take(learned)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !retire.contains(i))
            .map(|(_, e)| e)
            .collect();
        learned.push(probe.clone());
        self.learned += 1;
        self.learned_wrong += usize::from(wrong);
        self.gallery.remove(who);
        for e in enrolled.iter().chain(learned.iter()) {
            // The embedder's own dimension: cannot mismatch.
            let _ = self.gallery.add(who, e);
        }
    }
}

/// Every identity's probes, round by round: (identity, visit number, outcome).
fn in_time_order(ids: &[Processed]) -> Vec<(&Processed, usize, &Outcome)> {
    let rounds = ids.iter().map(|i| i.probes.len()).max().unwrap_or(0);
    (0..rounds)
        .flat_map(|k| {
            ids.iter()
                .filter_map(move |i| Some((i, k, i.probes.get(k)?)))
        })
        .collect()
}

pub(crate) fn learning(
    ids: &[Processed],
    distractors: &[(String, Vec<Embedding>)],
    blank: &Gallery,
    rule: MatchRule,
) -> LearningScore {
    let visits = in_time_order(ids);
    let run = |learn: bool| {
        let mut door = Learner::new(ids, distractors, blank, rule, learn);
        let (mut later_right, mut later, mut far, mut ni, mut misid, mut ng) = (0, 0, 0, 0, 0, 0);
        for &(id, k, outcome) in &visits {
            if id.employee && id.template.is_none() {
                continue; // an employee who never enrolled: left out, as in `score`
            }
            let truth = id.employee.then_some(id.name.as_str());
            let who = outcome.as_ref().ok().and_then(|e| door.visit(truth, e));
            match truth {
                Some(t) => {
                    ng += 1;
                    misid += usize::from(who.as_deref().is_some_and(|w| w != t));
                    if k >= id.probes.len() / 2 {
                        later += 1;
                        later_right += usize::from(who.as_deref() == Some(t));
                    }
                }
                None => {
                    ni += 1;
                    far += usize::from(who.is_some());
                }
            }
        }
        (
            rate(later_right, later),
            later,
            rate(far, ni),
            rate(misid, ng),
            door.learned,
            door.learned_wrong,
        )
    };
    let (tar_without, later_visits, far_without, _, _, _) = run(false);
    let (tar_with, _, far_with, misid_with, learned, learned_wrong) = run(true);
    let strangers: Vec<&Processed> = ids.iter().filter(|i| !i.employee).collect();
    let poisoned = |learn: bool| {
        strangers
            .iter()
            .map(|s| {
                let mut door = Learner::new(ids, distractors, blank, rule, learn);
                let photos: Vec<&Embedding> = s.probes.iter().flatten().collect();
                for _ in 1..POISON_ROUNDS {
                    photos.iter().for_each(|e| drop(door.visit(None, e)));
                }
                photos
                    .iter()
                    .filter(|e| door.visit(None, e).is_some())
                    .count()
            })
            .sum::<usize>()
    };
    LearningScore {
        later_visits,
        tar_later_without: tar_without,
        tar_later_with: tar_with,
        far_without,
        far_with,
        misid_with,
        learned,
        learned_wrong,
        poison_photos: strangers
            .iter()
            .map(|s| s.probes.iter().flatten().count())
            .sum(),
        poison_accepted_without: poisoned(false),
        poison_accepted_with: poisoned(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::tests::DISTANCE_ONLY;
    use attendance_face::learn::LEARNED;

    fn e(v: &[f32]) -> Embedding {
        Embedding::normalised(v.to_vec())
    }

    /// An employee enrolled facing one way whose face drifts visit by visit (eight
    /// visits, 0.1 rad... 0.66 apart from the enrolment photo), a stranger whose two
    /// photos land near a distractor (0.34 from it, 0.47 apart), and nobody else.
    fn world() -> (Vec<Processed>, Vec<(String, Vec<Embedding>)>) {
        let drift = (1..=8)
            .map(|k| Ok(e(&[1.0, 0.1 * k as f32, 0.0])))
            .collect();
        let ids = vec![
            Processed {
                name: "E".into(),
                employee: true,
                template: Some(vec![e(&[1.0, 0.0, 0.0])]),
                probes: drift,
            },
            Processed {
                name: "S".into(),
                employee: false,
                template: None,
                probes: vec![Ok(e(&[0.0, -0.35, 1.0])), Ok(e(&[0.35, 0.0, 1.0]))],
            },
        ];
        (
            ids,
            vec![("_distractor/D".into(), vec![e(&[0.0, 0.0, 1.0])])],
        )
    }

    #[test]
    fn confident_visits_teach_the_gallery_and_wrong_lessons_are_counted() {
        let (ids, distractors) = world();
        let s = learning(&ids, &distractors, &Gallery::new(3), DISTANCE_ONLY);
        // Later visits: the last four. Without learning only the first of them is
        // within 0.5 of the enrolment photo; with it, each is near the one before.
        assert_eq!(s.later_visits, 4);
        assert_eq!(
            (s.tar_later_without, s.tar_later_with),
            (0.25, 1.0),
            "{s:?}"
        );
        // The stranger is taken for the distractor either way (distance only): both of
        // their visits confidently, so both taught the distractor wrongly.
        assert_eq!((s.far_without, s.far_with), (1.0, 1.0));
        assert_eq!(s.learned_wrong, 2, "{s:?}");
        // The employee's drift taught twice: a visit within half the threshold of a
        // template already held adds nothing (`learn::lesson`).
        assert_eq!(s.learned, 2 + 2);
        assert_eq!((s.poison_photos, s.poison_accepted_without), (2, 2));
    }

    #[test]
    fn a_person_keeps_at_most_the_bound_of_learned_templates() {
        let (ids, distractors) = world();
        let mut door = Learner::new(&ids, &distractors, &Gallery::new(3), DISTANCE_ONLY, true);
        // As many lessons as the bound, in directions around the enrolment photo (0.37
        // from it, at least 0.28 apart), then one almost the same as the first.
        let ring = |k: usize| {
            let a = std::f32::consts::TAU * k as f32 / LEARNED as f32;
            [1.0, 0.4 * a.cos(), 0.4 * a.sin()]
        };
        let mut lessons: Vec<[f32; 3]> = (0..LEARNED).map(ring).collect();
        lessons.push([1.0, 0.41, 0.0]);
        for v in &lessons {
            assert_eq!(door.visit(Some("E"), &e(v)).as_deref(), Some("E"));
        }
        let (enrolled, learned) = &door.templates["E"];
        assert_eq!((enrolled.len(), learned.len()), (1, LEARNED));
        // The gallery holds exactly those, and the distractor.
        assert_eq!(door.gallery.len(), 1 + LEARNED + 1);
        // The redundant pair is kept once; the other directions are all kept.
        let kept = |v: [f32; 3]| learned.iter().any(|l| l.distance(&e(&v)) < 1e-6);
        assert!(lessons[1..LEARNED].iter().all(|v| kept(*v)), "{learned:?}");
        assert!(kept(lessons[0]) != kept(lessons[LEARNED]), "{learned:?}");
    }
}
