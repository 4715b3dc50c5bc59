//! Card wear: bytes the door writes to storage (`write_bytes` of `/proc/PID/io`: what
//! reaches the page cache to be written, the SQLite WAL and its checkpoints, files and
//! the log), for an empty doorway per hour, per manual punch, per enrolment and per
//! unknown walk-up (without, with and with rationed face thumbnails). Every figure is
//! taken with MQTT up, after the outbox has drained (the published and confirmed marks
//! are writes too).
//!
//! `cargo bench --bench wear` (needs `../shared/faces`, `scripts/fetch-models`, MariaDB
//! and Mosquitto). `WEAR_SECS` sets how long the doorway phases run (default 60).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Duration;

use common::centre::Centre;
use common::daemon::Daemon;
use common::door::CHART;
use common::fleet::enrol;
use common::metrics::scrape;
use common::soak::{door, written};
use common::wait_until;

/// Someone never enrolled, shown for three frames (6 s: the door tries for a while
/// before it records `unknown`), then the empty doorway.
const STRANGER: &str = "_unenrolled/caltech_u01/1.jpg";

/// Waits until every event and roster change is published and confirmed.
async fn drained(d: &Daemon) {
    wait_until("the outbox drained", Duration::from_secs(60), || async {
        let h = d.client().get("/health").await.json();
        (h["outbox_pending"] == 0 && h["outbox_unconfirmed"] == 0).then_some(())
    })
    .await;
}

/// Bytes written while `f` runs and the outbox drains after.
async fn bytes_of<F: std::future::Future<Output = ()>>(d: &Daemon, f: F) -> u64 {
    drained(d).await;
    let before = written(d.pid());
    f.await;
    drained(d).await;
    written(d.pid()) - before
}

/// Unknown walk-ups in `secs` at a door whose camera shows a stranger and an empty
/// doorway in turn, with `more` settings: (walk-ups, bytes per walk-up).
async fn unknowns(dir: &Path, centre: &Centre, secs: u64, more: &[(&str, &str)]) -> (f64, f64) {
    let d = door(
        dir,
        &[STRANGER, STRANGER, STRANGER, CHART],
        Some(centre),
        more,
    )
    .await;
    // Failed camera attempts (unknown, or a gate's reason).
    let count = || async {
        let text = scrape(&d.client()).await;
        text.lines()
            .filter(|l| l.starts_with("attendanced_punches_total{"))
            .filter(|l| l.contains(r#"source="camera""#) && !l.contains(r#"result="recognised""#))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let first = count().await;
    let bytes = bytes_of(&d, tokio::time::sleep(Duration::from_secs(secs))).await;
    let n = count().await - first;
    (n, bytes as f64 / n.max(1.0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::var("WEAR_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let centre = Centre::start(dir.path(), "wear", vec![("RUST_LOG".into(), "warn".into())]).await;
    let mut rows: Vec<(String, String)> = Vec::new();

    let d = door(&dir.path().join("empty"), &[CHART], Some(&centre), &[]).await;
    let c = d.client();
    let empty = bytes_of(&d, tokio::time::sleep(Duration::from_secs(secs))).await;
    rows.push((
        "empty doorway, per hour".into(),
        format!("{:.0} B", empty as f64 * 3600.0 / secs as f64),
    ));
    // Ten different people (not 홍길동, caltech_p02, nor the stranger, caltech_p09).
    let people = [1, 3, 4, 5, 6, 7, 8, 10, 11, 12];
    let enrolments = people.len();
    let bytes = bytes_of(&d, async {
        for p in people {
            enrol(c, &format!("사람{p}"), &format!("caltech_p{p:02}/2.jpg")).await;
        }
    })
    .await;
    rows.push((
        "enrolment (one photo: template, crop, roster change)".into(),
        format!("{:.1} kB", bytes as f64 / enrolments as f64 / 1e3),
    ));
    let hong = enrol(c, "홍길동", "caltech_p02/2.jpg").await;
    let punches = 100;
    let bytes = bytes_of(&d, async {
        for i in 0..punches {
            c.punch(&hong, if i % 2 == 0 { "IN" } else { "OUT" }).await;
        }
    })
    .await;
    rows.push((
        "manual punch".into(),
        format!("{:.1} kB", bytes as f64 / punches as f64 / 1e3),
    ));
    drop(d);

    for (label, sub, more) in [
        ("unknown walk-up", "unknown", &[][..]),
        (
            "unknown walk-up, keep_punch_images",
            "images",
            &[("ATTENDANCED_STORAGE__KEEP_PUNCH_IMAGES", "true")][..],
        ),
        (
            "unknown walk-up, keep_punch_images, failure_images_per_hour = 0",
            "rationed",
            &[
                ("ATTENDANCED_STORAGE__KEEP_PUNCH_IMAGES", "true"),
                ("ATTENDANCED_STORAGE__FAILURE_IMAGES_PER_HOUR", "0"),
            ][..],
        ),
    ] {
        let (n, per) = unknowns(&dir.path().join(sub), &centre, secs, more).await;
        rows.push((
            format!("{label} ({n:.0} in {secs} s)"),
            format!("{:.1} kB", per / 1e3),
        ));
    }

    println!("| bytes written | |");
    println!("|---|---|");
    for (what, v) in rows {
        println!("| {what} | {v} |");
    }
}
