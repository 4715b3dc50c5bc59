use super::super::testing::{camera, enrol, terminal, terminal_with};
use super::*;
use crate::store::{AttendanceQuery, AttendanceRow};
use attendance_core::punch::{PunchKind, PunchRequest};

/// Every attempt recorded so far.
fn rows(tm: &Terminal) -> Vec<AttendanceRow> {
    tm.store()
        .attendance(&AttendanceQuery {
            limit: 100,
            ..Default::default()
        })
        .expect("the attendance log reads")
}

/// Runs walk-up punching on `camera` for `d`, then answers what it recorded.
async fn walk_up_for(tm: &Arc<Terminal>, camera: &Arc<Camera>, d: Duration) -> Vec<AttendanceRow> {
    let (stop_tx, stop) = attendance_core::shutdown::channel();
    let task = tokio::spawn(tm.clone().walk_up(camera.clone(), stop));
    tokio::time::sleep(d).await;
    stop_tx.fire();
    let _ = task.await;
    rows(tm)
}

#[test]
fn the_liveness_guard_needs_an_embedder_that_finds_landmarks() {
    let dir = super::super::testing::temp_dir("liveness");
    let mut s = super::super::testing::settings(&dir);
    s.liveness = Some(attendance_face::liveness::LivenessRule::DEFAULT);
    let e = Terminal::open(s).err().expect("HOG finds no landmarks");
    assert!(
        matches!(
            e,
            TerminalError::InvalidField {
                field: "camera.liveness",
                ..
            }
        ),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_standing_at_the_door_is_punched_once_and_a_stranger_recorded_once() {
    let t = terminal();
    let tm = &t.terminal;
    assert_eq!(enrol(tm, "caltech_p02/2.jpg", "홍길동").await, "EMP001");
    // The enrolled person standing for 2 s, nobody for 2 s, a stranger for 2 s (one
    // try, then tried again until they leave), nobody for 4 s (held photos: people
    // standing still).
    let chart = "_negatives/no_face_chart.jpg";
    let photos = [
        "caltech_p02/2.jpg",
        chart,
        "_unenrolled/caltech_u01/1.jpg",
        chart,
        chart,
    ];
    let cam = camera(tm, &photos, 2_000).await;
    let rows = walk_up_for(tm, &cam.camera, Duration::from_millis(9_500)).await;
    let who: Vec<(Option<&str>, &str)> = rows
        .iter()
        .map(|r| (r.employee_id.as_deref(), r.reason.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        rows.iter()
            .filter(|r| r.employee_id.as_deref() == Some("EMP001"))
            .count(),
        1,
        "{who:?}"
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r.reason.as_deref() == Some("unknown"))
            .count(),
        1,
        "{who:?}"
    );
    assert!(rows.iter().all(|r| r.source == "camera"));
}

/// Waits (up to 20 s) until the attempts recorded so far satisfy `done`.
async fn rows_until(tm: &Terminal, done: impl Fn(&[AttendanceRow]) -> bool) -> Vec<AttendanceRow> {
    let started = Instant::now();
    loop {
        let r = rows(tm);
        if done(&r) {
            return r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never came: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Walk-up on `camera` until `stop_tx` fires; waits until it tries somebody.
async fn trying_on(
    tm: &Arc<Terminal>,
    camera: &Arc<Camera>,
) -> (
    attendance_core::shutdown::Trigger,
    tokio::task::JoinHandle<()>,
) {
    let (stop_tx, stop) = attendance_core::shutdown::channel();
    let mut trying = tm.trying();
    let task = tokio::spawn(tm.clone().walk_up(camera.clone(), stop));
    tokio::time::timeout(Duration::from_secs(10), trying.wait_for(|t| *t))
        .await
        .expect("a try recognised nobody and walk-up went on trying")
        .unwrap();
    (stop_tx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_enrolled_while_standing_there_is_punched_without_stepping_away() {
    let t = terminal();
    let tm = &t.terminal;
    enrol(tm, "caltech_p02/2.jpg", "홍길동").await;
    // Somebody not enrolled yet stands at the door...
    let cam = camera(tm, &["caltech_p03/2.jpg"], 60_000).await;
    let (stop_tx, task) = trying_on(tm, &cam.camera).await;
    assert!(rows(tm).is_empty(), "nothing recorded while trying");
    // ...and is enrolled (from the same picture) while they stand there.
    let id = enrol(tm, "caltech_p03/2.jpg", "김철수").await;
    let got = rows_until(tm, |r| !r.is_empty()).await;
    let mut trying = tm.trying();
    tokio::time::timeout(Duration::from_secs(5), trying.wait_for(|t| !*t))
        .await
        .expect("the screen stops saying it is trying")
        .unwrap();
    stop_tx.fire();
    let _ = task.await;
    let who: Vec<(Option<&str>, Option<&str>)> = got
        .iter()
        .map(|r| (r.employee_id.as_deref(), r.reason.as_deref()))
        .collect();
    assert_eq!(
        who,
        [(Some(id.as_str()), None)],
        "punched, no unknown first"
    );
    assert_eq!(rows(tm).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_standing_ten_seconds_is_one_unknown() {
    let t = terminal();
    let tm = &t.terminal;
    enrol(tm, "caltech_p02/2.jpg", "홍길동").await;
    let cam = camera(tm, &["_unenrolled/caltech_u01/1.jpg"], 60_000).await;
    let started = Instant::now();
    let (stop_tx, task) = trying_on(tm, &cam.camera).await;
    // Tried on for a while, then recorded once, while they still stand there.
    let got = rows_until(tm, |r| !r.is_empty()).await;
    assert!(started.elapsed() >= super::super::appearance::TRY_FOR);
    let reasons: Vec<Option<&str>> = got.iter().map(|r| r.reason.as_deref()).collect();
    assert_eq!(reasons, [Some("unknown")]);
    // Standing on until 10 s: nothing more.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(started.elapsed())).await;
    stop_tx.fire();
    let _ = task.await;
    assert_eq!(rows(tm).len(), 1, "{:?}", rows(tm));
}

/// A demo still of the assets folder.
fn demo(f: &str) -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/demo");
    std::fs::read(format!("{dir}/{f}")).unwrap()
}

/// The two demo stills, 5 s each: two people, each centred in the guide, one after the
/// other with no empty frame between (the same place, the same size).
async fn one_then_the_other(tm: &Terminal) -> super::super::testing::TempCamera {
    let frames = [
        demo("1_astronaut_eileen_collins.jpg"),
        demo("2_grace_hopper.jpg"),
    ];
    let settings = crate::camera::CameraSettings {
        replay_hold_ms: 5_000,
        analysis_fps: 10,
        ..Default::default()
    };
    super::super::testing::camera_of(tm, &frames, settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_person_stepping_into_the_same_place_is_decided_too() {
    let t = terminal();
    let tm = &t.terminal;
    let cam = one_then_the_other(tm).await;
    let rows = walk_up_for(tm, &cam.camera, Duration::from_millis(9_500)).await;
    let reasons: Vec<Option<&str>> = rows.iter().map(|r| r.reason.as_deref()).collect();
    assert_eq!(reasons, [Some("unknown"), Some("unknown")], "one each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_tried_then_replaced_by_an_employee_is_still_one_unknown() {
    let t = terminal();
    let tm = &t.terminal;
    let hopper = super::super::testing::new_person("Grace Hopper");
    let id = match tm
        .enrol_photo(demo("2_grace_hopper.jpg"), hopper, &Deadline::none())
        .await
        .unwrap()
    {
        super::super::EnrolAnswer::Enrolled { employee_id, .. } => employee_id,
        other => panic!("not enrolled: {other:?}"),
    };
    // The stranger is still being tried when the employee steps into their place.
    let cam = one_then_the_other(tm).await;
    let rows = walk_up_for(tm, &cam.camera, Duration::from_millis(9_500)).await;
    let mut got: Vec<(Option<&str>, Option<&str>)> = rows
        .iter()
        .map(|r| (r.employee_id.as_deref(), r.reason.as_deref()))
        .collect();
    got.sort();
    assert_eq!(got, [(None, Some("unknown")), (Some(id.as_str()), None)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_way_chosen_on_the_screen_is_for_one_punch() {
    let t = terminal_with(|s| s.walk_up_choice = Duration::from_secs(30));
    let tm = &t.terminal;
    assert_eq!(enrol(tm, "caltech_p02/2.jpg", "홍길동").await, "EMP001");
    tm.modes().choose(PunchRequest::Kind(PunchKind::Out));
    assert!(tm.modes().current().chosen);
    let cam = camera(tm, &["caltech_p02/2.jpg"], 60_000).await;
    let (stop_tx, stop) = attendance_core::shutdown::channel();
    let task = tokio::spawn(tm.clone().walk_up(cam.camera.clone(), stop));
    let mut mode = tm.modes().watch();
    tokio::time::timeout(Duration::from_secs(10), mode.wait_for(|m| !m.chosen))
        .await
        .expect("the choice was used")
        .unwrap();
    stop_tx.fire();
    let _ = task.await;
    let rows = rows(tm);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].kind, PunchKind::Out);
    assert_eq!(tm.modes().current().request, PunchRequest::Auto);
}
