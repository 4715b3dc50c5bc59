//! Each site's roster head, published retained so doors learn of changes (and where the
//! roster is when they connect).

use std::time::Duration;

use rumqttc::{AsyncClient, QoS};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::roster;
use attendance_core::shutdown::Shutdown;
use attendance_wire::mqtt;
use attendance_wire::roster::wire::{self, Head};

/// What the heads task is asked to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heads {
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
pub(super) async fn heads_loop(
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
