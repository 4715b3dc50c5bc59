//! The HTTP API of the real daemon, over TCP: the spec's flows, every error status,
//! concurrency, restarts and SIGKILL.

mod common;

use base64::Engine;
use common::daemon::{Daemon, Multipart};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

/// Employee photo and another photo of the same person.
const ALICE: &str = "caltech_p02/2.jpg";
const ALICE_AGAIN: &str = "caltech_p02/3.jpg";
/// Somebody never enrolled.
const STRANGER: &str = "_unenrolled/caltech_u01/1.jpg";
const GROUP: &str = "_negatives/group_selfie_many_faces.jpg";

fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

async fn attendance(d: &Daemon) -> Vec<Value> {
    let r = d.client().get("/attendance?limit=1000").await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()["records"].as_array().unwrap().clone()
}

#[tokio::test]
async fn enrol_then_identify_the_same_person_a_stranger_and_a_group() {
    let dir = data_dir();
    let d = Daemon::start(dir.path(), &[]);
    let c = d.client();

    let h = c.get("/health").await;
    assert_eq!(h.status, StatusCode::OK);
    let h = h.json();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["database"], "connected");
    for key in ["camera", "mqtt", "outbox_pending", "timestamp"] {
        assert!(h.get(key).is_some(), "health lacks {key}: {h}");
    }
    // The models are present (scripts/test fetches them): the CNN is the default.
    assert_eq!(h["embedder"], "dlib-resnet-v1", "{h}");

    let r = c.enrol("홍길동", &common::read(ALICE)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = r.json();
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["employee_id"], "EMP001");
    assert_eq!(r["message"], "등록 완료");

    let r = c.identify("IN", &common::read(ALICE_AGAIN)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = r.json();
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["employee_id"], "EMP001");
    assert_eq!(r["name"], "홍길동");
    assert_eq!(r["user"], "홍길동");
    assert_eq!(r["type"], "IN");
    assert_eq!(r["message"], "인증 성공");
    let (dist, thr) = (
        r["distance"].as_f64().unwrap(),
        r["decided_threshold"].as_f64().unwrap(),
    );
    assert!(dist <= thr, "{r}");

    let r = c.identify("OUT", &common::read(STRANGER)).await.json();
    assert_eq!(r["success"], false, "{r}");
    assert_eq!(r["reason"], "unknown");
    assert!(r["min_distance"].as_f64().unwrap() > thr);
    assert!(r.get("distance").is_some());

    let r = c.identify("IN", &common::read(GROUP)).await.json();
    assert_eq!(r["success"], false);
    assert_eq!(r["reason"], "multi_face");

    let rows = attendance(&d).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    // Newest first: the group photo, the stranger (employee NULL), then the punch.
    assert_eq!(rows[0]["reason"], "multi_face");
    assert_eq!(rows[1]["employee_id"], Value::Null);
    assert_eq!(rows[1]["reason"], "unknown");
    assert_eq!(rows[1]["type"], "OUT");
    assert_eq!(rows[2]["employee_id"], "EMP001");
    assert_eq!(rows[2]["reason"], Value::Null);
    let h = c.get("/health").await.json();
    assert_eq!(h["outbox_pending"], 3);
}

#[tokio::test]
async fn json_uploads_base64_and_data_url_and_english() {
    let dir = data_dir();
    let d = Daemon::start(dir.path(), &[("ATTENDANCED_LOCALE", "en")]);
    let c = d.client();
    let b64 = base64::engine::general_purpose::STANDARD.encode(common::read(ALICE));
    let r = c
        .post_json(
            "/enroll/json",
            &json!({ "name": "Kim", "image": format!("data:image/jpeg;base64,{b64}") }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["message"], "Enrolled");
    let b64 = base64::engine::general_purpose::STANDARD.encode(common::read(ALICE_AGAIN));
    let r = c
        .post_json("/identify", &json!({ "type": "in", "image": b64, "device_id": "KIOSK_7", "ts_client": "2025-01-01T09:00:00+09:00" }))
        .await
        .json();
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["message"], "Recognised");
    let rows = attendance(&d).await;
    assert_eq!(rows[0]["device_id"], "KIOSK_7");
    assert_eq!(rows[0]["ts_client"], "2025-01-01T09:00:00+09:00");
    // Accept-Language wins over the configured locale.
    let r = c
        .request(
            Method::GET,
            "/nowhere",
            &[("accept-language", "ko-KR")],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.json()["message"].as_str().unwrap().split(' ').next(),
        Some("없는")
    );
    // MODE_A without a camera.
    let r = c.post_json("/identify", &json!({ "type": "IN" })).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["reason"], "camera_unavailable");
}

