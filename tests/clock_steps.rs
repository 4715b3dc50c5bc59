//! A door whose clock is wrong, then stepped by NTP: punches taken before the step reach
//! MySQL marked `unsynced` and are corrected there when the clock synchronises; a repeat
//! across a step of hours, forward or back, is still a repeat.
//!
//! The door's clock is faked for its process only (libfaketime, `LD_PRELOAD`, an offset
//! read from a file the test rewrites), never the machine's; its time since boot is the
//! real one (`DONT_FAKE_MONOTONIC`), as NTP never steps it. "Synchronised" is a file the
//! test creates (`punch.clock_synced = PATH`, as systemd-timesyncd's flag file is).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use attendance::event::{AttendanceEvent, EventBatch};
use chrono::{DateTime, Utc};
use common::centre::Centre;
use common::daemon::{Client, Daemon};
use common::metrics::{scrape, series};
use common::wait_until;
use mysql_async::prelude::Queryable;
use serde_json::json;

/// The shared object that fakes the clock; `scripts/setup` installs it.
fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!("libfaketime is missing: apt-get install faketime (scripts/setup installs it)")
    })
}

/// The door's clock: an offset in seconds from the real one, in libfaketime's file.
struct DoorClock {
    offset_file: PathBuf,
    synced_file: PathBuf,
}

impl DoorClock {
    /// Sets the door's wall clock to `at` (real time passes on from there).
    fn set(&self, at: DateTime<Utc>) {
        let offset = (at - Utc::now()).num_seconds();
        std::fs::write(&self.offset_file, format!("{offset:+}\n")).unwrap();
    }

