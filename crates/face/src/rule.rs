//! The accept/unknown decision on a search's result: close enough, clearly closer than
//! anyone else, and standing out from its neighbourhood. Pure: a rule and a `Nearest` in,
//! a `Decision` out.
//!
//! Why a fixed distance threshold is not enough: every enrolled person is one more
//! chance for a stranger to land close to somebody. On dev + 1,000 distractors the
//! distance that lets 1 % of strangers through falls from 0.545 (30 people) to 0.434
//! (1,018 people). So a match must also stand out from its neighbourhood: the nearest
//! distance is compared with how far the *next* people are from the probe and how far the
//! matched person's own nearest neighbours in the gallery are (both sides, so a template
//! in a crowded region of face space, which attracts strangers, is held to a stricter
//! standard). That ratio stays put as the gallery grows (docs/book, "A company-sized
//! gallery"). The matched person's neighbourhood is found when they are first matched
//! (one more pass over the gallery) and kept until the gallery changes: keeping every
//! person's neighbours up to date would make loading a gallery quadratic in its size,
//! and finding them at every search would cost a pass per template of theirs (nine for
//! a HOG enrolment) on every frame.

/// The nearest template's owner, and how close the nearest *other* people came.
#[derive(Debug, Clone, PartialEq)]
pub struct Nearest {
    pub employee_id: String,
    pub distance: f32,
    /// Distance to the closest template of a different employee, if there is one.
    pub runner_up: Option<f32>,
    /// The probe's neighbourhood: mean distance to the next (up to three) people.
    pub probe_crowding: Option<f32>,
    /// The matched person's neighbourhood: mean distance from their templates to their
    /// (up to three) nearest other people in the gallery.
    pub match_crowding: Option<f32>,
}

impl Nearest {
    /// Nearest distance over the geometric mean of both neighbourhoods: near 1 for a
    /// stranger who is merely closest among many, well below for a real match. None when
    /// the gallery holds one person (nothing to compare with).
    pub(crate) fn neighbour_ratio(&self) -> Option<f32> {
        let (p, m) = (self.probe_crowding?, self.match_crowding?);
        let scale = (p * m).sqrt();
        (scale > 0.0).then(|| self.distance / scale)
    }
}

/// Accept a match when it is close enough, clearly closer than anyone else, and stands
/// out from its neighbourhood.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchRule {
    /// The spec's `TOLERANCE`: largest L2 distance accepted.
    pub threshold: f32,
    /// Smallest gap between the best and the runner-up person: below it the door does
    /// not guess between two look-alikes.
    pub margin: f32,
    /// Largest [`Nearest::neighbour_ratio`] accepted (1 or more: not checked).
    pub neighbour_ratio: f32,
    /// 1:1 (the person said who they are): largest distance to that person's closest
    /// template. Its own calibration: one comparison, not a search among many, so it
    /// can be looser than `threshold` at the same stranger rate.
    pub verify_threshold: f32,
}

/// Configured values that replace an embedder's calibrated ones (None: keep it).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RuleOverrides {
    pub tolerance: Option<f32>,
    pub margin: Option<f32>,
    pub neighbour_ratio: Option<f32>,
    pub verify_tolerance: Option<f32>,
}

impl RuleOverrides {
    /// These values where set, else `fallback`'s.
    pub fn or(self, fallback: RuleOverrides) -> RuleOverrides {
        RuleOverrides {
            tolerance: self.tolerance.or(fallback.tolerance),
            margin: self.margin.or(fallback.margin),
            neighbour_ratio: self.neighbour_ratio.or(fallback.neighbour_ratio),
            verify_tolerance: self.verify_tolerance.or(fallback.verify_tolerance),
        }
    }
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
    /// The configured values where set, else the embedder's calibrated ones.
    pub fn resolve(calibrated: MatchRule, o: RuleOverrides) -> MatchRule {
        let d = calibrated;
        MatchRule {
            threshold: o.tolerance.unwrap_or(d.threshold),
            margin: o.margin.unwrap_or(d.margin),
            neighbour_ratio: o.neighbour_ratio.unwrap_or(d.neighbour_ratio),
            verify_threshold: o.verify_tolerance.unwrap_or(d.verify_threshold),
        }
    }

