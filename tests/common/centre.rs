//! The centre alone: a private Mosquitto and MariaDB and an uplink between them, started
//! ready (schema made, subscribed) before anything is published. The fault tests' world
//! and the benchmarks start from it.

use std::path::Path;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};

use super::services::{MariaDb, Mosquitto};
use super::uplink::Uplink;

/// Where the uplink announces itself once subscribed (crates/wire's `UPLINK_TOPIC`).
const ANNOUNCEMENT: &str = "attendance/uplink";

pub struct Centre {
    pub mq: Mosquitto,
    pub db: MariaDb,
    pub uplink: Uplink,
    pub pool: mysql_async::Pool,
}

impl Centre {
    /// In `dir`, the uplink writing to `database` with `env` added to its settings.
    /// Returns once the uplink announced itself: it announces after its schema is made
    /// and its subscription acknowledged, so nothing published after is dropped.
    pub async fn start(dir: &Path, database: &str, env: Vec<(String, String)>) -> Centre {
        Self::on(Mosquitto::start(&dir.join("mqtt")), dir, database, env).await
    }

    /// The same with a broker the caller started (one listening on more addresses).
    pub async fn on(
        mq: Mosquitto,
        dir: &Path,
        database: &str,
        env: Vec<(String, String)>,
    ) -> Centre {
        let db = MariaDb::start(&dir.join("mysql"));
        // Subscribed before the uplink starts, so its announcement cannot be missed.
        let announced = first_message(&mq, ANNOUNCEMENT).await;
        let mut all = db.env(database);
        all.push(("ATTENDANCE_UPLINK_MQTT__URL".into(), mq.url()));
        all.extend(env);
        let uplink = Uplink::start(&dir.join("uplink.log"), all);
        tokio::time::timeout(Duration::from_secs(60), announced)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the uplink did not announce itself within 60 s:\n{}",
                    uplink.log_text()
                )
            })
            .expect("the announcement watcher ended");
        let pool = db.pool(database);
        Centre {
            mq,
            db,
            uplink,
            pool,
        }
    }

    /// The benchmarks' centre: database `bench`, the uplink logging warnings only.
    pub async fn for_bench(dir: &Path) -> Centre {
        Centre::start(dir, "bench", vec![("RUST_LOG".into(), "warn".into())]).await
    }
}

/// Resolves with the first message on `topic`; returns once subscribed.
async fn first_message(mq: &Mosquitto, topic: &str) -> tokio::sync::oneshot::Receiver<Vec<u8>> {
    let (client, mut events) = AsyncClient::new(
        MqttOptions::new(format!("centre-watch-{}", mq.port), "127.0.0.1", mq.port),
        8,
    );
    client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (subscribed, mut on_suback) = tokio::sync::mpsc::channel::<()>(1);
    let topic = topic.to_owned();
    tokio::spawn(async move {
        let _client = client;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    let _ = subscribed.try_send(());
                }
                Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == topic => {
                    let _ = tx.send(p.payload.to_vec());
                    return;
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), on_suback.recv())
        .await
        .expect("the broker acknowledges the watcher's subscription");
    rx
}
