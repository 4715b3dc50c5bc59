//! Power cuts: the door's data folder under a layer that loses every write no fsync
//! covered (tests/common/powercut.c), the daemon killed at random moments while three
//! clients punch, the lost writes undone, the daemon started again. Every punch answered
//! 200 must still be there, once. `POWERCUT_SEED` repeats a run.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::api::data_dir;
use common::daemon::{Client, Daemon};
use common::fleet;
use common::powercut::{PowerCut, Undone};

/// The figure.
const CUTS: usize = 100;
/// One person per client (enrolled first), so each one's log is a short list.
const PEOPLE: [&str; 3] = [
    "caltech_p01/1.jpg",
    "caltech_p02/2.jpg",
    "caltech_p03/1.jpg",
];

#[test]
fn the_layer_loses_what_no_fsync_covered() {
    let dir = data_dir();
    let power = PowerCut::new(dir.path());
    let (f, g) = (dir.path().join("f"), dir.path().join("g"));
    std::fs::write(&f, "hello").unwrap();
    // Appended without a sync; written and synced; then overwritten without one.
    let script = format!(
        "printf ' world' >> {f}; printf abcd | dd of={g} conv=fsync status=none; \
         printf XY | dd of={g} bs=1 seek=1 conv=notrunc status=none",
        f = f.display(),
        g = g.display()
    );
    let st = std::process::Command::new("sh")
        .args(["-c", &script])
        .envs(power.env())
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "hello world");
    assert_eq!(std::fs::read_to_string(&g).unwrap(), "aXYd");
    let undone = power.cut(|_| 0);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "hello", "{undone:?}");
    assert_eq!(std::fs::read_to_string(&g).unwrap(), "abcd", "{undone:?}");
    assert_eq!((undone.writes, undone.bytes), (3, 8), "{undone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_punch_survives_a_hundred_power_cuts() {
    let seed = std::env::var("POWERCUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("power cuts with POWERCUT_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = data_dir();
    let power = PowerCut::new(dir.path());
    let power_env = power.env();
    let mut env: Vec<(&str, &str)> = power_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend([
        ("ATTENDANCED_FACE__EMBEDDER", "hog"),
        ("ATTENDANCED_PUNCH__DUPLICATE_WINDOW_SECS", "0"),
    ]);
    let mut d = Daemon::start(dir.path(), &env);
    let mut people = Vec::new();
    for (i, photo) in PEOPLE.iter().enumerate() {
        people.push(fleet::enrol(d.client(), &format!("P{i}"), photo).await);
    }
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut undone = Undone::default();
    for cut in 0..CUTS {
        let before = answered.lock().unwrap().len();
        let clients: Vec<_> = people
            .iter()
            .map(|who| tokio::spawn(punch_until_cut(d.client(), who.clone(), answered.clone())))
            .collect();
        // The power goes a few answers in, at a random moment of what is in flight (a
        // client that failed ends the wait: its panic is raised below).
        let wanted = before + rng.usize(1..=12);
        while answered.lock().unwrap().len() < wanted && !clients.iter().any(|c| c.is_finished()) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_micros(rng.u64(..5_000))).await;
        d.kill();
        for c in clients {
            c.await.expect("a client failed");
        }
        let u = power.cut(|n| if rng.bool() { 0 } else { rng.usize(..=n) });
        undone.writes += u.writes;
        undone.kept += u.kept;
        undone.bytes += u.bytes;
        d.restart();
        let so_far = answered.lock().unwrap().clone();
        check(&d.client(), &people, &so_far, cut).await;
    }
    let answered = answered.lock().unwrap().len();
    let rows = log(&d.client(), &people).await.len();
    eprintln!(
        "{CUTS} cuts: {answered} punches answered, all kept; {} rows committed but never \
         answered; {} unsynced writes lost ({} bytes), {} reached the disk anyway",
        rows - answered,
        undone.writes,
        undone.bytes,
        undone.kept
    );
    // The layer really lost writes: cuts that lose nothing prove nothing.
    assert!(undone.writes > 0, "{undone:?}");
    let db = rusqlite::Connection::open(dir.path().join("attendance.sqlite3")).unwrap();
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

/// Punches IN and OUT for `who` until the daemon is gone, recording each event id
/// answered.
async fn punch_until_cut(c: Client, who: String, answered: Arc<Mutex<Vec<String>>>) {
    for kind in ["IN", "OUT"].iter().cycle() {
        match c.try_punch(&who, kind).await {
            Some(id) => answered.lock().unwrap().push(id),
            None => return,
        }
    }
}

/// Every answered punch is in the log once, and every row has its outbox entry.
async fn check(c: &Client, people: &[String], answered: &[String], cut: usize) {
    let rows = log(c, people).await;
    let ids: HashSet<&str> = rows
        .iter()
        .map(|r| r["event_id"].as_str().expect("event_id"))
        .collect();
    assert_eq!(ids.len(), rows.len(), "cut {cut}: an event twice");
    let lost: Vec<_> = answered
        .iter()
        .filter(|id| !ids.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "cut {cut}: answered punches lost: {lost:?}"
    );
    let h = c.get("/health").await.json();
    assert_eq!(h["outbox_pending"], rows.len(), "cut {cut}: {h}");
}

/// The whole log, one employee at a time (each fits a page).
async fn log(c: &Client, people: &[String]) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    for who in people {
        let page = c
            .list(
                &format!("/attendance?employee_id={who}&limit=1000"),
                "records",
            )
            .await;
        assert!(page.len() < 1000, "{who}'s log outgrew one page");
        rows.extend(page);
    }
    rows
}
