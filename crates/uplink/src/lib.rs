//! `attendance-uplink`: the central worker. Subscribes to every terminal's events (a shared
//! subscription, so workers can run side by side), writes them to MySQL idempotently, and
//! acknowledges each MQTT message only after its transaction commits: MySQL down means no
//! ack, the broker keeps the messages, nothing is lost.

pub mod admin;
mod admission;
pub mod config;
pub(crate) mod decode;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
mod heads;
mod json;
mod metrics;
mod metrics_listener;
mod mysql;
pub(crate) mod roster;
mod round;
pub mod sink;
mod sync;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Incoming, Publish, QoS};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::metrics::UplinkMetrics;
use attendance_core::backoff::Backoff;
use attendance_core::shutdown::Shutdown;
use attendance_wire::mqtt;
use attendance_wire::roster::wire::{self, UplinkOnline};
use config::UplinkConfig;
use heads::Heads;
pub use json::{decode_to_json, from_hex};
use sink::{Sink, SinkError};

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
    let notifier = attendance_core::systemd::Notifier::from_env();
    notifier.status("waiting for MySQL");
    let metrics = Arc::new(UplinkMetrics::default());
    if let Some(addr) = cfg.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| UplinkError::MetricsListen { addr, source })?;
        info!(listen = %listener.local_addr().unwrap_or(addr), "metrics listener ready");
        tokio::spawn(crate::metrics_listener::serve(
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
    let (client, events) = AsyncClient::new(opts, 256);
    let mut events = mqtt::Events::new(events);
    // Bounded by the broker's in-flight window for unacknowledged QoS 1 deliveries.
    let (tx, rx) = mpsc::channel::<Publish>(1024);
    let (heads, heads_rx) = mpsc::channel::<Heads>(16);
    tokio::spawn(heads::heads_loop(
        sink.pool().clone(),
        client.clone(),
        heads_rx,
        stop.clone(),
    ));
    let (syncs, syncs_rx) = mpsc::channel(sync::QUEUE);
    tokio::spawn(sync::sync_loop(
        sink.pool().clone(),
        client.clone(),
        syncs_rx,
        stop.clone(),
    ));
    let writer = writer::Writer {
        sink,
        metrics: metrics.clone(),
        client: client.clone(),
        heads: heads.clone(),
        syncs,
        max_messages: cfg.max_batch_messages,
    };
    let writer = tokio::spawn(writer.run(rx, stop.clone()));
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
                        ts: attendance_wire::event::ts(chrono::Utc::now()),
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

/// Runs a MySQL operation until it succeeds, backing off; `None` when stopping first.
pub(crate) async fn until_ok<T, Fut>(
    stop: &Shutdown,
    failed: &str,
    mut op: impl FnMut() -> Fut,
) -> Option<T>
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
