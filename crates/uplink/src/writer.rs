//! The uplink's writer: admits each message against its sender's budgets (`admission`),
//! writes what is admitted in MySQL transactions, then answers: receipts first (a lost
//! one only means the door sends again), then the MQTT acks. Roster requests are read
//! here and handed to the sync task, which answers them off this path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Publish, QoS};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::admission::{Admission, Admit, Limits, Refusal};
use super::decode::{Decoded, Message, decode};
use super::heads::Heads;
use super::sink::{Sink, Written};
use super::sync::Request;
use super::until_ok;
use crate::metrics::UplinkMetrics;
use attendance_core::shutdown::Shutdown;
use attendance_wire::event::{Receipt, SCHEMA_VERSION};
use attendance_wire::mqtt::{self, DeviceTopic};
use attendance_wire::roster::wire::{self, SyncRequest};

/// What the writer works with.
pub(super) struct Writer {
    pub(super) sink: Sink,
    pub(super) metrics: Arc<UplinkMetrics>,
    pub(super) client: AsyncClient,
    pub(super) heads: mpsc::Sender<Heads>,
    pub(super) syncs: mpsc::Sender<Request>,
    /// Most messages written in one transaction.
    pub(super) max_messages: usize,
}

/// An admitted message on its way to MySQL.
struct Admitted {
    publish: Publish,
    message: Message,
    decoded: Decoded,
}

impl Writer {
    /// Takes messages as they come until the channel closes (the connection loop ended)
    /// or `stop`; nothing is acknowledged that MySQL has not taken.
    pub(super) async fn run(self, mut rx: mpsc::Receiver<Publish>, stop: Shutdown) {
        let mut admission = Admission::new(Limits::default());
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < self.max_messages {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            let now = Instant::now();
            let mut admitted = Vec::with_capacity(batch.len());
            for p in batch {
                if let Some(a) = self.admit(&mut admission, p, now).await {
                    admitted.push(a);
                }
            }
            if !admitted.is_empty() && !self.write(admitted, &stop).await {
                break;
            }
        }
        self.sink.close().await;
    }

    /// Sorts one message: `Some` to write; requests and refusals are dealt with (and
    /// acknowledged) here.
    async fn admit(&self, admission: &mut Admission, p: Publish, now: Instant) -> Option<Admitted> {
        match admission.admit(&p.topic, p.payload.len(), now) {
            Admit::Write => {
                let message = Message {
                    topic: p.topic.clone(),
                    payload: p.payload.to_vec(),
                };
                let decoded = decode(&message);
                if let Decoded::Dead(why) = &decoded
                    && !admission.keep_dead_letter(&p.topic, now)
                {
                    let why = why.clone();
                    self.refuse(admission, &p, Refusal::DeadLetterBudget, &why, now)
                        .await;
                    return None;
                }
                Some(Admitted {
                    publish: p,
                    message,
                    decoded,
                })
            }
            Admit::Sync => {
                let (site, device, _) = mqtt::parse_device_topic(&p.topic)?;
                let request = match wire::decode::<SyncRequest>(&p.payload) {
                    Ok(req) => Request {
                        site: site.to_owned(),
                        device: device.to_owned(),
                        req,
                    },
                    Err(e) => {
                        let why = e.to_string();
                        self.refuse(admission, &p, Refusal::BadRequest, &why, now)
                            .await;
                        return None;
                    }
                };
                // A request is idempotent and repeated by the door when unanswered: it
                // is acknowledged as soon as it is queued.
                match self.syncs.try_send(request) {
                    Ok(()) => self.ack(&p).await,
                    Err(_) => {
                        self.refuse(admission, &p, Refusal::SyncQueueFull, "", now)
                            .await
                    }
                }
                None
            }
            Admit::Refuse(r) => {
                self.refuse(admission, &p, r, "", now).await;
                None
            }
        }
    }

    /// Counts and acknowledges a refused message (logged once a minute per sender).
    async fn refuse(
        &self,
        admission: &mut Admission,
        p: &Publish,
        r: Refusal,
        why: &str,
        now: Instant,
    ) {
        let reason: &'static str = r.into();
        self.metrics.refused(reason);
        if admission.log_due(&p.topic, now) {
            warn!(topic = %p.topic, reason, why, bytes = p.payload.len(), "message refused (logged once a minute per door)");
        }
        self.ack(p).await;
    }

    async fn ack(&self, p: &Publish) {
        if let Err(e) = self.client.ack(p).await {
            // Not acked: the broker redelivers, and it is refused or ignored again.
            warn!(error = %e, "ack failed");
        }
    }

    /// Writes the admitted messages and answers them; false when stopping first
    /// (nothing acknowledged: the broker keeps the messages for the next run).
    async fn write(&self, admitted: Vec<Admitted>, stop: &Shutdown) -> bool {
        let (publishes, batch): (Vec<Publish>, Vec<(Message, Decoded)>) = admitted
            .into_iter()
            .map(|a| (a.publish, (a.message, a.decoded)))
            .unzip();
        let written = until_ok(stop, "MySQL write failed; retrying", || async {
            let started = Instant::now();
            self.sink
                .write(&batch)
                .await
                .map(|w| (w, started.elapsed()))
        })
        .await;
        let Some((w, took)) = written else {
            return false;
        };
        self.answer(&w, took).await;
        for p in &publishes {
            self.ack(p).await;
        }
        true
    }

    /// Metrics, receipts, roster heads and logs of one write.
    async fn answer(&self, w: &Written, took: Duration) {
        let now = chrono::Utc::now();
        self.metrics.committed(
            took,
            w.events,
            w.inserted,
            w.dead,
            w.event_times
                .iter()
                .filter_map(|t| (now - *t).to_std().ok()),
        );
        for (topic, ids) in &w.receipts {
            if let Some((site, dev, _)) = mqtt::parse_device_topic(topic) {
                let r = Receipt {
                    v: SCHEMA_VERSION,
                    event_ids: ids.clone(),
                };
                let t = mqtt::device_topic(site, dev, DeviceTopic::Receipts);
                if let Err(e) = self
                    .client
                    .publish(t, QoS::AtLeastOnce, false, r.to_cbor())
                    .await
                {
                    warn!(error = %e, "receipt not sent");
                }
            }
        }
        for (topic, employee_id, owner) in &w.foreign {
            self.metrics.refused(Refusal::ForeignPerson.into());
            warn!(%topic, %employee_id, %owner, "roster change about another site's person: revoked at the sender's site");
        }
        for (site, revision) in &w.heads {
            tracing::info!(site = %site, revision, "roster changed");
        }
        if !w.heads.is_empty() {
            let _ = self.heads.try_send(Heads::Changed);
        }
        if w.dead > 0 {
            warn!(
                messages = w.dead,
                "undecodable or refused messages moved to dead_letter"
            );
        }
        debug!(events = w.events, inserted = w.inserted, "committed");
    }
}
