//! 1:N search over every enrolled template, with the neighbourhoods the decision rule
//! (`rule.rs`) weighs.
//!
//! Templates live in one contiguous row-major matrix so a search is a single linear pass
//! over memory (100k templates of 128-512 floats stay within a few ms on one core).

use std::collections::HashMap;
use std::sync::Mutex;

use super::embed::Embedding;
use super::rule::Nearest;

/// Error adding a template of the wrong length.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("template has {got} values, gallery holds {want}")]
pub struct DimensionMismatch {
    pub got: usize,
    pub want: usize,
}

/// How many neighbours make a neighbourhood, on both sides of a match.
const NEIGHBOURS: usize = 3;

/// All templates of one embedder, with the employee each belongs to.
#[derive(Debug, Default)]
pub struct Gallery {
    dim: usize,
    rows: Vec<f32>,
    norms: Vec<f32>,
    owners: Vec<u32>,
    people: Vec<String>,
    /// Match crowding of the people matched since the last change (searches share the
    /// gallery behind a read lock, hence the mutex).
    crowding: Mutex<HashMap<u32, Option<f32>>>,
}

impl Gallery {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            ..Self::default()
        }
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Number of distinct employees with at least one template.
    pub fn people(&self) -> usize {
        let mut seen = vec![false; self.people.len()];
        self.owners.iter().for_each(|&o| seen[o as usize] = true);
        seen.into_iter().filter(|s| *s).count()
    }

    pub fn add(&mut self, employee_id: &str, e: &Embedding) -> Result<(), DimensionMismatch> {
        if e.dim() != self.dim {
            return Err(DimensionMismatch {
                got: e.dim(),
                want: self.dim,
            });
        }
        let owner = match self.people.iter().position(|p| p == employee_id) {
            Some(i) => i,
            None => {
                self.people.push(employee_id.to_owned());
                self.people.len() - 1
            }
        } as u32;
        self.rows.extend_from_slice(e.as_slice());
        self.norms.push(dot(e.as_slice(), e.as_slice()));
        self.owners.push(owner);
        self.crowding_cache().clear();
        Ok(())
    }

    /// Removes every template of an employee.
    pub fn remove(&mut self, employee_id: &str) {
        let Some(owner) = self.people.iter().position(|p| p == employee_id) else {
            return;
        };
        let owner = owner as u32;
        let dim = self.dim;
        let mut keep = 0;
        for i in 0..self.owners.len() {
            if self.owners[i] != owner {
                self.rows.copy_within(i * dim..(i + 1) * dim, keep * dim);
                self.norms[keep] = self.norms[i];
                self.owners[keep] = self.owners[i];
                keep += 1;
            }
        }
        self.rows.truncate(keep * dim);
        self.norms.truncate(keep);
        self.owners.truncate(keep);
        self.crowding_cache().clear();
    }

    /// The nearest template, its owner, the nearest other owners and both sides'
    /// neighbourhoods.
    pub fn nearest(&self, probe: &Embedding) -> Option<Nearest> {
        if probe.dim() != self.dim || self.owners.is_empty() {
            return None;
        }
        // The best person and the next NEIGHBOURS, closest first.
        let mut ranked = Vec::with_capacity(NEIGHBOURS + 1);
        let p = probe.as_slice();
        for (who, d2) in self
            .closest_per_person(&[(p, dot(p, p))])
            .into_iter()
            .enumerate()
        {
            offer(&mut ranked, NEIGHBOURS + 1, who as u32, d2);
        }
        let ranked: Vec<(u32, f32)> = ranked.into_iter().map(|(w, d2)| (w, d2.sqrt())).collect();
        let (&(best, distance), others) = ranked.split_first()?;
        let match_crowding = *self
            .crowding_cache()
            .entry(best)
            .or_insert_with(|| mean(self.neighbours(best)));
        Some(Nearest {
            employee_id: self.people[best as usize].clone(),
            distance,
            runner_up: others.first().map(|&(_, d)| d),
            probe_crowding: mean(others.to_vec()),
            match_crowding,
        })
    }

    /// 1:1: distance from the probe to the claimed person's closest template; None
    /// when they have none (or the probe is of another embedder).
    pub fn distance_to(&self, employee_id: &str, probe: &Embedding) -> Option<f32> {
        let owner = self.people.iter().position(|p| p == employee_id)? as u32;
        if probe.dim() != self.dim {
            return None;
        }
        let p = probe.as_slice();
        let pn = dot(p, p);
        self.rows
            .chunks_exact(self.dim)
            .zip(&self.owners)
            .zip(&self.norms)
            .filter(|((_, o), _)| **o == owner)
            .map(|((row, _), &n)| squared_distance(p, pn, row, n))
            .min_by(f32::total_cmp)
            .map(f32::sqrt)
    }

    /// Every person's distance from the probe (their closest template), in one pass:
    /// what each 1:1 claim of this probe would be compared with (`eval`).
    pub fn distances(&self, probe: &Embedding) -> Vec<(&str, f32)> {
        if probe.dim() != self.dim {
            return Vec::new();
        }
        let p = probe.as_slice();
        self.closest_per_person(&[(p, dot(p, p))])
            .into_iter()
            .enumerate()
            .filter(|(_, d2)| d2.is_finite())
            .map(|(who, d2)| (self.people[who].as_str(), d2.sqrt()))
            .collect()
    }

    fn crowding_cache(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Option<f32>>> {
        // A panic while holding it leaves at worst a missing entry: still usable.
        self.crowding.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// For every person (by index), the *squared* distance from the nearest of `probes`
    /// (vector, its squared norm) to their closest template, in one pass over memory (the
    /// root is taken only for the few kept); infinite for a person without templates.
    fn closest_per_person(&self, probes: &[(&[f32], f32)]) -> Vec<f32> {
        let mut closest = vec![f32::INFINITY; self.people.len()];
        for (i, row) in self.rows.chunks_exact(self.dim).enumerate() {
            let c = &mut closest[self.owners[i] as usize];
            for &(v, vn) in probes {
                *c = c.min(squared_distance(v, vn, row, self.norms[i]));
            }
        }
        closest
    }

    /// A person's nearest other people (at most NEIGHBOURS, closest first), as (person,
    /// distance between their closest templates): one pass with all their templates.
    fn neighbours(&self, person: u32) -> Vec<(u32, f32)> {
        let own: Vec<(&[f32], f32)> = (0..self.owners.len())
            .filter(|&i| self.owners[i] == person)
            .map(|i| (&self.rows[i * self.dim..(i + 1) * self.dim], self.norms[i]))
            .collect();
        let mut found = Vec::with_capacity(NEIGHBOURS);
        for (who, d2) in self.closest_per_person(&own).into_iter().enumerate() {
            if who as u32 != person {
                offer(&mut found, NEIGHBOURS, who as u32, d2);
            }
        }
        found.into_iter().map(|(w, d2)| (w, d2.sqrt())).collect()
    }
}

/// Mean distance of a neighbour list; None when empty.
fn mean(list: Vec<(u32, f32)>) -> Option<f32> {
    let n = list.len();
    (n > 0).then(|| list.iter().map(|&(_, d)| d).sum::<f32>() / n as f32)
}

/// Offers (person, distance) to a closest-first list of at most `limit` (each person is
/// offered once); an infinite distance (no templates) is never taken.
fn offer(list: &mut Vec<(u32, f32)>, limit: usize, who: u32, d: f32) {
    if !d.is_finite() || (list.len() == limit && d >= list[limit - 1].1) {
        return;
    }
    let at = list.partition_point(|&(_, r)| r <= d);
    list.insert(at, (who, d));
    list.truncate(limit);
}

/// |a - b|² from the dot product and both squared norms (rounding can make it a hair
/// negative: clamped).
fn squared_distance(a: &[f32], an: f32, b: &[f32], bn: f32) -> f32 {
    (an + bn - 2.0 * dot(a, b)).max(0.0)
}

/// Dot product in eight independent lanes so the compiler vectorises it on x86 and ARM.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{Decision, MatchRule};

    fn e(v: &[f32]) -> Embedding {
        Embedding::normalised(v.to_vec())
    }

    /// Deterministic unit vectors (a linear congruential generator: no dependency).
    fn vectors(n: usize, dim: usize, mut seed: u64) -> Vec<Embedding> {
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as f32 / (1u64 << 31) as f32 - 0.5
        };
        (0..n)
            .map(|_| e(&(0..dim).map(|_| next()).collect::<Vec<_>>()))
            .collect()
    }

    /// Each person's three nearest people by brute force over the test's own list of
    /// (person, vector), minus the removed: what `neighbours` must find.
    fn assert_neighbours_right(g: &Gallery, all: &[(usize, Embedding)], removed: &[usize]) {
        let live: Vec<&(usize, Embedding)> =
            all.iter().filter(|(p, _)| !removed.contains(p)).collect();
        for person in 0..10 {
            let found = g.neighbours(person as u32);
            if removed.contains(&person) {
                assert!(found.is_empty(), "removed P{person} still has {found:?}");
                continue;
            }
            let mut want: Vec<(usize, f32)> = Vec::new();
            for other in (0..10).filter(|o| *o != person && !removed.contains(o)) {
                let d = live
                    .iter()
                    .filter(|(p, _)| *p == person)
                    .flat_map(|(_, a)| {
                        live.iter()
                            .filter(|(p, _)| *p == other)
                            .map(move |(_, b)| a.distance(b))
                    })
                    .fold(f32::INFINITY, f32::min);
                want.push((other, d));
            }
            want.sort_by(|a, b| a.1.total_cmp(&b.1));
            want.truncate(NEIGHBOURS);
            assert_eq!(found.len(), want.len(), "P{person}");
            // What a search reports (cached since the last change) is the same.
            let (_, own) = live.iter().find(|(p, _)| *p == person).unwrap();
            let n = g.nearest(own).unwrap();
            assert_eq!(n.employee_id, format!("P{person}"));
            let want_mean = want.iter().map(|w| w.1).sum::<f32>() / want.len() as f32;
            assert!(
                (n.match_crowding.unwrap() - want_mean).abs() < 1e-5,
                "P{person}"
            );
            for ((fw, fd), (ww, wd)) in found.iter().zip(&want) {
                assert_eq!(
                    g.people[*fw as usize],
                    format!("P{ww}"),
                    "P{person}: {found:?} vs {want:?}"
                );
                assert!((fd - wd).abs() < 1e-5, "P{person}: {found:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn neighbour_lists_follow_adds_and_removes() {
        let v = vectors(40, 8, 7);
        let mut g = Gallery::new(8);
        // Ten people, several templates each, added interleaved.
        let all: Vec<(usize, Embedding)> = v
            .into_iter()
            .enumerate()
            .map(|(i, x)| (i % 10, x))
            .collect();
        for (p, x) in &all {
            g.add(&format!("P{p}"), x).unwrap();
        }
        assert_neighbours_right(&g, &all, &[]);
        let mut removed = Vec::new();
        for gone in [3, 0, 7] {
            g.remove(&format!("P{gone}"));
            removed.push(gone);
            assert_neighbours_right(&g, &all, &removed);
        }
    }

    #[test]
    fn nearest_reports_both_neighbourhoods() {
        let v = vectors(6, 4, 11);
        let mut g = Gallery::new(4);
        for (i, x) in v.iter().enumerate() {
            g.add(&format!("P{i}"), x).unwrap();
        }
        let probe = &v[2];
        let n = g.nearest(probe).unwrap();
        assert_eq!((n.employee_id.as_str(), n.distance), ("P2", 0.0));
        // The probe's neighbourhood: the next three people; P2's: its three nearest.
        let mut others: Vec<f32> = [0, 1, 3, 4, 5]
            .iter()
            .map(|&i| probe.distance(&v[i]))
            .collect();
        others.sort_by(f32::total_cmp);
        let mean3 = (others[0] + others[1] + others[2]) / 3.0;
        assert!((n.probe_crowding.unwrap() - mean3).abs() < 1e-5);
        assert!((n.match_crowding.unwrap() - mean3).abs() < 1e-5);
        assert!((n.runner_up.unwrap() - others[0]).abs() < 1e-5);
        // One person: nothing to compare with, so no ratio.
        let mut alone = Gallery::new(4);
        alone.add("A", &v[0]).unwrap();
        assert_eq!(alone.nearest(&v[1]).unwrap().neighbour_ratio(), None);
    }

    #[test]
    fn verification_compares_with_the_claimed_person_only() {
        let v = vectors(12, 6, 5);
        let mut g = Gallery::new(6);
        for (i, x) in v.iter().enumerate() {
            g.add(&format!("P{}", i % 4), x).unwrap();
        }
        let probe = e(&[0.3, -0.2, 0.5, 0.1, 0.0, 0.4]);
        let all = g.distances(&probe);
        assert_eq!(all.len(), 4);
        for p in 0..4 {
            let want = (0..12)
                .filter(|i| i % 4 == p)
                .map(|i| probe.distance(&v[i]))
                .fold(f32::INFINITY, f32::min);
            let id = format!("P{p}");
            let got = g.distance_to(&id, &probe).unwrap();
            assert!((got - want).abs() < 1e-5, "{id}: {got} vs {want}");
            assert!(all.iter().any(|(w, d)| *w == id && (d - want).abs() < 1e-5));
        }
        assert_eq!(g.distance_to("nobody", &probe), None);
        let d = g.distance_to("P1", &probe).unwrap();
        let at = |t: f32| MatchRule {
            threshold: 0.0,
            margin: 0.0,
            neighbour_ratio: f32::INFINITY,
            verify_threshold: t,
        };
        // Accepted as the claimed person within the 1:1 threshold, whoever is nearest.
        assert_eq!(
            at(d + 0.01).verify("P1", Some(d)),
            Decision::Match {
                employee_id: "P1".into(),
                distance: d
            }
        );
        assert!(matches!(
            at(d - 0.01).verify("P1", Some(d)),
            Decision::Unknown { .. }
        ));
        assert!(matches!(
            at(2.0).verify("P9", None),
            Decision::Unknown { .. }
        ));
        g.remove("P1");
        assert_eq!(g.distance_to("P1", &probe), None);
    }

    #[test]
    fn nearest_tracks_runner_up_of_another_person() {
        let mut g = Gallery::new(2);
        g.add("A", &e(&[1.0, 0.0])).unwrap();
        g.add("A", &e(&[0.9, 0.1])).unwrap();
        g.add("B", &e(&[0.0, 1.0])).unwrap();
        let n = g.nearest(&e(&[1.0, 0.05])).unwrap();
        assert_eq!(n.employee_id, "A");
        assert!(n.distance < 0.1);
        // Runner-up is B, not A's second template.
        let want = e(&[1.0, 0.05]).distance(&e(&[0.0, 1.0]));
        assert!((n.runner_up.unwrap() - want).abs() < 1e-5);
    }

    #[test]
    fn runner_up_is_right_when_best_changes_hands() {
        let mut g = Gallery::new(2);
        g.add("B", &e(&[0.0, 1.0])).unwrap();
        g.add("A", &e(&[0.7, 0.7])).unwrap();
        g.add("B", &e(&[1.0, 0.0])).unwrap();
        let probe = e(&[1.0, 0.01]);
        let n = g.nearest(&probe).unwrap();
        assert_eq!(n.employee_id, "B");
        assert!((n.runner_up.unwrap() - probe.distance(&e(&[0.7, 0.7]))).abs() < 1e-5);
    }

    #[test]
    fn remove_and_dimension_checks() {
        let mut g = Gallery::new(2);
        g.add("A", &e(&[1.0, 0.0])).unwrap();
        g.add("B", &e(&[0.0, 1.0])).unwrap();
        assert_eq!(
            g.add("C", &e(&[1.0, 0.0, 0.0])),
            Err(DimensionMismatch { got: 3, want: 2 })
        );
        g.remove("A");
        assert_eq!(g.len(), 1);
        assert_eq!(g.people(), 1);
        assert_eq!(g.nearest(&e(&[1.0, 0.0])).unwrap().employee_id, "B");
        assert!(g.nearest(&e(&[1.0, 0.0, 0.0])).is_none());
    }
}
