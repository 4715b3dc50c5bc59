//! `attendance-uplink`: the central worker. Subscribes to every terminal's events (a shared
//! subscription, so workers can run side by side), writes them to MySQL idempotently, and
//! acknowledges each MQTT message only after its transaction commits: MySQL down means no
//! ack, the broker keeps the messages, nothing is lost.

pub mod admin;
pub mod config;
pub(crate) mod roster;
pub mod sink;

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Incoming, Publish, QoS};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::event::{AttendanceEvent, EventBatch, Receipt, SCHEMA_VERSION};
use crate::metrics::UplinkMetrics;
use crate::mqtt::{self, DeviceTopic};
use crate::roster::wire::{self, Head, SyncRequest, UplinkOnline};
use crate::shutdown::Shutdown;
use config::UplinkConfig;
use sink::{Message, Sink, SinkError, Written};

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error(transparent)]
    Mqtt(#[from] mqtt::MqttConfigError),
    #[error("cannot listen for metrics on {addr}: {source}")]
    MetricsListen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Applies the MySQL migrations, retrying while the server is unreachable.
pub(crate) async fn migrate_with_retry(sink: &Sink, stop: &mut Shutdown) -> Option<u32> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        match sink.migrate().await {
            Ok(v) => return Some(v),
            Err(e) => {
                warn!(error = %e, "MySQL not ready; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                    _ = stop.recv() => return None,
                }
            }
        }
    }
}

/// Runs until `stop`.
pub async fn run(cfg: UplinkConfig, mut stop: Shutdown) -> Result<(), UplinkError> {
    let notifier = crate::systemd::Notifier::from_env();
    notifier.status("waiting for MySQL");
    let metrics = Arc::new(UplinkMetrics::default());
    if let Some(addr) = cfg.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| UplinkError::MetricsListen { addr, source })?;
        info!(listen = %listener.local_addr().unwrap_or(addr), "metrics listener ready");
        tokio::spawn(crate::metrics::serve(
            listener,
            metrics.clone(),
            stop.clone(),
        ));
    }
    let sink = Sink::new(&cfg.mysql);
    let Some(version) = migrate_with_retry(&sink, &mut stop).await else {
        return Ok(());
    };
    info!(schema = version, database = %cfg.mysql.database, "MySQL ready");
    notifier.ready(&format!("MySQL schema {version}, connecting to MQTT"));
    // Fed from this loop only: if the writer wedges, the channel fills, the loop blocks
    // on it and systemd restarts us (unacknowledged messages are redelivered).
    let mut watchdog = tokio::time::interval(notifier.tick());
    let client_id = cfg
        .mqtt
        .client_id
        .clone()
        .unwrap_or_else(|| "attendance-uplink".into());
    let mut opts = mqtt::options(&cfg.mqtt, &client_id, None)?;
    opts.set_manual_acks(true);
    let (client, mut events) = AsyncClient::new(opts, 256);
    // Bounded by the broker's in-flight window for unacknowledged QoS 1 deliveries.
    let (tx, rx) = mpsc::channel::<Publish>(1024);
    let (heads, heads_rx) = mpsc::channel::<Heads>(16);
    tokio::spawn(heads_loop(
        sink.pool().clone(),
        client.clone(),
        heads_rx,
        stop.clone(),
    ));
    let writer = tokio::spawn(write_loop(
        sink,
        metrics.clone(),
        client.clone(),
        rx,
        heads.clone(),
        cfg.max_batch_messages,
        stop.clone(),
    ));
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    let instance = uuid::Uuid::now_v7().to_string();
    loop {
        tokio::select! {
            polled = events.poll() => match polled {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                    info!(session_present = ack.session_present, filter = %cfg.subscription, "MQTT connected");
                    notifier.status(&format!("MySQL schema {version}, MQTT connected, subscribed to {}", cfg.subscription));
                    backoff.reset();
                    metrics.mqtt_connected(true);
                    let filters = std::iter::once(cfg.subscription.clone())
                        .chain(config::roster_filters(&cfg.subscription))
                        .map(|f| rumqttc::SubscribeFilter::new(f, QoS::AtLeastOnce));
                    if let Err(e) = client.try_subscribe_many(filters) {
                        error!(error = %e, "subscribe failed");
                    }
                }
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    // Terminals resend what a broker may have dropped while we were not
                    // subscribed, without waiting for their receipt timeout.
                    let hello = UplinkOnline {
                        v: wire::ROSTER_VERSION,
                        instance: instance.clone(),
                        ts: crate::store::ts(chrono::Utc::now()),
                    };
                    if let Err(e) = client.try_publish(mqtt::UPLINK_TOPIC, QoS::AtLeastOnce, false, wire::encode(&hello)) {
                        warn!(error = %e, "announcement not sent");
                    }
                    // A broker without persistence lost the retained heads.
                    let _ = heads.try_send(Heads::All);
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    metrics.message(
                        mqtt::parse_device_topic(&p.topic).map_or("other", |(_, _, t)| t.into()),
                    );
                    if tx.send(p).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    metrics.mqtt_connected(false);
                    warn!(error = %e, "MQTT connection lost");
                    notifier.status(&format!("MySQL schema {version}, MQTT disconnected: {e}"));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                        _ = stop.recv() => break,
                    }
                }
            },
            _ = watchdog.tick() => notifier.watchdog(),
            _ = stop.recv() => break,
        }
    }
    notifier.stopping();
    drop(tx);
    let _ = writer.await;
    let _ = client.try_disconnect();
    info!("stopped");
    Ok(())
}

