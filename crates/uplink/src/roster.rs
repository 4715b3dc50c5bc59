//! The roster of record in MySQL: changes from terminals (or `attendance-uplink roster`)
//! written with the site's next revision, and pages of a site's changes for terminals
//! catching up.

use mysql_async::prelude::*;
use mysql_async::{Pool, Transaction};

use crate::mysql::{SinkError, mysql_time};
use attendance_face::learn::LEARNED;
use attendance_wire::roster::wire::{Change, Op};

/// Learned faces a person may have at a site. Each door keeps at most [`LEARNED`] and
/// retires past it, but doors learning for one person at the same moment each add one
/// before they hear of the other's; twice the bound leaves room for that, and stops a
/// door that teaches without retiring (broken or hostile) from growing every door's
/// gallery of the site without end.
const LEARNED_AT_SITE: i64 = 2 * LEARNED as i64;

mod page;
pub(crate) use page::page;

/// What became of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Written at this revision of its site.
    Written(u64),
    /// Written before (a terminal sending it again): nothing to do.
    Seen,
    /// About a person another site owns: nothing written. A person belongs to one site
    /// (`employee_id` is the company's); only that site, or HR moving them, changes them.
    Foreign { owner: String },
}

/// Takes the site's next revision. The row lock taken here is held to commit: revisions
/// of a site commit in order, so a terminal that has read revision n has everything up
/// to n.
async fn next_revision(tx: &mut Transaction<'_>, site: &str) -> Result<u64, SinkError> {
    tx.exec_drop(
        "INSERT INTO roster_sites (site, revision) VALUES (?, 1)
         ON DUPLICATE KEY UPDATE revision = revision + 1",
        (site,),
    )
    .await?;
    let revision: Option<u64> = tx
        .exec_first("SELECT revision FROM roster_sites WHERE site = ?", (site,))
        .await?;
    Ok(revision.unwrap_or(1))
}

/// The site that owns `employee_id` (locked to commit): the owner of record, or the site
/// whose doors generate ids of its shape (`{site}-{device}-NNN`) for an id nobody has
/// yet, so one site cannot take the next id another site's door will hand out.
async fn owner(tx: &mut Transaction<'_>, employee_id: &str) -> Result<Option<String>, SinkError> {
    let owner: Option<String> = tx
        .exec_first(
            "SELECT site FROM roster_people WHERE employee_id = ? FOR UPDATE",
            (employee_id,),
        )
        .await?;
    if owner.is_some() {
        return Ok(owner);
    }
    let sites: Vec<String> = tx.query("SELECT site FROM roster_sites").await?;
    Ok(generated_by(employee_id, &sites).map(str::to_owned))
}

/// The site among `sites` whose doors would generate `id` (`{site}-{device}-NNN`, the
/// longest site that fits, so `hq-annex-A-001` is hq-annex's and not hq's).
pub(crate) fn generated_by<'a>(id: &str, sites: &'a [String]) -> Option<&'a str> {
    sites
        .iter()
        .filter(|site| {
            id.strip_prefix(site.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|rest| rest.rsplit_once('-'))
                .is_some_and(|(device, n)| {
                    !device.is_empty() && n.len() >= 3 && n.bytes().all(|b| b.is_ascii_digit())
                })
        })
        .max_by_key(|site| site.len())
        .map(String::as_str)
}

