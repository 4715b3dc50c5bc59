use super::*;
use crate::cohort::Cohort;
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
    let live: Vec<&(usize, Embedding)> = all.iter().filter(|(p, _)| !removed.contains(p)).collect();
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

/// Two people far apart and a cohort of three faces near the first: A, A's look-alike
/// in the cohort (0.3 away: taken for A), and two others.
fn with_cohort() -> (Gallery, Vec<Embedding>) {
    let faces = vec![
        e(&[1.0, 0.3, 0.0, 0.0]),
        e(&[1.0, -0.6, 0.0, 0.0]),
        e(&[1.0, 0.0, 0.7, 0.0]),
    ];
    let flat = faces.iter().flat_map(|f| f.0.clone()).collect();
    let cohort = Cohort::new(4, flat, 0.35).unwrap();
    let mut g = Gallery::with_cohort(4, Arc::new(cohort)).unwrap();
    g.add("A", &e(&[1.0, 0.0, 0.0, 0.0])).unwrap();
    g.add("B", &e(&[0.0, 0.0, 0.0, 1.0])).unwrap();
    (g, faces)
}

#[test]
fn cohort_faces_are_neighbours_on_both_sides() {
    let (g, faces) = with_cohort();
    // faces[0] is within 0.35 of A: A's own face, set aside.
    assert_eq!(g.cohort_in_use(), 2);
    let probe = e(&[1.0, 0.05, 0.1, 0.0]);
    let n = g.nearest(&probe).unwrap();
    assert_eq!(n.employee_id, "A");
    let b = e(&[0.0, 0.0, 0.0, 1.0]);
    // The runner-up is the other enrolled person, never a cohort face.
    assert!((n.runner_up.unwrap() - probe.distance(&b)).abs() < 1e-5);
    // The probe's neighbourhood: B and the two cohort faces in use.
    let want = (probe.distance(&b) + probe.distance(&faces[1]) + probe.distance(&faces[2])) / 3.0;
    assert!((n.probe_crowding.unwrap() - want).abs() < 1e-5, "{n:?}");
    // A's: the same three, from A's template.
    let a = e(&[1.0, 0.0, 0.0, 0.0]);
    let want = (a.distance(&b) + a.distance(&faces[1]) + a.distance(&faces[2])) / 3.0;
    assert!((n.match_crowding.unwrap() - want).abs() < 1e-5, "{n:?}");
    // Without the cohort both neighbourhoods are B alone: wider, so the same probe
    // stands out more (a lower ratio).
    let mut plain = Gallery::new(4);
    plain.add("A", &a).unwrap();
    plain.add("B", &b).unwrap();
    let p = plain.nearest(&probe).unwrap();
    assert!(p.neighbour_ratio().unwrap() < n.neighbour_ratio().unwrap());
}

#[test]
fn a_cohort_face_counts_again_when_its_person_leaves() {
    let (mut g, faces) = with_cohort();
    let before = g.nearest(&faces[0]).unwrap().probe_crowding.unwrap();
    g.remove("A");
    assert_eq!(g.cohort_in_use(), 3);
    // Now the probe's own twin in the cohort is its nearest neighbour.
    let after = g.nearest(&faces[0]).unwrap().probe_crowding.unwrap();
    assert!(after < before, "{after} vs {before}");
    // Enrolled again under another name, it is set aside again; a blank copy has the
    // cohort whole.
    g.add("A2", &e(&[1.0, 0.25, 0.0, 0.0])).unwrap();
    assert_eq!(g.cohort_in_use(), 2);
    let blank = g.empty_like();
    assert_eq!((blank.len(), blank.cohort_in_use()), (0, 3));
}

#[test]
fn a_cohort_of_another_dimension_is_refused() {
    let cohort = Cohort::new(3, vec![1.0, 0.0, 0.0], 0.3).unwrap();
    assert_eq!(
        Gallery::with_cohort(4, Arc::new(cohort)).err(),
        Some(DimensionMismatch { got: 3, want: 4 })
    );
}

#[test]
fn a_cohort_face_set_aside_for_two_people_stays_aside_until_both_leave() {
    let (mut g, _) = with_cohort();
    // A second person also within 0.35 of the first cohort face.
    g.add("A'", &e(&[1.0, 0.45, 0.0, 0.0])).unwrap();
    assert_eq!(g.cohort_in_use(), 2);
    // Somebody who set nothing aside leaves: nothing changes.
    g.remove("B");
    assert_eq!(g.cohort_in_use(), 2);
    // A leaves: the face is A''s look-alike too, still aside; then A' leaves.
    g.remove("A");
    assert_eq!(g.cohort_in_use(), 2);
    g.remove("A'");
    assert_eq!(g.cohort_in_use(), 3);
}
