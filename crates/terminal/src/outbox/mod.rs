//! The outbox publisher: sends unpublished events and roster changes, oldest first, to
//! the broker and marks them published only after the broker's PUBACK. Punches keep being
//! accepted (and queue on disk) whatever the network does. The same link keeps the
//! site's roster: it asks the uplink for changes and hands the pages to the terminal.

mod roster;
pub(crate) mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, Outgoing, QoS};
use tokio::sync::{Notify, watch};
use tracing::{debug, error, info, warn};

use crate::store::outbox::{OutboxKind, Pending};
use crate::store::{Store, ts};
use attendance_core::backoff::Backoff;
use attendance_core::shutdown::Shutdown;
use attendance_wire::event::{AttendanceEvent, EventBatch, SCHEMA_VERSION};
use attendance_wire::mqtt::{self, DeviceTopic, LinkState, MqttConfigError, MqttSettings, Stats};
pub use roster::RosterLink;
use state::{Action, Sender};

/// Everything the publisher needs.
pub struct Publisher {
    pub store: Arc<Store>,
    pub settings: MqttSettings,
    pub site: String,
    pub device_id: String,
    /// Poked after each recorded punch.
    pub wake: Arc<Notify>,
    pub link: watch::Sender<LinkState>,
    /// The roster's channel to the terminal, when the terminal shares its site's roster.
    pub roster: Option<RosterLink>,
}

/// A batch ready to publish.
#[derive(Debug)]
struct Batch {
    /// `Events` or `RosterChanges`.
    topic: DeviceTopic,
    /// Outbox sequence numbers it carries.
    seqs: Vec<i64>,
    payload: Vec<u8>,
    /// Entries that cannot be sent (unreadable on disk): marked so they stop blocking.
    broken: Vec<i64>,
}

/// The next batch: the leading run of entries of one kind.
fn build_batch(store: &Store, rows: &[Pending]) -> Batch {
    let Some(first) = rows.first() else {
        return Batch {
            topic: DeviceTopic::Events,
            seqs: Vec::new(),
            payload: Vec::new(),
            broken: Vec::new(),
        };
    };
    let run = rows.iter().take_while(|r| r.kind == first.kind);
    let run: Vec<&Pending> = run.collect();
    match first.kind {
        OutboxKind::Event => event_batch(&run),
        OutboxKind::Roster => roster::change_batch(store, &run),
    }
}

fn event_batch(rows: &[&Pending]) -> Batch {
    let mut seqs = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    let mut broken = Vec::new();
    for r in rows {
        match ciborium::from_reader::<AttendanceEvent, _>(&r.payload[..]) {
            Ok(e) => {
                seqs.push(r.seq);
                events.push(e);
            }
            // Written by this program in the same transaction as its row; a payload that
            // does not decode is damage on disk. The attendance row stays on the terminal.
            Err(e) => {
                error!(seq = r.seq, event_id = %r.event_id, error = %e, "outbox payload unreadable, skipped");
                broken.push(r.seq);
            }
        }
    }
    let payload = EventBatch {
        v: SCHEMA_VERSION,
        events,
    }
    .to_cbor();
    Batch {
        topic: DeviceTopic::Events,
        seqs,
        payload,
        broken,
    }
}

impl Publisher {
    fn client_id(&self) -> String {
        self.settings
            .client_id
            .clone()
            .unwrap_or_else(|| format!("attendanced-{}-{}", self.site, self.device_id))
    }

    /// The broker connection the settings describe (TLS files read and checked now, so a
    /// bad certificate stops start-up instead of leaving the link quietly `disabled`);
    /// `None` when no broker is configured.
    pub fn options(&self) -> Result<Option<MqttOptions>, MqttConfigError> {
        if !self.settings.enabled() {
            return Ok(None);
        }
        let will = mqtt::offline_will(&self.site, &self.device_id);
        mqtt::options(&self.settings, &self.client_id(), Some(will)).map(Some)
    }

