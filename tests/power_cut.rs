//! Power cuts: the door's data folder under a layer that loses every write and every name
//! change no fsync covered (tests/common/powercut.c), the daemon killed at random moments
//! while three clients punch and HR enrols, what was lost undone, the daemon started
//! again. Every punch answered 200 must still be there, once, and every template
//! answered with its file. `POWERCUT_SEED` repeats a run.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::api::data_dir;
use common::daemon::{Client, Daemon, Multipart};
use common::fleet;
use common::powercut::{PowerCut, Undone};
use hyper::{Method, StatusCode};

/// The issue's figure.
const CUTS: usize = 100;
/// One person per client (enrolled first), so each one's log is a short list.
const PEOPLE: [&str; 3] = [
    "caltech_p01/1.jpg",
    "caltech_p02/2.jpg",
    "caltech_p03/1.jpg",
];
/// Whom HR keeps adding templates to, from these photos.
const HR_PHOTOS: [&str; 3] = [
    "caltech_p04/1.jpg",
    "caltech_p04/2.jpg",
    "caltech_p04/3.jpg",
];

/// What the daemon answered 200 to.
#[derive(Default, Clone)]
struct Answered {
    punches: Vec<String>,
    templates: Vec<i64>,
}

/// What each step does to the watched folder `D` (Python: its calls are plain libc ones).
const STEPS: &str = r#"
import os, sys
D = sys.argv[1]
def put(name, data, mode="w", sync=True):
    with open(f"{D}/{name}", mode) as f:
        f.write(data); f.flush()
        if sync: os.fsync(f.fileno())
def sync_folder():
    fd = os.open(D, os.O_RDONLY); os.fsync(fd); os.close(fd)
put("f", " world", "a", sync=False)           # appended, never synced: lost
with open(f"{D}/g", "r+") as g:
    g.seek(1); g.write("XY"); g.flush(); os.fsync(g.fileno())   # synced: kept
    g.seek(0); g.write("Z")                   # not synced: lost
put(".h.tmp", "atomic"); os.rename(f"{D}/.h.tmp", f"{D}/h"); sync_folder()  # kept
put("new", "x")                               # synced, its name never: gone
put(".f.tmp", "other"); os.rename(f"{D}/.f.tmp", f"{D}/f")  # f comes back
os.unlink(f"{D}/g")                           # g comes back
"#;

#[test]
fn the_layer_loses_what_no_fsync_covered() {
    let dir = data_dir();
    let power = PowerCut::new(dir.path());
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).ok();
    std::fs::write(dir.path().join("f"), "hello").unwrap();
    std::fs::write(dir.path().join("g"), "abcd").unwrap();
    let st = std::process::Command::new("python3")
        .args(["-c", STEPS])
        .arg(dir.path())
        .envs(power.env())
        .status()
        .expect("python3");
    assert!(st.success());
    assert_eq!((read("f"), read("g")), (Some("other".into()), None));
    assert_eq!(
        (read("h"), read("new")),
        (Some("atomic".into()), Some("x".into()))
    );
    let undone = power.cut(|_| 0);
    assert_eq!(read("f").as_deref(), Some("hello"), "{undone:?}");
    assert_eq!(read("g").as_deref(), Some("aXYd"), "{undone:?}");
    assert_eq!(read("h").as_deref(), Some("atomic"), "{undone:?}");
    assert_eq!(read("new"), None, "{undone:?}");
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["f", "g", "h"], "{undone:?}");
    // Lost: the append (6 bytes) and the "Z" (1); names: new, .f.tmp, its rename, g's unlink.
    assert_eq!(
        (undone.writes, undone.bytes, undone.names),
        (2, 7, 4),
        "{undone:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_punch_and_enrolment_survives_a_hundred_power_cuts() {
    let mut rng = seeded();
    let dir = data_dir();
    let power = PowerCut::new(dir.path());
    let power_env = power.env();
    let env = door_env(&power_env);
    let mut d = Daemon::start(dir.path(), &env);
    let mut people = Vec::new();
    for (i, photo) in PEOPLE.iter().enumerate() {
        people.push(fleet::enrol(d.client(), &format!("P{i}"), photo).await);
    }
    let hr = fleet::enrol(d.client(), "HR", HR_PHOTOS[0]).await;
    let photos: Vec<_> = HR_PHOTOS.iter().map(|p| common::read(p)).collect();
    let answered = Arc::new(Mutex::new(Answered::default()));
    let (mut undone, mut rows) = (Undone::default(), 0);
    for cut in 0..CUTS {
        let (before, templates_before) = {
            let a = answered.lock().unwrap();
            (a.punches.len(), a.templates.len())
        };
        let mut clients: Vec<_> = people
            .iter()
            .map(|who| tokio::spawn(punch_until_cut(d.client(), who.clone(), answered.clone())))
            .collect();
        clients.push(tokio::spawn(enrol_until_cut(
            d.client(),
            hr.clone(),
            photos.clone(),
            answered.clone(),
        )));
        // The power goes a few punches in, at a random moment of what is in flight; one
        // time in four after an enrolment too, somewhere in the next one (a client that
        // failed ends the wait: its panic is raised below).
        let wanted = before + rng.usize(1..=12);
        let enrolments = if rng.u8(..4) == 0 {
            templates_before + 1
        } else {
            0
        };
        let ready = |a: &Answered| a.punches.len() >= wanted && a.templates.len() >= enrolments;
        while !ready(&answered.lock().unwrap()) && !clients.iter().any(|c| c.is_finished()) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let within = if enrolments > 0 { 300_000 } else { 5_000 };
        tokio::time::sleep(Duration::from_micros(rng.u64(..within))).await;
        d.kill();
        for c in clients {
            c.await.expect("a client failed");
        }
        undone += power.cut(|n| if rng.bool() { 0 } else { rng.usize(..=n) });
        d.restart();
        let so_far = answered.lock().unwrap().clone();
        rows = check(&d.client(), dir.path(), &so_far, cut).await;
    }
    let answered = answered.lock().unwrap().clone();
    eprintln!(
        "{CUTS} cuts: {} punches answered, all kept; {} rows committed but never answered; \
         {} templates answered, all kept with their files; {} unsynced writes lost ({} \
         bytes), {} reached the disk anyway; {} name changes lost",
        answered.punches.len(),
        rows - answered.punches.len(),
        answered.templates.len(),
        undone.writes,
        undone.bytes,
        undone.kept,
        undone.names
    );
    // The layer really lost writes: cuts that lose nothing prove nothing. (Name changes
    // are lost only when a cut lands between a rename and its folder's sync, a short
    // window: the unit test above checks that part of the layer.)
    assert!(undone.writes > 0, "{undone:?}");
    assert!(!answered.templates.is_empty(), "no enrolment answered");
    let db = rusqlite::Connection::open(dir.path().join("attendance.sqlite3")).unwrap();
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

/// A door whose power goes during its first start (database made, schema migrated,
/// folders created), at each of the start's writes and name changes in turn, starts the
/// next time and takes an enrolment and a punch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_at_any_point_of_a_first_start_leaves_a_door_that_starts() {
    let mut undone = Undone::default();
    let mut point = 1;
    loop {
        let dir = data_dir();
        let power = PowerCut::new(dir.path());
        let power_env = power.env();
        let mut d = Daemon::unstarted(dir.path(), &door_env(&power_env));
        let n = point.to_string();
        let cut = d.run_until_cut_or_ready(&[("POWERCUT_KILL_AFTER", n.as_str())]);
        undone += power.cut(|_| 0);
        d.restart();
        let who = fleet::enrol(d.client(), "A", PEOPLE[0]).await;
        d.client().punch(&who, "IN").await;
        if !cut {
            break; // ready before change `point`: every point of the start was cut
        }
        point += 1;
    }
    eprintln!(
        "cut before each of the {} changes of a first start: {undone:?}",
        point - 1
    );
    assert!(point > 10, "a first start of {} changes", point - 1);
}