/// Writes one change in the caller's transaction, if its site may make it.
pub(crate) async fn write_change(
    tx: &mut Transaction<'_>,
    c: &Change,
) -> Result<Outcome, SinkError> {
    let seen: Option<u64> = tx
        .exec_first(
            "SELECT revision FROM roster_changes WHERE change_id = ?",
            (c.change_id.as_str(),),
        )
        .await?;
    if seen.is_some() {
        return Ok(Outcome::Seen);
    }
    let owner = owner(tx, &c.employee_id).await?;
    if let Some(owner) = owner.filter(|o| *o != c.site) {
        return Ok(Outcome::Foreign { owner });
    }
    let revision = next_revision(tx, &c.site).await?;
    let (id, site) = (c.employee_id.as_str(), c.site.as_str());
    let mut retired = Vec::new();
    let name = match &c.op {
        Op::Enrol {
            name,
            faces,
            retire,
        } => {
            tx.exec_drop(
                "INSERT INTO roster_people (employee_id, site, name, revision) VALUES (?, ?, ?, ?)
                 ON DUPLICATE KEY UPDATE name = VALUES(name),
                     revision = VALUES(revision), active = 1, updated_at = CURRENT_TIMESTAMP(3)",
                (id, site, name.as_str(), revision),
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
                // A face id already stored (anywhere) is not added again.
                tx.exec_drop(
                    "INSERT INTO roster_faces
                       (face_id, employee_id, site, revision, embedder, template, crop, quality, device_id, learned)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON DUPLICATE KEY UPDATE face_id = face_id",
                    (
                        f.face_id.as_str(),
                        id,
                        site,
                        revision,
                        f.embedder.as_str(),
                        f.template.as_deref(),
                        f.crop.as_deref(),
                        f.quality,
                        f.device_id.as_deref(),
                        f.learned,
                    ),
                )
                .await?;
            }
            // Only this person's learned faces retire: an enrolment photo, or anybody
            // else's face, named here stays (and is not passed on to the doors).
            for face_id in retire {
                tx.exec_drop(
                    "DELETE FROM roster_faces
                     WHERE face_id = ? AND employee_id = ? AND site = ? AND learned = 1",
                    (face_id.as_str(), id, site),
                )
                .await?;
                if tx.affected_rows() > 0 {
                    retired.push(face_id.as_str());
                }
            }
            if faces.iter().any(|f| f.learned) {
                learned_within_bound(tx, id, site).await?;
            }
            Some(name.as_str())
        }
        Op::Delete => {
            erase(tx, id, site).await?;
            None
        }
    };
    record(tx, c, revision, name, &retired).await?;
    Ok(Outcome::Written(revision))
}

/// Refuses (the whole change, as a dead letter) a change that leaves the person with more
/// learned faces at the site than [`LEARNED_AT_SITE`].
async fn learned_within_bound(
    tx: &mut Transaction<'_>,
    id: &str,
    site: &str,
) -> Result<(), SinkError> {
    let learned: Option<i64> = tx
        .exec_first(
            "SELECT COUNT(*) FROM roster_faces WHERE employee_id = ? AND site = ? AND learned = 1",
            (id, site),
        )
        .await?;
    match learned.unwrap_or(0) {
        n if n > LEARNED_AT_SITE => Err(SinkError::Refused(format!(
            "{n} learned faces of {id} at {site}, at most {LEARNED_AT_SITE}: a door learns at \
             most {LEARNED} and retires past them"
        ))),
        _ => Ok(()),
    }
}

/// Erasure of a person of `site`: faces, name and the earlier changes that carried them
/// go (the caller's tombstone tells every door). Attendance rows stay.
async fn erase(tx: &mut Transaction<'_>, id: &str, site: &str) -> Result<(), SinkError> {
    let owned: Option<String> = tx
        .exec_first(
            "SELECT site FROM roster_people WHERE employee_id = ? AND site = ?",
            (id, site),
        )
        .await?;
    if owned.is_some() {
        tx.exec_drop("DELETE FROM users WHERE employee_id = ?", (id,))
            .await?;
    }
    for sql in [
        "DELETE FROM roster_faces WHERE employee_id = ? AND site = ?",
        "DELETE FROM roster_people WHERE employee_id = ? AND site = ?",
        "DELETE FROM roster_changes WHERE employee_id = ? AND site = ?",
    ] {
        tx.exec_drop(sql, (id, site)).await?;
    }
    Ok(())
}

/// The change's row in the site's log (`name` for an enrolment, none for a tombstone;
/// the learned faces it retired).
async fn record(
    tx: &mut Transaction<'_>,
    c: &Change,
    revision: u64,
    name: Option<&str>,
    retired: &[&str],
) -> Result<(), SinkError> {
    // Face ids are UUIDs (checked): a comma cannot be in one.
    let retired = (!retired.is_empty()).then(|| retired.join(","));
    tx.exec_drop(
        "INSERT INTO roster_changes (site, revision, change_id, employee_id, op, name, device_id, ts, retire)
         VALUES (?, ?, ?, ?, ?, ?, ?, COALESCE(?, CURRENT_TIMESTAMP(3)), ?)",
        (
            c.site.as_str(),
            revision,
            c.change_id.as_str(),
            c.employee_id.as_str(),
            if name.is_some() { "enrol" } else { "delete" },
            name,
            c.device_id.as_deref(),
            mysql_time(&c.ts),
            retired,
        ),
    )
    .await?;
    Ok(())
}

