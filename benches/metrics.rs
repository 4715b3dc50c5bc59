//! What the Prometheus metrics cost: `/identify` requests a second with `http.metrics`
//! on and off (issue 17: at most 2 % slower), for each embedder. Two daemons run side by
//! side with no camera; the load (two clients back to back, as many as analyses run at
//! once) goes to one at a time, alternating, so drift of the machine hits both alike.
//!
//! `cargo bench --bench metrics` (needs `../shared/faces` and `scripts/fetch-models`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::daemon::{Client, Daemon};

/// Each measurement window.
const WINDOW: Duration = Duration::from_secs(8);
const ROUNDS: usize = 4;
const CLIENTS: usize = 2;
/// An enrolled person's other photos and a stranger: both paths of a punch.
const PHOTOS: [&str; 4] = [
    "caltech_p02/3.jpg",
    "caltech_p02/4.jpg",
    "_unenrolled/caltech_u01/1.jpg",
    "caltech_p02/5.jpg",
];

/// Requests answered 200 per second over `WINDOW`.
async fn rate(c: Client) -> f64 {
    let photos: Vec<Vec<u8>> = PHOTOS.iter().map(|p| common::read(p)).collect();
    let start = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|w| {
            let photos = photos.clone();
            tokio::spawn(async move {
                let mut n = 0usize;
                let mut i = w;
                while start.elapsed() < WINDOW {
                    let r = c.identify("AUTO", &photos[i % photos.len()]).await;
                    assert_eq!(r.status, 200, "{:?}", r.json());
                    n += 1;
                    i += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0).max(1.0);
    (m, var.sqrt())
}

#[tokio::main]
async fn main() {
    let root = tempfile::tempdir().unwrap();
    println!();
    println!(
        "/identify (multipart photo, {CLIENTS} clients back to back), {ROUNDS} alternating windows of {}s each:",
        WINDOW.as_secs()
    );
    println!("| embedder | metrics on, req/s | metrics off, req/s | on vs off |");
    println!("|---|---|---|---|");
    for embedder in ["hog", "dlib-resnet"] {
        let start = |metrics: &str| {
            Daemon::start(
                &root.path().join(format!("{embedder}-{metrics}")),
                &[
                    ("ATTENDANCED_FACE__EMBEDDER", embedder),
                    ("ATTENDANCED_HTTP__METRICS", metrics),
                ],
            )
        };
        let (on, off) = (start("true"), start("false"));
        for d in [&on, &off] {
            let r = d
                .client()
                .enrol("Bench Person", &common::read("caltech_p02/2.jpg"))
                .await;
            assert_eq!(r.status, 200, "{:?}", r.json());
            // Warm up: first requests load pages and caches.
            rate_once(d.client()).await;
        }
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            // Alternate which goes first.
            if round % 2 == 0 {
                with.push(rate(on.client()).await);
                without.push(rate(off.client()).await);
            } else {
                without.push(rate(off.client()).await);
                with.push(rate(on.client()).await);
            }
        }
        // The metrics daemon did record: its scrape shows the punches.
        let scrape = on.client().get("/metrics").await;
        assert_eq!(scrape.status, 200);
        assert!(String::from_utf8_lossy(&scrape.body).contains("attendanced_punches_total{"));
        let ((w, ws), (wo, wos)) = (mean_sd(&with), mean_sd(&without));
        println!(
            "| {embedder} | {w:.2} ± {ws:.2} | {wo:.2} ± {wos:.2} | {:+.1} % |",
            (w / wo - 1.0) * 100.0
        );
    }
}

/// A few requests, unmeasured.
async fn rate_once(c: Client) {
    for p in PHOTOS {
        let r = c.identify("AUTO", &common::read(p)).await;
        assert_eq!(r.status, 200);
    }
}
