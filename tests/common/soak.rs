//! The long run, shared by `tests/soak.rs` (two minutes) and `cargo bench --bench soak`
//! (minutes configurable): a door with MQTT up, a replayed camera where someone walks
//! up every few seconds (two enrolled people and a stranger, an empty doorway between),
//! manual punches, enrolments and deletions, `/metrics` scraped and `/events` read all
//! along; the daemon's resident memory, open descriptors, threads, SQLite file sizes and
//! bytes written to storage sampled as it goes.

use std::path::Path;
use std::time::{Duration, Instant};

use hyper::StatusCode;

use super::centre::Centre;
use super::daemon::Daemon;
use super::fleet::enrol;

/// How long each replayed photo is shown: a walk-up every two of them.
const HOLD_MS: u64 = 2000;
/// The camera: enrolled person, doorway, stranger, doorway, another enrolled person,
/// doorway.
const REEL: [&str; 6] = [
    "caltech_p02/3.jpg",
    super::door::CHART,
    "caltech_p09/3.jpg",
    super::door::CHART,
    "caltech_p03/3.jpg",
    super::door::CHART,
];

/// One reading of the daemon.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds into the run.
    pub at: f64,
    pub rss_kb: u64,
    pub fds: usize,
    pub threads: usize,
    /// The SQLite database and its WAL.
    pub db_bytes: u64,
    pub wal_bytes: u64,
    /// Bytes the daemon has caused to be written to storage (`/proc/PID/io`).
    pub written: u64,
    /// Attempts recorded so far (every source).
    pub attempts: u64,
}

/// What the run did and what it saw.
pub struct Run {
    pub samples: Vec<Sample>,
    pub manual_punches: usize,
    pub enrolments: usize,
    /// The daemon, still running (its state for the caller to check).
    pub door: Daemon,
    pub centre: Centre,
}

impl Run {
    /// The samples as a table, one line each.
    pub fn table(&self) -> String {
        let mut t =
            String::from("     s   rss kB  fds  thr   db kB  wal kB  written kB  attempts\n");
        for s in &self.samples {
            t += &format!(
                "{:6.0} {:8} {:4} {:4} {:7} {:7} {:11} {:9}\n",
                s.at,
                s.rss_kb,
                s.fds,
                s.threads,
                s.db_bytes / 1024,
                s.wal_bytes / 1024,
                s.written / 1024,
                s.attempts
            );
        }
        t
    }

    /// The samples taken `warm_up` seconds into the run or later.
    pub fn after(&self, warm_up: f64) -> Vec<Sample> {
        self.samples
            .iter()
            .filter(|s| s.at >= warm_up)
            .copied()
            .collect()
    }
}

/// `/proc/PID/status` field `key` (first number).
fn status_field(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// Bytes the process caused to be written to storage (`write_bytes` of `/proc/PID/io`).
pub fn written(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: ")?.parse().ok())
        .expect("write_bytes in /proc/PID/io")
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// Reads the daemon now.
pub async fn sample(door: &Daemon, started: Instant) -> Sample {
    let pid = door.pid();
    let db = door.data_dir.join("attendance.sqlite3");
    let text = super::metrics::scrape(&door.client()).await;
    let attempts = text
        .lines()
        .filter(|l| l.starts_with("attendanced_punches_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64;
    Sample {
        at: started.elapsed().as_secs_f64(),
        rss_kb: status_field(pid, "VmRSS:"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count(),
        threads: status_field(pid, "Threads:") as usize,
        db_bytes: size(&db),
        wal_bytes: size(&db.with_extension("sqlite3-wal")),
        written: written(pid),
        attempts,
    }
}

/// A door replaying `photos` with walk-up on, reporting to `centre` if any, with `more`
/// settings, once its camera streams.
pub async fn door(
    dir: &Path,
    photos: &[&str],
    mqtt: Option<&Centre>,
    more: &[(&str, &str)],
) -> Daemon {
    let reel = super::door::reel(dir, photos);
    let hold = HOLD_MS.to_string();
    let mut env = vec![
        ("ATTENDANCED_CAMERA__REPLAY_HOLD_MS", hold.clone()),
        ("ATTENDANCED_CAMERA__WALK_UP", "true".into()),
        // Every walk-up recorded, not folded into the last one.
        ("ATTENDANCED_PUNCH__DUPLICATE_WINDOW_SECS", "0".into()),
        ("ATTENDANCED_SITE", "hq".into()),
        ("ATTENDANCED_DEVICE_ID", "SOAK".into()),
    ];
    if let Some(c) = mqtt {
        env.push(("ATTENDANCED_MQTT__URL", c.mq.url()));
    }
    env.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let spec = format!("replay:{}", reel.display());
    let d = Daemon::start_with(&dir.join("data"), &env, &["--camera", &spec]);
    super::wait_until("the replay camera", Duration::from_secs(10), || async {
        (d.client().get("/health").await.json()["camera"] == "streaming").then_some(())
    })
    .await;
    d
}

/// Runs the door for `length`, sampling every `every`.
pub async fn soak(dir: &Path, length: Duration, every: Duration) -> Run {
    let centre = Centre::start(dir, "soak", vec![("RUST_LOG".into(), "warn".into())]).await;
    // The door logs at its default level: what it writes, logs included, is sampled.
    let door = door(dir, &REEL, Some(&centre), &[]).await;
    let c = door.client();
    let hong = enrol(c, "홍길동", "caltech_p02/2.jpg").await;
    enrol(c, "김철수", "caltech_p03/2.jpg").await;
    let (_, feed) = c.events("/events", &[]).await;
    let mut feed = feed.expect("the /events feed");
    let started = Instant::now();
    let mut samples = vec![sample(&door, started).await];
    let (mut manual_punches, mut enrolments) = (0, 0);
    let mut next_sample = started + every;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    while started.elapsed() < length {
        tokio::select! {
            _ = tick.tick() => {}
            // The feed read as a screen reads it; a quiet second is no failure.
            _ = feed.next(Duration::from_secs(1)) => continue,
        }
        let n = started.elapsed().as_secs() / 2;
        c.punch(&hong, if n.is_multiple_of(2) { "IN" } else { "OUT" })
            .await;
        manual_punches += 1;
        if n.is_multiple_of(10) {
            // A visitor enrolled and deleted again: the gallery comes back to its size.
            let id = enrol(c, "방문자", "caltech_p04/2.jpg").await;
            let r = c.delete(&format!("/users/{id}")).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
            enrolments += 1;
        }
        if Instant::now() >= next_sample {
            samples.push(sample(&door, started).await);
            next_sample += every;
        }
    }
    samples.push(sample(&door, started).await);
    Run {
        samples,
        manual_punches,
        enrolments,
        door,
        centre,
    }
}
