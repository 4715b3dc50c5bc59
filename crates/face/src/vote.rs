//! Decide from several camera frames, not one lucky frame. Pure: the terminal's MODE_A
//! (`terminal::live`) feeds it live frames, `eval --sequence-frames` replayed ones.

use std::collections::HashMap;

use crate::{Decision, Rejection};

/// One analysed frame's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameOutcome {
    Rejected(Rejection),
    /// Matched (or not) against the gallery, with the nearest distance.
    Matched {
        decision: Decision,
        nearest: Option<f32>,
    },
}

/// What the frames add up to.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// `votes` frames agreed on this person; `distance` is the closest of them.
    Recognised {
        employee_id: String,
        distance: f32,
        votes: usize,
    },
    /// Usable faces, but no person reached the votes needed. `ambiguous`: some frame
    /// was close to someone without standing out.
    Unknown {
        min_distance: Option<f32>,
        ambiguous: bool,
    },
    /// No usable face at all: the most frequent reason.
    Rejected(Rejection),
    /// No frame was analysed in the window.
    NoFrames,
}

/// Tallies frames. A person needs `votes` matching frames, and more than anyone else.
pub fn tally(frames: &[FrameOutcome], votes: usize) -> Verdict {
    let votes = votes.max(1);
    let mut per_person: HashMap<&str, (usize, f32)> = HashMap::new();
    let mut usable = false;
    let mut ambiguous = false;
    let mut min_distance: Option<f32> = None;
    let mut rejections: Vec<(Rejection, usize)> = Vec::new();
    for f in frames {
        match f {
            FrameOutcome::Rejected(r) => match rejections
                .iter_mut()
                .find(|(x, _)| x.reason() == r.reason())
            {
                Some((_, n)) => *n += 1,
                None => rejections.push((*r, 1)),
            },
            FrameOutcome::Matched { decision, nearest } => {
                usable = true;
                if let Some(d) = nearest {
                    min_distance = Some(min_distance.map_or(*d, |m| m.min(*d)));
                }
                if let Decision::Unknown {
                    ambiguous: true, ..
                } = decision
                {
                    ambiguous = true;
                }
                if let Decision::Match {
                    employee_id,
                    distance,
                } = decision
                {
                    let e = per_person
                        .entry(employee_id.as_str())
                        .or_insert((0, f32::INFINITY));
                    e.0 += 1;
                    e.1 = e.1.min(*distance);
                }
            }
        }
    }
    // Frames matched two people: as much a case for an employee id as a look-alike.
    ambiguous |= per_person.len() > 1;
    let mut ranked: Vec<(&str, (usize, f32))> = per_person.into_iter().collect();
    ranked.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.1.1.total_cmp(&b.1.1)));
    if let Some((who, (n, d))) = ranked.first() {
        let runner = ranked.get(1).map_or(0, |r| r.1.0);
        if *n >= votes && *n > runner {
            return Verdict::Recognised {
                employee_id: (*who).to_owned(),
                distance: *d,
                votes: *n,
            };
        }
    }
    if usable {
        return Verdict::Unknown {
            min_distance,
            ambiguous,
        };
    }
    // Most frequent first; ties keep the order the person met them.
    rejections.sort_by_key(|r| std::cmp::Reverse(r.1));
    rejections
        .first()
        .map_or(Verdict::NoFrames, |(r, _)| Verdict::Rejected(*r))
}

/// Whether more frames can still change a `tally`: true once someone has the votes.
pub fn decided(frames: &[FrameOutcome], votes: usize) -> bool {
    matches!(tally(frames, votes), Verdict::Recognised { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use attendance_core::reason::QualityIssue;

    fn m(who: &str, d: f32) -> FrameOutcome {
        FrameOutcome::Matched {
            decision: Decision::Match {
                employee_id: who.into(),
                distance: d,
            },
            nearest: Some(d),
        }
    }

    fn unknown(d: f32) -> FrameOutcome {
        FrameOutcome::Matched {
            decision: Decision::Unknown {
                nearest: None,
                ambiguous: false,
            },
            nearest: Some(d),
        }
    }

    #[test]
    fn one_lucky_frame_is_not_enough() {
        let v = tally(&[m("A", 0.2), unknown(0.5), unknown(0.45)], 2);
        assert_eq!(
            v,
            Verdict::Unknown {
                min_distance: Some(0.2),
                ambiguous: false
            }
        );
        // A frame close to someone without standing out says so.
        let torn = FrameOutcome::Matched {
            decision: Decision::Unknown {
                nearest: None,
                ambiguous: true,
            },
            nearest: Some(0.3),
        };
        assert!(matches!(
            tally(&[unknown(0.5), torn], 2),
            Verdict::Unknown {
                ambiguous: true,
                ..
            }
        ));
    }

    #[test]
    fn agreeing_frames_win_with_their_best_distance() {
        let v = tally(&[m("A", 0.25), unknown(0.4), m("A", 0.21), m("B", 0.28)], 2);
        assert_eq!(
            v,
            Verdict::Recognised {
                employee_id: "A".into(),
                distance: 0.21,
                votes: 2
            }
        );
        assert!(decided(&[m("A", 0.25), m("A", 0.2)], 2));
    }

    #[test]
    fn a_tie_between_two_people_is_unknown() {
        assert!(matches!(
            tally(&[m("A", 0.2), m("B", 0.2), m("A", 0.2), m("B", 0.2)], 2),
            Verdict::Unknown {
                ambiguous: true,
                ..
            }
        ));
    }

    #[test]
    fn no_usable_frame_gives_the_most_frequent_reason() {
        let r = |x| FrameOutcome::Rejected(x);
        let v = tally(
            &[
                r(Rejection::NoFace),
                r(Rejection::BadQuality(QualityIssue::TooSmall)),
                r(Rejection::BadQuality(QualityIssue::TooSmall)),
            ],
            2,
        );
        assert_eq!(
            v,
            Verdict::Rejected(Rejection::BadQuality(QualityIssue::TooSmall))
        );
        assert_eq!(tally(&[], 2), Verdict::NoFrames);
    }
}
