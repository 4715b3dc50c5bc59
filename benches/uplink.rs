//! End to end: terminal outbox → Mosquitto → attendance-uplink → MariaDB, with private
//! servers. Prints events/second for a 10k backlog and the punch-to-row latency.
//!
//! `cargo bench --bench uplink`

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use attendance::clock::Stamp;
use attendance::event::Source;
use attendance::mqtt::{LinkState, MqttSettings};
use attendance::outbox::Publisher;
use attendance::punch::{DayZone, PunchRequest, PunchRules};
use attendance::reason::Reason;
use attendance::shutdown;
use attendance::store::{NewAttempt, Paths, Store};
use common::centre::Centre;
use mysql_async::prelude::Queryable;

const EVENTS: usize = 10_000;

fn attempt() -> NewAttempt {
    NewAttempt {
        employee_id: None,
        request: PunchRequest::Auto,
        device_id: "BENCH".into(),
        site: "bench".into(),
        source: Source::Camera,
        distance: Some(0.42),
        threshold: Some(0.3),
        embedder: Some("hog-v1".into()),
        reason: Some(Reason::Unknown),
        detail: None,
        ts_client: None,
        image_ref: None,
    }
}

async fn rows(pool: &mysql_async::Pool) -> usize {
    let Ok(mut c) = pool.get_conn().await else {
        return 0;
    };
    c.query_first::<i64, _>("SELECT COUNT(*) FROM attendance")
        .await
        .ok()
        .flatten()
        .unwrap_or(0) as usize
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let centre = Centre::for_bench(dir.path()).await;
    let (mq, pool) = (&centre.mq, &centre.pool);

    let store = Arc::new(
        Store::open(&Paths {
            database: dir.path().join("t/db.sqlite3"),
            encodings: dir.path().join("t/enc"),
            images: dir.path().join("t/img"),
        })
        .unwrap(),
    );
    let rules = PunchRules {
        duplicate_window: chrono::Duration::seconds(60),
        zone: DayZone::Local,
    };
    let fill = Instant::now();
    for _ in 0..EVENTS {
        store
            .record_attempt(&attempt(), &rules, &Stamp::synced(chrono::Utc::now()))
            .unwrap();
    }
    let fill = fill.elapsed();

    let (trigger, stop) = shutdown::channel();
    let wake = Arc::new(tokio::sync::Notify::new());
    let (link, _link_rx) = tokio::sync::watch::channel(LinkState::Disabled);
    let publisher = Publisher {
        store: store.clone(),
        settings: MqttSettings {
            url: mq.url(),
            ..MqttSettings::default()
        },
        site: "bench".into(),
        device_id: "BENCH".into(),
        wake: wake.clone(),
        link,
        roster: None,
    };
    let started = Instant::now();
    let options = publisher.options().expect("broker settings");
    let task = tokio::spawn(publisher.run(options, stop));
    while rows(pool).await < EVENTS {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "backlog did not drain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain = started.elapsed();

    // Latency: one punch at a time, from the SQLite commit to the MySQL row.
    let mut lat = Vec::new();
    for i in 0..50 {
        let t = Instant::now();
        store
            .record_attempt(&attempt(), &rules, &Stamp::synced(chrono::Utc::now()))
            .unwrap();
        wake.notify_one();
        while rows(pool).await < EVENTS + i + 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    trigger.fire();
    let _ = task.await;

    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| punches written to the SQLite outbox (synchronous=FULL) | {:.0} /s |",
        EVENTS as f64 / fill.as_secs_f64()
    );
    println!(
        "| backlog of {EVENTS} events, outbox → MQTT → uplink → MySQL | {:.2} s = {:.0} events/s |",
        drain.as_secs_f64(),
        EVENTS as f64 / drain.as_secs_f64()
    );
    println!(
        "| punch → MySQL row latency, p50 | {:.1} ms |",
        lat[lat.len() / 2].as_secs_f64() * 1e3
    );
    println!(
        "| punch → MySQL row latency, p95 | {:.1} ms |",
        lat[lat.len() * 95 / 100].as_secs_f64() * 1e3
    );
}