    /// The stricter rule a match must also pass before its probe may become one more
    /// template of the person (learning at the door): a template learned from a wrong
    /// match would let that look-alike in for good, so the bar is above acceptance — a
    /// tenth closer, four times the margin, standing out a tenth more (`eval --learn`:
    /// no wrong lesson on dev + 1,000 distractors; a fifth stricter learned less, later
    /// visits 0.870 against 0.935).
    pub fn confident(&self) -> MatchRule {
        MatchRule {
            threshold: self.threshold * 0.9,
            margin: (self.margin * 4.0).max(0.05),
            neighbour_ratio: self.neighbour_ratio * 0.9,
            ..*self
        }
    }

    /// 1:1: the claimed person's closest template (`distance`, None when they have
    /// none) is accepted within `verify_threshold`.
    pub fn verify(&self, employee_id: &str, distance: Option<f32>) -> Decision {
        match distance {
            Some(d) if d <= self.verify_threshold => Decision::Match {
                employee_id: employee_id.to_owned(),
                distance: d,
            },
            _ => Decision::Unknown {
                nearest: None,
                ambiguous: false,
            },
        }
    }

    pub fn decide(&self, nearest: Option<Nearest>) -> Decision {
        match nearest {
            Some(n) if n.distance <= self.threshold => {
                let gap = n.runner_up.map_or(f32::INFINITY, |r| r - n.distance);
                let stands_out = n
                    .neighbour_ratio()
                    .is_none_or(|r| r <= self.neighbour_ratio);
                if gap >= self.margin && stands_out {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(threshold: f32, margin: f32) -> MatchRule {
        MatchRule {
            threshold,
            margin,
            neighbour_ratio: f32::INFINITY,
            verify_threshold: threshold,
        }
    }

    #[test]
    fn a_match_must_stand_out_from_its_neighbourhood() {
        let near = |distance: f32, crowding: f32| {
            Some(Nearest {
                employee_id: "A".into(),
                distance,
                runner_up: Some(crowding),
                probe_crowding: Some(crowding),
                match_crowding: Some(crowding),
            })
        };
        let strict = MatchRule {
            neighbour_ratio: 0.8,
            ..rule(0.5, 0.0)
        };
        // Close, in a sparse neighbourhood: a match.
        assert!(matches!(
            strict.decide(near(0.3, 0.7)),
            Decision::Match { .. }
        ));
        // Just as close, but everyone is about that close (a crowded gallery): unknown.
        assert!(matches!(
            strict.decide(near(0.3, 0.35)),
            Decision::Unknown { .. }
        ));
        // Over the threshold however sparse: unknown.
        assert!(matches!(
            strict.decide(near(0.55, 2.0)),
            Decision::Unknown { .. }
        ));
        // The check switched off.
        assert!(matches!(
            rule(0.5, 0.0).decide(near(0.3, 0.35)),
            Decision::Match { .. }
        ));
    }

    #[test]
    fn a_confident_match_passes_a_stricter_rule_in_every_respect() {
        let r = MatchRule {
            neighbour_ratio: 0.84,
            ..rule(0.51, 0.02)
        };
        let c = r.confident();
        assert!(c.threshold < r.threshold && c.margin > r.margin);
        assert!(c.neighbour_ratio < r.neighbour_ratio);
        assert_eq!(c.verify_threshold, r.verify_threshold);
        // A match the rule takes but only just: not a lesson.
        let just = Some(Nearest {
            employee_id: "A".into(),
            distance: 0.49,
            runner_up: Some(0.9),
            probe_crowding: Some(0.9),
            match_crowding: Some(0.9),
        });
        assert!(matches!(r.decide(just.clone()), Decision::Match { .. }));
        assert!(matches!(c.decide(just), Decision::Unknown { .. }));
    }

    #[test]
    fn decide_threshold_and_margin() {
        let n = |d: f32, r: Option<f32>| {
            Some(Nearest {
                employee_id: "A".into(),
                distance: d,
                runner_up: r,
                probe_crowding: r,
                match_crowding: r,
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
}
