//! 1:N search over every enrolled template, with the neighbourhoods the decision rule
//! (`rule.rs`) weighs.
//!
//! Templates live in one contiguous row-major matrix so a search is a single linear pass
//! over memory (100k templates of 128-512 floats stay within a few ms on one core).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::cohort::Cohort;
use super::embed::{Embedder, Embedding};
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

/// The `who` of a cohort face in a neighbour list (never an enrolled person's index).
const COHORT: u32 = u32::MAX;

/// All templates of one embedder, with the employee each belongs to.
#[derive(Debug, Default)]
pub struct Gallery {
    dim: usize,
    rows: Vec<f32>,
    norms: Vec<f32>,
    owners: Vec<u32>,
    people: Vec<String>,
    /// Faces never enrolled that neighbourhoods are also measured against (`cohort.rs`),
    /// with their squared norms.
    cohort: Option<Arc<Cohort>>,
    cohort_norms: Vec<f32>,
    /// Per cohort face, the enrolled person it is taken for: set aside while they are
    /// enrolled.
    shadowed: Vec<Option<u32>>,
    /// Match crowding of the people matched since the last change (searches share the
    /// gallery behind a read lock, hence the mutex).
    crowding: Mutex<HashMap<u32, Option<f32>>>,
}

impl Gallery {
    /// A gallery whose neighbourhoods are its own people's alone.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            ..Self::default()
        }
    }

    /// A gallery whose neighbourhoods also count `cohort`'s faces.
    pub fn with_cohort(dim: usize, cohort: Arc<Cohort>) -> Result<Self, DimensionMismatch> {
        if cohort.dim() != dim && !cohort.is_empty() {
            return Err(DimensionMismatch {
                got: cohort.dim(),
                want: dim,
            });
        }
        Ok(Self {
            cohort_norms: cohort.faces().map(|f| dot(f, f)).collect(),
            shadowed: vec![None; cohort.len()],
            cohort: Some(cohort),
            ..Self::new(dim)
        })
    }

    /// An empty gallery for `embedder`'s templates, with its cohort if it ships one.
    pub fn for_embedder(embedder: &dyn Embedder) -> Self {
        let dim = embedder.dim();
        embedder
            .cohort()
            .and_then(|c| Self::with_cohort(dim, c).ok())
            .unwrap_or_else(|| Self::new(dim))
    }

    /// An empty gallery of the same dimension and cohort.
    pub fn empty_like(&self) -> Self {
        match &self.cohort {
            Some(c) => Self {
                cohort_norms: self.cohort_norms.clone(),
                shadowed: vec![None; c.len()],
                cohort: Some(c.clone()),
                ..Self::new(self.dim)
            },
            None => Self::new(self.dim),
        }
    }

    /// Cohort faces counted in neighbourhoods now (those of enrolled people set aside).
    pub fn cohort_in_use(&self) -> usize {
        self.shadowed.iter().filter(|s| s.is_none()).count()
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
        let norm = dot(e.as_slice(), e.as_slice());
        let cohort = self.cohort.as_deref();
        shadow(
            &mut self.shadowed,
            cohort,
            &self.cohort_norms,
            e.as_slice(),
            norm,
            owner,
        );
        self.rows.extend_from_slice(e.as_slice());
        self.norms.push(norm);
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
        // Their cohort look-alikes count again unless somebody else is one: a pass of
        // every template over the cohort, only when they had any (rarely: a cohort face
        // is set aside only for its own person).
        let mut freed = false;
        for s in self.shadowed.iter_mut().filter(|s| **s == Some(owner)) {
            (*s, freed) = (None, true);
        }
        if freed {
            for i in 0..self.owners.len() {
                let (row, n) = (&self.rows[i * dim..(i + 1) * dim], self.norms[i]);
                let o = self.owners[i];
                shadow(
                    &mut self.shadowed,
                    self.cohort.as_deref(),
                    &self.cohort_norms,
                    row,
                    n,
                    o,
                );
            }
        }
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
        let mut near = ranked.get(1..).unwrap_or_default().to_vec();
        self.offer_cohort(&mut near, &[(p, dot(p, p))]);
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
            probe_crowding: mean(near.into_iter().map(|(w, d2)| (w, d2.sqrt())).collect()),
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

    /// Offers every cohort face in use to a neighbour list of squared distances (each at
    /// its distance from the nearest of `probes`).
    fn offer_cohort(&self, list: &mut Vec<(u32, f32)>, probes: &[(&[f32], f32)]) {
        let Some(cohort) = &self.cohort else { return };
        for ((face, &n), s) in cohort.faces().zip(&self.cohort_norms).zip(&self.shadowed) {
            if s.is_none() {
                let d2 = probes
                    .iter()
                    .map(|&(v, vn)| squared_distance(v, vn, face, n))
                    .fold(f32::INFINITY, f32::min);
                offer(list, NEIGHBOURS, COHORT, d2);
            }
        }
    }

    /// A person's nearest other people and cohort faces (at most NEIGHBOURS, closest first), as (person,
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
        self.offer_cohort(&mut found, &own);
        found.into_iter().map(|(w, d2)| (w, d2.sqrt())).collect()
    }
}

/// Marks the cohort faces within the cohort's same-person distance of a template as
/// `owner`'s (a free function: it borrows the gallery's fields apart).
fn shadow(
    shadowed: &mut [Option<u32>],
    cohort: Option<&Cohort>,
    norms: &[f32],
    row: &[f32],
    norm: f32,
    owner: u32,
) {
    let Some(cohort) = cohort else { return };
    let limit = cohort.same_person() * cohort.same_person();
    for ((face, &n), s) in cohort.faces().zip(norms).zip(shadowed) {
        if s.is_none() && squared_distance(row, norm, face, n) <= limit {
            *s = Some(owner);
        }
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
mod tests;
