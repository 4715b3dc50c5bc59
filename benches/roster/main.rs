//! The fleet roster at company scale, with private Mosquitto, MariaDB and
//! `attendance-uplink`: 10,000 people enrolled through MQTT, then 50 terminals holding
//! the whole roster, one real `attendanced` among them. Prints how long a new terminal
//! takes to hold it, how long one change takes to reach every terminal, and the bytes
//! stored in MySQL and in the broker.
//!
//! The 49 other terminals are simulated, as the contract allows: MQTT clients that speak
//! the documented CBOR by hand (`ciborium::Value`, not the crate's types: this checks
//! the README's schema too) and apply each page to their own SQLite in one transaction.
//!
//! `cargo bench --bench roster` (PEOPLE=2000 TERMINALS=10 for a quick run)

#[path = "../../tests/common/mod.rs"]
mod common;
mod payloads;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ciborium::Value;
use common::centre::Centre;
use common::daemon::Daemon;
use common::services::Mosquitto;
use mysql_async::prelude::Queryable;
use payloads::{cbor, change, crop, get, map, template, text, uint};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};

const SITE: &str = "bench";
const EMBEDDER: &str = "dlib-resnet-v1";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn options(mq: &Mosquitto, id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", mq.port);
    o.set_max_packet_size(1 << 20, 1 << 20)
        .set_keep_alive(Duration::from_secs(30));
    o
}

