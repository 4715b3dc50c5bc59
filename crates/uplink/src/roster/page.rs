//! Pages of a site's roster for terminals catching up: the changes after a revision, cut
//! to what one MQTT message carries.

use mysql_async::prelude::*;
use mysql_async::{Pool, TxOpts};

use crate::mysql::SinkError;
use attendance_wire::roster::wire::{self, Change, Entry, Face, Op, PAGE_BYTES, Page};

/// Changes per page query (a page holds fewer when their faces fill [`PAGE_BYTES`]).
const PAGE_ENTRIES: usize = 500;

/// The site's changes after `since`, in revision order, as much as one page holds;
/// faces carry the template when `embedder` made it, else the crop to re-embed (or the
/// template when no crop was kept). Read in one snapshot, so `head` and the entries agree.
pub(crate) async fn page(
    pool: &Pool,
    site: &str,
    since: u64,
    embedder: &str,
) -> Result<Page, SinkError> {
    let mut opts = TxOpts::default();
    opts.with_consistent_snapshot(true).with_readonly(true);
    let mut tx = pool.start_transaction(opts).await?;
    let head: u64 = tx
        .exec_first("SELECT revision FROM roster_sites WHERE site = ?", (site,))
        .await?
        .unwrap_or(0);
    type Row = (
        u64,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
        Option<String>,
    );
    let rows: Vec<Row> = tx
        .exec(
            format!(
                "SELECT revision, change_id, employee_id, op, name, device_id,
                        DATE_FORMAT(ts, '%Y-%m-%dT%H:%i:%s.%f+00:00'), retire
                 FROM roster_changes WHERE site = ? AND revision > ?
                 ORDER BY revision LIMIT {PAGE_ENTRIES}"
            ),
            (site, since),
        )
        .await?;
    let template_sql = "IF(embedder = ? OR crop IS NULL, template, NULL)";
    let crop_sql = "IF(embedder = ?, NULL, crop)";
    // The faces' sizes first, to cut the page before reading their bytes.
    let last = rows.last().map_or(since, |r| r.0);
    let sizes: Vec<(u64, u64)> = tx
        .exec(
            format!(
                "SELECT revision, SUM(COALESCE(LENGTH({template_sql}), 0) + COALESCE(LENGTH({crop_sql}), 0))
                 FROM roster_faces WHERE site = ? AND revision > ? AND revision <= ?
                 GROUP BY revision"
            ),
            (embedder, embedder, site, since, last),
        )
        .await?;
    let mut up_to = since;
    let mut bytes = 0u64;
    let mut taken = 0;
    for r in &rows {
        let size = sizes.iter().find(|s| s.0 == r.0).map_or(0, |s| s.1);
        if taken > 0 && bytes + size > PAGE_BYTES as u64 {
            break;
        }
        bytes += size;
        taken += 1;
        up_to = r.0;
    }
    // Everything after `since` fits: the page reaches the head. (A terminal ahead of the
    // head holds a revision from another database: it is told where the head is.)
    if taken == rows.len() && rows.len() < PAGE_ENTRIES {
        up_to = head.max(since);
    }
    let head = head.max(up_to);
    type FaceRow = (
        u64,
        String,
        String,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        f32,
        Option<String>,
        bool,
    );
    let faces: Vec<FaceRow> = tx
        .exec(
            format!(
                "SELECT revision, face_id, embedder, {template_sql}, {crop_sql}, quality, device_id, learned
                 FROM roster_faces WHERE site = ? AND revision > ? AND revision <= ?
                 ORDER BY revision, face_id"
            ),
            (embedder, embedder, site, since, up_to),
        )
        .await?;
    tx.commit().await?;
    let entries = rows
        .into_iter()
        .take(taken)
        .map(
            |(revision, change_id, employee_id, op, name, device_id, ts, retire)| {
                let op = match (op.as_str(), name) {
                    ("enrol", Some(name)) => Op::Enrol {
                        name,
                        faces: faces
                            .iter()
                            .filter(|f| f.0 == revision)
                            .map(|f| Face {
                                face_id: f.1.clone(),
                                embedder: f.2.clone(),
                                template: f.3.clone(),
                                crop: f.4.clone(),
                                quality: f.5,
                                device_id: f.6.clone(),
                                learned: f.7,
                            })
                            .collect(),
                        retire: retire
                            .iter()
                            .flat_map(|r| r.split(','))
                            .map(str::to_owned)
                            .collect(),
                    },
                    _ => Op::Delete,
                };
                Entry {
                    revision,
                    change: Change {
                        change_id,
                        employee_id,
                        site: site.to_owned(),
                        device_id,
                        ts,
                        op,
                    },
                }
            },
        )
        .collect();
    Ok(Page {
        v: wire::ROSTER_VERSION,
        site: site.to_owned(),
        since,
        up_to,
        head,
        entries,
    })
}
