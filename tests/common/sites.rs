//! Two sites' world: the shipped broker (ACL, passwords, limits), MariaDB,
//! `attendance-uplink`, an honest door of site hq, a door of site br, and an attacker
//! holding door hq/R's broker account, who speaks the CBOR by hand.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use serde_json::json;

use super::daemon::{Client, Daemon};
use super::services::{MariaDb, Mosquitto};
use super::shipped::{self, UPLINK_USER, door_user, password};
use super::uplink::Uplink;
use super::wait_until;

pub const DB: &str = "attendance_rogue";
/// br's person, enrolled at door br/X: what no door of hq may touch.
pub const BR1: &str = "BR1";
/// hq's person, enrolled at door hq/A.
pub const HQ1: &str = "HQ1";

/// What a client heard: `(topic, payload)`.
pub type Heard = Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A broker client logged in with a door's account, counting what its connection sees.
pub struct Rogue {
    pub client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
    pub pubacks: Arc<AtomicUsize>,
    pub drops: Arc<AtomicUsize>,
    pub received: Heard,
}

impl Rogue {
    /// Connects as broker user `user` asking for client id `client_id`.
    pub fn connect(mq: &Mosquitto, user: &str, client_id: &str) -> Rogue {
        let mut o = MqttOptions::new(client_id, "127.0.0.1", mq.port);
        o.set_credentials(user, password(user))
            .set_keep_alive(Duration::from_secs(30))
            // Its own limit far above the broker's: the broker is what must refuse.
            .set_max_packet_size(8 << 20, 8 << 20)
            .set_inflight(1000);
        let (client, mut events) = AsyncClient::new(o, 20_000);
        let (pubacks, drops) = (Arc::default(), Arc::default());
        let received: Heard = Arc::default();
        let (p, d, r): (Arc<AtomicUsize>, Arc<AtomicUsize>, _) = (
            Arc::clone(&pubacks),
            Arc::clone(&drops),
            Arc::clone(&received),
        );
        let task = tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Incoming::PubAck(_))) => {
                        p.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Event::Incoming(Incoming::Publish(m))) => {
                        r.lock()
                            .unwrap()
                            .push((m.topic.clone(), m.payload.to_vec()));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        d.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        Rogue {
            client,
            task,
            pubacks,
            drops,
            received,
        }
    }

    /// Drops the connection for good (no reconnecting).
    pub fn stop(self) {
        self.task.abort();
    }

    /// Subscribes to `filters` and waits for the broker's answer.
    pub async fn subscribe(&self, filters: &[&str]) {
        for f in filters {
            self.client.subscribe(*f, QoS::AtLeastOnce).await.unwrap();
        }
    }

    /// Publishes at QoS 1 and waits for the broker's PUBACK (the broker took it).
    pub async fn send(&self, topic: &str, payload: Vec<u8>) {
        let before = self.pubacks.load(Ordering::SeqCst);
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
        wait_until(
            &format!("the broker's PUBACK for {topic}"),
            Duration::from_secs(10),
            || async { (self.pubacks.load(Ordering::SeqCst) > before).then_some(()) },
        )
        .await;
    }
}

/// Everything the suite runs against.
pub struct World {
    pub dir: tempfile::TempDir,
    pub mq: Mosquitto,
    pub db: MariaDb,
    pub uplink: Uplink,
    pub uplink_metrics: Client,
    pub hq_a: Daemon,
    pub br_x: Daemon,
    pub pool: mysql_async::Pool,
}

fn door_env(mq: &Mosquitto, site: &str, device: &str) -> Vec<(String, String)> {
    let user = door_user(site, device);
    vec![
        ("ATTENDANCED_MQTT__URL".into(), mq.url()),
        ("ATTENDANCED_MQTT__USERNAME".into(), user.clone()),
        ("ATTENDANCED_MQTT__PASSWORD".into(), password(&user)),
        ("ATTENDANCED_SITE".into(), site.into()),
        ("ATTENDANCED_DEVICE_ID".into(), device.into()),
        (
            "ATTENDANCED_PUNCH__DUPLICATE_WINDOW_SECS".into(),
            "0".into(),
        ),
    ]
}

