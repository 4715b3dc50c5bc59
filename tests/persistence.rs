//! What the real daemon keeps: erasure that keeps history, restarts, SIGKILL right after
//! a 200, and a change of embedder re-embedding from the stored crops.

mod common;

use common::api::{ALICE, ALICE_AGAIN, STRANGER, attendance, data_dir};
use common::daemon::Daemon;
use hyper::StatusCode;
use serde_json::json;

#[tokio::test]
async fn deleting_a_user_erases_face_data_and_keeps_history() {
    let dir = data_dir();
    let d = Daemon::start(dir.path(), &[]);
    let c = d.client();
    c.enrol("A", &common::read(ALICE)).await;
    assert_eq!(
        c.identify("IN", &common::read(ALICE_AGAIN)).await.json()["success"],
        true
    );
    let files = |sub: &str| std::fs::read_dir(dir.path().join(sub)).unwrap().count();
    assert_eq!((files("encodings"), files("images")), (1, 1));
    // Erasing only what walk-ups taught: nothing here (an upload teaches nothing), the
    // enrolment stays; nobody to erase for is a 404.
    let r = c.delete("/users/EMP001/learned").await;
    assert_eq!(r.json()["templates_deleted"], 0);
    assert_eq!((files("encodings"), files("images")), (1, 1));
    let r = c.delete("/users/EMP404/learned").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = c.delete("/users/EMP001").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["templates_deleted"], 1);
    assert_eq!((files("encodings"), files("images")), (0, 0));
    assert_eq!(c.get("/users/EMP001").await.status, StatusCode::NOT_FOUND);
    // Nobody to match any more.
    assert_eq!(
        c.identify("IN", &common::read(ALICE_AGAIN)).await.json()["reason"],
        "unknown"
    );
    let rows = attendance(&d).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["employee_id"], "EMP001", "history stays");
    // Reset needs confirmation.
    c.enrol("B", &common::read(ALICE)).await;
    assert_eq!(
        c.delete("/users").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        c.delete("/users?confirm=yes").await.json()["users_deleted"],
        1
    );
}

#[tokio::test]
async fn restart_keeps_users_and_attendance() {
    let dir = data_dir();
    let mut d = Daemon::start(dir.path(), &[]);
    d.client().enrol("A", &common::read(ALICE)).await;
    d.client().identify("IN", &common::read(ALICE_AGAIN)).await;
    assert!(d.stop().success(), "clean exit on SIGTERM");
    d.restart();
    let r = d
        .client()
        .identify("OUT", &common::read(ALICE_AGAIN))
        .await
        .json();
    assert_eq!(r["employee_id"], "EMP001", "{r}");
    assert_eq!(attendance(&d).await.len(), 2);
    assert_eq!(d.client().get("/users").await.json()["count"], 1);
}

#[tokio::test]
async fn sigkill_right_after_a_200_loses_no_punch() {
    let dir = data_dir();
    let mut d = Daemon::start(dir.path(), &[]);
    let c = d.client();
    c.enrol("A", &common::read(ALICE)).await;
    let photos = [common::read(ALICE_AGAIN), common::read(STRANGER)];
    let mut answered = Vec::new();
    for round in 0..3 {
        // Punches in flight when the kill lands: every one that got its 200 must survive.
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let p = photos[i % 2].clone();
                tokio::spawn(
                    async move { c.identify(if i % 2 == 0 { "IN" } else { "OUT" }, &p).await },
                )
            })
            .collect();
        let mut tasks = tasks.into_iter();
        let first = tasks.next().unwrap().await.unwrap();
        assert_eq!(first.status, StatusCode::OK);
        answered.push(first.json()["event_id"].clone());
        d.kill();
        // The others either got their 200 before the kill, or lost their connection.
        for t in tasks {
            if let Ok(r) = t.await
                && r.status == StatusCode::OK
            {
                answered.push(r.json()["event_id"].clone());
            }
        }
        answered.retain(|id| !id.is_null());
        d.restart();
        let rows = attendance(&d).await;
        for id in &answered {
            assert!(
                rows.iter().any(|r| &r["event_id"] == id),
                "round {round}: {id} lost"
            );
        }
        // Every row has its outbox entry.
        let h = d.client().get("/health").await.json();
        assert_eq!(h["outbox_pending"].as_u64().unwrap() as usize, rows.len());
    }
    assert!(!answered.is_empty());
}

#[tokio::test]
async fn switching_embedder_re_embeds_from_the_stored_enrolment_crops() {
    let dir = data_dir();
    let mut hog = Daemon::start(dir.path(), &[("ATTENDANCED_FACE__EMBEDDER", "hog")]);
    let c = hog.client();
    assert_eq!(c.get("/health").await.json()["embedder"], "hog-v1");
    let r = c.enrol("홍길동", &common::read(ALICE)).await.json();
    assert_eq!(r["employee_id"], "EMP001", "{r}");
    hog.stop();

    // The operator switches to the CNN: the template is recomputed from the kept crop.
    let dlib = Daemon::start(dir.path(), &[("ATTENDANCED_FACE__EMBEDDER", "dlib-resnet")]);
    let c = dlib.client();
    assert_eq!(c.get("/health").await.json()["embedder"], "dlib-resnet-v1");
    let u = c.get("/users/EMP001").await.json();
    let embedders = u["embedders"].as_array().expect("embedders").clone();
    assert!(
        embedders.contains(&json!("hog-v1")) && embedders.contains(&json!("dlib-resnet-v1")),
        "{u}"
    );
    let r = c.identify("IN", &common::read(ALICE_AGAIN)).await.json();
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["employee_id"], "EMP001");
    assert!(
        dlib.log_text()
            .contains("re-embedded stored enrolment crops")
    );
}

#[tokio::test]
async fn without_stored_crops_the_log_names_who_must_re_enrol() {
    let dir = data_dir();
    let no_crops = [
        ("ATTENDANCED_FACE__EMBEDDER", "hog"),
        ("ATTENDANCED_STORAGE__KEEP_ENROLMENT_CROPS", "false"),
    ];
    let mut hog = Daemon::start(dir.path(), &no_crops);
    let r = hog.client().enrol("Kim", &common::read(ALICE)).await.json();
    assert_eq!(r["employee_id"], "EMP001", "{r}");
    hog.stop();

    let dlib = Daemon::start(dir.path(), &[("ATTENDANCED_FACE__EMBEDDER", "dlib-resnet")]);
    let r = dlib
        .client()
        .identify("IN", &common::read(ALICE_AGAIN))
        .await
        .json();
    assert_eq!(r["success"], false, "{r}");
    assert_eq!(r["reason"], "unknown");
    let log = dlib.log_text();
    assert!(
        log.contains("re-enrol") && log.contains("EMP001"),
        "the log must name the users to re-enrol: {log}"
    );
}
