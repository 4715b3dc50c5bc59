//! Each request limit of the daemon, one test apiece, against the real process over TCP:
//! body size, pixel count, multipart parts (one per field) and field length, JSON depth and size, header
//! size, slow clients, the analysis queue (503 + Retry-After) and names.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{Client, Daemon, Multipart, Reply};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PHOTO: &str = "caltech_p02/2.jpg";

/// Asserts a JSON error answer and returns its body.
fn refused(r: &Reply, status: StatusCode, reason: &str) -> Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["success"], false, "{j}");
    assert_eq!(j["reason"], reason, "{j}");
    j
}

/// Sends raw bytes and returns everything the server answers until it closes or
/// `within` passes (then `None`).
async fn raw(c: &Client, bytes: &[u8], within: Duration) -> Option<String> {
    let mut s = TcpStream::connect(c.addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    match tokio::time::timeout(within, s.read_to_end(&mut out)).await {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn body_size_is_refused_from_the_declared_length_and_while_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        dir.path(),
        &[("ATTENDANCED_HTTP__MAX_BODY_BYTES", "100000")],
    );
    let c = d.client();
    // Declared too large: answered from the header, before the body is sent.
    let head = "POST /identify HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                content-length: 100001\r\nconnection: close\r\n\r\n";
    let answer = raw(&c, head.as_bytes(), Duration::from_secs(5))
        .await
        .expect("answered without waiting for the body");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    // Chunked (no declared length): cut off once the limit is crossed.
    let mut chunked = b"POST /identify HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                        transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        .to_vec();
    for _ in 0..30 {
        chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 4096, "a".repeat(4096)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = raw(&c, &chunked, Duration::from_secs(5)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Exactly at the limit is fine (and then judged on its content).
    let body = json!({"type": "IN", "image": "A".repeat(99_000)}).to_string();
    assert!(body.len() <= 100_000);
    let r = c
        .post_raw("/identify", "application/json", body.into_bytes())
        .await;
    refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "bad_image");
}

#[tokio::test]
async fn images_are_refused_by_pixel_count_from_their_header() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let c = d.client();
    // 6000 x 4100 = 24.6 MP (each side allowed, the product not): a few kB of PNG.
    let png = common::blank_png(6000, 4100);
    assert!(png.len() < 100_000, "{}", png.len());
    let started = Instant::now();
    let r = c.identify("IN", &png).await;
    let j = refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "bad_image");
    assert!(
        j["message"].as_str().unwrap().contains("24600000"),
        "names the pixel count: {j}"
    );
    // Refused from the header: no 24.6 MP decode happened (that takes seconds).
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn multipart_part_count_and_text_field_length() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let c = d.client();
    let photo = common::read(PHOTO);
    // A form has one part per field: a flood of parts is refused at the first part that
    // is not one of the form's fields...
    let mut body = Vec::new();
    for _ in 0..10_000 {
        body.extend_from_slice(b"--XB\r\ncontent-disposition: form-data\r\n\r\nx\r\n");
    }
    body.extend_from_slice(b"--XB--\r\n");
    let r = c
        .post_raw("/identify", "multipart/form-data; boundary=XB", body)
        .await;
    let j = refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(j["field"], "(unnamed)", "{j}");
    // ...or at the first repeat of one.
    let r = c
        .post_form(
            "/identify",
            Multipart::new()
                .text("type", "IN")
                .text("type", "OUT")
                .file("image", &photo),
        )
        .await;
    let j = refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(j["field"], "type", "{j}");
    // A text field of 1025 bytes (1024 allowed).
    let r = c
        .post_form(
            "/enroll",
            Multipart::new()
                .text("name", &"n".repeat(1025))
                .file("image", &photo),
        )
        .await;
    let j = refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(j["field"], "name", "{j}");
    // A part the form does not have.
    let r = c
        .post_form(
            "/identify",
            Multipart::new()
                .text("type", "IN")
                .text("surprise", "x")
                .file("image", &photo),
        )
        .await;
    refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(c.get("/users").await.json()["users"], json!([]));
}