/// A random source, its seed printed (`POWERCUT_SEED` repeats a run).
fn seeded() -> fastrand::Rng {
    let seed = std::env::var("POWERCUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("power cuts with POWERCUT_SEED={seed}");
    fastrand::Rng::with_seed(seed)
}

/// The door's environment under `power`: HOG (quick to start), no duplicate window.
fn door_env<'a>(power: &'a [(&'static str, String); 3]) -> Vec<(&'static str, &'a str)> {
    let mut env: Vec<(&str, &str)> = power.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend([
        ("ATTENDANCED_FACE__EMBEDDER", "hog"),
        ("ATTENDANCED_PUNCH__DUPLICATE_WINDOW_SECS", "0"),
    ]);
    env
}

/// Punches IN and OUT for `who` until the daemon is gone, recording each event id
/// answered.
async fn punch_until_cut(c: Client, who: String, answered: Arc<Mutex<Answered>>) {
    for kind in ["IN", "OUT"].iter().cycle() {
        match c.try_punch(&who, kind).await {
            Some(id) => answered.lock().unwrap().punches.push(id),
            None => return,
        }
    }
}

/// Adds templates to `who` from `photos` until the daemon is gone, recording each
/// template id answered.
async fn enrol_until_cut(
    c: Client,
    who: String,
    photos: Vec<Vec<u8>>,
    answered: Arc<Mutex<Answered>>,
) {
    for photo in photos.iter().cycle() {
        let (ct, body) = Multipart::new()
            .text("employee_id", &who)
            .file("image", photo)
            .finish();
        let headers = [("content-type", ct.as_str())];
        let Some(r) = c.try_request(Method::POST, "/enroll", &headers, body).await else {
            return;
        };
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        let id = r.json()["template_id"].as_i64().expect("template_id");
        answered.lock().unwrap().templates.push(id);
    }
}

/// After a restart: every answered punch is in the log, with its outbox entry (the
/// schema keeps event ids unique); every answered template is there with its files.
async fn check(c: &Client, dir: &Path, answered: &Answered, cut: usize) -> usize {
    let db = rusqlite::Connection::open(dir.join("attendance.sqlite3")).unwrap();
    let ids: HashSet<String> = db
        .prepare("SELECT event_id FROM attendance")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let lost: Vec<_> = answered
        .punches
        .iter()
        .filter(|id| !ids.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "cut {cut}: answered punches lost: {lost:?}"
    );
    let h = c.get("/health").await.json();
    assert_eq!(h["outbox_pending"], ids.len(), "cut {cut}: {h}");
    let mut stmt = db
        .prepare("SELECT vector_path, crop_path FROM templates WHERE id = ?1")
        .unwrap();
    for id in &answered.templates {
        let (vector, crop): (String, Option<String>) = stmt
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap_or_else(|e| panic!("cut {cut}: answered template {id} lost: {e}"));
        let files = [
            Some(dir.join("encodings").join(vector)),
            crop.map(|c| dir.join("images").join(c)),
        ];
        for f in files.into_iter().flatten() {
            let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
            assert!(
                len > 0,
                "cut {cut}: template {id}'s {} missing or empty",
                f.display()
            );
        }
    }
    ids.len()
}
