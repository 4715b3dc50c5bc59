//! Terminal → Mosquitto → attendance-uplink → MariaDB, with real servers killed and
//! restarted. Every scenario ends with MySQL holding exactly the terminal's events, each
//! once.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::daemon::{Client, Daemon};
use common::services::{MariaDb, Mosquitto, Uplink};
use common::wait_until;
use hyper::StatusCode;
use mysql_async::prelude::Queryable;
use serde_json::json;

struct World {
    dir: tempfile::TempDir,
    mq: Mosquitto,
    db: MariaDb,
    terminal: Daemon,
    uplink: Uplink,
    pool: mysql_async::Pool,
    /// The first uplink's Prometheus listener.
    metrics: Client,
}

const DB: &str = "attendance_test";
/// The enrolled person: a terminal in a fleet names generated ids after its site and
/// device.
const EMPLOYEE: &str = "hq-T1-001";

/// `receipt_timeout`: seconds, or `None` for the default.
fn terminal_env(
    mq: &Mosquitto,
    batch: usize,
    receipt_timeout: Option<u64>,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("ATTENDANCED_MQTT__URL".into(), mq.url()),
        ("ATTENDANCED_MQTT__BATCH_SIZE".into(), batch.to_string()),
        ("ATTENDANCED_SITE".into(), "hq".into()),
        ("ATTENDANCED_DEVICE_ID".into(), "T1".into()),
        (
            "ATTENDANCED_PUNCH__DUPLICATE_WINDOW_SECS".into(),
            "0".into(),
        ),
    ];
    if let Some(secs) = receipt_timeout {
        env.push((
            "ATTENDANCED_MQTT__RECEIPT_TIMEOUT_SECS".into(),
            secs.to_string(),
        ));
    }
    env
}

fn uplink_env(mq: &Mosquitto, db: &MariaDb) -> Vec<(String, String)> {
    let mut env = db.env(DB);
    env.push(("ATTENDANCE_UPLINK_MQTT__URL".into(), mq.url()));
    env.push((
        "ATTENDANCE_UPLINK_MQTT__CLIENT_ID".into(),
        "uplink-test".into(),
    ));
    env
}

/// A terminal whose receipt timeout is short, so an event the broker loses is sent again
/// within a test whatever the path.
async fn world(batch: usize) -> World {
    world_with(batch, Some(3)).await
}

async fn world_with(batch: usize, receipt_timeout: Option<u64>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mq = Mosquitto::start(&dir.path().join("mqtt"));
    let db = MariaDb::start(&dir.path().join("mysql"));
    let env = terminal_env(&mq, batch, receipt_timeout);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let terminal = Daemon::start(&dir.path().join("terminal"), &env_ref);
    let mut env = uplink_env(&mq, &db);
    // Port 0: the uplink picks a free port and logs it (no race with other tests).
    env.push((
        "ATTENDANCE_UPLINK_METRICS_LISTEN".into(),
        "127.0.0.1:0".into(),
    ));
    let uplink = Uplink::start(&dir.path().join("uplink.log"), env);
    let metrics = uplink.metrics_client().await;
    let pool = db.pool(DB);
    let r = terminal
        .client()
        .enrol("홍길동", &common::read("caltech_p02/2.jpg"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["employee_id"], EMPLOYEE);
    let w = World {
        dir,
        mq,
        db,
        terminal,
        uplink,
        pool,
        metrics,
    };
    wait_until("the uplink's schema", Duration::from_secs(60), || async {
        w.pool
            .get_conn()
            .await
            .ok()?
            .query_first::<i64, _>("SELECT COUNT(*) FROM attendance")
            .await
            .ok()
            .flatten()
    })
    .await;
    // The enrolment went to the centre like a punch: the outbox starts empty.
    wait_until(
        "the enrolment in MySQL",
        Duration::from_secs(60),
        || async {
            let h = w.terminal.client().get("/health").await.json();
            (h["outbox_pending"] == 0 && h["outbox_unconfirmed"] == 0).then_some(())
        },
    )
    .await;
    w
}

/// `n` manual punches (alternating IN/OUT), 10 at a time; their event ids.
async fn punch(c: Client, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&i| {
                tokio::spawn(async move {
                    let kind = if i % 2 == 0 { "IN" } else { "OUT" };
                    c.post_json(
                        "/attendance",
                        &json!({ "employee_id": EMPLOYEE, "type": kind }),
                    )
                    .await
                })
            })
            .collect();
        for t in tasks {
            let r = t.await.unwrap();
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{}",
                String::from_utf8_lossy(&r.body)
            );
            ids.push(r.json()["event_id"].as_str().unwrap().to_owned());
        }
    }
    ids
}

