//! Two minutes of the long run (`common::soak`; `cargo bench --bench soak` runs it for
//! longer): after a warm-up, the daemon's memory, descriptors, threads and WAL stay
//! within the bounds below while people walk up, punch, enrol and are deleted, and every
//! attempt reaches MySQL. And an empty doorway writes nothing to the card.

mod common;

use std::time::Duration;

use common::metrics::{scrape, series};
use common::soak::{Sample, door, soak, written};
use common::wait_until;
use mysql_async::prelude::Queryable;

const LENGTH: Duration = Duration::from_secs(120);
const EVERY: Duration = Duration::from_secs(5);
/// Caches, pools and the embedder's buffers mostly settle within this.
const WARM_UP: f64 = 60.0;
/// Resident memory still moves in steps of 4-25 MB for the first minutes (malloc arenas
/// and buffers for the largest photo yet; seen at 56, 66, 96 s), then flattens (the
/// 10-minute bench: +0.6 MB over its last 8 minutes). Two minutes cannot tell a slow
/// leak from those steps, so this bound catches gross ones (a frame kept per analysis
/// is ~270 MB a minute); slow leaks are the bench's per-hour slope.
const RSS_GROWTH_KB: u64 = 64 * 1024;
const FD_GROWTH: usize = 8;
/// Tokio's blocking pool starts threads on demand and ends them after 10 s idle.
const THREAD_GROWTH: usize = 8;
/// SQLite checkpoints at 1,000 pages (4 MB); the WAL file is not truncated after.
const WAL_MAX: u64 = 8 * 1024 * 1024;

fn growth(warm: &[Sample], f: impl Fn(&Sample) -> u64) -> u64 {
    let max = warm.iter().map(&f).max().unwrap_or(0);
    max.saturating_sub(f(&warm[0]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_minutes_of_walk_ups_punches_and_enrolments_stay_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let run = soak(dir.path(), LENGTH, EVERY).await;
    print!("{}", run.table());
    let warm = run.after(WARM_UP);
    assert!(warm.len() >= 10, "{} samples after the warm-up", warm.len());
    let rss = growth(&warm, |s| s.rss_kb);
    assert!(
        rss <= RSS_GROWTH_KB,
        "resident memory grew {rss} kB after the warm-up"
    );
    let fds = growth(&warm, |s| s.fds as u64);
    assert!(
        fds <= FD_GROWTH as u64,
        "{fds} more open descriptors after the warm-up"
    );
    let threads = growth(&warm, |s| s.threads as u64);
    assert!(
        threads <= THREAD_GROWTH as u64,
        "{threads} more threads after the warm-up"
    );
    let wal = run.samples.iter().map(|s| s.wal_bytes).max().unwrap_or(0);
    assert!(wal <= WAL_MAX, "the WAL reached {wal} bytes");

    // The work was done: every manual punch and the walk-ups (three every 12 s) recorded,
    // and all of it in MySQL.
    let (first, last) = (run.samples[0], run.samples[run.samples.len() - 1]);
    let attempts = last.attempts - first.attempts;
    let walk_ups = attempts.saturating_sub(run.manual_punches as u64);
    assert!(walk_ups >= 15, "{walk_ups} walk-up attempts in two minutes");
    assert!(run.enrolments >= 5, "{} enrolments", run.enrolments);
    let c = run.door.client();
    let rows = wait_until(
        "every attempt in MySQL",
        Duration::from_secs(30),
        || async {
            let h = c.get("/health").await.json();
            let local = c.get("/attendance?limit=1000").await.json()["count"].as_u64()?;
            let mut m = run.centre.pool.get_conn().await.ok()?;
            let central: Option<u64> = m
                .query_first("SELECT COUNT(*) FROM attendance")
                .await
                .ok()?;
            (h["outbox_pending"] == 0 && central == Some(local)).then_some(local)
        },
    )
    .await;
    assert!(rows >= attempts, "{rows} rows for {attempts} attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_doorway_writes_nothing_to_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let d = door(dir.path(), &[common::door::CHART], None, &[]).await;
    let c = d.client();
    let analysed = || async {
        let text = scrape(&c).await;
        series(&text, "attendanced_camera_frames_analysed_total", &[])
    };
    // Settled (start-up writes done), then twenty analysed frames of nobody.
    let from = analysed().await;
    wait_until("frames analysed", Duration::from_secs(30), || async {
        (analysed().await >= from + 2.0).then_some(())
    })
    .await;
    let (before, frames) = (written(d.pid()), analysed().await);
    wait_until(
        "twenty more frames analysed",
        Duration::from_secs(60),
        || async { (analysed().await >= frames + 20.0).then_some(()) },
    )
    .await;
    let bytes = written(d.pid()) - before;
    assert_eq!(bytes, 0, "an empty doorway wrote {bytes} bytes");
}
