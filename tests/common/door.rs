//! A door with a screen: keys, a replayed camera with walk-up on, and what the screen tests
//! ask of it.

use attendance::http::auth::hash_key;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::daemon::{Client, Daemon};
use hyper::{Method, StatusCode};
use serde_json::Value;

pub const ADMIN: &str = "admin-secret-7f3a";
pub const DEVICE: &str = "door-key-19c2";
/// How long each replayed photo is shown.
pub const HOLD_MS: u64 = 2000;
pub const CHART: &str = "_negatives/no_face_chart.jpg";

/// `[auth]` with both keys; `local_screen`: the terminal's own browser needs none.
pub fn config(dir: &Path, local_screen: bool) -> PathBuf {
    let file = dir.join("attendanced.toml");
    std::fs::write(
        &file,
        format!(
            "[auth]\nadmin_key_sha256 = [\"{}\"]\ndevice_key_sha256 = [\"{}\"]\nlocal_screen = {local_screen}\n",
            hash_key(ADMIN),
            hash_key(DEVICE)
        ),
    )
    .unwrap();
    file
}

/// A daemon with keys, replaying `photos` (each shown for [`HOLD_MS`], looping) with
/// walk-up punching on, once its camera streams.
pub async fn door(dir: &Path, photos: &[&str]) -> Daemon {
    door_with(dir, photos, &[]).await
}

/// [`door`] with more settings.
pub async fn door_with(dir: &Path, photos: &[&str], env: &[(&str, &str)]) -> Daemon {
    let reel = reel(dir, photos);
    let cfg = config(dir, true);
    let hold = HOLD_MS.to_string();
    let base = [
        ("ATTENDANCED_CAMERA__REPLAY_HOLD_MS", hold.as_str()),
        ("ATTENDANCED_CAMERA__WALK_UP", "true"),
    ];
    let d = Daemon::start_with(
        &dir.join("data"),
        &[&base[..], env].concat(),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--camera",
            &format!("replay:{}", reel.display()),
        ],
    );
    for _ in 0..200 {
        if d.client().get("/health").await.json()["camera"] == "streaming" {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replay camera did not start: {}", d.log_text());
}

/// A replay folder `dir/reel` of dev `photos`, in order.
pub fn reel(dir: &Path, photos: &[&str]) -> PathBuf {
    let reel = dir.join("reel");
    std::fs::create_dir_all(&reel).unwrap();
    for (i, p) in photos.iter().enumerate() {
        std::fs::copy(super::dev_photo(p), reel.join(format!("{i:03}.jpg"))).unwrap();
    }
    reel
}

/// Enrols 홍길동 from a dev photo the camera never shows.
pub async fn enrol_hong(c: &Client) -> super::daemon::Reply {
    let (ct, body) = super::daemon::Multipart::new()
        .text("name", "홍길동")
        .file("image", &super::read("caltech_p02/2.jpg"))
        .finish();
    c.request(
        Method::POST,
        "/enroll",
        &[("content-type", ct.as_str()), ("x-api-key", ADMIN)],
        body,
    )
    .await
}

pub fn admin_headers() -> [(&'static str, &'static str); 1] {
    [("x-api-key", ADMIN)]
}

pub async fn rows(c: &Client) -> Vec<Value> {
    let r = c
        .request(
            Method::GET,
            "/attendance?limit=1000",
            &admin_headers(),
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()["records"].as_array().expect("records").clone()
}

pub fn screenshots() -> PathBuf {
    std::env::var_os("KIOSK_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screens"))
}