/// Takes messages as they come, writes them in transactions, acks after commit; answers
/// roster requests after the writes that came with them.
async fn write_loop(
    sink: Sink,
    metrics: Arc<UplinkMetrics>,
    client: AsyncClient,
    mut rx: mpsc::Receiver<Publish>,
    heads: mpsc::Sender<Heads>,
    max_messages: usize,
    stop: Shutdown,
) {
    let (mut total, mut dead) = (0usize, 0usize);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < max_messages {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (syncs, writes): (Vec<Publish>, Vec<Publish>) = batch.into_iter().partition(|p| {
            matches!(
                mqtt::parse_device_topic(&p.topic),
                Some((_, _, DeviceTopic::RosterSync))
            )
        });
        if !writes.is_empty() {
            let Some((w, took)) = write_with_retry(&sink, &writes, &stop).await else {
                return;
            };
            let now = chrono::Utc::now();
            metrics.committed(
                took,
                w.events,
                w.inserted,
                w.dead,
                w.event_times
                    .iter()
                    .filter_map(|t| (now - *t).to_std().ok()),
            );
            // Receipts first: a lost receipt only means the terminal sends again.
            for (topic, ids) in &w.receipts {
                if let Some((site, dev, _)) = mqtt::parse_device_topic(topic) {
                    let r = Receipt {
                        v: SCHEMA_VERSION,
                        event_ids: ids.clone(),
                    };
                    let t = mqtt::device_topic(site, dev, DeviceTopic::Receipts);
                    if let Err(e) = client
                        .publish(t, QoS::AtLeastOnce, false, r.to_cbor())
                        .await
                    {
                        warn!(error = %e, "receipt not sent");
                    }
                }
            }
            for (site, revision) in &w.heads {
                info!(site = %site, revision, "roster changed");
            }
            if !w.heads.is_empty() {
                let _ = heads.try_send(Heads::Changed);
            }
            for p in &writes {
                if let Err(e) = client.ack(p).await {
                    // Not acked: the broker redelivers, the insert ignores it.
                    warn!(error = %e, "ack failed");
                }
            }
            total += w.inserted;
            dead += w.dead;
            if w.dead > 0 {
                warn!(
                    messages = w.dead,
                    "undecodable messages moved to dead_letter"
                );
            }
            debug!(
                events = w.events,
                inserted = w.inserted,
                total,
                dead,
                "committed"
            );
        }
        for p in &syncs {
            if !answer_sync(&sink, &client, p, &stop).await {
                return;
            }
            if let Err(e) = client.ack(p).await {
                warn!(error = %e, "ack failed");
            }
        }
    }
    sink.close().await;
}

