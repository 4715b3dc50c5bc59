//! One test world: a private Mosquitto and MariaDB, an uplink with its metrics listener, and
//! one terminal whose punches go through them; with the waits and checks the fault tests
//! share.

use std::collections::BTreeSet;
use std::time::Duration;

use hyper::StatusCode;
use mysql_async::prelude::Queryable;

use super::centre::Centre;
use super::daemon::{Client, Daemon};
use super::services::{MariaDb, Mosquitto};
use super::uplink::Uplink;
use super::wait_until;

pub struct World {
    pub dir: tempfile::TempDir,
    pub mq: Mosquitto,
    pub db: MariaDb,
    pub terminal: Daemon,
    pub uplink: Uplink,
    pub pool: mysql_async::Pool,
    /// The first uplink's Prometheus listener.
    pub metrics: Client,
}

pub const DB: &str = "attendance_test";
/// The enrolled person: a terminal in a fleet names generated ids after its site and
/// device.
pub const EMPLOYEE: &str = "hq-T1-001";

/// `receipt_timeout`: seconds, or `None` for the default.
pub fn terminal_env(
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
        // This machine kind's kernel is not told by any NTP client that its clock is
        // synchronised; the world's door trusts its clock, as one with a battery clock is
        // set up, so the centre's lag is measured (tests/clock_steps.rs: the other case).
        ("ATTENDANCED_PUNCH__CLOCK_SYNCED".into(), "always".into()),
    ];
    if let Some(secs) = receipt_timeout {
        env.push((
            "ATTENDANCED_MQTT__RECEIPT_TIMEOUT_SECS".into(),
            secs.to_string(),
        ));
    }
    env
}

/// A terminal whose receipt timeout is short, so an event the broker loses is sent again
/// within a test whatever the path.
pub async fn world(batch: usize) -> World {
    world_with(batch, Some(3)).await
}

pub async fn world_with(batch: usize, receipt_timeout: Option<u64>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let Centre {
        mq,
        db,
        uplink,
        pool,
    } = Centre::start(
        dir.path(),
        DB,
        vec![
            (
                "ATTENDANCE_UPLINK_MQTT__CLIENT_ID".into(),
                "uplink-test".into(),
            ),
            // Port 0: the uplink picks a free port and logs it (no race with other tests).
            (
                "ATTENDANCE_UPLINK_METRICS_LISTEN".into(),
                "127.0.0.1:0".into(),
            ),
        ],
    )
    .await;
    let metrics = uplink.metrics_client().await;
    let env = terminal_env(&mq, batch, receipt_timeout);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let terminal = Daemon::start(&dir.path().join("terminal"), &env_ref);
    let r = terminal
        .client()
        .enrol("홍길동", &super::read("caltech_p02/2.jpg"))
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
pub async fn punch(c: Client, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&i| {
                tokio::spawn(async move {
                    let kind = if i % 2 == 0 { "IN" } else { "OUT" };
                    c.punch(EMPLOYEE, kind).await
                })
            })
            .collect();
        for t in tasks {
            ids.push(t.await.unwrap());
        }
    }
    ids
}

pub async fn mysql_ids(pool: &mysql_async::Pool) -> Option<(usize, BTreeSet<String>)> {
    let mut c = pool.get_conn().await.ok()?;
    let ids: Vec<String> = c.query("SELECT event_id FROM attendance").await.ok()?;
    Some((ids.len(), ids.into_iter().collect()))
}

/// One series of the uplink's metrics (None while it does not answer).
pub async fn uplink_metric(w: &World, series: &str) -> Option<f64> {
    let r = w.metrics.get("/metrics").await;
    let text = String::from_utf8(r.body.to_vec()).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Each of `n` events written once by the uplink's own count (an uplink that ran
/// throughout): whatever arrived again (a terminal resending after a kill, a lost
/// receipt) was counted a duplicate, not written again.
pub async fn assert_written_once(w: &World, n: usize) {
    let written = wait_until("the uplink's count", Duration::from_secs(10), || async {
        let v = uplink_metric(w, "attendance_uplink_events_written_total").await?;
        (v >= n as f64).then_some(v)
    })
    .await;
    assert_eq!(written, n as f64, "events written more than once");
}

/// Waits until MySQL holds exactly `want`, each once.
pub async fn assert_delivered(w: &World, want: &BTreeSet<String>) {
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