#[tokio::test]
async fn json_depth_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[("ATTENDANCED_HTTP__MAX_BODY_BYTES", "50000")]);
    let c = d.client();
    // Depth 9 (8 allowed), inside an otherwise valid form.
    let deep = format!(
        r#"{{"type":"IN","image":"AQID","x":{}1{}}}"#,
        "[".repeat(8),
        "]".repeat(8)
    );
    let r = c
        .post_raw("/identify", "application/json", deep.into_bytes())
        .await;
    refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    // Depth 8 passes the depth check and is judged on its image.
    let ok_depth = format!(
        r#"{{"type":"IN","image":"AQID","x":{}1{}}}"#,
        "[".repeat(7),
        "]".repeat(7)
    );
    let r = c
        .post_raw("/identify", "application/json", ok_depth.into_bytes())
        .await;
    refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "bad_image");
    // Over the body limit.
    let big = json!({"type": "IN", "image": "A".repeat(60_000)}).to_string();
    let r = c
        .post_raw("/identify", "application/json", big.into_bytes())
        .await;
    refused(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // A string field as an array.
    let r = c
        .post_json("/identify", &json!({"type": ["IN"], "image": "AQID"}))
        .await;
    refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
}

#[tokio::test]
async fn oversized_request_heads_get_431_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let c = d.client();
    let huge = "v".repeat(20 * 1024);
    let head = format!("GET /health HTTP/1.1\r\nhost: x\r\nx-junk: {huge}\r\n\r\n");
    let answer = raw(&c, head.as_bytes(), Duration::from_secs(5))
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // A normal-sized head with many headers is fine.
    let many: Vec<(String, String)> = (0..50)
        .map(|i| (format!("x-h{i}"), "v".repeat(100)))
        .collect();
    let headers: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = c
        .request(Method::GET, "/health", &headers, Vec::new())
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_do_not_block_others() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        dir.path(),
        &[
            ("ATTENDANCED_HTTP__HEADER_TIMEOUT_SECS", "1"),
            ("ATTENDANCED_HTTP__REQUEST_TIMEOUT_SECS", "2"),
        ],
    );
    let c = d.client();
    // Slowloris: a head that never ends is dropped after the header timeout.
    let mut loris = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(c.addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n")
            .await
            .unwrap();
        loris.push(s);
    }
    // Meanwhile everybody else is served.
    assert_eq!(c.get("/health").await.status, StatusCode::OK);
    let started = Instant::now();
    for mut s in loris {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "connection still open after 5 s");
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    // A body that trickles in: 408 `timeout` once the request deadline passes.
    let mut s = TcpStream::connect(c.addr).await.unwrap();
    s.write_all(
        b"POST /identify HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          content-length: 1000\r\n\r\n{\"type\":",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answered within the request deadline")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"timeout\""), "{text}");
}

#[tokio::test]
async fn excess_analyses_get_503_busy_with_retry_after_not_a_queue() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        dir.path(),
        &[
            ("ATTENDANCED_HTTP__MAX_CONCURRENT_ANALYSES", "1"),
            ("ATTENDANCED_HTTP__MAX_QUEUED_ANALYSES", "0"),
        ],
    );
    let c = d.client();
    let photo = common::read(PHOTO);
    let mut busy = 0;
    let mut ok = 0;
    // Rounds of 8 at once; with one slot and no queue some must be turned away.
    for _ in 0..5 {
        let replies =
            futures_util::future::join_all((0..8).map(|_| c.identify("IN", &photo))).await;
        for r in replies {
            match r.status {
                StatusCode::SERVICE_UNAVAILABLE => {
                    let j = refused(&r, StatusCode::SERVICE_UNAVAILABLE, "busy");
                    let retry = r.headers.get("retry-after").expect("Retry-After");
                    assert!(retry.to_str().unwrap().parse::<u32>().unwrap() >= 1, "{j}");
                    busy += 1;
                }
                // Nobody is enrolled: a processed request is a 200 with `unknown`.
                StatusCode::OK => ok += 1,
                s => panic!("unexpected {s}: {}", String::from_utf8_lossy(&r.body)),
            }
        }
        if busy > 0 {
            break;
        }
    }
    assert!(busy > 0, "no request was turned away ({ok} served)");
    assert!(ok > 0, "nobody was served");
    // A busy answer is not a punch attempt: exactly the served ones were recorded.
    let recorded = c.list("/attendance?limit=1000", "records").await.len();
    assert_eq!(recorded, ok, "{recorded} rows for {ok} served");
}

