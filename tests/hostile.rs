//! A corpus of hostile requests against the running daemon: every one gets a 4xx JSON
//! answer with a reason code, nothing reaches the attendance table or the users, and the
//! server keeps serving.

mod common;

use std::io::Cursor;

use common::daemon::{Daemon, Multipart};
use hyper::StatusCode;
use serde_json::{Value, json};

const PHOTO: &str = "caltech_p02/2.jpg";

fn png_of(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::new(width, height);
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn form(fields: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let mut m = Multipart::new();
    for (name, value) in fields {
        m = if *name == "image" {
            m.file(name, value)
        } else {
            m.text_bytes(name, value)
        };
    }
    m.finish()
}

#[tokio::test]
async fn every_bad_request_is_a_4xx_with_a_reason_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let c = d.client();
    let photo = common::read(PHOTO);
    let huge_id = "E".repeat(10_000);

    let mut cases: Vec<(&str, common::daemon::Reply)> = Vec::new();
    let multipart = |fields: &[(&str, &[u8])]| form(fields);
    for (name, image) in [
        ("truncated JPEG", photo[..photo.len() / 3].to_vec()),
        ("zero bytes", Vec::new()),
        // 8192 x 8192 (67 MP) in a few kilobytes.
        ("PNG decompression bomb", common::blank_png(8192, 8192)),
        ("1x1 image", png_of(1, 1)),
        ("60000x1 image", png_of(60000, 1)),
        ("wrong magic", b"GIF89a\x01\x00\x01\x00garbage".to_vec()),
    ] {
        let (ct, body) = multipart(&[("type", b"IN"), ("image", &image)]);
        cases.push((name, c.post_raw("/identify", &ct, body).await));
    }
    cases.push((
        "invalid base64",
        c.post_json(
            "/identify",
            &json!({"type": "IN", "image": "@@@not base64@@@"}),
        )
        .await,
    ));
    cases.push((
        "data URL with a wrong MIME type",
        c.post_json(
            "/identify",
            &json!({"type": "IN", "image": "data:text/plain;base64,aGVsbG8="}),
        )
        .await,
    ));
    let (ct, body) = multipart(&[
        ("name", b"A"),
        ("employee_id", huge_id.as_bytes()),
        ("image", &photo),
    ]);
    cases.push(("huge employee_id", c.post_raw("/enroll", &ct, body).await));
    let (ct, body) = multipart(&[("name", b"A\x01B"), ("image", &photo)]);
    cases.push((
        "control characters in a name",
        c.post_raw("/enroll", &ct, body).await,
    ));
    cases.push((
        "SQL-looking employee id on a manual punch",
        c.post_json(
            "/attendance",
            &json!({"employee_id": "' OR 1=1; DROP TABLE attendance; --", "type": "IN"}),
        )
        .await,
    ));
    let (ct, body) = multipart(&[("name", b"\xff\xfe\xfd"), ("image", &photo)]);
    cases.push((
        "invalid UTF-8 in a text field",
        c.post_raw("/enroll", &ct, body).await,
    ));
    let (ct, body) = multipart(&[("type", b"IN"), ("image", &photo), ("image", &photo)]);
    cases.push((
        "duplicate multipart fields",
        c.post_raw("/identify", &ct, body).await,
    ));
    let (_, body) = multipart(&[("type", b"IN"), ("image", &photo)]);
    cases.push((
        "missing boundary",
        c.post_raw("/identify", "multipart/form-data", body).await,
    ));
    cases.push((
        "JSON nested 10000 deep",
        c.post_raw(
            "/identify",
            "application/json",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        )
        .await,
    ));
    cases.push((
        "JSON that is not an object",
        c.post_raw(
            "/enroll/json",
            "application/json",
            b"\"just a string\"".to_vec(),
        )
        .await,
    ));

    for (name, r) in &cases {
        assert!(
            r.status.is_client_error(),
            "{name}: status {} body {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        let v: Value =
            serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{name}: not JSON ({e})"));
        assert_eq!(v["success"], false, "{name}: {v}");
        assert!(
            v["reason"].as_str().is_some_and(|s| !s.is_empty()),
            "{name}: no reason: {v}"
        );
        assert!(
            v["message"].as_str().is_some_and(|s| !s.is_empty()),
            "{name}: no message: {v}"
        );
    }
    // Nothing was written, and the server still answers.
    assert_eq!(c.list("/attendance?limit=1000", "records").await.len(), 0);
    assert_eq!(c.list("/users", "users").await.len(), 0);
    assert_eq!(c.get("/health").await.status, StatusCode::OK);
    let ok = c.enrol("Alice", &photo).await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "a good request still works: {}",
        ok.json()
    );
}
