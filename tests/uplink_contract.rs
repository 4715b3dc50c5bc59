//! What the uplink makes of the wire for its readers: a garbage payload goes to the dead
//! letters while the rest flows, the uplink's metrics count it, and a dashboard reads the
//! events with `mosquitto_sub` and `attendance-uplink decode`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::world::{EMPLOYEE, assert_delivered, punch, world};
use hyper::StatusCode;
use mysql_async::prelude::Queryable;

#[tokio::test]
async fn a_garbage_payload_goes_to_dead_letter_and_the_rest_flows() {
    let w = world(100).await;
    w.mq.publish("attendance/hq/EVIL/events", b"\x00\x01 definitely not CBOR");
    let ids: BTreeSet<String> = punch(w.terminal.client(), 50).await.into_iter().collect();
    assert_delivered(&w, &ids).await;
    let mut c = w.pool.get_conn().await.unwrap();
    let dead: Vec<(String, Vec<u8>, String)> = c
        .query("SELECT topic, payload, error FROM dead_letter")
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0, "attendance/hq/EVIL/events");
    assert_eq!(dead[0].1, b"\x00\x01 definitely not CBOR");
    assert!(!dead[0].2.is_empty());
    // The rows carry the event fields.
    let row: (String, String, String, String) = c
        .query_first("SELECT employee_id, type, device_id, site FROM attendance LIMIT 1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.0.as_str(), row.2.as_str(), row.3.as_str()),
        (EMPLOYEE, "T1", "hq")
    );
    // The uplink's metrics counted exactly that: fifty new events, one dead letter.
    let r = w.metrics.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(value("attendance_uplink_events_written_total"), 50.0);
    assert_eq!(value("attendance_uplink_dead_letters_total"), 1.0);
    assert_eq!(value("attendance_uplink_mqtt_connected"), 1.0);
    assert!(value("attendance_uplink_mysql_commit_seconds_count") >= 1.0);
    // Each event's lag observed once per time it was written (again after a redelivery).
    assert!(value("attendance_uplink_event_lag_seconds_count") >= 50.0);
    assert!(value(r#"attendance_uplink_messages_total{topic="events"}"#) >= 2.0);
    // The listener answers nothing else, in the API's JSON.
    let r = w.metrics.get("/nothing-here").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["reason"], "not_found");
    let r = w
        .metrics
        .request(hyper::Method::DELETE, "/metrics", &[], Vec::new())
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "GET");
    let _ = &w.dir;
}

#[tokio::test]
async fn a_dashboard_reads_events_with_mosquitto_sub_and_decode() {
    let w = world(100).await;
    // mosquitto_sub prints each payload as hex; `attendance-uplink decode --hex` turns it
    // into JSON (the book's recipe for dashboard builders).
    let mut sub = std::process::Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &w.mq.port.to_string(),
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "20",
        ])
        .args(["-t", "attendance/+/+/events", "-F", "%x"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (apt-get install mosquitto-clients)");
    // Punch until the subscriber has seen one (it subscribes in its own time): the first
    // punch it saw is one of these.
    let mut ids = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sub.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "mosquitto_sub saw no punch"
        );
        ids.extend(punch(w.terminal.client(), 1).await);
    }
    let out = sub.wait_with_output().unwrap();
    assert!(out.status.success(), "no message seen");
    let mut decode = std::process::Command::new(env!("CARGO_BIN_EXE_attendance-uplink"))
        .args(["decode", "--hex"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    decode.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let json = decode.wait_with_output().unwrap();
    assert!(json.status.success());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let seen = v[0]["event_id"].as_str().expect("an event id");
    assert!(ids.iter().any(|i| i == seen), "{seen} is none of {ids:?}");
    assert_eq!(v[0]["employee_id"], EMPLOYEE);
    assert_eq!(v[0]["site"], "hq");
    assert_eq!(v[0]["source"], "manual");
    assert_eq!(v[0]["v"], 1);
}
