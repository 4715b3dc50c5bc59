//! Answering the doors' roster requests, off the event-write path: a door paging
//! through the whole roster (or a broken one asking in a loop, within its ration) costs
//! MySQL reads on its own task, and never delays another door's punches.

use rumqttc::{AsyncClient, QoS};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{roster, until_ok};
use attendance_core::shutdown::Shutdown;
use attendance_wire::mqtt::{self, DeviceTopic};
use attendance_wire::roster::wire::{self, SyncRequest};

/// Requests waiting for MySQL at most; more are refused (the door asks again).
pub(super) const QUEUE: usize = 64;

/// A door's roster request, read and admitted by the writer.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) site: String,
    pub(super) device: String,
    pub(super) req: SyncRequest,
}

/// Answers requests in order until the writer drops its end, or `stop`.
pub(super) async fn sync_loop(
    pool: mysql_async::Pool,
    client: AsyncClient,
    mut requests: mpsc::Receiver<Request>,
    stop: Shutdown,
) {
    while let Some(r) = requests.recv().await {
        if !answer(&pool, &client, &r, &stop).await {
            return;
        }
    }
}

/// Answers a terminal's roster request with the next page of its site's changes.
/// Returns false when stopping before MySQL answered.
async fn answer(
    pool: &mysql_async::Pool,
    client: &AsyncClient,
    r: &Request,
    stop: &Shutdown,
) -> bool {
    let Request { site, device, req } = r;
    let read = || roster::page(pool, site, req.since, &req.embedder);
    let Some(page) = until_ok(stop, "reading the roster failed; retrying", read).await else {
        return false;
    };
    debug!(
        site,
        device,
        since = req.since,
        up_to = page.up_to,
        entries = page.entries.len(),
        "roster page"
    );
    let topic = mqtt::device_topic(site, device, DeviceTopic::Roster);
    if let Err(e) = client
        .publish(topic, QoS::AtLeastOnce, false, wire::encode(&page))
        .await
    {
        warn!(error = %e, "roster page not sent");
    }
    true
}
