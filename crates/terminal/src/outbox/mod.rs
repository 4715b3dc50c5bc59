//! The outbox publisher: sends unpublished events and roster changes, oldest first, to
//! the broker and marks them published only after the broker's PUBACK. Punches keep being
//! accepted (and queue on disk) whatever the network does. The same link keeps the
//! site's roster: it asks the uplink for changes and hands the pages to the terminal.

mod link;
mod roster;
mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, Outgoing, QoS};
use tokio::sync::{Notify, watch};
use tracing::{debug, error, info, warn};

use crate::store::outbox::{OutboxKind, Pending};
use crate::store::{Store, ts};
use attendance_core::shutdown::Shutdown;
use attendance_wire::event::{AttendanceEvent, EventBatch, SCHEMA_VERSION};
use attendance_wire::mqtt::{self, DeviceTopic, LinkState, MqttConfigError, MqttSettings, Stats};
use link::{Action, Failure, Input, Link, Loaded};
pub use roster::RosterLink;

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
    /// Returns at once (link `disabled`) when there is no broker. What to do on each
    /// event is [`Link`]'s to decide; this loop only carries it out.
    pub async fn run(mut self, options: Option<MqttOptions>, mut stop: Shutdown) {
        let Some(opts) = options else {
            let _ = self.link.send(LinkState::Disabled);
            return;
        };
        let _ = self.link.send(LinkState::Connecting);
        let (client, events) = AsyncClient::new(opts, 64);
        let mut events = mqtt::Events::new(events);
        let topic = |t| mqtt::device_topic(&self.site, &self.device_id, t);
        let status = topic(DeviceTopic::Status);
        let receipts = topic(DeviceTopic::Receipts);
        let receipt_timeout = Duration::from_secs(self.settings.receipt_timeout_secs.max(1));
        let mut requeue = tokio::time::interval((receipt_timeout / 4).max(Duration::from_secs(1)));
        let mut link = Link::default();
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
        let mut roster = self.roster.take();
        loop {
            if link.wants_load() {
                let batch = self.load(self.settings.batch_size).await.map(|b| Loaded {
                    topic: b.topic,
                    seqs: b.seqs,
                    payload: b.payload,
                });
                let actions = link.on(Input::Loaded(batch));
                self.carry_out(&mut link, actions, &client, roster.is_some())
                    .await;
            }
            let mut actions = Vec::new();
            tokio::select! {
                polled = events.poll() => match polled {
                    Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                        info!(session_present = ack.session_present, "MQTT connected");
                        actions = link.on(Input::ConnAck { session_present: ack.session_present });
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        actions = link.on(Input::Subscribed);
                        if let Some(r) = roster.as_mut() {
                            r.subscribed(&client).await;
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        debug!(pkid, "PUBLISH out");
                        actions = link.on(Input::OutgoingPublish(pkid));
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == receipts => {
                        self.confirm(&p.payload).await;
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == mqtt::UPLINK_TOPIC => {
                        info!("an uplink subscribed: sending what it has not confirmed again");
                        if self.settings.receipts && self.requeue_unconfirmed(Duration::ZERO).await > 0 {
                            actions = link.on(Input::MaybeMore);
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
                        actions = link.on(Input::PubAck(ack.pkid));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let text = e.to_string();
                        actions = link.on(Input::ConnectionError(&text));
                        if let Some(r) = roster.as_mut() {
                            r.disconnected();
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
                _ = self.wake.notified() => actions = link.on(Input::MaybeMore),
                _ = nudge.tick() => {
                    actions = link.on(Input::MaybeMore);
                    if let Some(r) = roster.as_mut() {
                        r.tick(&client).await;
                    }
                }
                _ = requeue.tick(), if self.settings.receipts => {
                    if self.requeue_unconfirmed(receipt_timeout).await > 0 {
                        actions = link.on(Input::MaybeMore);
                    }
                }
                _ = stats.tick() => {
                    if link.is_connected() {
                        let revision = roster.as_ref().map(|r| (r.revision(), r.head()));
                        self.publish_stats(&client, started, revision).await;
                    }
                }
                _ = stop.recv() => break,
            }
            if let Some(wait) = self
                .carry_out(&mut link, actions, &client, roster.is_some())
                .await
            {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.recv() => break,
                }
            }
        }
        // Graceful exit: say so (the will covers crashes), and flush for a moment.
        if link.is_connected() {
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

    /// Carries out [`Link`]'s actions in order; `Some(delay)` when the loop must wait
    /// that long before polling the connection again.
    async fn carry_out(
        &self,
        link: &mut Link,
        actions: Vec<Action>,
        client: &AsyncClient,
        roster: bool,
    ) -> Option<Duration> {
        let topic = |t| mqtt::device_topic(&self.site, &self.device_id, t);
        let mut queue = std::collections::VecDeque::from(actions);
        let mut wait = None;
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Link(state) => {
                    let _ = self.link.send(state);
                }
                Action::Subscribe => {
                    let status = topic(DeviceTopic::Status);
                    let _ = client.try_publish(status, QoS::AtMostOnce, true, "online");
                    let mut filters = vec![mqtt::UPLINK_TOPIC.to_owned()];
                    if self.settings.receipts {
                        filters.push(topic(DeviceTopic::Receipts));
                    }
                    if roster {
                        filters.push(topic(DeviceTopic::Roster));
                        filters.push(mqtt::site_roster_topic(&self.site));
                    }
                    let subs = filters
                        .into_iter()
                        .map(|f| rumqttc::SubscribeFilter::new(f, QoS::AtLeastOnce));
                    if let Err(e) = client.try_subscribe_many(subs) {
                        error!(error = %e, "subscribing failed");
                        // No SUBACK will come: go on as if it had.
                        queue.extend(link.on(Input::Subscribed));
                    }
                }
                Action::Publish { topic: t, payload } => {
                    debug!(bytes = payload.len(), "publishing a batch");
                    // The request channel holds 64 and at most one QoS 1 message is
                    // outstanding, so this never waits on the event loop we are driving.
                    let t = topic(t);
                    if let Err(e) = client.try_publish(t, QoS::AtLeastOnce, false, payload) {
                        error!(error = %e, "queueing the batch failed");
                    }
                }
                Action::MarkPublished(seqs) => self.mark_published(seqs).await,
                Action::Retry {
                    failure,
                    error,
                    after,
                } => {
                    match failure {
                        Failure::Lost => warn!(%error, "MQTT connection lost"),
                        Failure::New => warn!(%error, "MQTT connect failed"),
                        Failure::Again => debug!(%error, "MQTT connect failed"),
                    }
                    wait = Some(after);
                }
            }
        }
        wait
    }

    async fn mark_published(&self, seqs: Vec<i64>) {
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
        let now = chrono::Utc::now();
        let cutoff = now - chrono::Duration::from_std(timeout).unwrap_or_default();
        match tokio::task::spawn_blocking(move || store.outbox_requeue_unconfirmed(cutoff, now))
            .await
        {
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