pub fn door(dir: &std::path::Path, mq: &Mosquitto, site: &str, device: &str) -> Daemon {
    let env = door_env(mq, site, device);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Daemon::start(&dir.join(format!("{site}-{device}")), &env)
}

pub fn uplink_env(mq: &Mosquitto, db: &MariaDb) -> Vec<(String, String)> {
    let mut env = db.env(DB);
    env.extend([
        ("ATTENDANCE_UPLINK_MQTT__URL".into(), mq.url()),
        (
            "ATTENDANCE_UPLINK_MQTT__USERNAME".into(),
            UPLINK_USER.into(),
        ),
        (
            "ATTENDANCE_UPLINK_MQTT__PASSWORD".into(),
            password(UPLINK_USER),
        ),
        (
            "ATTENDANCE_UPLINK_METRICS_LISTEN".into(),
            "127.0.0.1:0".into(),
        ),
        (
            "ATTENDANCE_UPLINK_FACE__MODELS_DIR".into(),
            super::models_dir().display().to_string(),
        ),
    ]);
    env
}

impl World {
    /// Starts everything, enrols HQ1 at hq/A and BR1 at br/X, and waits until both
    /// are in the central roster.
    pub async fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        let doors = [("hq", "A"), ("br", "X"), ("hq", "R")];
        let mq = shipped::start(&dir.path().join("mqtt"), &doors);
        let db = MariaDb::start(&dir.path().join("mysql"));
        let uplink = Uplink::start(&dir.path().join("uplink.log"), uplink_env(&mq, &db));
        let uplink_metrics = uplink.metrics_client().await;
        let hq_a = door(dir.path(), &mq, "hq", "A");
        let br_x = door(dir.path(), &mq, "br", "X");
        let pool = db.pool(DB);
        for (d, id, photo) in [
            (&hq_a, HQ1, "caltech_p02/2.jpg"),
            (&br_x, BR1, "caltech_p03/2.jpg"),
        ] {
            let r = d
                .client()
                .post_form(
                    "/enroll",
                    super::daemon::Multipart::new()
                        .text("name", &format!("name of {id}"))
                        .text("employee_id", id)
                        .file("image", &super::read(photo)),
                )
                .await;
            assert_eq!(
                r.json()["employee_id"],
                id,
                "{}",
                String::from_utf8_lossy(&r.body)
            );
        }
        let w = World {
            dir,
            mq,
            db,
            uplink,
            uplink_metrics,
            hq_a,
            br_x,
            pool,
        };
        for id in [HQ1, BR1] {
            w.until_sql(
                &format!("{id} in the central roster"),
                &format!("SELECT COUNT(*) FROM roster_people WHERE employee_id = '{id}'"),
                1,
            )
            .await;
        }
        w
    }

    /// Waits until `sql` (one integer) gives `want`.
    pub async fn until_sql(&self, what: &str, sql: &str, want: i64) {
        wait_until(what, Duration::from_secs(20), || async {
            let mut c = self.pool.get_conn().await.ok()?;
            let n: Option<i64> = c.query_first(sql).await.ok()?;
            (n == Some(want)).then_some(())
        })
        .await;
    }

    /// The first column of the first row, as text.
    pub async fn text(&self, sql: &str) -> Option<String> {
        let mut c = self.pool.get_conn().await.unwrap();
        c.query_first::<String, _>(sql).await.unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let mut c = self.pool.get_conn().await.unwrap();
        c.query_first::<i64, _>(sql).await.unwrap().unwrap_or(0)
    }

    /// Site br's roster of record, whole: people, faces, changes, head, and BR1's name.
    pub async fn br_roster(&self) -> String {
        let mut c = self.pool.get_conn().await.unwrap();
        let people: Vec<(String, String, u64)> = c
            .query("SELECT employee_id, name, revision FROM roster_people WHERE site = 'br' ORDER BY 1")
            .await
            .unwrap();
        let faces: Vec<(String, String, u64)> = c
            .query("SELECT face_id, employee_id, LENGTH(template) FROM roster_faces WHERE site = 'br' ORDER BY 1")
            .await
            .unwrap();
        let log: Vec<(u64, String, String, String)> = c
            .query("SELECT revision, change_id, employee_id, op FROM roster_changes WHERE site = 'br' ORDER BY 1")
            .await
            .unwrap();
        let head: Option<u64> = c
            .query_first("SELECT revision FROM roster_sites WHERE site = 'br'")
            .await
            .unwrap();
        let name: Option<String> = c
            .query_first(format!(
                "SELECT name FROM users WHERE employee_id = '{BR1}'"
            ))
            .await
            .unwrap();
        format!("{people:?}\n{faces:?}\n{log:?}\n{head:?}\n{name:?}")
    }

    /// Writes a change with one face of `template` at site `site` straight into the
    /// roster of record, as a centre that stored it before the checks existed would
    /// hold it; returns its revision.
    pub async fn plant(&self, site: &str, employee_id: &str, template: Vec<u8>) -> u64 {
        use mysql_async::TxOpts;
        let mut tx = self
            .pool
            .start_transaction(TxOpts::default())
            .await
            .unwrap();
        tx.exec_drop(
            "INSERT INTO roster_sites (site, revision) VALUES (?, 1)
             ON DUPLICATE KEY UPDATE revision = revision + 1",
            (site,),
        )
        .await
        .unwrap();
        let revision: u64 = tx
            .exec_first("SELECT revision FROM roster_sites WHERE site = ?", (site,))
            .await
            .unwrap()
            .unwrap();
        tx.exec_drop(
            "INSERT INTO roster_changes (site, revision, change_id, employee_id, op, name, device_id, ts)
             VALUES (?, ?, UUID(), ?, 'enrol', 'planted', NULL, NOW(3))",
            (site, revision, employee_id),
        )
        .await
        .unwrap();
        tx.exec_drop(
            "INSERT INTO roster_faces (face_id, employee_id, site, revision, embedder, template, crop, quality, device_id)
             VALUES (UUID(), ?, ?, ?, 'dlib-resnet-v1', ?, NULL, 0.9, NULL)",
            (employee_id, site, revision, template),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        revision
    }

    /// Rows in `dead_letter` from door hq/R.
    pub async fn rogue_dead_letters(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM dead_letter WHERE site = 'hq' AND device_id = 'R'")
            .await
    }

    /// The uplink's count of refusals for `reason`.
    pub async fn refused(&self, reason: &str) -> f64 {
        let text =
            String::from_utf8(self.uplink_metrics.get("/metrics").await.body.to_vec()).unwrap();
        let series = format!("attendance_uplink_refused_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .map_or(0.0, |v| v.parse().unwrap())
    }

    /// What every case must leave as it was: both doors healthy and linked, a punch
    /// made at br/X (the other site) in MySQL within 10 s, br's roster untouched.
    pub async fn unharmed(&self, case: &str, br_before: &str) {
        for d in [&self.hq_a, &self.br_x] {
            let h = d.client().get("/health").await.json();
            assert_eq!(
                (h["status"].as_str(), h["mqtt"].as_str()),
                (Some("ok"), Some("connected")),
                "{case}: {}: {h}",
                d.data_dir.display()
            );
        }
        let r = self
            .br_x
            .client()
            .post_json("/attendance", &json!({ "employee_id": BR1, "type": "IN" }))
            .await
            .json();
        let event_id = r["event_id"].as_str().expect("a recorded punch").to_owned();
        let started = std::time::Instant::now();
        self.until_sql(
            &format!("{case}: br/X's punch in MySQL"),
            &format!(
                "SELECT COUNT(*) FROM attendance WHERE event_id = '{event_id}' AND terminal = 'X'"
            ),
            1,
        )
        .await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "{case}: br/X's punch took {took:?}"
        );
        eprintln!(
            "case {case}: br/X's punch in MySQL after {} ms",
            took.as_millis()
        );
        assert_eq!(
            self.br_roster().await,
            br_before,
            "{case}: site br's roster changed"
        );
    }
}
