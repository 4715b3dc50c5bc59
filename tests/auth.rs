//! API keys over real HTTP: the access matrix (401 vs 403), public health, and key
//! rotation with SIGHUP while the daemon keeps serving.

mod common;

use std::process::Command;
use std::time::Duration;

use attendance::http::auth::hash_key;
use common::daemon::{Client, Daemon, Multipart};
use hyper::{Method, StatusCode};

fn config(admin: &str, device: &str) -> String {
    format!(
        "[auth]\nadmin_key_sha256 = [\"{}\"]\ndevice_key_sha256 = [\"{}\"]\n",
        hash_key(admin),
        hash_key(device)
    )
}

async fn identify_with(c: &Client, key: Option<&str>) -> common::daemon::Reply {
    let (ct, body) = Multipart::new()
        .text("type", "IN")
        .file("image", &common::read("_unenrolled/caltech_u01/1.jpg"))
        .finish();
    let mut headers = vec![("content-type", ct.as_str())];
    if let Some(k) = key {
        headers.push(("x-api-key", k));
    }
    c.request(Method::POST, "/identify", &headers, body).await
}

async fn users_with(c: &Client, bearer: &str) -> StatusCode {
    let auth = format!("Bearer {bearer}");
    c.request(
        Method::GET,
        "/users",
        &[("authorization", &auth)],
        Vec::new(),
    )
    .await
    .status
}

/// Writes a config with a new admin key (the device key stays `door-1`), sends SIGHUP
/// and waits until the new key is accepted.
async fn rotate_admin_key(d: &Daemon, file: &std::path::Path, admin: &str) {
    std::fs::write(file, config(admin, "door-1")).unwrap();
    d.hangup();
    for _ in 0..50 {
        if users_with(&d.client(), admin).await == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the new admin key works after SIGHUP: {}", d.log_text());
}

#[tokio::test]
async fn keys_gate_every_route_and_rotate_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("attendanced.toml");
    std::fs::write(&file, config("admin-1", "door-1")).unwrap();
    let d = Daemon::start_with(
        &dir.path().join("data"),
        &[],
        &["--config", file.to_str().unwrap()],
    );
    let c = d.client();

    assert_eq!(
        c.get("/health").await.status,
        StatusCode::OK,
        "health is public by default"
    );
    let r = identify_with(&c, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["reason"], "unauthorized");
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    assert_eq!(
        identify_with(&c, Some("guess")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = identify_with(&c, Some("door-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());

    // A device key cannot administer: 403, not 401.
    let r = c
        .request(
            Method::GET,
            "/users",
            &[("x-api-key", "door-1")],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["reason"], "forbidden");
    let r = c
        .request(
            Method::DELETE,
            "/users/EMP001",
            &[("x-api-key", "door-1")],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(users_with(&c, "admin-1").await, StatusCode::OK);
    // Refused requests leave no attendance row: only the one identification.
    let r = c
        .request(
            Method::GET,
            "/attendance",
            &[("x-api-key", "admin-1")],
            Vec::new(),
        )
        .await;
    assert_eq!(r.json()["records"].as_array().map(Vec::len), Some(1));

    // Metrics: the rules of the live view (a device key), the contract: the rules of
    // /health (public by default).
    let r = c.get("/metrics").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["reason"], "unauthorized");
    let r = c
        .request(
            Method::GET,
            "/metrics",
            &[("authorization", "Bearer door-1")],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&r.body).contains("attendanced_punches_total"));
    assert_eq!(c.get("/openapi.json").await.status, StatusCode::OK);

    // Rotate the admin key: SIGHUP, no restart.
    rotate_admin_key(&d, &file, "admin-2").await;
    assert_eq!(users_with(&c, "admin-1").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_stream_keeps_flowing_through_a_key_rotation() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("attendanced.toml");
    std::fs::write(&file, config("admin-1", "door-1")).unwrap();
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo");
    let d = Daemon::start_with(
        &dir.path().join("data"),
        &[("STREAM_FPS", "10")],
        &[
            "--config",
            file.to_str().unwrap(),
            "--camera",
            &format!("replay:{demo}"),
        ],
    );
    let c = d.client();
    let mut s = tokio::net::TcpStream::connect(c.addr).await.unwrap();
    s.write_all(b"GET /stream.mjpeg HTTP/1.1\r\nhost: x\r\nx-api-key: door-1\r\n\r\n")
        .await
        .unwrap();
    // Counts the JPEG frames (their start-of-image markers) read within `within`.
    async fn frames(s: &mut tokio::net::TcpStream, want: usize, within: Duration) -> usize {
        let mut seen = 0;
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = tokio::time::Instant::now() + within;
        while seen < want {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {
                    seen += buf[..n].windows(3).filter(|w| w == b"\xff\xd8\xff").count()
                }
                _ => break,
            }
        }
        seen
    }
    assert!(
        frames(&mut s, 3, Duration::from_secs(10)).await >= 3,
        "no stream"
    );

    rotate_admin_key(&d, &file, "admin-2").await;
    // The viewer connected before the rotation still gets frames on the same connection.
    assert!(
        frames(&mut s, 5, Duration::from_secs(10)).await >= 5,
        "the stream stopped at the rotation"
    );
}

#[test]
fn hash_key_prints_what_the_config_wants() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_attendanced"))
        .arg("hash-key")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"door-1\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        hash_key("door-1")
    );
}

#[tokio::test]
async fn cors_only_for_the_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("attendanced.toml");
    std::fs::write(
        &file,
        "[http]\ncors_allow_origins = [\"https://hr.example.com\"]\n",
    )
    .unwrap();
    let d = Daemon::start_with(
        &dir.path().join("data"),
        &[],
        &["--config", file.to_str().unwrap()],
    );
    let c = d.client();
    let pre = c
        .request(
            Method::OPTIONS,
            "/identify",
            &[
                ("origin", "https://hr.example.com"),
                ("access-control-request-method", "POST"),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(pre.status, StatusCode::NO_CONTENT);
    assert_eq!(
        pre.headers["access-control-allow-origin"],
        "https://hr.example.com"
    );
    assert!(
        pre.headers
            .get("access-control-allow-credentials")
            .is_none()
    );
    let r = c
        .request(
            Method::GET,
            "/health",
            &[("origin", "https://hr.example.com")],
            Vec::new(),
        )
        .await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://hr.example.com"
    );
    assert_eq!(r.headers["vary"], "Origin");
    let evil = c
        .request(
            Method::GET,
            "/health",
            &[("origin", "https://evil.example")],
            Vec::new(),
        )
        .await;
    assert_eq!(evil.status, StatusCode::OK);
    assert!(evil.headers.get("access-control-allow-origin").is_none());

    // "*" is refused at start-up, naming the key.
    let o = Command::new(env!("CARGO_BIN_EXE_attendanced"))
        .args(["config"])
        .env("ATTENDANCED_HTTP__CORS_ALLOW_ORIGINS", "[\"*\"]")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("http.cors_allow_origins"), "{err}");
}
