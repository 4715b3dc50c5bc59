//! The long run (`common::soak`) for as long as asked: `SOAK_MINUTES=60 cargo bench
//! --bench soak` (default 10). Prints the samples and, after a two-minute warm-up, how
//! fast each measure grows per hour (least squares), with the bytes written per attempt.
//! `tests/soak.rs` is the two-minute version with bounds.
//!
//! Needs `../shared/faces`, `scripts/fetch-models`, and MariaDB and Mosquitto installed
//! (`scripts/setup`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::soak::{Sample, soak};

const WARM_UP: f64 = 120.0;

/// Slope of `y` over `x` (least squares), per hour.
fn per_hour(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx * 3600.0 }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let minutes: u64 = std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let every = Duration::from_secs(30);
    println!("soak: {minutes} min, a sample every {} s", every.as_secs());
    let run = soak(dir.path(), Duration::from_secs(minutes * 60), every).await;
    print!("{}", run.table());
    let warm = run.after(WARM_UP);
    if warm.len() < 3 {
        println!("too short for rates after a {WARM_UP} s warm-up: SOAK_MINUTES=5 or more");
        return;
    }
    let rate = |f: &dyn Fn(&Sample) -> f64| {
        per_hour(&warm.iter().map(|s| (s.at, f(s))).collect::<Vec<_>>())
    };
    let (first, last) = (warm[0], warm[warm.len() - 1]);
    let attempts = (last.attempts - first.attempts).max(1) as f64;
    println!();
    println!("| after {WARM_UP:.0} s, per hour | growth |");
    println!("|---|---|");
    println!(
        "| resident memory | {:.1} MB |",
        rate(&|s| s.rss_kb as f64) / 1024.0
    );
    println!("| open descriptors | {:.1} |", rate(&|s| s.fds as f64));
    println!("| threads | {:.1} |", rate(&|s| s.threads as f64));
    println!(
        "| SQLite database | {:.1} MB |",
        rate(&|s| s.db_bytes as f64) / 1e6
    );
    println!(
        "| attempts recorded | {:.0} |",
        rate(&|s| s.attempts as f64)
    );
    println!(
        "| bytes written | {:.1} MB |",
        rate(&|s| s.written as f64) / 1e6
    );
    println!(
        "| bytes written per attempt (walk-ups, punches, enrolments and logs together) | {:.1} kB |",
        (last.written - first.written) as f64 / attempts / 1e3
    );
    println!(
        "manual punches {}, enrolments (and deletions) {}, largest WAL {} kB",
        run.manual_punches,
        run.enrolments,
        run.samples.iter().map(|s| s.wal_bytes).max().unwrap_or(0) / 1024
    );
}