/// Writes until MySQL takes it, with the time of the write that did; `None` when stopping
/// first (nothing acked: the broker keeps the messages for the next run).
async fn write_with_retry(
    sink: &Sink,
    batch: &[Publish],
    stop: &Shutdown,
) -> Option<(Written, Duration)> {
    let messages: Vec<Message> = batch
        .iter()
        .map(|p| Message {
            topic: p.topic.clone(),
            payload: p.payload.to_vec(),
        })
        .collect();
    until_ok(stop, "MySQL write failed; retrying", || async {
        let started = std::time::Instant::now();
        sink.write(&messages).await.map(|w| (w, started.elapsed()))
    })
    .await
}

/// Runs a MySQL operation until it succeeds, backing off; `None` when stopping first.
async fn until_ok<T, Fut>(stop: &Shutdown, failed: &str, mut op: impl FnMut() -> Fut) -> Option<T>
where
    Fut: std::future::Future<Output = Result<T, SinkError>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(15));
    loop {
        match op().await {
            Ok(v) => return Some(v),
            Err(e) => {
                if stop.is_shutdown() {
                    return None;
                }
                warn!(error = %e, "{failed}");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// What the heads task is asked to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heads {
    /// The heads that changed since last published.
    Changed,
    /// Every head (after a (re)subscription).
    All,
}

/// How often MySQL is read for heads changed by someone else (`attendance-uplink
/// roster`, another uplink worker).
const HEADS_POLL: Duration = Duration::from_secs(2);

/// Publishes each site's roster head, retained, when it changes: at once after the
/// writer commits a change, within [`HEADS_POLL`] after a change made elsewhere, and all
/// of them after every (re)subscription.
async fn heads_loop(
    pool: mysql_async::Pool,
    client: AsyncClient,
    mut poke: mpsc::Receiver<Heads>,
    mut stop: Shutdown,
) {
    let mut published: std::collections::HashMap<String, u64> = Default::default();
    let mut poll = tokio::time::interval(HEADS_POLL);
    loop {
        let all = tokio::select! {
            p = poke.recv() => match p {
                Some(p) => p == Heads::All,
                None => return,
            },
            _ = poll.tick() => false,
            _ = stop.recv() => return,
        };
        let heads = match roster::heads(&pool).await {
            Ok(h) => h,
            Err(e) => {
                debug!(error = %e, "reading the roster heads failed");
                continue;
            }
        };
        for (site, revision) in heads {
            if all || published.get(&site) != Some(&revision) {
                publish_head(&client, &site, revision).await;
                published.insert(site, revision);
            }
        }
    }
}

/// The site's retained roster head: terminals learn of a change, and on connecting
/// where the roster is.
async fn publish_head(client: &AsyncClient, site: &str, revision: u64) {
    let head = Head {
        v: wire::ROSTER_VERSION,
        site: site.to_owned(),
        revision,
    };
    let topic = mqtt::site_roster_topic(site);
    if let Err(e) = client
        .publish(topic, QoS::AtLeastOnce, true, wire::encode(&head))
        .await
    {
        warn!(error = %e, "roster head not sent");
    }
}

/// Answers a terminal's roster request with the next page of its site's changes.
/// Returns false when stopping before MySQL answered.
async fn answer_sync(sink: &Sink, client: &AsyncClient, p: &Publish, stop: &Shutdown) -> bool {
    let Some((site, dev, _)) = mqtt::parse_device_topic(&p.topic) else {
        return true;
    };
    let req: SyncRequest = match wire::decode(&p.payload) {
        Ok(r) => r,
        Err(e) => {
            warn!(topic = %p.topic, error = %e, "unreadable roster request ignored");
            return true;
        }
    };
    let read = || roster::page(sink.pool(), site, req.since, &req.embedder);
    let Some(page) = until_ok(stop, "reading the roster failed; retrying", read).await else {
        return false;
    };
    debug!(
        site,
        device = dev,
        since = req.since,
        up_to = page.up_to,
        entries = page.entries.len(),
        "roster page"
    );
    let topic = mqtt::device_topic(site, dev, DeviceTopic::Roster);
    if let Err(e) = client
        .publish(topic, QoS::AtLeastOnce, false, wire::encode(&page))
        .await
    {
        warn!(error = %e, "roster page not sent");
    }
    true
}

/// `attendance-uplink decode`: one message (an event batch or a single event) as JSON.
pub fn decode_to_json(bytes: &[u8]) -> Result<serde_json::Value, String> {
    if let Ok(b) = ciborium::from_reader::<EventBatch, _>(bytes) {
        return Ok(json!(b.events.iter().map(event_json).collect::<Vec<_>>()));
    }
    if let Ok(e) = ciborium::from_reader::<AttendanceEvent, _>(bytes) {
        return Ok(event_json(&e));
    }
    if let Ok(s) = ciborium::from_reader::<crate::mqtt::Stats, _>(bytes) {
        return serde_json::to_value(s).map_err(|e| e.to_string());
    }
    let v: ciborium::Value = ciborium::from_reader(bytes).map_err(|e| format!("not CBOR: {e}"))?;
    Err(format!("CBOR, but not an attendance message: {v:?}"))
}

fn event_json(e: &AttendanceEvent) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        for k in ["distance", "threshold"] {
            if let Some(f) = obj.get(k).and_then(|x| x.as_f64()) {
                obj.insert(k.into(), json!((f * 1e4).round() / 1e4));
            }
        }
    }
    v
}

