//! A fleet on one machine: doors and an uplink on a private Mosquitto and MariaDB, and what
//! the fleet tests ask of them.

use std::path::Path;
use std::time::Duration;

use hyper::StatusCode;
use serde_json::Value;

use super::centre::Centre;
use super::daemon::{Client, Daemon};
use super::services::{MariaDb, Mosquitto};
use super::uplink::Uplink;
use super::wait_until;

pub const DB: &str = "attendance_fleet";
/// Three people, each with an enrolment photo and another photo to be recognised from.
pub const P2: (&str, &str) = ("caltech_p02/2.jpg", "caltech_p02/3.jpg");
pub const P3: (&str, &str) = ("caltech_p03/2.jpg", "caltech_p03/3.jpg");
pub const P4: (&str, &str) = ("caltech_p04/2.jpg", "caltech_p04/3.jpg");
pub const P5: (&str, &str) = ("caltech_p05/2.jpg", "caltech_p05/3.jpg");
pub const P6: (&str, &str) = ("caltech_p06/2.jpg", "caltech_p06/3.jpg");

pub fn door_env(mq: &Mosquitto, device: &str) -> Vec<(String, String)> {
    vec![
        ("ATTENDANCED_MQTT__URL".into(), mq.url()),
        ("ATTENDANCED_SITE".into(), "hq".into()),
        ("ATTENDANCED_DEVICE_ID".into(), device.into()),
        (
            "ATTENDANCED_PUNCH__DUPLICATE_WINDOW_SECS".into(),
            "0".into(),
        ),
    ]
}

pub fn door(dir: &Path, mq: &Mosquitto, device: &str) -> Daemon {
    let env = door_env(mq, device);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Daemon::start(&dir.join(device), &env)
}

/// What the fleet's uplink needs beside its database and broker: the CNN's models, for
/// roster photos enrolled centrally.
fn models_env() -> (String, String) {
    (
        "ATTENDANCE_UPLINK_FACE__MODELS_DIR".into(),
        super::models_dir().display().to_string(),
    )
}

pub fn uplink_env(mq: &Mosquitto, db: &MariaDb) -> Vec<(String, String)> {
    let mut env = db.env(DB);
    env.push(("ATTENDANCE_UPLINK_MQTT__URL".into(), mq.url()));
    env.push(models_env());
    env
}

/// The fleet's centre in `dir`, ready for its doors.
pub async fn centre(dir: &Path) -> Centre {
    Centre::start(dir, DB, vec![models_env()]).await
}

/// The same on a broker the caller started, the uplink's metrics on a port it logs.
pub async fn centre_on(mq: Mosquitto, dir: &Path) -> Centre {
    let metrics = (
        "ATTENDANCE_UPLINK_METRICS_LISTEN".into(),
        "127.0.0.1:0".into(),
    );
    Centre::on(mq, dir, DB, vec![models_env(), metrics]).await
}

pub fn uplink(dir: &Path, mq: &Mosquitto, db: &MariaDb) -> Uplink {
    Uplink::start(&dir.join("uplink.log"), uplink_env(mq, db))
}

/// `attendance-uplink roster --site hq ARGS`: (success, stdout + stderr).
pub fn roster_cli(mq: &Mosquitto, db: &MariaDb, args: &[&str]) -> (bool, String) {
    let args: Vec<&str> = ["roster", "--site", "hq"]
        .iter()
        .chain(args)
        .copied()
        .collect();
    Uplink::command(&uplink_env(mq, db), &args)
}

pub async fn enrol(c: Client, name: &str, photo: &str) -> String {
    let r = c.enrol(name, &super::read(photo)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()["employee_id"].as_str().unwrap().to_owned()
}

/// Who the door says `photo` is (`None`: not recognised), punching IN.
pub async fn who(c: Client, photo: &str) -> Option<String> {
    let r = c.identify("IN", &super::read(photo)).await.json();
    r["employee_id"].as_str().map(str::to_owned)
}

/// Waits until `door` recognises `photo` as `want` (or as nobody, for `None`).
pub async fn until_recognised(door: &Daemon, photo: &str, want: Option<&str>, within: Duration) {
    let c = door.client();
    let want = want.map(str::to_owned);
    wait_until(
        &format!(
            "{photo} recognised as {want:?} at {}",
            door.data_dir.display()
        ),
        within,
        || {
            let want = want.clone();
            async move { (who(c, photo).await == want).then_some(()) }
        },
    )
    .await;
}

pub async fn health(d: &Daemon) -> Value {
    d.client().get("/health").await.json()
}

/// Files under `dir` whose name holds `needle`.
pub fn files_named(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(files_named(&p, needle));
        } else if p.file_name().unwrap().to_string_lossy().contains(needle) {
            found.push(p.display().to_string());
        }
    }
    found
}