async fn mysql_ids(pool: &mysql_async::Pool) -> Option<(usize, BTreeSet<String>)> {
    let mut c = pool.get_conn().await.ok()?;
    let ids: Vec<String> = c.query("SELECT event_id FROM attendance").await.ok()?;
    Some((ids.len(), ids.into_iter().collect()))
}

/// One series of the uplink's metrics (None while it does not answer).
async fn uplink_metric(w: &World, series: &str) -> Option<f64> {
    let r = w.metrics.get("/metrics").await;
    let text = String::from_utf8(r.body.to_vec()).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Each of `n` events written once by the uplink's own count (an uplink that ran
/// throughout): whatever arrived again (a terminal resending after a kill, a lost
/// receipt) was counted a duplicate, not written again.
async fn assert_written_once(w: &World, n: usize) {
    let written = wait_until("the uplink's count", Duration::from_secs(10), || async {
        let v = uplink_metric(w, "attendance_uplink_events_written_total").await?;
        (v >= n as f64).then_some(v)
    })
    .await;
    assert_eq!(written, n as f64, "events written more than once");
}

/// Waits until MySQL holds exactly `want`, each once.
async fn assert_delivered(w: &World, want: &BTreeSet<String>) {
    let (rows, got) = wait_until("every event in MySQL", Duration::from_secs(90), || async {
        let (rows, got) = mysql_ids(&w.pool).await?;
        (got.len() >= want.len()).then_some((rows, got))
    })
    .await;
    assert_eq!(rows, got.len(), "duplicate event_id rows");
    assert_eq!(
        &got, want,
        "MySQL holds other events than the terminal made"
    );
    // And the terminal agrees everything went out.
    let h = wait_until("every receipt", Duration::from_secs(30), || async {
        let h = w.terminal.client().get("/health").await.json();
        (h["outbox_pending"] == 0 && h["outbox_unconfirmed"] == 0).then_some(h)
    })
    .await;
    assert_eq!(h["mqtt"], "connected");
}

#[tokio::test]
async fn broker_down_while_punching_then_back() {
    let mut w = world(100).await;
    w.mq.stop();
    let ids: BTreeSet<String> = punch(w.terminal.client(), 500).await.into_iter().collect();
    assert_eq!(ids.len(), 500);
    let h = w.terminal.client().get("/health").await.json();
    assert_eq!(h["outbox_pending"], 500, "{h}");
    assert_ne!(h["mqtt"], "connected");
    w.mq.restart();
    assert_delivered(&w, &ids).await;
    assert_written_once(&w, ids.len()).await;
}

#[tokio::test]
async fn uplink_killed_mid_stream_and_restarted() {
    let mut w = world(10).await;
    let mut ids: BTreeSet<String> = BTreeSet::new();
    let c = w.terminal.client();
    let producer = tokio::spawn(punch(c, 500));
    wait_until("the first rows", Duration::from_secs(60), || async {
        let (rows, _) = mysql_ids(&w.pool).await?;
        (rows >= 50).then_some(())
    })
    .await;
    // The kill lands at a known point: inside the uplink's MySQL transaction, with
    // messages taken from the broker and not yet committed. A table lock holds its
    // INSERT until the uplink is gone.
    let mut lock = w.pool.get_conn().await.unwrap();
    lock.query_drop("LOCK TABLES attendance WRITE")
        .await
        .unwrap();
    wait_until(
        "the uplink blocked inside its transaction",
        Duration::from_secs(60),
        || async {
            let n: Option<i64> = w
                .pool
                .get_conn()
                .await
                .ok()?
                .query_first(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST
                     WHERE STATE LIKE 'Waiting for table%lock%'
                       AND INFO LIKE '%INSERT INTO attendance%'",
                )
                .await
                .ok()?;
            (n? > 0).then_some(())
        },
    )
    .await;
    let before_kill: i64 = lock
        .query_first("SELECT COUNT(*) FROM attendance")
        .await
        .unwrap()
        .unwrap();
    w.uplink.kill();
    lock.query_drop("UNLOCK TABLES").await.unwrap();
    drop(lock);
    ids.extend(producer.await.unwrap());
    assert!(
        (before_kill as usize) < ids.len(),
        "killed mid-stream: {before_kill} of {} events were in MySQL",
        ids.len()
    );
    w.uplink.restart();
    assert_delivered(&w, &ids).await;
}

#[tokio::test]
async fn mysql_stopped_for_a_while_then_started() {
    let mut w = world(50).await;
    w.db.stop();
    let ids: BTreeSet<String> = punch(w.terminal.client(), 300).await.into_iter().collect();
    // The terminal's outbox drains into the broker even while MySQL is down.
    wait_until(
        "the outbox to reach the broker",
        Duration::from_secs(30),
        || async {
            let h = w.terminal.client().get("/health").await.json();
            (h["outbox_pending"] == 0).then_some(())
        },
    )
    .await;
    // MySQL stays away until the uplink has found it gone.
    wait_until("the uplink to retry", Duration::from_secs(30), || async {
        w.uplink.log_text().contains("retrying").then_some(())
    })
    .await;
    w.db.restart();
    assert_delivered(&w, &ids).await;
    assert_written_once(&w, ids.len()).await;
    assert!(
        w.uplink.log_text().contains("retrying"),
        "the uplink noticed MySQL was gone"
    );
}

#[tokio::test]
async fn terminal_killed_while_publishing_then_restarted() {
    let mut w = world(5).await;
    w.mq.stop();
    let ids: BTreeSet<String> = punch(w.terminal.client(), 400).await.into_iter().collect();
    w.mq.restart();
    // SIGKILL the terminal while its backlog is going out.
    wait_until("publishing to start", Duration::from_secs(30), || async {
        let (rows, _) = mysql_ids(&w.pool).await?;
        (rows > 0).then_some(())
    })
    .await;
    w.terminal.kill();
    w.terminal.restart();
    assert_delivered(&w, &ids).await;
    assert_written_once(&w, ids.len()).await;
}

#[tokio::test]
async fn a_garbage_payload_goes_to_dead_letter_and_the_rest_flows() {
    let w = world(100).await;
    w.mq.publish("attendance/hq/EVIL/events", b"\x00\x01 definitely not CBOR");
    let ids: BTreeSet<String> = punch(w.terminal.client(), 50).await.into_iter().collect();
    assert_delivered(&w, &ids).await;
    let mut c = w.pool.get_conn().await.unwrap();
    let dead: Vec<(String, Vec<u8>, String)> = c
        .query("SELECT topic, payload, error FROM dead_letter")
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0, "attendance/hq/EVIL/events");
    assert_eq!(dead[0].1, b"\x00\x01 definitely not CBOR");
    assert!(!dead[0].2.is_empty());
    // The rows carry the event fields.
    let row: (String, String, String, String) = c
        .query_first("SELECT employee_id, type, device_id, site FROM attendance LIMIT 1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.0.as_str(), row.2.as_str(), row.3.as_str()),
        (EMPLOYEE, "T1", "hq")
    );
    // The uplink's metrics counted exactly that: fifty new events, one dead letter.
    let r = w.metrics.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(value("attendance_uplink_events_written_total"), 50.0);
    assert_eq!(value("attendance_uplink_dead_letters_total"), 1.0);
    assert_eq!(value("attendance_uplink_mqtt_connected"), 1.0);
    assert!(value("attendance_uplink_mysql_commit_seconds_count") >= 1.0);
    // Each event's lag observed once per time it was written (again after a redelivery).
    assert!(value("attendance_uplink_event_lag_seconds_count") >= 50.0);
    assert!(value(r#"attendance_uplink_messages_total{topic="events"}"#) >= 2.0);
    // The listener answers nothing else, in the API's JSON.
    let r = w.metrics.get("/nothing-here").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["reason"], "not_found");
    let r = w
        .metrics
        .request(hyper::Method::DELETE, "/metrics", &[], Vec::new())
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "GET");
    let _ = &w.dir;
}

