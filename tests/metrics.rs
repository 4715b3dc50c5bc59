//! `GET /metrics` of the real daemon counts exactly what happened.

mod common;

use common::api::{ALICE, ALICE_AGAIN, STRANGER, data_dir};
use common::daemon::Daemon;
use common::metrics::{scrape, series};
use hyper::{Method, StatusCode};
use serde_json::json;

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