/// A simulated terminal: asks for pages from its revision and applies each to its own
/// SQLite (people and templates, and the revision) in one synchronous transaction.
async fn simulated_terminal(
    mq_port: u16,
    dev: String,
    dir: std::path::PathBuf,
    at: Arc<AtomicU64>,
) {
    let db = Arc::new(std::sync::Mutex::new({
        let c = rusqlite::Connection::open(dir.join(format!("{dev}.sqlite3"))).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE people (employee_id TEXT PRIMARY KEY, name TEXT NOT NULL);
             CREATE TABLE faces (face_id TEXT PRIMARY KEY, employee_id TEXT NOT NULL, template BLOB);
             CREATE TABLE state (revision INTEGER NOT NULL); INSERT INTO state VALUES (0);",
        )
        .unwrap();
        c
    }));
    let mut o = MqttOptions::new(format!("sim-{dev}"), "127.0.0.1", mq_port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(o, 16);
    let answers = format!("attendance/{SITE}/{dev}/roster");
    let ask = |since: u64| {
        let req = map(vec![
            ("v", Value::Integer(1.into())),
            ("since", Value::Integer(since.into())),
            ("embedder", text(EMBEDDER)),
        ]);
        let client = client.clone();
        let topic = format!("attendance/{SITE}/{dev}/roster_sync");
        async move {
            client
                .publish(topic, QoS::AtLeastOnce, false, cbor(&req))
                .await
                .unwrap()
        }
    };
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                client
                    .subscribe_many(
                        [answers.clone(), format!("attendance/{SITE}/roster")]
                            .map(|t| rumqttc::SubscribeFilter::new(t, QoS::AtLeastOnce)),
                    )
                    .await
                    .unwrap();
            }
            Ok(Event::Incoming(Incoming::SubAck(_))) => ask(at.load(Ordering::SeqCst)).await,
            Ok(Event::Incoming(Incoming::Publish(p))) => {
                let v: Value = ciborium::from_reader(&p.payload[..]).unwrap();
                if p.topic != answers {
                    // The head: ask when behind (the answer to the last request moves us).
                    if uint(get(&v, "revision")) > at.load(Ordering::SeqCst) {
                        ask(at.load(Ordering::SeqCst)).await;
                    }
                    continue;
                }
                let (since, up_to, head) = (
                    uint(get(&v, "since")),
                    uint(get(&v, "up_to")),
                    uint(get(&v, "head")),
                );
                if since != at.load(Ordering::SeqCst) {
                    continue;
                }
                let db = db.clone();
                tokio::task::spawn_blocking(move || {
                    let mut c = db.lock().unwrap();
                    let tx = c.transaction().unwrap();
                    for e in get(&v, "entries").as_array().unwrap() {
                        let ch = get(e, "change");
                        let id = get(ch, "employee_id").as_text().unwrap();
                        let op = get(ch, "op");
                        if get(op, "op").as_text() == Some("enrol") {
                            tx.execute(
                                "INSERT OR REPLACE INTO people VALUES (?1, ?2)",
                                (id, get(op, "name").as_text().unwrap()),
                            )
                            .unwrap();
                            for f in get(op, "faces").as_array().unwrap() {
                                tx.execute(
                                    "INSERT OR IGNORE INTO faces VALUES (?1, ?2, ?3)",
                                    (
                                        get(f, "face_id").as_text().unwrap(),
                                        id,
                                        get(f, "template").as_bytes().cloned(),
                                    ),
                                )
                                .unwrap();
                            }
                        } else {
                            tx.execute("DELETE FROM faces WHERE employee_id = ?1", [id])
                                .unwrap();
                            tx.execute("DELETE FROM people WHERE employee_id = ?1", [id])
                                .unwrap();
                        }
                    }
                    tx.execute("UPDATE state SET revision = ?1", [up_to as i64])
                        .unwrap();
                    tx.commit().unwrap();
                })
                .await
                .unwrap();
                at.store(up_to, Ordering::SeqCst);
                if up_to < head {
                    ask(up_to).await;
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn head(pool: &mysql_async::Pool) -> u64 {
    let mut c = pool.get_conn().await.unwrap();
    c.query_first::<Option<u64>, _>(format!(
        "SELECT revision FROM roster_sites WHERE site = '{SITE}'"
    ))
    .await
    .ok()
    .flatten()
    .flatten()
    .unwrap_or(0)
}

async fn wait_for(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !done().await {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.elapsed()
}

#[tokio::main]
async fn main() {
    let people = env_usize("PEOPLE", 10_000);
    let terminals = env_usize("TERMINALS", 50);
    let dir = tempfile::tempdir().unwrap();
    // Returns once the uplink subscribed: nothing published after is dropped.
    let centre = Centre::for_bench(dir.path()).await;
    let (mq, pool) = (&centre.mq, &centre.pool);

    // 10,000 enrolments from 10 enrolling terminals, through the same path as a door's
    // (MQTT → uplink → MySQL), as many per message as a door puts in one (768 KiB).
    let crop = crop();
    let per_message = (768 * 1024 / (crop.len() + template(0).len())).max(1);
    let (client, mut events) = AsyncClient::new(options(mq, "bench-enrol"), 64);
    tokio::spawn(async move {
        loop {
            if events.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    let started = Instant::now();
    for batch in 0..people.div_ceil(per_message) {
        let dev = format!("F{}", batch % 10);
        let changes: Vec<Value> = (batch * per_message..((batch + 1) * per_message).min(people))
            .map(|n| change(&format!("E{n:05}"), &dev, n as u64, &crop))
            .collect();
        let msg = map(vec![
            ("v", Value::Integer(1.into())),
            ("changes", Value::Array(changes)),
        ]);
        client
            .publish(
                format!("attendance/{SITE}/{dev}/roster_changes"),
                QoS::AtLeastOnce,
                false,
                cbor(&msg),
            )
            .await
            .unwrap();
    }
    wait_for(
        "the enrolments in MySQL",
        Duration::from_secs(900),
        async || head(pool).await >= people as u64,
    )
    .await;
    let ingest = started.elapsed();

    // The whole roster to one real door (templates used as they come: same embedder).
    let door_env = [
        ("ATTENDANCED_MQTT__URL", mq.url()),
        ("ATTENDANCED_SITE", SITE.to_owned()),
        ("ATTENDANCED_DEVICE_ID", "REAL".to_owned()),
    ];
    let env_ref: Vec<(&str, &str)> = door_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let t = Instant::now();
    let door = Daemon::start(&dir.path().join("door"), &env_ref);
    let c = door.client();
    wait_for(
        "the real door to hold the roster",
        Duration::from_secs(1800),
        async || {
            let h = c.get("/health").await.json();
            h["roster"]["behind"] == 0 && h["people"] == people
        },
    )
    .await;
    let real_sync = t.elapsed();

    // The simulated terminals, all new at once.
    let revisions: Vec<Arc<AtomicU64>> = (1..terminals)
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    for (i, at) in revisions.iter().enumerate() {
        tokio::spawn(simulated_terminal(
            mq.port,
            format!("S{i:02}"),
            dir.path().to_path_buf(),
            at.clone(),
        ));
    }
    let h = head(pool).await;
    let all_sync = wait_for(
        "every simulated terminal to hold the roster",
        Duration::from_secs(1800),
        async || revisions.iter().all(|r| r.load(Ordering::SeqCst) >= h),
    )
    .await;

    // One change (an enrolment at a door) to every terminal, five times.
    let mut one = Vec::new();
    for k in 0..5u64 {
        let n = people as u64 + k;
        let msg = map(vec![
            ("v", Value::Integer(1.into())),
            (
                "changes",
                Value::Array(vec![change(&format!("E{n:05}"), "F0", n, &crop)]),
            ),
        ]);
        let t = Instant::now();
        client
            .publish(
                format!("attendance/{SITE}/F0/roster_changes"),
                QoS::AtLeastOnce,
                false,
                cbor(&msg),
            )
            .await
            .unwrap();
        let want = h + k + 1;
        let want_people = people + k as usize + 1;
        wait_for(
            "one change everywhere",
            Duration::from_secs(60),
            async || {
                revisions.iter().all(|r| r.load(Ordering::SeqCst) >= want)
                    && c.get("/health").await.json()["people"] == want_people
            },
        )
        .await;
        one.push(t.elapsed());
    }
    one.sort();

    let mysql_bytes: u64 = pool
        .get_conn()
        .await
        .unwrap()
        .query_first::<u64, _>(
            "SELECT CAST(SUM(data_length + index_length) AS UNSIGNED) FROM information_schema.tables
             WHERE table_schema = 'bench' AND table_name IN
               ('roster_sites', 'roster_people', 'roster_changes', 'roster_faces', 'users')",
        )
        .await
        .unwrap()
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(2)).await; // the broker's autosave (1 s)
    let broker_bytes =
        std::fs::metadata(dir.path().join("mqtt/mosquitto.db")).map_or(0, |m| m.len());
    let door_bytes = dir_size(&dir.path().join("door"));

    println!(
        "\nroster at scale: {people} people, {terminals} terminals (1 real attendanced + {} simulated)\n",
        terminals - 1
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| {people} enrolments (template + {} kB crop each) through MQTT into MySQL | {:.1} s ({:.0} /s) |",
        crop.len() / 1000,
        ingest.as_secs_f64(),
        people as f64 / ingest.as_secs_f64()
    );
    println!(
        "| a new real door holds the whole roster (start → caught up) | {:.1} s |",
        real_sync.as_secs_f64()
    );
    println!(
        "| {} new simulated terminals at once hold the whole roster | {:.1} s |",
        terminals - 1,
        all_sync.as_secs_f64()
    );
    println!(
        "| one change reaches all {terminals} terminals, median / max of 5 | {:.0} ms / {:.0} ms |",
        one[2].as_secs_f64() * 1e3,
        one[4].as_secs_f64() * 1e3
    );
    println!(
        "| MySQL roster tables (data + index) | {:.1} MB |",
        mysql_bytes as f64 / 1e6
    );
    println!(
        "| broker persistence file | {:.1} kB |",
        broker_bytes as f64 / 1e3
    );
    println!(
        "| the real door's data folder | {:.1} MB |",
        door_bytes as f64 / 1e6
    );
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        dir_size(&p)
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
