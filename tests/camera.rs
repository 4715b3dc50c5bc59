//! The camera through the real daemon, fed by `replay:` folders of real photos.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use http_body_util::BodyExt;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use serde_json::json;

/// Photos of one person other than the enrolment photo (`caltech_p02/2.jpg`).
const ALICE_OTHER_PHOTOS: [&str; 4] = [
    "caltech_p02/3.jpg",
    "caltech_p02/4.jpg",
    "caltech_p02/5.jpg",
    "caltech_p02/6.jpg",
];

/// A temp folder holding copies of the given dev photos, as a replay source.
fn reel(dir: &Path, photos: &[&str]) -> PathBuf {
    let reel = dir.join("reel");
    std::fs::create_dir_all(&reel).unwrap();
    for (i, p) in photos.iter().enumerate() {
        std::fs::copy(common::dev_photo(p), reel.join(format!("{i:03}.jpg"))).unwrap();
    }
    reel
}

/// A daemon replaying `reel`, once its camera streams: "ready" comes before the camera
/// has opened its source, and a camera request in between is rightly refused (503).
/// Walk-up punching is off: these tests count the rows their own requests make
/// (tests/door_screen.rs tests walk-up).
async fn camera_daemon(dir: &Path, reel: &Path, env: &[(&str, &str)]) -> Daemon {
    let spec = format!("replay:{}", reel.display());
    let env = [&[("ATTENDANCED_CAMERA__WALK_UP", "false")], env].concat();
    let d = Daemon::start_with(&dir.join("data"), &env, &["--camera", &spec]);
    for _ in 0..200 {
        if d.client().get("/health").await.json()["camera"] == "streaming" {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the replay camera did not start: {}", d.log_text());
}

/// Whether a JPEG shows the guide ellipse: its left-most point is in the overlay colour
/// (give or take JPEG's chroma blur).
fn has_ellipse(jpeg: &[u8]) -> bool {
    let img = image::load_from_memory(jpeg).expect("valid JPEG").to_rgb8();
    let (w, h) = img.dimensions();
    // The default guide: 0.35 of the width by 0.55 of the height, centred.
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let (a, b) = (0.35 * w as f32 / 2.0, 0.55 * h as f32 / 2.0);
    let want = attendance::camera::overlay::ELLIPSE.0;
    let near = |x: f32, y: f32| {
        (-3..=3).any(|dx| {
            (-3..=3).any(|dy| {
                let px = (x as i64 + dx).clamp(0, w as i64 - 1) as u32;
                let py = (y as i64 + dy).clamp(0, h as i64 - 1) as u32;
                img.get_pixel(px, py)
                    .0
                    .iter()
                    .zip(want)
                    .all(|(p, q)| (i32::from(*p) - i32::from(q)).abs() < 60)
            })
        })
    };
    // Sixteen points around the ellipse; the face box drawn over the guide may hide a
    // few where it crosses it (the guide of one frame hid its leftmost point), never most.
    let on = (0..16)
        .filter(|i| {
            let t = *i as f32 * std::f32::consts::TAU / 16.0;
            near(cx + a * t.cos(), cy + b * t.sin())
        })
        .count();
    on >= 12
}

/// Reads `/stream.mjpeg` for `secs` seconds after the first frame; returns the JPEGs.
async fn watch_stream(addr: std::net::SocketAddr, secs: f64) -> Vec<Vec<u8>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/stream.mjpeg")
        .header("host", addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "multipart/x-mixed-replace; boundary=frame"
    );
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut frames = Vec::new();
    let mut started: Option<Instant> = None;
    loop {
        if started.is_some_and(|s| s.elapsed().as_secs_f64() >= secs) {
            return frames;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("stream stalled")
            .expect("stream ended")
            .unwrap();
        let Ok(data) = chunk.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        // Parse complete parts: headers, then Content-Length bytes.
        while let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            assert!(head.starts_with("--frame"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .expect("Content-Length")
                .trim()
                .parse()
                .unwrap();
            let start = head_end + 4;
            if buf.len() < start + len + 2 {
                break;
            }
            frames.push(buf[start..start + len].to_vec());
            started.get_or_insert_with(Instant::now);
            buf.drain(..start + len + 2);
        }
    }
}

/// Three viewers at once each get a continuous stream carrying the guide. The frame
/// rate itself is a benchmark (`cargo bench --bench stream`), not asserted here: the
/// other tests of this file run beside it and take the CPU.
#[tokio::test]
async fn three_viewers_each_get_a_continuous_stream_with_the_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let reel = reel(
        dir.path(),
        &[
            "caltech_p02/2.jpg",
            "caltech_p02/3.jpg",
            "caltech_p05/2.jpg",
        ],
    );
    let d = camera_daemon(dir.path(), &reel, &[("STREAM_FPS", "20")]).await;
    let viewers: Vec<_> = (0..3)
        .map(|_| tokio::spawn(watch_stream(d.addr, 5.0)))
        .collect();
    for v in viewers {
        let frames = v.await.unwrap();
        // A quarter of 20 fps over 5 s, whatever else runs: the stream flows to every
        // viewer, nobody is starved by the others.
        eprintln!("viewer got {} frames in 5 s", frames.len());
        assert!(frames.len() >= 25, "only {} frames in 5 s", frames.len());
        for f in frames.iter().step_by(17) {
            assert!(has_ellipse(f), "frame without the guide");
        }
    }
}

#[tokio::test]
async fn capture_with_and_without_preview_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let reel = reel(dir.path(), &["caltech_p02/2.jpg"]);
    let d = camera_daemon(dir.path(), &reel, &[]).await;
    let c = d.client();
    // Wait for the first analysis.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = c.get("/status").await.json();
        if s["analysed"] == true {
            assert_eq!(s["camera"], "streaming");
            assert_eq!(s["ready"], true, "{s}");
            assert_eq!(s["message"], "인식 준비 완료");
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let raw = c.get("/capture").await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.headers["content-type"], "image/jpeg");
    let preview = c.get("/capture?preview=1").await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(has_ellipse(&preview.body));
    assert!(!has_ellipse(&raw.body), "the raw frame has no overlay");
    assert_eq!(
        image::load_from_memory(&raw.body)
            .unwrap()
            .to_rgb8()
            .dimensions(),
        (448, 296)
    );
    assert_eq!(
        c.get("/capture?preview=maybe").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(c.get("/health").await.json()["camera"], "streaming");
}

#[tokio::test]
async fn mode_a_identifies_an_enrolled_person_from_the_camera() {
    let dir = tempfile::tempdir().unwrap();
    // The camera shows other photos of the person than the enrolment photo.
    let reel = reel(dir.path(), &ALICE_OTHER_PHOTOS);
    let d = camera_daemon(
        dir.path(),
        &reel,
        &[("ATTENDANCED_CAMERA__IDENTIFY_WINDOW_MS", "3000")],
    )
    .await;
    let c = d.client();
    assert_eq!(
        c.enrol("홍길동", &common::read("caltech_p02/2.jpg"))
            .await
            .status,
        StatusCode::OK
    );
    let r = c
        .post_json("/identify", &json!({ "type": "IN", "device_id": "GATE" }))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["success"], true, "{j}");
    assert_eq!(j["employee_id"], "EMP001");
    let rows = c.get("/attendance").await.json();
    assert_eq!(rows["records"][0]["source"], "camera");
    assert_eq!(rows["records"][0]["device_id"], "GATE");
}

#[tokio::test]
async fn enrolment_from_the_camera_keeps_several_differing_frames() {
    let dir = tempfile::tempdir().unwrap();
    // Four photos of one person, cycling as the camera's frames.
    let reel = reel(dir.path(), &ALICE_OTHER_PHOTOS);
    let d = camera_daemon(dir.path(), &reel, &[]).await;
    let c = d.client();
    let r = c
        .post_json("/enroll/json", &json!({ "name": "홍길동" }))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["success"], true, "{j}");
    assert_eq!(j["templates_added"], 3, "{j}");
    assert!(j["frames_seen"].as_u64().unwrap() >= 3, "{j}");
    let users = c.get("/users").await.json();
    assert_eq!(users["users"][0]["templates"], 3, "{users}");
    // The enrolment photo the camera never showed is recognised.
    let r = c
        .identify("IN", &common::read("caltech_p02/2.jpg"))
        .await
        .json();
    assert_eq!(r["employee_id"], "EMP001", "{r}");
    // A multipart enrolment still needs its photo.
    let r = c
        .request(
            hyper::Method::POST,
            "/enroll",
            &[("content-type", "multipart/form-data; boundary=x")],
            b"--x\r\ncontent-disposition: form-data; name=\"name\"\r\n\r\nKim\r\n--x--\r\n"
                .to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "image");
}

#[tokio::test]
async fn mode_a_says_no_face_on_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let reel = reel(dir.path(), &["_negatives/no_face_chart.jpg"]);
    let d = camera_daemon(dir.path(), &reel, &[]).await;
    let r = d
        .client()
        .post_json("/identify", &json!({ "type": "IN" }))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["success"], false);
    assert_eq!(j["reason"], "no_face", "{j}");
    assert_eq!(
        d.client().get("/attendance").await.json()["records"][0]["reason"],
        "no_face"
    );
}

#[tokio::test]
async fn without_a_camera_the_camera_endpoints_answer_503() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let c = d.client();
    for path in ["/stream.mjpeg", "/capture", "/capture?preview=1", "/status"] {
        let r = c.get(path).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(r.json()["reason"], "camera_unavailable");
    }
    let r = c.post_json("/enroll/json", &json!({ "name": "Kim" })).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["reason"], "camera_unavailable");
    assert_eq!(c.get("/health").await.json()["camera"], "none");
}
