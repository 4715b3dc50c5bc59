//! Which camera frames an enrolment from the camera keeps: faces that passed the gates,
//! of the one person who was in front of the camera most of the time (a colleague
//! passing by, even first, is not enrolled), each different enough from those kept to
//! add something (a person standing still gives near-identical frames; a slight turn of
//! the head or a change of expression is what a second template is for).

use attendance_face::Embedding;

/// Faces beyond this many in one window add nothing (and bound the pairwise work).
const MAX_CANDIDATES: usize = 64;

/// Collects the window's faces, then picks.
#[derive(Debug)]
pub(super) struct Gather<T> {
    max: usize,
    /// Smallest distance to every kept face for a new one to be kept.
    min_change: f32,
    /// Largest distance between two faces of one person.
    same_person: f32,
    candidates: Vec<(Embedding, T)>,
    /// Faces offered (that passed the gates).
    pub(super) offered: usize,
}

/// What [`Gather::pick`] chose.
#[derive(Debug, PartialEq)]
pub(super) struct Picked<T> {
    pub(super) kept: Vec<T>,
    /// Faces left out as somebody else's.
    pub(super) others: usize,
}

impl<T> Gather<T> {
    pub(super) fn new(max: usize, min_change: f32, same_person: f32) -> Self {
        Self {
            max: max.max(1),
            min_change,
            same_person,
            candidates: Vec::new(),
            offered: 0,
        }
    }

    pub(super) fn offer(&mut self, e: Embedding, item: T) {
        self.offered += 1;
        if self.candidates.len() < MAX_CANDIDATES {
            self.candidates.push((e, item));
        }
    }

    /// The person: the face with the most others within `same_person` (the earliest on
    /// a tie) and those near it. Then, in arrival order, each of theirs that differs by
    /// `min_change` from every face kept so far, up to `max`.
    pub(super) fn pick(self) -> Picked<T> {
        let c = &self.candidates;
        let near = |i: usize, j: usize| c[i].0.distance(&c[j].0) <= self.same_person;
        let Some(anchor) = (0..c.len())
            .rev()
            .max_by_key(|&i| (0..c.len()).filter(|&j| near(i, j)).count())
        else {
            return Picked {
                kept: Vec::new(),
                others: 0,
            };
        };
        let person: Vec<usize> = (0..c.len()).filter(|&j| near(anchor, j)).collect();
        let others = c.len() - person.len();
        let mut kept: Vec<usize> = Vec::new();
        for &j in &person {
            if kept.len() < self.max
                && kept
                    .iter()
                    .all(|&k| c[k].0.distance(&c[j].0) >= self.min_change)
            {
                kept.push(j);
            }
        }
        let mut items: Vec<Option<T>> = self.candidates.into_iter().map(|(_, t)| Some(t)).collect();
        Picked {
            kept: kept.into_iter().filter_map(|k| items[k].take()).collect(),
            others,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(v: &[f32]) -> Embedding {
        Embedding::normalised(v.to_vec())
    }

    #[test]
    fn keeps_differing_faces_of_the_person_in_front_up_to_the_maximum() {
        let mut g = Gather::new(3, 0.05, 0.5);
        // A colleague passes first.
        g.offer(e(&[0.0, 1.0, 0.0]), "b");
        g.offer(e(&[1.0, 0.0, 0.0]), "a");
        // Standing still: the same face again, and again a hair apart.
        g.offer(e(&[1.0, 0.0, 0.0]), "a again");
        g.offer(e(&[1.0, 0.01, 0.0]), "a, a hair apart");
        // A turn of the head, a tilt: different enough, still the same person.
        g.offer(e(&[1.0, 0.2, 0.0]), "a turned");
        g.offer(e(&[1.0, 0.0, 0.2]), "a tilted");
        g.offer(e(&[1.0, -0.2, 0.0]), "a, once too many");
        assert_eq!(g.offered, 7);
        assert_eq!(
            g.pick(),
            Picked {
                kept: vec!["a", "a turned", "a tilted"],
                others: 1
            }
        );
    }

    #[test]
    fn one_still_face_is_one_template_and_none_is_none() {
        let mut g = Gather::new(3, 0.05, 0.5);
        for _ in 0..10 {
            g.offer(e(&[0.3, 0.4, 0.5]), ());
        }
        assert_eq!(g.pick().kept.len(), 1);
        assert_eq!(Gather::<()>::new(3, 0.05, 0.5).pick().kept.len(), 0);
    }
}