    /// Runs until `stop`, connected with `options` (from [`Publisher::options`]).
    /// Returns at once (link `disabled`) when there is no broker.
    pub async fn run(mut self, options: Option<MqttOptions>, mut stop: Shutdown) {
        let Some(opts) = options else {
            let _ = self.link.send(LinkState::Disabled);
            return;
        };
        let _ = self.link.send(LinkState::Connecting);
        let (client, mut events) = AsyncClient::new(opts, 64);
        let topic = |t| mqtt::device_topic(&self.site, &self.device_id, t);
        let status = topic(DeviceTopic::Status);
        let receipts = topic(DeviceTopic::Receipts);
        let receipt_timeout = Duration::from_secs(self.settings.receipt_timeout_secs.max(1));
        let mut requeue = tokio::time::interval((receipt_timeout / 4).max(Duration::from_secs(1)));
        let mut sender = Sender::default();
        // Where the batch in flight goes (one at a time, see `state`).
        let mut batch_topic = topic(DeviceTopic::Events);
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let mut stats = tokio::time::interval(Duration::from_secs(
            self.settings.stats_interval_secs.max(1),
        ));
        let started = Instant::now();
        // Belt and braces: a wake-up lost between check and wait costs one second. An
        // interval, not a sleep made afresh each turn: with other branches firing every
        // second (the receipt check at a short timeout) such a sleep never completed, and
        // an enrolment waited for a lucky turn (16 to 50 s measured).
        let mut nudge = tokio::time::interval(Duration::from_secs(1));
        nudge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // Whether the store may hold entries not yet loaded.
        let mut maybe_more = true;
        // The last connect error, logged as a warning only when it changes.
        let mut last_failure: Option<String> = None;
        // CONNACK's session flag, acted on once the subscriptions are in place.
        let mut session_present = false;
        let mut roster = self.roster.take();
        loop {
            if maybe_more && sender.wants_batch() {
                match self.load(self.settings.batch_size).await {
                    Some(b) if !b.seqs.is_empty() => {
                        batch_topic = topic(b.topic);
                        if let Some(a) = sender.start(b.seqs, b.payload) {
                            self.act(a, &client, &batch_topic).await;
                        }
                    }
                    _ => maybe_more = false,
                }
            }
            tokio::select! {
                polled = events.poll() => match polled {
                    Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                        info!(session_present = ack.session_present, "MQTT connected");
                        backoff.reset();
                        last_failure = None;
                        session_present = ack.session_present;
                        let _ = self.link.send(LinkState::Connected);
                        let _ = client.try_publish(&status, QoS::AtMostOnce, true, "online");
                        // Nothing is published before the SUBACK: then an uplink that
                        // subscribes after our events were dropped is heard announcing it.
                        let mut filters = vec![mqtt::UPLINK_TOPIC.to_owned()];
                        if self.settings.receipts {
                            filters.push(receipts.clone());
                        }
                        if roster.is_some() {
                            filters.push(topic(DeviceTopic::Roster));
                            filters.push(mqtt::site_roster_topic(&self.site));
                        }
                        let subs = filters
                            .into_iter()
                            .map(|f| rumqttc::SubscribeFilter::new(f, QoS::AtLeastOnce));
                        if let Err(e) = client.try_subscribe_many(subs) {
                            // No SUBACK will come: send anyway (the receipt timeout still
                            // covers what a broker drops) rather than hold every punch.
                            error!(error = %e, "subscribing failed");
                            if let Some(a) = sender.connected(session_present) {
                                self.act(a, &client, &batch_topic).await;
                            }
                            maybe_more = true;
                        }
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        if let Some(a) = sender.connected(session_present) {
                            self.act(a, &client, &batch_topic).await;
                        }
                        if let Some(r) = roster.as_mut() {
                            r.subscribed(&client).await;
                        }
                        maybe_more = true;
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        debug!(pkid, "PUBLISH out");
                        sender.outgoing_publish(pkid);
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == receipts => {
                        self.confirm(&p.payload).await;
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == mqtt::UPLINK_TOPIC => {
                        info!("an uplink subscribed: sending what it has not confirmed again");
                        if self.settings.receipts && self.requeue_unconfirmed(Duration::ZERO).await > 0 {
                            maybe_more = true;
                        }
                        if let Some(r) = roster.as_mut() {
                            r.uplink_online(&client).await;
                        }
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        if let Some(r) = roster.as_mut() {
                            r.incoming(&p.topic, &p.payload, &client).await;
                        }
                    }
                    Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                        debug!(pkid = ack.pkid, "PUBACK in");
                        if let Some(a) = sender.puback(ack.pkid) {
                            self.act(a, &client, &batch_topic).await;
                            maybe_more = true;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let text = e.to_string();
                        if sender.is_connected() {
                            warn!(error = %e, "MQTT connection lost");
                        } else if last_failure.as_deref() != Some(text.as_str()) {
                            // A refused certificate or login is the operator's to fix: say
                            // it once, not at every retry.
                            warn!(error = %e, "MQTT connect failed");
                        } else {
                            debug!(error = %e, "MQTT connect failed");
                        }
                        last_failure = Some(text);
                        sender.disconnected();
                        if let Some(r) = roster.as_mut() {
                            r.disconnected();
                        }
                        let _ = self.link.send(LinkState::Disconnected);
                        let delay = backoff.next_delay();
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = stop.recv() => break,
                        }
                    }
                },
                Some(revision) = async {
                    match roster.as_mut() {
                        Some(r) => r.applied.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some(r) = roster.as_mut() {
                        r.applied_to(revision, &client).await;
                    }
                }
                _ = self.wake.notified() => maybe_more = true,
                _ = nudge.tick() => {
                    maybe_more = true;
                    if let Some(r) = roster.as_mut() {
                        r.tick(&client).await;
                    }
                }
                _ = requeue.tick(), if self.settings.receipts => {
                    if self.requeue_unconfirmed(receipt_timeout).await > 0 {
                        maybe_more = true;
                    }
                }
                _ = stats.tick() => {
                    if sender.is_connected() {
                        let revision = roster.as_ref().map(|r| (r.revision(), r.head()));
                        self.publish_stats(&client, started, revision).await;
                    }
                }
                _ = stop.recv() => break,
            }
        }
        // Graceful exit: say so (the will covers crashes), and flush for a moment.
        if sender.is_connected() {
            let _ = client.try_publish(&status, QoS::AtMostOnce, true, "offline");
            let _ = client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                while events.poll().await.is_ok() {}
            })
            .await;
        }
        let _ = self.link.send(LinkState::Disconnected);
    }

    /// Loads the next batch; skips (marks) entries that cannot be read.
    async fn load(&self, limit: usize) -> Option<Batch> {
        let store = self.store.clone();
        let r = tokio::task::spawn_blocking(move || {
            let rows = store.outbox_next(limit)?;
            let batch = build_batch(&store, &rows);
            if !batch.broken.is_empty() {
                store.outbox_mark_published(&batch.broken, chrono::Utc::now())?;
            }
            Ok::<_, crate::store::StoreError>(batch)
        })
        .await;
        match r {
            Ok(Ok(batch)) => Some(batch),
            Ok(Err(e)) => {
                error!(error = %e, "reading the outbox failed");
                None
            }
            Err(e) => {
                error!(error = %e, "outbox reader failed");
                None
            }
        }
    }

    async fn act(&self, action: Action, client: &AsyncClient, topic: &str) {
        match action {
            Action::Publish(payload) => {
                debug!(topic, bytes = payload.len(), "publishing a batch");
                // The request channel holds 64 and at most one QoS 1 message is
                // outstanding, so this never waits on the event loop we are driving.
                if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, payload) {
                    error!(error = %e, "queueing the batch failed");
                }
            }
            Action::MarkPublished(seqs) => {
                let store = self.store.clone();
                let n = seqs.len();
                let r = tokio::task::spawn_blocking(move || {
                    store.outbox_mark_published(&seqs, chrono::Utc::now())
                })
                .await;
                match r {
                    Ok(Ok(())) => debug!(events = n, "published"),
                    // They stay unpublished and go again: the uplink ignores duplicates.
                    Ok(Err(e)) => error!(error = %e, "marking events published failed"),
                    Err(e) => error!(error = %e, "marking events published failed"),
                }
            }
        }
    }

    /// MySQL has these events.
    async fn confirm(&self, payload: &[u8]) {
        let receipt = match attendance_wire::event::Receipt::from_cbor(payload) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "unreadable receipt ignored");
                return;
            }
        };
        let store = self.store.clone();
        let r = tokio::task::spawn_blocking(move || {
            store.outbox_confirm(&receipt.event_ids, chrono::Utc::now())
        })
        .await;
        if let Ok(Err(e)) = r {
            error!(error = %e, "recording a receipt failed");
        }
    }

    /// Events the broker took but MySQL never confirmed go out again.
    async fn requeue_unconfirmed(&self, timeout: Duration) -> usize {
        let store = self.store.clone();
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(timeout).unwrap_or_default();
        match tokio::task::spawn_blocking(move || store.outbox_requeue_unconfirmed(cutoff)).await {
            Ok(Ok(n)) => {
                if n > 0 {
                    warn!(
                        events = n,
                        after_secs = timeout.as_secs(),
                        "no receipt from the uplink: sending again"
                    );
                }
                n
            }
            Ok(Err(e)) => {
                error!(error = %e, "requeueing unconfirmed events failed");
                0
            }
            Err(_) => 0,
        }
    }

    async fn publish_stats(
        &self,
        client: &AsyncClient,
        started: Instant,
        roster: Option<(u64, u64)>,
    ) {
        let store = self.store.clone();
        let counts = tokio::task::spawn_blocking(move || {
            Ok::<_, crate::store::StoreError>((
                store.outbox_pending()?,
                store.outbox_oldest_pending()?,
            ))
        })
        .await;
        let Ok(Ok((pending, oldest))) = counts else {
            return;
        };
        let now = chrono::Utc::now();
        let stats = Stats {
            v: SCHEMA_VERSION,
            site: self.site.clone(),
            device_id: self.device_id.clone(),
            outbox_pending: pending,
            oldest_pending_secs: oldest.map(|t| (now - t).num_seconds()),
            uptime_secs: started.elapsed().as_secs(),
            ts: ts(now),
            roster_revision: roster.map(|r| r.0),
            roster_head: roster.map(|r| r.1),
        };
        let mut payload = Vec::new();
        if ciborium::into_writer(&stats, &mut payload).is_ok() {
            let topic = mqtt::device_topic(&self.site, &self.device_id, DeviceTopic::Stats);
            let _ = client.try_publish(topic, QoS::AtMostOnce, false, payload);
        }
    }
}
