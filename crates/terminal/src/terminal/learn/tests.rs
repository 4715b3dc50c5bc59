use std::time::{Duration, Instant};

use super::super::testing::{camera, enrol, terminal, terminal_with};
use super::*;
use crate::answer::MatchMode;
use crate::terminal::Deadline;

/// The learned templates' owners, in the store.
fn learned(tm: &Terminal) -> Vec<String> {
    tm.recognizer
        .read(&tm.store, None)
        .expect("the store reads")
        .into_iter()
        .filter(|(row, _)| row.learned)
        .map(|(row, _)| row.employee_id)
        .collect()
}

/// Punches of `who` recorded so far.
fn punches_of(tm: &Terminal, who: &str) -> usize {
    let q = crate::store::AttendanceQuery {
        limit: 100,
        ..Default::default()
    };
    let rows = tm.store.attendance(&q).expect("the attendance log reads");
    rows.iter()
        .filter(|r| r.employee_id.as_deref() == Some(who))
        .count()
}

/// Walk-up on the camera until `done` holds for (what was learned, the terminal), up
/// to 40 s; what was learned.
async fn walk_up_until(
    tm: &Arc<Terminal>,
    photos: &[&str],
    done: impl Fn(&[String], &Terminal) -> bool,
) -> Vec<String> {
    let cam = camera(tm, photos, 1_200).await;
    let (stop_tx, stop) = attendance_core::shutdown::channel();
    let task = tokio::spawn(tm.clone().walk_up(cam.camera.clone(), stop));
    let started = Instant::now();
    let seen = loop {
        let l = learned(tm);
        if done(&l, tm) || started.elapsed() > Duration::from_secs(40) {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop_tx.fire();
    let _ = task.await;
    seen
}

#[test]
fn only_a_one_to_n_recognition_of_a_live_face_may_teach() {
    let probe = Embedding(vec![0.1; 4]);
    let with = |ident: Identification| {
        Teachable::of(&Identification {
            probe: Some(probe.clone()),
            ..ident
        })
    };
    let one_to_n = MatchMode::Identify;
    let claim = MatchMode::Verify {
        employee_id: "E1".into(),
    };
    assert!(with(Identification::recognised("E1".into(), 0.3, &one_to_n)).is_some());
    assert!(with(Identification::recognised("E1".into(), 0.3, &claim)).is_none());
    assert!(with(Identification::not_live(0.3, &one_to_n)).is_none());
    assert!(with(Identification::unknown(Some(0.7), false, &one_to_n)).is_none());
    let no_face = Identification::recognised("E1".into(), 0.3, &one_to_n);
    assert!(Teachable::of(&no_face).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walking_up_with_another_photo_teaches_the_person_a_bounded_set_of_templates() {
    let t = terminal();
    let tm = &t.terminal;
    let id = enrol(tm, "caltech_p02/2.jpg", "홍길동").await;
    let (templates, _) = tm.recognizer.size();
    // The same person in other photos, a stranger and an empty doorway between them:
    // each photo is a new appearance.
    let chart = "_negatives/no_face_chart.jpg";
    let mut photos = Vec::new();
    for p in ["3", "4", "5", "6", "7", "8", "9", "10", "11", "12"] {
        photos.extend([format!("caltech_p02/{p}.jpg"), chart.to_owned()]);
    }
    photos.extend(["_unenrolled/caltech_u01/1.jpg".to_owned(), chart.to_owned()]);
    let photos: Vec<&str> = photos.iter().map(String::as_str).collect();
    let seen = walk_up_until(tm, &photos, |l, _| l.len() >= 2).await;
    assert!(seen.len() >= 2, "learned {seen:?} in 40 s");
    assert!(seen.len() <= learn::LEARNED, "{seen:?}");
    assert!(seen.iter().all(|who| *who == id), "{seen:?}");
    // The gallery holds them: searches see the learned faces at once.
    assert_eq!(tm.recognizer.size().0, templates + seen.len());
    let metrics = tm.metrics().render(&Default::default());
    assert!(
        metrics.contains(&format!(
            "attendanced_walk_up_lessons_total{{site=\"hq\",device_id=\"T1\",state=\"learned\"}} {}",
            seen.len()
        )),
        "{metrics}"
    );
    // Erasing the lessons alone leaves the enrolment, in the store and the gallery.
    assert_eq!(
        tm.forget_learned(id.clone(), &Deadline::none())
            .await
            .unwrap(),
        seen.len()
    );
    assert!(learned(tm).is_empty());
    assert_eq!(tm.recognizer.size().0, templates);
    // Erasure takes the lessons with the person.
    tm.delete_user(id, &Deadline::none()).await.unwrap();
    assert!(learned(tm).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_learning_off_walk_ups_write_no_template() {
    let t = terminal_with(|s| {
        s.learn_at_door = false;
        // Every appearance a row, to count them.
        s.punch.duplicate_window_secs = 0;
    });
    let tm = &t.terminal;
    let id = enrol(tm, "caltech_p02/2.jpg", "홍길동").await;
    let chart = "_negatives/no_face_chart.jpg";
    let photos = [
        "caltech_p02/3.jpg",
        chart,
        "caltech_p02/4.jpg",
        chart,
        "caltech_p02/5.jpg",
        chart,
    ];
    walk_up_until(tm, &photos, |_, tm| punches_of(tm, &id) >= 3).await;
    assert!(punches_of(tm, &id) >= 3, "the photos punch");
    assert!(learned(tm).is_empty());
}
