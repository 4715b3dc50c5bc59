//! The board budget (issue 18): CPU of the whole daemon pinned to one core (`taskset`),
//! per second of live analysis, for each embedder, with
//! - nobody in view (a grey frame with sensor-like noise),
//! - one person standing still, nobody asking (frames that differ slightly, as a real
//!   camera's do: a pixel of shift and noise per frame; an identical frame proves
//!   nothing),
//! - a person swaying in place (up to 6 px between frames: every frame a new scene),
//! - the standing person with camera identifications (MODE_A) back to back,
//!
//! and the MODE_A answer time while they stand there (median and worst of the run);
//! then, unpinned, how many analyses a second `camera.analysis_threads` 1 and 2 give when
//! an analysis takes longer than the analysis period (30 a second, CNN, a camera
//! enrolment waiting).
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

/// `FRAMES` 640x480 JPEGs of `photo` (or of nobody) centred on grey, each shifted by
/// `sway` pixels at most (a person standing: 1; one who sways: 6) and with ±3 levels of
/// noise.
fn reel(dir: &Path, photo: Option<&str>, sway: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let face = photo.map(|p| image::open(common::dev_photo(p)).unwrap().to_rgb8());
    let mut state = 0x9e37_79b9u32;
    for i in 0..FRAMES {
        let mut frame = RgbImage::from_pixel(640, 480, Rgb([110, 110, 110]));
        if let Some(face) = &face {
            let (x, y) = ((640 - face.width()) / 2 - 4, (480 - face.height()) / 2 - 4);
            // 0, sway/2, sway, sway/2, ... across; half that down.
            let step = [0, sway / 2, sway, sway / 2][i as usize % 4];
            let (x, y) = (x + step, y + step / 2);
            image::imageops::replace(&mut frame, face, i64::from(x), i64::from(y));
        }
        for p in frame.pixels_mut() {
            let n = noise(&mut state);
            p.0 = p.0.map(|v| (i16::from(v) + n).clamp(0, 255) as u8);
        }
        frame.save(dir.join(format!("{i:02}.jpg"))).unwrap();
    }
}

fn start(root: &Path, embedder: &str, reel: &Path) -> Daemon {
    let d = daemon(root, embedder, reel, &[]);
    // Every thread of the daemon on core 0, as on a board with one core to spare.
    let pinned = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", "0", &d.pid().to_string()])
        .output()
        .expect("taskset (util-linux)");
    assert!(pinned.status.success(), "{pinned:?}");
    d
}

fn daemon(root: &Path, embedder: &str, reel: &Path, env: &[(&str, &str)]) -> Daemon {
    let env = [
        &[
            ("STREAM_FPS", "20"),
            ("ATTENDANCED_FACE__EMBEDDER", embedder),
        ],
        env,
    ]
    .concat();
    Daemon::start_with(
        &root.join(format!(
            "data-{embedder}-{}",
            reel.file_name().unwrap().to_string_lossy()
        )),
        &env,
        &["--camera", &format!("replay:{}", reel.display())],
    )
}

/// Fresh analyses (not carried over from a still frame) per second while a camera
/// enrolment keeps the analysis window open, with `threads` analyses at once at 30 a
/// second: what a board whose analysis takes longer than its period gains from its
/// other cores.
async fn analyses_per_second(root: &Path, reel: &Path, threads: usize) -> f64 {
    let threads = threads.to_string();
    let root = root.join(format!("threads-{threads}"));
    std::fs::create_dir_all(&root).unwrap();
    let d = daemon(
        &root,
        "dlib-resnet",
        reel,
        &[
            ("ATTENDANCED_CAMERA__ANALYSIS_FPS", "30"),
            ("ATTENDANCED_CAMERA__ANALYSIS_THREADS", &threads),
            ("ATTENDANCED_CAMERA__ENROL_WINDOW_MS", "10000"),
        ],
    );
    let client = d.client();
    let enrolling = tokio::spawn({
        let client = d.client();
        async move {
            client
                .post_json(
                    "/enroll/json",
                    &serde_json::json!({ "name": "Standing Person" }),
                )
                .await
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (start, mut seen) = (Instant::now(), std::collections::BTreeSet::new());
    while start.elapsed() < Duration::from_secs(5) {
        let s = client.get("/status").await.json();
        if s["detection"] == "full"
            && let Some(seq) = s["frame_seq"].as_u64()
        {
            seen.insert(seq);
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let rate = seen.len() as f64 / start.elapsed().as_secs_f64();
    let r = enrolling.await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    rate
}

#[tokio::main]
async fn main() {
    let root = tempfile::tempdir().unwrap();
    let (empty, person) = (root.path().join("empty"), root.path().join("person"));
    let swaying = root.path().join("swaying");
    let photo = "caltech_p02/2.jpg";
    reel(&empty, None, 0);
    reel(&person, Some(photo), 1);
    reel(&swaying, Some(photo), 6);
    println!();
    println!(
        "Whole daemon on one core (taskset -c 0), 640x480 replay at 20 fps, analysis at 5 fps:"
    );
    println!(
        "| embedder | nobody | person standing | person swaying | person, MODE_A back to back | MODE_A answer, median / worst |"
    );
    println!("|---|---|---|---|---|---|");
    for embedder in ["hog", "dlib-resnet"] {
        let d = start(root.path(), embedder, &empty);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let nobody = cpu_percent(d.pid(), MEASURE).await;
        drop(d);
        let d = start(root.path(), embedder, &swaying);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let sway = cpu_percent(d.pid(), MEASURE).await;
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
            "| {embedder} | {nobody:.1} % | {standing:.1} % | {sway:.1} % | {identifying:.1} % | {} / {} ms ({} answers) |",
            median.as_millis(),
            worst.as_millis(),
            times.len()
        );
    }
    println!();
    println!(
        "Fresh analyses a second, CNN, a camera enrolment waiting, analysis_fps 30, both cores:"
    );
    println!("| analysis_threads | analyses / s |");
    println!("|---|---|");
    for threads in [1, 2] {
        let rate = analyses_per_second(root.path(), &swaying, threads).await;
        println!("| {threads} | {rate:.1} |");
    }
}
