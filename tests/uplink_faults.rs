//! Terminal → Mosquitto → attendance-uplink → MariaDB, with real servers killed and
//! restarted. Every scenario ends with MySQL holding exactly the terminal's events, each
//! once.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::wait_until;
use common::world::{
    EMPLOYEE, assert_delivered, assert_written_once, mysql_ids, punch, world, world_with,
};
use hyper::StatusCode;
use mysql_async::prelude::Queryable;

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
async fn events_a_broker_drops_are_sent_again() {
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
    // Sent again by whichever comes first: the receipt timeout (3 s here), or the
    // restarted uplink announcing itself (`attendance/uplink`), which on a loaded
    // machine can beat the timeout. Either way they went twice, not once.
    let log = w.terminal.log_text();
    assert!(
        log.contains("no receipt from the uplink: sending again")
            || log.contains("an uplink subscribed: sending what it has not confirmed again"),
        "delivered without a resend: {log}"
    );
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