#[tokio::test]
async fn a_timed_out_punch_is_not_recorded_and_every_recorded_one_was_answered() {
    let dir = tempfile::tempdir().unwrap();
    // One analysis at a time, room to queue, one second per request: a burst of photos
    // outlasts the deadline, in the queue or mid-analysis.
    let d = Daemon::start(
        dir.path(),
        &[
            ("ATTENDANCED_HTTP__MAX_CONCURRENT_ANALYSES", "1"),
            ("ATTENDANCED_HTTP__MAX_QUEUED_ANALYSES", "64"),
            ("ATTENDANCED_HTTP__REQUEST_TIMEOUT_SECS", "1"),
        ],
    );
    let c = d.client();
    let photo = common::read(PHOTO);
    let replies = futures_util::future::join_all((0..24).map(|_| c.identify("IN", &photo))).await;
    let mut answered = std::collections::BTreeSet::new();
    let mut timed_out = 0;
    for r in &replies {
        match r.status {
            // Nobody is enrolled: each served request is an `unknown` attempt, recorded.
            StatusCode::OK => {
                let j = r.json();
                assert_eq!(j["reason"], "unknown", "{j}");
                answered.insert(j["event_id"].as_str().expect("event_id").to_owned());
            }
            StatusCode::REQUEST_TIMEOUT => {
                refused(r, StatusCode::REQUEST_TIMEOUT, "timeout");
                timed_out += 1;
            }
            s => panic!("unexpected {s}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    assert!(
        timed_out > 0,
        "no request timed out: the test proves nothing"
    );
    assert!(!answered.is_empty(), "nothing was served");
    // Analyses of timed-out requests may still be running; they must not record anything
    // when they finish. One analysis runs at a time and the work holds its place until it
    // ends, so once a later request is answered every earlier analysis has ended.
    let mut probes = 0;
    loop {
        let r = c.identify("IN", &photo).await;
        if r.status == StatusCode::OK {
            answered.insert(r.json()["event_id"].as_str().expect("event_id").to_owned());
            break;
        }
        refused(&r, StatusCode::REQUEST_TIMEOUT, "timeout");
        probes += 1;
        assert!(probes < 20, "20 requests one after another all timed out");
    }
    let recorded: std::collections::BTreeSet<String> = c
        .list("/attendance?limit=1000", "records")
        .await
        .iter()
        .map(|row| row["event_id"].as_str().expect("event_id").to_owned())
        .collect();
    assert_eq!(
        recorded, answered,
        "{timed_out} timed out; the recorded attempts must be exactly the answered ones"
    );
    let h = c.get("/health").await.json();
    assert_eq!(h["outbox_pending"], answered.len(), "{h}");
}

#[tokio::test]
async fn names_korean_yes_control_characters_and_overlong_no() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let c = d.client();
    let photo = common::read(PHOTO);
    for (bad, why) in [
        ("홍\u{7}길동", "bell"),
        ("a\u{1b}[31mred", "escape sequence"),
        ("line\nbreak", "newline"),
        ("zero\u{0}byte", "NUL"),
        ("   ", "blank"),
    ] {
        let r = c.enrol(bad, &photo).await;
        let j = refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(j["field"], "name", "{why}: {j}");
    }
    let r = c.enrol(&"가".repeat(101), &photo).await;
    refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(c.get("/users").await.json()["users"], json!([]));
    // A Korean name is stored and answered as given.
    let r = c.enrol("홍길동", &photo).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let id = r.json()["employee_id"].as_str().unwrap().to_owned();
    let user = c.get(&format!("/users/{id}")).await.json();
    assert_eq!(user["name"], "홍길동", "{user}");
}
