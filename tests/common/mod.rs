//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod api;
pub mod browser;
pub mod centre;
pub mod client;
pub mod contract;
pub mod daemon;
pub mod door;
pub mod feed;
pub mod fleet;
pub mod metrics;
pub mod multipart;
pub mod netns;
pub mod pki;
pub mod powercut;
pub mod relay;
pub mod services;
pub mod shipped;
pub mod sites;
pub mod soak;
pub mod uplink;
pub mod wire;
pub mod world;

use std::path::PathBuf;

/// `../shared/faces` beside the repository (or `$FACES_DIR`). Tests need the real photos:
/// a missing folder fails loudly rather than skipping.
pub fn faces_dir() -> PathBuf {
    let dir = std::env::var_os("FACES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/faces"));
    assert!(
        dir.join("dev").is_dir(),
        "face photos not found at {} (clone the project beside `shared/`, or set FACES_DIR)",
        dir.display()
    );
    dir
}

pub fn dev_photo(rel: &str) -> PathBuf {
    faces_dir().join("dev").join(rel)
}

/// A black 1-bit greyscale PNG of `width` x `height`: a few kilobytes whose header
/// promises any number of pixels (decompression-bomb and pixel-limit cases).
pub fn blank_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(std::io::Cursor::new(&mut out), width, height);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&vec![0u8; width.div_ceil(8) as usize * height as usize])
            .unwrap();
    }
    out
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = dev_photo(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `./models` (or `$MODELS_DIR`), as `scripts/fetch-models` fills it. Missing models
/// fail the test with the command that fetches them.
pub fn models_dir() -> PathBuf {
    let dir = std::env::var_os("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"));
    assert!(
        attendance::face::DlibEmbedder::available(&dir),
        "dlib model files not found in {}: run scripts/fetch-models (scripts/test does)",
        dir.display()
    );
    dir
}

/// A process's CPU (utime + stime) over the next `over`, in % of one core: the
/// benchmarks' CPU figures.
pub async fn cpu_percent(pid: u32, over: std::time::Duration) -> f64 {
    let (c0, t0) = (cpu_seconds(pid), std::time::Instant::now());
    tokio::time::sleep(over).await;
    (cpu_seconds(pid) - c0) / t0.elapsed().as_secs_f64() * 100.0
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ
}

/// Polls `f` every 100 ms until it gives a value; fails naming `what` after `within`.
pub async fn wait_until<T, F, Fut>(what: &str, within: std::time::Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
