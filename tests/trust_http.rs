//! What a browser or a network can no longer do to a door: keep a session past its key,
//! guess sign-ins without end, take every connection, post a form from another site, or
//! slip a formula into HR's spreadsheet.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use attendance::http::auth::hash_key;
use common::daemon::{Client, Daemon, Multipart};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

fn config(admins: &[&str]) -> String {
    let hashes: Vec<String> = admins
        .iter()
        .map(|k| format!("\"{}\"", hash_key(k)))
        .collect();
    format!(
        "[auth]\nadmin_key_sha256 = [{}]\ndevice_key_sha256 = [\"{}\"]\n",
        hashes.join(", "),
        hash_key("door-1")
    )
}

/// Signs in with `key`: the status, and the cookie and CSRF token when it worked.
async fn sign_in(c: &Client, key: &str) -> (StatusCode, Option<(String, String)>) {
    let r = c.post_json("/session", &json!({ "key": key })).await;
    let cookie = r
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let csrf = r.json()["csrf"].as_str().map(str::to_owned);
    (r.status, cookie.zip(csrf))
}

/// `GET /users` with a session cookie.
async fn users_with_session(c: &Client, cookie: &str) -> StatusCode {
    c.request(Method::GET, "/users", &[("cookie", cookie)], Vec::new())
        .await
        .status
}

#[tokio::test]
async fn a_session_ends_with_its_key_and_sign_in_guesses_are_rationed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("attendanced.toml");
    std::fs::write(&file, config(&["admin-1", "admin-2"])).unwrap();
    let d = Daemon::start_with(
        &dir.path().join("data"),
        &[],
        &["--config", file.to_str().unwrap()],
    );
    let c = d.client();
    let (status, one) = sign_in(&c, "admin-1").await;
    assert_eq!(status, StatusCode::OK);
    let (one, csrf) = one.unwrap();
    let (_, two) = sign_in(&c, "admin-2").await;
    let (two, _) = two.unwrap();
    assert_eq!(users_with_session(&c, &one).await, StatusCode::OK);

    // admin-1 is rotated out: its session ends with it, even for a deletion carrying
    // the right CSRF token; admin-2's session goes on.
    std::fs::write(&file, config(&["admin-2"])).unwrap();
    d.hangup();
    common::wait_until(
        "admin-1's session to end",
        Duration::from_secs(10),
        || async { (users_with_session(&c, &one).await == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;
    let r = c
        .request(
            Method::DELETE,
            "/users?confirm=yes",
            &[("cookie", &one), ("x-csrf-token", &csrf)],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(users_with_session(&c, &two).await, StatusCode::OK);

    // Ten wrong keys from one address; then even the right one waits.
    for _ in 0..10 {
        assert_eq!(sign_in(&c, "guess").await.0, StatusCode::UNAUTHORIZED);
    }
    let r = c.post_json("/session", &json!({ "key": "admin-2" })).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json()["reason"], "too_many_attempts");
    assert!(r.headers.contains_key("retry-after"));
    // Keys still work: the ration is on guessing, not on the door.
    let keyed = c
        .request(
            Method::GET,
            "/users",
            &[("x-api-key", "admin-2")],
            Vec::new(),
        )
        .await;
    assert_eq!(keyed.status, StatusCode::OK);
}

/// Opens a connection from `from` and sends half a request head.
async fn half_open(from: [u8; 4], to: SocketAddr) -> Option<tokio::net::TcpStream> {
    let s = tokio::net::TcpSocket::new_v4().ok()?;
    s.bind(SocketAddr::from((from, 0))).ok()?;
    let mut stream = s.connect(to).await.ok()?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .ok()?;
    Some(stream)
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let before = open_descriptors(d.pid());
    let mut held = Vec::new();
    for _ in 0..1_100 {
        if let Some(s) = half_open([127, 0, 0, 2], d.addr).await {
            held.push(s);
        }
    }
    assert!(
        held.len() > 1_000,
        "the test could open only {}",
        held.len()
    );
    // The door holds at most its per-address share of them (64), not 1,100.
    let fds = open_descriptors(d.pid());
    assert!(
        fds < before + 100,
        "{fds} descriptors open, {before} before"
    );
    let started = Instant::now();
    let r = d.client().get("/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(d.log_text().contains("connection refused: too many open"));
    drop(held);
}

#[tokio::test]
async fn another_sites_page_cannot_post_forms_and_punch_mode_takes_json_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let c = d.client();
    let own = format!("http://{}", d.addr);
    let mode = |headers: Vec<(&'static str, String)>, body: Vec<u8>| async move {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        c.request(Method::POST, "/punch-mode", &h, body).await
    };
    let json_ct = ("content-type", "application/json".to_owned());
    let json_body = || json!({ "mode": "OUT" }).to_string().into_bytes();
    let (ct, form) = Multipart::new().text("mode", "OUT").finish();
    let r = mode(vec![("content-type", ct)], form).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.json());
    let evil = ("origin", "https://evil.example".to_owned());
    let r = mode(vec![json_ct.clone(), evil], json_body()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["reason"], "forbidden");
    let r = mode(vec![json_ct.clone(), ("origin", own)], json_body()).await;
    assert_eq!(r.status, StatusCode::OK, "the kiosk page's own origin");
    assert_eq!(
        mode(vec![json_ct], json_body()).await.status,
        StatusCode::OK
    );

    // The API is open (no keys, as the spec has it): still, a form posted by a page of
    // another site is not an enrolment.
    let (ct, body) = Multipart::new()
        .text("name", "X")
        .file("image", &common::read("caltech_p02/2.jpg"))
        .finish();
    let r = c
        .request(
            Method::POST,
            "/enroll",
            &[("content-type", &ct), ("origin", "https://evil.example")],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(c.list("/users", "users").await.len(), 0);
}

#[tokio::test]
async fn csv_cells_are_never_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let c = d.client();
    let r = c.enrol("A", &common::read("caltech_p02/2.jpg")).await;
    let id = r.json()["employee_id"].as_str().unwrap().to_owned();
    let punch = json!({ "employee_id": id, "type": "IN", "device_id": "-A1-A1" });
    assert_eq!(
        c.post_json("/attendance", &punch).await.status,
        StatusCode::OK
    );
    let r = c.get("/attendance?format=csv").await;
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rows.headers().unwrap().iter().map(str::to_owned).collect();
    let at = header.iter().position(|h| h == "device_id").unwrap();
    let row: Vec<String> = rows
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(row[at], "'-A1-A1", "{text}");
    // JSON keeps the value as it was.
    let j: Value = c.get("/attendance").await.json();
    assert_eq!(j["records"][0]["device_id"], "-A1-A1");
}