#[tokio::test]
async fn an_employee_id_makes_it_a_one_to_one_verification() {
    let dir = data_dir();
    let d = Daemon::start(dir.path(), &[]);
    let c = d.client();
    let h = c.get("/health").await.json();
    assert_eq!(h["modes"], json!(["identify", "verify"]), "{h}");
    assert!(h["measured_people"].as_u64().unwrap() >= 1000, "{h}");
    assert_eq!(h["identify_limit"], Value::Null, "{h}");
    assert_eq!(
        c.enrol("홍길동", &common::read(ALICE)).await.status,
        StatusCode::OK
    );
    let b64 = |p: &str| base64::engine::general_purpose::STANDARD.encode(common::read(p));
    let verify =
        |image: String, id: &str| json!({ "type": "IN", "image": image, "employee_id": id });

    let r = c
        .post_json("/identify", &verify(b64(ALICE_AGAIN), "EMP001"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = r.json();
    assert_eq!(
        (&r["success"], &r["mode"]),
        (&json!(true), &json!("verify")),
        "{r}"
    );
    assert_eq!(r["employee_id"], "EMP001");
    // Decided with the 1:1 threshold, not 1:N's (0.51).
    assert_eq!(r["decided_threshold"], 0.5, "{r}");
    assert!(r["distance"].as_f64().unwrap() <= 0.5);

    // Somebody else claiming to be EMP001: refused with its own reason, and recorded.
    let r = c
        .post_json("/identify", &verify(b64(STRANGER), "EMP001"))
        .await
        .json();
    assert_eq!(
        (&r["success"], &r["reason"]),
        (&json!(false), &json!("not_verified")),
        "{r}"
    );
    assert_eq!(r["mode"], "verify");
    assert!(r["min_distance"].as_f64().unwrap() > r["decided_threshold"].as_f64().unwrap());

    // Nobody by that id: an error before any analysis, nothing recorded.
    let r = c
        .post_json("/identify", &verify(b64(ALICE_AGAIN), "EMP999"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["reason"], "user_not_found");
    let r = c
        .post_json("/identify", &verify(b64(ALICE_AGAIN), "a/b"))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "employee_id");

    // Without one, the same photo is a 1:N identification (the same punch again: a
    // duplicate, not recorded twice).
    let r = c
        .post_json(
            "/identify",
            &json!({ "type": "IN", "image": b64(ALICE_AGAIN) }),
        )
        .await
        .json();
    assert_eq!(
        (&r["mode"], &r["employee_id"]),
        (&json!("identify"), &json!("EMP001")),
        "{r}"
    );
    assert_eq!(r["duplicate"], true);

    let rows = attendance(&d).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["reason"], "not_verified");
    assert_eq!(rows[0]["employee_id"], Value::Null);
    assert_eq!(rows[1]["employee_id"], "EMP001");
}

#[tokio::test]
async fn every_error_status_with_a_reason_and_no_attendance_row() {
    let dir = data_dir();
    let d = Daemon::start(
        dir.path(),
        &[("ATTENDANCED_HTTP__MAX_BODY_BYTES", "200000")],
    );
    let c = d.client();
    assert_eq!(
        c.enrol("A", &common::read(ALICE)).await.status,
        StatusCode::OK
    );

    let expect = |r: common::daemon::Reply, status: StatusCode, reason: &str| {
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
        let j = r.json();
        assert_eq!(j["reason"], reason, "{j}");
        assert_eq!(j["success"], false);
        assert!(!j["message"].as_str().unwrap().is_empty());
        j
    };
    // 415
    let r = c
        .request(
            Method::POST,
            "/identify",
            &[("content-type", "text/plain")],
            b"hello".to_vec(),
        )
        .await;
    expect(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let r = c
        .post_form("/enroll/json", Multipart::new().text("name", "x"))
        .await;
    expect(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    // 413
    let big = vec![0u8; 300_000];
    let r = c.identify("IN", &big).await;
    expect(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // 422, naming the field
    let r = c
        .post_form("/identify", Multipart::new().text("type", "IN"))
        .await;
    assert_eq!(
        expect(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "image"
    );
    let r = c.identify("SIDEWAYS", &common::read(ALICE_AGAIN)).await;
    assert_eq!(
        expect(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "type"
    );
    let r = c
        .post_form(
            "/identify",
            Multipart::new()
                .text("type", "IN")
                .text("ts_client", "yesterday")
                .file("image", &common::read(ALICE_AGAIN)),
        )
        .await;
    assert_eq!(
        expect(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "ts_client"
    );
    let r = c
        .post_json("/identify", &json!({ "type": "IN", "image": "***" }))
        .await;
    assert_eq!(
        expect(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "image"
    );
    let r = c.identify("IN", b"not an image at all").await;
    assert_eq!(
        expect(r, StatusCode::UNPROCESSABLE_ENTITY, "bad_image")["field"],
        "image"
    );
    let r = c
        .post_form(
            "/enroll",
            Multipart::new().file("image", &common::read(STRANGER)),
        )
        .await;
    assert_eq!(
        expect(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "name"
    );
    // 404 / 405
    expect(c.get("/nope").await, StatusCode::NOT_FOUND, "not_found");
    expect(
        c.get("/users/EMP999").await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    let r = c.request(Method::PUT, "/identify", &[], vec![]).await;
    assert_eq!(r.headers.get("allow").unwrap(), "POST");
    expect(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    // 409: the same face under another name.
    let r = c.enrol("B", &common::read(ALICE_AGAIN)).await;
    let j = expect(r, StatusCode::CONFLICT, "already_enrolled");
    assert_eq!(j["employee_id"], "EMP001");
    // ...but more photos of EMP001 for EMP001 are welcome.
    let r = c
        .post_form(
            "/enroll",
            Multipart::new()
                .text("employee_id", "EMP001")
                .file("image", &common::read(ALICE_AGAIN)),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["new_user"], false);
    // None of the refused requests left a row.
    assert!(attendance(&d).await.is_empty());
    // The server is still serving.
    assert_eq!(c.get("/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn twenty_parallel_enrolments_get_twenty_distinct_ids() {
    let dir = data_dir();
    // Enrolments run one at a time (twenty CNN enrolments of a debug build take most of
    // the default 30 s on a loaded machine): the test is about ids, not speed.
    let d = Daemon::start(
        dir.path(),
        &[("ATTENDANCED_HTTP__REQUEST_TIMEOUT_SECS", "300")],
    );
    let c = d.client();
    // The first photo of 20 different people.
    let ids = attendance::face::eval::list_dataset(&common::faces_dir().join("dev")).unwrap();
    let photos: Vec<Vec<u8>> = ids
        .iter()
        .filter(|i| i.name.starts_with("lfw_"))
        .take(20)
        .map(|i| std::fs::read(&i.images[0]).unwrap())
        .collect();
    assert_eq!(photos.len(), 20);
    let tasks: Vec<_> = photos
        .into_iter()
        .enumerate()
        .map(|(n, p)| tokio::spawn(async move { c.enrol(&format!("사원{n}"), &p).await }))
        .collect();
    let mut got = std::collections::BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        let j = r.json();
        assert_eq!(r.status, StatusCode::OK, "{j}");
        assert_eq!(j["success"], true, "{j}");
        got.insert(j["employee_id"].as_str().unwrap().to_owned());
    }
    let want: std::collections::BTreeSet<String> = (1..=20).map(|n| format!("EMP{n:03}")).collect();
    assert_eq!(got, want);
    assert_eq!(c.get("/users").await.json()["count"], 20);
}

#[tokio::test]
async fn duplicate_punch_window_auto_and_manual_punches() {
    let dir = data_dir();
    let d = Daemon::start(dir.path(), &[]);
    let c = d.client();
    c.enrol("A", &common::read(ALICE)).await;
    let first = c.identify("AUTO", &common::read(ALICE_AGAIN)).await.json();
    assert_eq!(
        (first["type"].as_str(), first["duplicate"].as_bool()),
        (Some("IN"), Some(false)),
        "{first}"
    );
    let again = c.identify("AUTO", &common::read(ALICE_AGAIN)).await.json();
    assert_eq!(again["success"], true);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["event_id"], Value::Null);
    assert_eq!(attendance(&d).await.len(), 1, "a duplicate records nothing");
    // Explicit OUT is a different punch.
    let out = c.identify("OUT", &common::read(ALICE_AGAIN)).await.json();
    assert_eq!(
        (out["type"].as_str(), out["duplicate"].as_bool()),
        (Some("OUT"), Some(false))
    );
    // Manual punch for a known user, refused for an unknown one.
    let r = c
        .post_json("/attendance", &json!({ "employee_id": "EMP001", "type": "IN", "device_id": "DESK", "distance": 0.35 }))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["message"], "출퇴근 기록이 저장되었습니다");
    let r = c
        .post_json(
            "/attendance",
            &json!({ "employee_id": "EMP404", "type": "IN" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let rows = c.get("/attendance?employee_id=EMP001&limit=2").await.json();
    assert_eq!(rows["count"], 2);
    assert_eq!(rows["records"][0]["source"], "manual");
    assert_eq!(rows["records"][0]["device_id"], "DESK");
    let r = c.get("/attendance?from=2999-01-01").await.json();
    assert_eq!(r["count"], 0);
    assert_eq!(
        c.get("/attendance?limit=0").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        c.get("/attendance?from=soon").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

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

/// The value of one series of a scrape (a counter not yet created is 0; a scrape that
/// fails fails the test).
fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(s, _)| {
            s.strip_prefix(name).is_some_and(|rest| {
                rest.starts_with('{')
                    && labels
                        .iter()
                        .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            })
        })
        .map_or(0.0, |(_, v)| v.parse().expect("a number"))
}

async fn scrape(c: &common::daemon::Client) -> String {
    let r = c.get("/metrics").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    String::from_utf8(r.body.to_vec()).expect("UTF-8")
}

#[tokio::test]
async fn metrics_count_exactly_what_happened() {
    let dir = data_dir();
    let d = Daemon::start(dir.path(), &[("ATTENDANCED_SITE", "hq")]);
    let c = d.client();
    let before = scrape(&c).await;
    assert!(before.ends_with("# EOF\n"), "{before}");
    assert_eq!(
        series(&before, "attendanced_gallery_people", &[("site", "hq")]),
        0.0
    );
    assert_eq!(
        c.enrol("A", &common::read(ALICE)).await.json()["success"],
        true
    );
    let punch = |p: &'static str| async move { c.identify("IN", &common::read(p)).await.json() };
    assert_eq!(punch(ALICE_AGAIN).await["duplicate"], false);
    assert_eq!(punch(ALICE_AGAIN).await["duplicate"], true);
    let stranger = punch(STRANGER).await;
    let stranger_reason = stranger["reason"].as_str().expect("a refusal").to_owned();
    let blank = c.identify("IN", &common::blank_png(320, 240)).await.json();
    assert_eq!(blank["reason"], "no_face");
    // A manual punch (no face) counts as one too, under its own source.
    let manual = json!({ "employee_id": "EMP001", "type": "OUT", "device_id": "DESK" });
    assert_eq!(
        c.post_json("/attendance", &manual).await.json()["duplicate"],
        false
    );
    assert_eq!(
        c.post_json("/attendance", &manual).await.json()["duplicate"],
        true
    );
    let after = scrape(&c).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        series(&after, name, labels) - series(&before, name, labels)
    };
    let punches = "attendanced_punches_total";
    for (labels, want) in [
        (&[("result", "recognised"), ("reason", "none")][..], 1.0),
        (&[("result", "duplicate"), ("reason", "none")], 1.0),
        (
            &[("result", "failed"), ("reason", stranger_reason.as_str())],
            1.0,
        ),
        (&[("result", "failed"), ("reason", "no_face")], 1.0),
    ] {
        let mut l = labels.to_vec();
        l.push(("source", "upload"));
        assert_eq!(moved(punches, &l), want, "{labels:?}\n{after}");
    }
    for result in ["recognised", "duplicate"] {
        let l = [("result", result), ("reason", "none"), ("source", "manual")];
        assert_eq!(moved(punches, &l), 1.0, "manual {result}\n{after}");
    }
    // Five photos decoded and analysed (the enrolment's too), three faces embedded and
    // matched (the blank frame has none).
    let stage = "attendanced_identify_stage_seconds_count";
    for (s, want) in [
        ("decode", 5.0),
        ("detect", 5.0),
        ("embed", 3.0),
        ("match", 3.0),
    ] {
        assert_eq!(moved(stage, &[("stage", s)]), want, "{s}\n{after}");
    }
    assert_eq!(series(&after, "attendanced_gallery_people", &[]), 1.0);
    // Four recorded attempts (the duplicates are not), in the outbox with no broker.
    assert_eq!(
        series(&after, "attendanced_outbox_pending", &[]),
        4.0,
        "{after}"
    );
    assert!(series(&after, "attendanced_outbox_oldest_age_seconds", &[]) > 0.0);
    assert_eq!(
        series(&after, "attendanced_mqtt_state", &[("state", "disabled")]),
        1.0
    );
    // Bad scrape requests get the API's JSON errors.
    let r = c.request(Method::POST, "/metrics", &[], Vec::new()).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.json()["reason"], "method_not_allowed");
    assert_eq!(r.headers["allow"], "GET");
    let off_dir = data_dir();
    let off = Daemon::start(off_dir.path(), &[("ATTENDANCED_HTTP__METRICS", "false")]);
    let r = off.client().get("/v1/metrics").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["reason"], "not_found");
}
