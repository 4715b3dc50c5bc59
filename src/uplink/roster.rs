//! The roster of record in MySQL: changes from terminals (or `attendance-uplink roster`)
//! written with the site's next revision, and pages of a site's changes for terminals
//! catching up.

use mysql_async::prelude::*;
use mysql_async::{Pool, Transaction, TxOpts};

use super::sink::{SinkError, mysql_time};
use crate::roster::wire::{self, Change, Entry, Face, Op, PAGE_BYTES, Page};

/// Changes per page query (a page holds fewer when their faces fill [`PAGE_BYTES`]).
const PAGE_ENTRIES: usize = 500;

/// Writes one change in the caller's transaction; returns its revision, or `None` when
/// this change was written before (a terminal sending it again).
pub(crate) async fn write_change(
    tx: &mut Transaction<'_>,
    c: &Change,
) -> Result<Option<u64>, SinkError> {
    let seen: Option<u64> = tx
        .exec_first(
            "SELECT revision FROM roster_changes WHERE change_id = ?",
            (c.change_id.as_str(),),
        )
        .await?;
    if seen.is_some() {
        return Ok(None);
    }
    // The row lock taken here is held to commit: revisions of a site commit in order, so
    // a terminal that has read revision n has everything up to n.
    tx.exec_drop(
        "INSERT INTO roster_sites (site, revision) VALUES (?, 1)
         ON DUPLICATE KEY UPDATE revision = revision + 1",
        (c.site.as_str(),),
    )
    .await?;
    let revision: Option<u64> = tx
        .exec_first(
            "SELECT revision FROM roster_sites WHERE site = ?",
            (c.site.as_str(),),
        )
        .await?;
    let revision = revision.unwrap_or(1);
    let ts = mysql_time(&c.ts);
    let id = c.employee_id.as_str();
    let name = match &c.op {
        Op::Enrol { name, faces } => {
            tx.exec_drop(
                "INSERT INTO roster_people (employee_id, site, name, revision) VALUES (?, ?, ?, ?)
                 ON DUPLICATE KEY UPDATE site = VALUES(site), name = VALUES(name),
                     revision = VALUES(revision), active = 1, updated_at = CURRENT_TIMESTAMP(3)",
                (id, c.site.as_str(), name.as_str(), revision),
            )
            .await?;
            // The spec's `users` table: every person's name, for dashboards to join.
            tx.exec_drop(
                "INSERT INTO users (employee_id, name) VALUES (?, ?)
                 ON DUPLICATE KEY UPDATE name = VALUES(name)",
                (id, name.as_str()),
            )
            .await?;
            for f in faces {
                tx.exec_drop(
                    "INSERT IGNORE INTO roster_faces
                       (face_id, employee_id, site, revision, embedder, template, crop, quality, device_id)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        f.face_id.as_str(),
                        id,
                        c.site.as_str(),
                        revision,
                        f.embedder.as_str(),
                        f.template.as_deref(),
                        f.crop.as_deref(),
                        f.quality,
                        f.device_id.as_deref(),
                    ),
                )
                .await?;
            }
            Some(name.as_str())
        }
        Op::Delete => {
            // Erasure: faces, name and the earlier changes that carried them go; the
            // tombstone below tells every door. Attendance rows stay.
            for sql in [
                "DELETE FROM roster_faces WHERE employee_id = ?",
                "DELETE FROM roster_people WHERE employee_id = ?",
                "DELETE FROM users WHERE employee_id = ?",
                "DELETE FROM roster_changes WHERE employee_id = ?",
            ] {
                tx.exec_drop(sql, (id,)).await?;
            }
            None
        }
    };
    tx.exec_drop(
        "INSERT INTO roster_changes (site, revision, change_id, employee_id, op, name, device_id, ts)
         VALUES (?, ?, ?, ?, ?, ?, ?, COALESCE(?, CURRENT_TIMESTAMP(3)))",
        (
            c.site.as_str(),
            revision,
            c.change_id.as_str(),
            id,
            if name.is_some() { "enrol" } else { "delete" },
            name,
            c.device_id.as_deref(),
            ts,
        ),
    )
    .await?;
    Ok(Some(revision))
}

/// Every site's latest revision.
pub(crate) async fn heads(pool: &Pool) -> Result<Vec<(String, u64)>, SinkError> {
    let mut c = pool.get_conn().await?;
    Ok(c.query("SELECT site, revision FROM roster_sites").await?)
}

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
    );
    let rows: Vec<Row> = tx
        .exec(
            format!(
                "SELECT revision, change_id, employee_id, op, name, device_id,
                        DATE_FORMAT(ts, '%Y-%m-%dT%H:%i:%s.%f+00:00')
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
    );
    let faces: Vec<FaceRow> = tx
        .exec(
            format!(
                "SELECT revision, face_id, embedder, {template_sql}, {crop_sql}, quality, device_id
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
            |(revision, change_id, employee_id, op, name, device_id, ts)| {
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
                            })
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