#[tokio::test]
async fn events_a_broker_drops_are_sent_again_after_the_receipt_timeout() {
    let mut w = world(100).await;
    // With the uplink away, a broker restart loses its shared subscription (Mosquitto
    // 2.0): whatever the terminal publishes now is PUBACKed and dropped.
    w.uplink.stop();
    w.mq.restart();
    let ids: BTreeSet<String> = punch(w.terminal.client(), 40).await.into_iter().collect();
    wait_until(
        "the broker to take them",
        Duration::from_secs(30),
        || async {
            let h = w.terminal.client().get("/health").await.json();
            (h["outbox_pending"] == 0).then_some(())
        },
    )
    .await;
    w.uplink.restart();
    assert_delivered(&w, &ids).await;
    assert!(
        w.terminal.log_text().contains("sending again"),
        "delivered without the resend path: {}",
        w.terminal.log_text()
    );
}

#[tokio::test]
async fn a_dashboard_reads_events_with_mosquitto_sub_and_decode() {
    let w = world(100).await;
    // mosquitto_sub prints each payload as hex; `attendance-uplink decode --hex` turns it
    // into JSON (the book's recipe for dashboard builders).
    let mut sub = std::process::Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &w.mq.port.to_string(),
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "20",
        ])
        .args(["-t", "attendance/+/+/events", "-F", "%x"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (apt-get install mosquitto-clients)");
    // Punch until the subscriber has seen one (it subscribes in its own time): the first
    // punch it saw is one of these.
    let mut ids = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sub.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "mosquitto_sub saw no punch"
        );
        ids.extend(punch(w.terminal.client(), 1).await);
    }
    let out = sub.wait_with_output().unwrap();
    assert!(out.status.success(), "no message seen");
    let mut decode = std::process::Command::new(env!("CARGO_BIN_EXE_attendance-uplink"))
        .args(["decode", "--hex"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    decode.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let json = decode.wait_with_output().unwrap();
    assert!(json.status.success());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let seen = v[0]["event_id"].as_str().expect("an event id");
    assert!(ids.iter().any(|i| i == seen), "{seen} is none of {ids:?}");
    assert_eq!(v[0]["employee_id"], EMPLOYEE);
    assert_eq!(v[0]["site"], "hq");
    assert_eq!(v[0]["source"], "manual");
    assert_eq!(v[0]["v"], 1);
}

/// Mosquitto forgets shared subscriptions when it restarts, so a terminal that reconnects
/// before the uplink has its events acknowledged and dropped. At default settings (a
/// 300 s receipt timeout) the uplink's announcement after it subscribes has them sent
/// again: everything reaches MySQL, and the terminal's roster the centre's head, within
/// 30 s of the broker's return, every time.
#[tokio::test]
async fn after_every_broker_restart_everything_arrives_within_30_s_at_default_settings() {
    let mut w = world_with(100, None).await;
    let mut person = EMPLOYEE.to_owned();
    let mut worst = Duration::ZERO;
    for round in 0..20 {
        w.mq.stop();
        let ids: BTreeSet<String> = punch(w.terminal.client(), 100).await.into_iter().collect();
        // A roster change each round too: the person deleted and enrolled again (new id).
        let c = w.terminal.client();
        assert_eq!(
            c.delete(&format!("/users/{person}")).await.status,
            StatusCode::OK
        );
        let r = c.enrol("홍길동", &common::read("caltech_p02/2.jpg")).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        person = r.json()["employee_id"].as_str().unwrap().to_owned();
        let punch_as = person.clone();
        w.mq.restart();
        let back = std::time::Instant::now();
        let (pool, terminal) = (&w.pool, w.terminal.client());
        wait_until(
            &format!("round {round}: events, roster and receipts within 30 s"),
            Duration::from_secs(30),
            || {
                let (ids, person) = (&ids, &punch_as);
                async move {
                    let (_, got) = mysql_ids(pool).await?;
                    if !ids.is_subset(&got) {
                        return None;
                    }
                    let mut conn = pool.get_conn().await.ok()?;
                    let people: Vec<String> = conn
                        .query("SELECT employee_id FROM roster_people")
                        .await
                        .ok()?;
                    let head: u64 = conn
                        .query_first("SELECT revision FROM roster_sites WHERE site = 'hq'")
                        .await
                        .ok()??;
                    let h = terminal.get("/health").await.json();
                    (people == [person.clone()]
                        && h["roster"]["revision"] == head
                        && h["outbox_pending"] == 0
                        && h["outbox_unconfirmed"] == 0)
                        .then_some(())
                }
            },
        )
        .await;
        worst = worst.max(back.elapsed());
    }
    println!("20 broker restarts: slowest delivery {worst:?} after the broker returned");
    let (rows, got) = mysql_ids(&w.pool).await.unwrap();
    assert_eq!(rows, got.len(), "duplicate event_id rows");
}