    /// NTP has synchronised the clock (or not).
    fn synced(&self, yes: bool) {
        if yes {
            std::fs::write(&self.synced_file, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(&self.synced_file);
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        [
            ("LD_PRELOAD", libfaketime().display().to_string()),
            (
                "FAKETIME_TIMESTAMP_FILE",
                self.offset_file.display().to_string(),
            ),
            // Re-read every second, so a step is seen at once.
            ("FAKETIME_CACHE_DURATION", "1".into()),
            ("DONT_FAKE_MONOTONIC", "1".into()),
            (
                "ATTENDANCED_PUNCH__CLOCK_SYNCED",
                self.synced_file.display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// A punch's answer: `(duplicate, event_id)`.
async fn punch(c: &Client, who: &str) -> (bool, Option<String>) {
    let r = c
        .post_json("/attendance", &json!({ "employee_id": who, "type": "IN" }))
        .await;
    assert_eq!(r.status, hyper::StatusCode::OK, "{:?}", r.json());
    let v = r.json();
    let id = v["event_id"].as_str().map(str::to_owned);
    (v["duplicate"] == true, id)
}

/// `(ts_server, clock)` of an event in MySQL, once there.
async fn central(pool: &mysql_async::Pool, event_id: &str) -> Option<(String, Option<String>)> {
    let mut c = pool.get_conn().await.ok()?;
    c.exec_first(
        "SELECT DATE_FORMAT(ts_server, '%Y-%m-%dT%H:%i:%s.%fZ'), clock FROM attendance
         WHERE event_id = ?",
        (event_id,),
    )
    .await
    .ok()?
}

/// Sets the door's clock `hours` off the real one and waits until the door reads it.
async fn step(clock: &DoorClock, c: &Client, hours: i64) {
    clock.set(Utc::now() + chrono::Duration::hours(hours));
    wait_until(
        "the door on its new time",
        Duration::from_secs(10),
        || async {
            let h = c.get("/health").await.json();
            let t = parse(h["timestamp"].as_str()?);
            let off = (t - Utc::now()).num_minutes() - hours * 60;
            (off.abs() <= 1).then_some(())
        },
    )
    .await;
}

/// The event the door published for `event_id`, rebuilt from its `/attendance` row.
async fn rows_event(c: &Client, event_id: &str) -> AttendanceEvent {
    let rows = c.list("/attendance", "records").await;
    let r = rows
        .iter()
        .find(|r| r["event_id"] == event_id)
        .expect("its row");
    AttendanceEvent {
        v: 1,
        event_id: event_id.to_owned(),
        employee_id: r["employee_id"].as_str().map(str::to_owned),
        kind: attendance::punch::PunchKind::In,
        device_id: "PI".into(),
        site: "hq".into(),
        source: attendance::event::Source::Manual,
        distance: None,
        threshold: None,
        embedder: None,
        reason: None,
        detail: None,
        ts_server: r["ts_server"].as_str().unwrap().to_owned(),
        ts_client: None,
        clock: Some(attendance::clock::ClockSync::Corrected),
    }
}

/// MySQL's microseconds as the door writes times (milliseconds, `+00:00`).
fn ts_door(mysql: &str) -> String {
    attendance::event::ts(parse(mysql))
}

fn parse(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().to_utc()
}

async fn start(dir: &Path) -> (Centre, Daemon, DoorClock, Client) {
    let metrics = ("ATTENDANCE_UPLINK_METRICS_LISTEN", "127.0.0.1:0");
    let centre = Centre::start(
        dir,
        "attendance_clock",
        vec![(metrics.0.into(), metrics.1.into())],
    )
    .await;
    let clock = DoorClock {
        offset_file: dir.join("faketime"),
        synced_file: dir.join("synchronized"),
    };
    // A Pi without a battery clock: it boots at 1970, not synchronised.
    clock.set(parse("1970-01-01T00:00:05Z"));
    clock.synced(false);
    let mut env = clock.env();
    env.extend([
        ("ATTENDANCED_MQTT__URL".into(), centre.mq.url()),
        ("ATTENDANCED_SITE".into(), "hq".into()),
        ("ATTENDANCED_DEVICE_ID".into(), "PI".into()),
        ("ATTENDANCED_MQTT__RECEIPT_TIMEOUT_SECS".into(), "3".into()),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let door = Daemon::start(&dir.join("door"), &env);
    let metrics = centre.uplink.metrics_client().await;
    (centre, door, clock, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn punches_before_ntp_are_marked_then_corrected_and_repeats_hold_across_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (centre, door, clock, metrics) = start(dir.path()).await;
    let c = door.client();
    let mut people = Vec::new();
    for (name, photo) in [
        ("홍길동", "caltech_p02/2.jpg"),
        ("김철수", "caltech_p03/2.jpg"),
        ("이영희", "caltech_p04/2.jpg"),
    ] {
        people.push(common::fleet::enrol(c, name, photo).await);
    }
    let who = &people[0];

    // Before NTP: recorded at 1970, and the centre is told so.
    let really = Utc::now();
    let (dup, id) = punch(&c, who).await;
    assert!(!dup);
    let id = id.expect("an event id");
    let (ts, clock_state) = wait_until("the 1970 punch in MySQL", Duration::from_secs(30), || {
        central(&centre.pool, &id)
    })
    .await;
    assert!(ts.starts_with("1970-01-01T"), "{ts}");
    assert_eq!(
        clock_state.as_deref(),
        Some("unsynced"),
        "a 1970 time unmarked"
    );
    let rows = c.list("/attendance", "records").await;
    assert_eq!(rows[0]["clock"], "unsynced", "{rows:?}");

    // NTP steps the clock to the real time: the punch is corrected at the door and in
    // MySQL to when it really happened, and no row is added.
    clock.set(Utc::now());
    clock.synced(true);
    let (ts, _) = wait_until(
        "the punch corrected in MySQL",
        Duration::from_secs(30),
        || async {
            central(&centre.pool, &id)
                .await
                .filter(|(_, c)| c.as_deref() == Some("corrected"))
        },
    )
    .await;
    let off = (parse(&ts) - really).num_milliseconds().abs();
    assert!(off < 2_000, "corrected to {ts}, punched at {really}");
    let rows = c.list("/attendance", "records").await;
    assert_eq!(
        (&rows[0]["clock"], &rows[0]["ts_server"]),
        (&json!("corrected"), &json!(ts_door(&ts)))
    );
    let text = scrape(&metrics).await;
    assert_eq!(
        series(&text, "attendance_uplink_events_corrected_total", &[]),
        1.0
    );
    let mut conn = centre.pool.get_conn().await.unwrap();
    let n: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM attendance")
        .await
        .unwrap();
    assert_eq!(n, Some(1), "the correction added no row");

    // Another door cannot correct this door's event: the centre takes a correction only
    // from the topic that sent the event (the broker's ACL binds topics to accounts).
    let mut forged: AttendanceEvent = rows_event(&c, &id).await;
    forged.device_id = "PI".into();
    forged.ts_server = "2030-01-01T00:00:00.000+00:00".into();
    let batch = EventBatch {
        v: 1,
        events: vec![forged],
    };
    let duplicates = |t: &str| series(t, "attendance_uplink_events_duplicate_total", &[]);
    let before = duplicates(&scrape(&metrics).await);
    centre
        .mq
        .publish("attendance/hq/OTHER/events", &batch.to_cbor());
    wait_until(
        "the forged correction read",
        Duration::from_secs(20),
        || async { (duplicates(&scrape(&metrics).await) > before).then_some(()) },
    )
    .await;
    let (now_ts, _) = central(&centre.pool, &id).await.unwrap();
    assert_eq!(
        now_ts, ts,
        "another door's topic corrected this door's punch"
    );

    // A clock three hours behind stepped forward, and one three hours ahead stepped
    // back: a second punch seconds later is a repeat, though the wall says hours.
    for (hours, who) in [(-3, &people[1]), (3, &people[2])] {
        step(&clock, &c, hours).await;
        let (dup, first) = punch(&c, who).await;
        assert!(!dup && first.is_some(), "their first punch");
        step(&clock, &c, 0).await;
        let (dup, again) = punch(&c, who).await;
        assert!(
            dup && again.is_none(),
            "a step of {hours} h made a repeat a new punch"
        );
    }
}
