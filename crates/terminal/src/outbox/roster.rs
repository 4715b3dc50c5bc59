//! The roster over the terminal's link: roster changes made here sent with their face
//! data, and the site's pages asked for (as [`Syncer`] decides) and handed to the
//! terminal, which applies them and reports the revision it reached.

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, QoS};
use tokio::sync::mpsc;
use tracing::{debug, error, warn};

use super::Batch;
use crate::store::Store;
use crate::store::outbox::Pending;
use attendance_wire::mqtt::{self, DeviceTopic};
use attendance_wire::roster::sync::Syncer;
use attendance_wire::roster::wire::{
    self, Change, ChangeBatch, Head, PAGE_BYTES, Page, SyncRequest,
};

/// A request not answered within this is sent again.
const RETRY: Duration = Duration::from_secs(10);

/// The publisher's end of the roster: pages go to the terminal, applied revisions come
/// back.
pub struct RosterLink {
    site: String,
    device_id: String,
    embedder: String,
    syncer: Syncer,
    pages: mpsc::Sender<Page>,
    pub(super) applied: mpsc::Receiver<u64>,
}

impl RosterLink {
    /// `revision`/`head`: where the store is now.
    pub(crate) fn new(
        site: &str,
        device_id: &str,
        embedder: &str,
        (revision, head): (u64, u64),
        pages: mpsc::Sender<Page>,
        applied: mpsc::Receiver<u64>,
    ) -> RosterLink {
        RosterLink {
            site: site.to_owned(),
            device_id: device_id.to_owned(),
            embedder: embedder.to_owned(),
            syncer: Syncer::new(revision, head, RETRY),
            pages,
            applied,
        }
    }

    pub(super) fn revision(&self) -> u64 {
        self.syncer.revision()
    }

    pub(super) fn head(&self) -> u64 {
        self.syncer.head()
    }

    async fn request(&self, since: Option<u64>, client: &AsyncClient) {
        let Some(since) = since else { return };
        let req = SyncRequest {
            v: wire::ROSTER_VERSION,
            since,
            embedder: self.embedder.clone(),
        };
        let topic = mqtt::device_topic(&self.site, &self.device_id, DeviceTopic::RosterSync);
        debug!(since, "asking for roster changes");
        // QoS 1 on the request channel: `try_` so the event loop we drive never waits on us.
        if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, wire::encode(&req)) {
            warn!(error = %e, "roster request not queued");
        }
    }

    pub(super) async fn subscribed(&mut self, client: &AsyncClient) {
        let since = self.syncer.subscribed(Instant::now());
        self.request(since, client).await;
    }

    pub(super) fn disconnected(&mut self) {
        self.syncer.disconnected();
    }

    pub(super) async fn uplink_online(&mut self, client: &AsyncClient) {
        let since = self.syncer.uplink_online(Instant::now());
        self.request(since, client).await;
    }

    pub(super) async fn tick(&mut self, client: &AsyncClient) {
        let since = self.syncer.tick(Instant::now());
        self.request(since, client).await;
    }

    pub(super) async fn applied_to(&mut self, revision: u64, client: &AsyncClient) {
        let since = self.syncer.applied(revision, Instant::now());
        self.request(since, client).await;
    }

    /// A message on one of the roster topics.
    pub(super) async fn incoming(&mut self, topic: &str, payload: &[u8], client: &AsyncClient) {
        if topic == mqtt::site_roster_topic(&self.site) {
            match wire::decode::<Head>(payload) {
                Ok(h) => {
                    let since = self.syncer.head_seen(h.revision, Instant::now());
                    self.request(since, client).await;
                }
                Err(e) => warn!(error = %e, "unreadable roster head ignored"),
            }
            return;
        }
        if topic != mqtt::device_topic(&self.site, &self.device_id, DeviceTopic::Roster) {
            return;
        }
        match Page::from_cbor(payload) {
            Ok(page) if page.site == self.site => {
                self.syncer.page_received(page.head);
                // Full only with a duplicate delivery while a page is being applied: that
                // page's report asks for what follows.
                let _ = self.pages.try_send(page);
            }
            Ok(page) => error!(site = %page.site, "roster page of another site ignored"),
            Err(e) => warn!(error = %e, "unreadable roster page ignored"),
        }
    }
}

/// Roster changes queued here, with the face data read from the sealed files: up to
/// [`PAGE_BYTES`] of it per message (at least one change). A face deleted before it was
/// sent is left out; a change that does not decode is marked broken.
pub(super) fn change_batch(store: &Store, rows: &[&Pending]) -> Batch {
    let mut batch = Batch {
        topic: DeviceTopic::RosterChanges,
        seqs: Vec::new(),
        payload: Vec::new(),
        broken: Vec::new(),
    };
    let mut changes = Vec::new();
    let mut bytes = 0;
    for r in rows {
        let mut change: Change = match ciborium::from_reader(&r.payload[..]) {
            Ok(c) => c,
            Err(e) => {
                error!(seq = r.seq, error = %e, "outbox roster change unreadable, skipped");
                batch.broken.push(r.seq);
                continue;
            }
        };
        if let wire::Op::Enrol { faces, .. } = &mut change.op {
            let mut kept = Vec::with_capacity(faces.len());
            for mut f in faces.drain(..) {
                match store.face_data(&f.face_id) {
                    Ok(Some((template, crop))) => {
                        f.template = Some(template);
                        f.crop = crop;
                        kept.push(f);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        error!(face_id = %f.face_id, error = %e, "enrolment face unreadable, not sent")
                    }
                }
            }
            *faces = kept;
        }
        let mut size: usize = change.faces().iter().map(wire::Face::bytes).sum();
        if !changes.is_empty() && bytes + size > PAGE_BYTES {
            break;
        }
        // One change alone over the budget would be over the broker's packet limit, and
        // sent again after every refusal, holding the outbox forever: the faces that do
        // not fit stay at this door only.
        if let wire::Op::Enrol { faces, .. } = &mut change.op {
            while size > PAGE_BYTES
                && let Some(f) = faces.pop()
            {
                size -= f.bytes();
                warn!(face_id = %f.face_id, bytes = f.bytes(), "enrolment face too large to share; kept at this door only");
            }
        }
        bytes += size;
        batch.seqs.push(r.seq);
        changes.push(change);
    }
    batch.payload = wire::encode(&ChangeBatch {
        v: wire::ROSTER_VERSION,
        changes,
    });
    batch
}