/// Parses hex text (as `mosquitto_sub -F %x` prints) into bytes; whitespace is ignored.
pub fn from_hex(s: &str) -> Result<Vec<u8>, String> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    // Named as the user typed it (the crate reports a byte of a multi-byte character).
    if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("not hex: {c:?}"));
    }
    hex::decode(s).map_err(|e| format!("not hex: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_json_for_humans() {
        let e = AttendanceEvent {
            v: 1,
            event_id: uuid::Uuid::now_v7().to_string(),
            employee_id: Some("EMP001".into()),
            kind: crate::punch::PunchKind::In,
            device_id: "K1".into(),
            site: "hq".into(),
            source: crate::event::Source::Camera,
            distance: Some(0.21),
            threshold: Some(0.3),
            embedder: Some("hog-v1".into()),
            reason: None,
            detail: None,
            ts_server: "2026-01-01T00:00:00.000+00:00".into(),
            ts_client: None,
        };
        let b = EventBatch {
            v: 1,
            events: vec![e.clone()],
        }
        .to_cbor();
        let j = decode_to_json(&b).unwrap();
        assert_eq!(j[0]["employee_id"], "EMP001");
        assert_eq!(j[0]["distance"], 0.21);
        assert_eq!(j[0]["type"], "IN");
        assert_eq!(decode_to_json(&e.to_cbor()).unwrap()["source"], "camera");
        assert!(decode_to_json(b"\xff").is_err());
        assert_eq!(from_hex("a1 0f\n").unwrap(), vec![0xa1, 0x0f]);
        assert!(from_hex("abc").is_err());
        // Not ASCII: an error, not a panic on a character boundary.
        assert_eq!(from_hex("aéb").unwrap_err(), "not hex: 'é'");
        assert!(from_hex("éé").is_err());
    }
}
