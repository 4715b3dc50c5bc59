//! The uplink's writer: sorts each message by its sender's budgets (`round::sort`),
//! writes what is admitted in MySQL transactions, then answers as `round::Round` orders:
//! receipts first, then the MQTT acks. Roster requests are handed to the sync task,
//! which answers them off this path. This file only carries those decisions out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Publish, QoS};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::admission::{Admission, Limits, Refusal};
use super::decode::{Decoded, Message};
use super::heads::Heads;
use super::round::{self, Answer, Round, Sorted};
use super::sink::{Sink, Written};
use super::sync::Request;
use super::until_ok;
use crate::metrics::UplinkMetrics;
use attendance_core::shutdown::Shutdown;

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
            let mut publishes = Vec::with_capacity(batch.len());
            let mut rows = Vec::with_capacity(batch.len());
            for p in batch {
                match round::sort(&mut admission, &p.topic, &p.payload, now) {
                    Sorted::Write(message, decoded) => {
                        publishes.push(p);
                        rows.push((message, decoded));
                    }
                    // A request is idempotent and repeated by the door when unanswered:
                    // it is acknowledged as soon as it is queued.
                    Sorted::Sync(request) => match self.syncs.try_send(request) {
                        Ok(()) => self.ack(&p).await,
                        Err(_) => {
                            self.refuse(&mut admission, &p, Refusal::SyncQueueFull, "", now)
                                .await
                        }
                    },
                    Sorted::Refuse { reason, why } => {
                        self.refuse(&mut admission, &p, reason, &why, now).await
                    }
                }
            }
            if !rows.is_empty() && !self.write(Round::new(publishes), rows, &stop).await {
                break;
            }
        }
        self.sink.close().await;
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

    /// Writes a round and answers it; false when stopping first (nothing acknowledged:
    /// the broker keeps the messages for the next run).
    async fn write(
        &self,
        round: Round<Publish>,
        rows: Vec<(Message, Decoded)>,
        stop: &Shutdown,
    ) -> bool {
        let written = until_ok(stop, "MySQL write failed; retrying", || async {
            let started = Instant::now();
            self.sink.write(&rows).await.map(|w| (w, started.elapsed()))
        })
        .await;
        let Some((w, took)) = written else {
            return false;
        };
        self.count(&w, took);
        for answer in round.committed(&w) {
            match answer {
                Answer::Receipt { topic, receipt } => {
                    let payload = receipt.to_cbor();
                    if let Err(e) = self
                        .client
                        .publish(topic, QoS::AtLeastOnce, false, payload)
                        .await
                    {
                        warn!(error = %e, "receipt not sent");
                    }
                }
                Answer::Foreign {
                    topic,
                    employee_id,
                    owner,
                } => {
                    self.metrics.refused(Refusal::ForeignPerson.into());
                    warn!(%topic, %employee_id, %owner, "roster change about another site's person: revoked at the sender's site");
                }
                Answer::HeadsChanged => {
                    for (site, revision) in &w.heads {
                        tracing::info!(site = %site, revision, "roster changed");
                    }
                    let _ = self.heads.try_send(Heads::Changed);
                }
                Answer::Ack(p) => self.ack(&p).await,
            }
        }
        true
    }

    /// Metrics and logs of one write.
    fn count(&self, w: &Written, took: Duration) {
        let now = chrono::Utc::now();
        self.metrics.committed(
            took,
            w.events,
            w.inserted,
            w.corrected,
            w.dead,
            w.event_times
                .iter()
                .filter_map(|t| (now - *t).to_std().ok()),
        );
        if w.dead > 0 {
            warn!(
                messages = w.dead,
                "undecodable or refused messages moved to dead_letter"
            );
        }
        debug!(events = w.events, inserted = w.inserted, "committed");
    }
}
