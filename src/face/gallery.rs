//! 1:N search over every enrolled template, and the accept/unknown decision.
//!
//! Templates live in one contiguous row-major matrix so a search is a single linear pass
//! over memory (100k templates of 128-512 floats stay within a few ms on one core).

use super::embed::Embedding;

/// Error adding a template of the wrong length.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("template has {got} values, gallery holds {want}")]
pub struct DimensionMismatch {
    pub(crate) got: usize,
    pub(crate) want: usize,
}

/// All templates of one embedder, with the employee each belongs to.
#[derive(Debug, Clone, Default)]
pub struct Gallery {
    dim: usize,
    rows: Vec<f32>,
    norms: Vec<f32>,
    owners: Vec<u32>,
    people: Vec<String>,
}

/// The nearest template's owner, and how close the nearest *other* person came.
#[derive(Debug, Clone, PartialEq)]
pub struct Nearest {
    pub(crate) employee_id: String,
    pub(crate) distance: f32,
    /// Distance to the closest template of a different employee, if there is one.
    pub(crate) runner_up: Option<f32>,
}

/// Accept a match when it is close enough and clearly closer than anyone else.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchRule {
    /// The spec's `TOLERANCE`: largest L2 distance accepted.
    pub threshold: f32,
    /// Smallest gap between the best and the runner-up person: below it the door does
    /// not guess between two look-alikes.
    pub margin: f32,
}

/// Outcome of matching one probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Match {
        employee_id: String,
        distance: f32,
    },
    /// Nobody close enough, or two people too close to call.
    Unknown {
        nearest: Option<Nearest>,
        ambiguous: bool,
    },
}

impl MatchRule {
    /// The configured values where set, else the embedder's calibrated defaults (distances
    /// are on each embedder's own scale, so a default must come from the one in use).
    pub(crate) fn resolve(
        embedder: &dyn super::embed::Embedder,
        tolerance: Option<f32>,
        margin: Option<f32>,
    ) -> MatchRule {
        MatchRule {
            threshold: tolerance.unwrap_or(embedder.default_threshold()),
            margin: margin.unwrap_or(embedder.default_margin()),
        }
    }

    pub(crate) fn decide(&self, nearest: Option<Nearest>) -> Decision {
        match nearest {
            Some(n) if n.distance <= self.threshold => {
                let gap = n.runner_up.map_or(f32::INFINITY, |r| r - n.distance);
                if gap >= self.margin {
                    Decision::Match {
                        employee_id: n.employee_id,
                        distance: n.distance,
                    }
                } else {
                    Decision::Unknown {
                        nearest: Some(n),
                        ambiguous: true,
                    }
                }
            }
            other => Decision::Unknown {
                nearest: other,
                ambiguous: false,
            },
        }
    }
}

impl Gallery {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            ..Self::default()
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.owners.len()
    }

    /// Number of distinct employees with at least one template.
    pub(crate) fn people(&self) -> usize {
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
        Ok(())
    }

    /// Removes every template of an employee.
    pub(crate) fn remove(&mut self, employee_id: &str) {
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
    }

    /// The nearest template, its owner, and the nearest other owner.
    pub fn nearest(&self, probe: &Embedding) -> Option<Nearest> {
        if probe.dim() != self.dim || self.owners.is_empty() {
            return None;
        }
        let p = probe.as_slice();
        let pn = dot(p, p);
        let mut best: Option<(u32, f32)> = None;
        let mut runner: f32 = f32::INFINITY;
        for (i, row) in self.rows.chunks_exact(self.dim).enumerate() {
            let d2 = (pn + self.norms[i] - 2.0 * dot(p, row)).max(0.0);
            let who = self.owners[i];
            match best {
                None => best = Some((who, d2)),
                Some((b, bd)) if who == b => best = Some((b, bd.min(d2))),
                Some((_, bd)) if d2 < bd => {
                    runner = bd;
                    best = Some((who, d2));
                }
                Some(_) => runner = runner.min(d2),
            }
        }
        best.map(|(who, d2)| Nearest {
            employee_id: self.people[who as usize].clone(),
            distance: d2.sqrt(),
            runner_up: runner.is_finite().then(|| runner.sqrt()),
        })
    }
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

    fn e(v: &[f32]) -> Embedding {
        Embedding::normalised(v.to_vec())
    }

    fn rule(threshold: f32, margin: f32) -> MatchRule {
        MatchRule { threshold, margin }
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
    fn decide_threshold_and_margin() {
        let n = |d: f32, r: Option<f32>| {
            Some(Nearest {
                employee_id: "A".into(),
                distance: d,
                runner_up: r,
            })
        };
        assert!(matches!(
            rule(0.5, 0.05).decide(n(0.3, Some(0.6))),
            Decision::Match { .. }
        ));
        assert!(matches!(
            rule(0.5, 0.05).decide(n(0.3, Some(0.32))),
            Decision::Unknown {
                ambiguous: true,
                ..
            }
        ));
        assert!(matches!(
            rule(0.5, 0.05).decide(n(0.55, None)),
            Decision::Unknown {
                ambiguous: false,
                ..
            }
        ));
        assert!(matches!(
            rule(0.5, 0.05).decide(None),
            Decision::Unknown { nearest: None, .. }
        ));
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
