//! The HTTP API of the real daemon, over TCP: the spec's flows, every error status,
//! concurrency. (Restarts and SIGKILL: `persistence.rs`; `/metrics`: `metrics.rs`.)

mod common;

use base64::Engine;
use common::api::{ALICE, ALICE_AGAIN, GROUP, STRANGER, attendance, data_dir};
use common::daemon::{Daemon, Multipart};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

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