/// A door's change about another site's person, answered with a tombstone at the door's
/// own site under the change's id: the doors of that site (the sender among them) drop
/// whatever they hold under that id, the owner's site is untouched, and the change sent
/// again is [`Outcome::Seen`]. Returns the revision.
pub(crate) async fn write_revocation(
    tx: &mut Transaction<'_>,
    c: &Change,
) -> Result<u64, SinkError> {
    let revision = next_revision(tx, &c.site).await?;
    tx.exec_drop(
        "DELETE FROM roster_changes WHERE employee_id = ? AND site = ?",
        (c.employee_id.as_str(), c.site.as_str()),
    )
    .await?;
    record(tx, c, revision, None, &[]).await?;
    Ok(revision)
}

/// HR moves a person from `from` to `to` on purpose: a tombstone at `from` (its doors
/// forget them) and, with the same faces, an enrolment at `to` (its doors learn them),
/// in one transaction. Returns the revisions at `from` and `to`.
pub(crate) async fn move_person(
    tx: &mut Transaction<'_>,
    id: &str,
    from: &str,
    to: &str,
) -> Result<Option<(u64, u64)>, SinkError> {
    let person: Option<(String, String)> = tx
        .exec_first(
            "SELECT site, name FROM roster_people WHERE employee_id = ? FOR UPDATE",
            (id,),
        )
        .await?;
    let Some((site, name)) = person.filter(|(s, _)| s == from) else {
        return Ok(None);
    };
    let now = attendance_wire::event::ts(chrono::Utc::now());
    let change = |site: &str, op| Change {
        change_id: uuid::Uuid::now_v7().to_string(),
        employee_id: id.to_owned(),
        site: site.to_owned(),
        device_id: None,
        ts: now.clone(),
        op,
    };
    let gone = next_revision(tx, &site).await?;
    tx.exec_drop(
        "DELETE FROM roster_changes WHERE employee_id = ? AND site = ?",
        (id, from),
    )
    .await?;
    record(tx, &change(from, Op::Delete), gone, None, &[]).await?;
    let arrived = next_revision(tx, to).await?;
    tx.exec_drop(
        "UPDATE roster_people SET site = ?, revision = ?, updated_at = CURRENT_TIMESTAMP(3)
         WHERE employee_id = ?",
        (to, arrived, id),
    )
    .await?;
    tx.exec_drop(
        "UPDATE roster_faces SET site = ?, revision = ? WHERE employee_id = ? AND site = ?",
        (to, arrived, id, from),
    )
    .await?;
    let enrol = change(
        to,
        Op::Enrol {
            name: name.clone(),
            faces: Vec::new(),
            retire: Vec::new(),
        },
    );
    record(tx, &enrol, arrived, Some(&name), &[]).await?;
    Ok(Some((gone, arrived)))
}

/// Every site's latest revision.
pub(crate) async fn heads(pool: &Pool) -> Result<Vec<(String, u64)>, SinkError> {
    let mut c = pool.get_conn().await?;
    Ok(c.query("SELECT site, revision FROM roster_sites").await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_belong_to_the_site_whose_doors_make_them() {
        let sites: Vec<String> = ["hq", "hq-annex", "br"].map(String::from).to_vec();
        assert_eq!(generated_by("hq-A-001", &sites), Some("hq"));
        assert_eq!(generated_by("hq-annex-A-001", &sites), Some("hq-annex"));
        assert_eq!(generated_by("br-door-2-0042", &sites), Some("br"));
        for free in ["E500", "hq-A-01", "hq--001", "hq-A-00x", "kr-A-001", "hq"] {
            assert_eq!(generated_by(free, &sites), None, "{free}");
        }
    }
}
