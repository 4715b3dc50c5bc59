//! The board budget (issue 18): CPU of the whole daemon pinned to one core (`taskset`),
//! per second of live analysis, for each embedder, with
//! - nobody in view (a grey frame with sensor-like noise),
//! - one person standing still, nobody asking (frames that differ slightly, as a real
//!   camera's do: a pixel of shift and noise per frame; an identical frame proves
//!   nothing),
//! - the same person with camera identifications (MODE_A) back to back,
//!
//! and the MODE_A answer time while they stand there (median and worst of the run).
//!
//! `cargo bench --bench budget` (needs `../shared/faces` and `scripts/fetch-models`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cpu_percent;
use common::daemon::Daemon;
use image::{Rgb, RgbImage};

const FRAMES: u32 = 20;
/// Each CPU figure is taken over this long.
const MEASURE: Duration = Duration::from_secs(10);

/// xorshift: deterministic noise without another crate.
fn noise(state: &mut u32) -> i16 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    (*state % 7) as i16 - 3
}

/// `FRAMES` 640x480 JPEGs of `photo` (or of nobody) centred on grey, each shifted by up
/// to a pixel and with ±3 levels of noise.
fn reel(dir: &Path, photo: Option<&str>) {
    std::fs::create_dir_all(dir).unwrap();
    let face = photo.map(|p| image::open(common::dev_photo(p)).unwrap().to_rgb8());
    let mut state = 0x9e37_79b9u32;
    for i in 0..FRAMES {
        let mut frame = RgbImage::from_pixel(640, 480, Rgb([110, 110, 110]));
        if let Some(face) = &face {
            let (x, y) = ((640 - face.width()) / 2, (480 - face.height()) / 2);
            image::imageops::replace(&mut frame, face, i64::from(x + i % 2), i64::from(y));
        }
        for p in frame.pixels_mut() {
            let n = noise(&mut state);
            p.0 = p.0.map(|v| (i16::from(v) + n).clamp(0, 255) as u8);
        }
        frame.save(dir.join(format!("{i:02}.jpg"))).unwrap();
    }
}

fn start(root: &Path, embedder: &str, reel: &Path) -> Daemon {
    let d = Daemon::start_with(
        &root.join(format!(
            "data-{embedder}-{}",
            reel.file_name().unwrap().to_string_lossy()
        )),
        &[
            ("STREAM_FPS", "20"),
            ("ATTENDANCED_FACE__EMBEDDER", embedder),
        ],
        &["--camera", &format!("replay:{}", reel.display())],
    );
    // Every thread of the daemon on core 0, as on a board with one core to spare.
    let pinned = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", "0", &d.pid().to_string()])
        .output()
        .expect("taskset (util-linux)");
    assert!(pinned.status.success(), "{pinned:?}");
    d
}

#[tokio::main]
async fn main() {
    let root = tempfile::tempdir().unwrap();
    let (empty, person) = (root.path().join("empty"), root.path().join("person"));
    let photo = "caltech_p02/2.jpg";
    reel(&empty, None);
    reel(&person, Some(photo));
    println!();
    println!(
        "Whole daemon on one core (taskset -c 0), 640x480 replay at 20 fps, analysis at 5 fps:"
    );
    println!(
        "| embedder | nobody | person standing | person, MODE_A back to back | MODE_A answer, median / worst |"
    );
    println!("|---|---|---|---|---|");
    for embedder in ["hog", "dlib-resnet"] {
        let d = start(root.path(), embedder, &empty);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let nobody = cpu_percent(d.pid(), MEASURE).await;
        drop(d);
        let d = start(root.path(), embedder, &person);
        let client = d.client();
        let r = client.enrol("Standing Person", &common::read(photo)).await;
        assert_eq!(r.status, 200, "{:?}", r.json());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let standing = cpu_percent(d.pid(), MEASURE).await;
        let times = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let asking = tokio::spawn({
            let times = times.clone();
            async move {
                loop {
                    let t = Instant::now();
                    let r = client
                        .post_json("/identify", &serde_json::json!({ "type": "IN" }))
                        .await;
                    assert_eq!(r.status, 200, "{:?}", r.json());
                    assert_eq!(r.json()["success"], true, "{:?}", r.json());
                    times.lock().unwrap().push(t.elapsed());
                }
            }
        });
        let identifying = cpu_percent(d.pid(), MEASURE).await;
        asking.abort();
        if let Err(e) = asking.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
        drop(d);
        let mut times = times.lock().unwrap().clone();
        times.sort();
        assert!(!times.is_empty(), "no identification answered");
        let (median, worst) = (times[times.len() / 2], times[times.len() - 1]);
        println!(
            "| {embedder} | {nobody:.1} % | {standing:.1} % | {identifying:.1} % | {} / {} ms ({} answers) |",
            median.as_millis(),
            worst.as_millis(),
            times.len()
        );
    }
}
