//! Attendance attempts: the punch rules applied and the row written together with its
//! outbox event, in one transaction.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError, ts};
use attendance_core::clock::{BootTime, ClockSync, Stamp};
use attendance_core::punch::{self, LastPunch, PunchDecision, PunchKind, PunchRequest, PunchRules};
use attendance_core::reason::{QualityIssue, Reason};
use attendance_wire::event::{AttendanceEvent, SCHEMA_VERSION, Source, decimal};

/// One attempt to record.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    /// Recognised employee, or `None` for a failed attempt (then `reason` is set).
    pub employee_id: Option<String>,
    pub request: PunchRequest,
    pub device_id: String,
    pub site: String,
    pub source: Source,
    pub distance: Option<f32>,
    pub threshold: Option<f32>,
    pub embedder: Option<String>,
    pub reason: Option<Reason>,
    pub detail: Option<QualityIssue>,
    pub ts_client: Option<String>,
    /// A face thumbnail file name already written to the image folder.
    pub image_ref: Option<String>,
}

/// What recording an attempt did.
#[derive(Debug, Clone, PartialEq)]
pub enum PunchOutcome {
    Recorded(Box<AttendanceRow>),
    /// Same punch again inside the window: nothing written.
    Duplicate {
        kind: PunchKind,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttendanceRow {
    pub(crate) id: i64,
    pub(crate) event_id: String,
    pub(crate) employee_id: Option<String>,
    #[serde(rename = "type")]
    pub(crate) kind: PunchKind,
    pub(crate) device_id: Option<String>,
    pub(crate) distance: Option<f64>,
    pub(crate) threshold: Option<f64>,
    pub(crate) embedder: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) source: String,
    pub(crate) ts_server: String,
    pub(crate) ts_client: Option<String>,
    pub(crate) image_ref: Option<String>,
    pub(crate) published_at: Option<String>,
    /// Whether `ts_server` was taken on a synchronised clock (`null`: recorded before
    /// the terminal kept it).
    pub(crate) clock: Option<ClockSync>,
}

impl AttendanceRow {
    /// The column names serde gives a row (the CSV export's header).
    pub(crate) const CSV_HEADER: [&'static str; 15] = [
        "id",
        "event_id",
        "employee_id",
        "type",
        "device_id",
        "distance",
        "threshold",
        "embedder",
        "reason",
        "source",
        "ts_server",
        "ts_client",
        "image_ref",
        "published_at",
        "clock",
    ];
}

/// Filters for `GET /attendance`.
#[derive(Debug, Clone, Default)]
pub struct AttendanceQuery {
    pub(crate) employee_id: Option<String>,
    /// Inclusive bounds on `ts_server`.
    pub(crate) from: Option<DateTime<Utc>>,
    pub(crate) to: Option<DateTime<Utc>>,
    pub(crate) limit: u32,
}

impl Store {
    /// Applies the punch rules and writes the row and its outbox event, durably, before
    /// returning. Failed attempts are always written; only recognised ones can be repeats.
    ///
    /// The last punch is placed on `now`'s clock ([`Stamp::place`]): a repeat 20 s later
    /// is a repeat though NTP stepped the clock by hours in between.
    pub fn record_attempt(
        &self,
        a: &NewAttempt,
        rules: &PunchRules,
        now: &Stamp,
    ) -> Result<PunchOutcome, StoreError> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let kind = match &a.employee_id {
            Some(emp) if a.reason.is_none() => {
                let last = last_punch(&tx, emp, now)?;
                let (window, zone) = (rules.duplicate_window, rules.zone);
                match punch::decide(a.request, last, now.wall, window, zone) {
                    PunchDecision::Duplicate(kind) => return Ok(PunchOutcome::Duplicate { kind }),
                    PunchDecision::Record(kind) => kind,
                }
            }
            _ => a.request.or_in(),
        };
        let event = AttendanceEvent {
            v: SCHEMA_VERSION,
            event_id: uuid::Uuid::now_v7().to_string(),
            employee_id: a.employee_id.clone(),
            kind,
            device_id: a.device_id.clone(),
            site: a.site.clone(),
            source: a.source,
            distance: a.distance,
            threshold: a.threshold,
            embedder: a.embedder.clone(),
            reason: a.reason,
            detail: a.detail,
            ts_server: ts(now.wall),
            ts_client: a.ts_client.clone(),
            clock: Some(now.sync),
        };
        tx.execute(
            "INSERT INTO attendance (event_id, employee_id, type, device_id, distance, threshold,
                                     embedder, reason, source, ts_server, ts_client, image_ref,
                                     clock, boot_id, since_boot_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                event.event_id,
                event.employee_id,
                kind.as_str(),
                event.device_id,
                event.distance.map(decimal),
                event.threshold.map(decimal),
                event.embedder,
                event.reason.map(Reason::as_str),
                event.source.as_str(),
                event.ts_server,
                event.ts_client,
                a.image_ref,
                now.sync.as_str(),
                now.boot.as_ref().map(|b| b.boot.as_str()),
                now.boot.as_ref().map(|b| b.since_boot.num_milliseconds()),
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO outbox (event_id, payload, created_at) VALUES (?1, ?2, ?3)",
            params![event.event_id, event.to_cbor(), event.ts_server],
        )?;
        let row = tx.query_row(
            &format!("SELECT {COLUMNS} FROM attendance WHERE id = ?1"),
            [id],
            attendance_row,
        )?;
        tx.commit()?;
        Ok(PunchOutcome::Recorded(Box::new(row)))
    }

    /// Newest first.
    pub(crate) fn attendance(&self, q: &AttendanceQuery) -> Result<Vec<AttendanceRow>, StoreError> {
        let c = self.conn();
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM attendance
             WHERE (?1 IS NULL OR employee_id = ?1)
               AND (?2 IS NULL OR ts_server >= ?2)
               AND (?3 IS NULL OR ts_server <= ?3)
             ORDER BY id DESC LIMIT ?4"
        ))?;
        let rows = stmt.query_map(
            params![
                q.employee_id,
                q.from.map(ts),
                q.to.map(ts),
                i64::from(q.limit)
            ],
            attendance_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes punch thumbnails taken before `before` and clears their `image_ref`.
    pub(crate) fn expire_punch_images(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let expired: Vec<(i64, String)> = {
            let c = self.conn();
            let mut stmt = c.prepare(
                "SELECT id, image_ref FROM attendance WHERE image_ref IS NOT NULL AND ts_server < ?1",
            )?;
            let rows = stmt.query_map([ts(before)], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, name) in &expired {
            super::files::remove(&self.image_dir.join(name))?;
            self.conn()
                .execute("UPDATE attendance SET image_ref = NULL WHERE id = ?1", [id])?;
        }
        Ok(expired.len())
    }

    #[cfg(test)]
    pub(crate) fn attendance_by_event(
        &self,
        event_id: &str,
    ) -> Result<Option<AttendanceRow>, StoreError> {
        let c = self.conn();
        Ok(c.query_row(
            &format!("SELECT {COLUMNS} FROM attendance WHERE event_id = ?1"),
            [event_id],
            attendance_row,
        )
        .optional()?)
    }
}

/// `IN` / `OUT` as the `type` column holds them; anything else is damage, reported.
fn punch_kind(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<PunchKind> {
    let s: String = r.get(i)?;
    PunchKind::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("punch type {s:?}").into(),
        )
    })
}

const COLUMNS: &str = "id, event_id, employee_id, type, device_id, distance, threshold, embedder,
                       reason, source, ts_server, ts_client, image_ref, published_at, clock";

fn attendance_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AttendanceRow> {
    Ok(AttendanceRow {
        id: r.get(0)?,
        event_id: r.get(1)?,
        employee_id: r.get(2)?,
        kind: punch_kind(r, 3)?,
        device_id: r.get(4)?,
        distance: r.get(5)?,
        threshold: r.get(6)?,
        embedder: r.get(7)?,
        reason: r.get(8)?,
        source: r.get(9)?,
        ts_server: r.get(10)?,
        ts_client: r.get(11)?,
        image_ref: r.get(12)?,
        published_at: r.get(13)?,
        clock: r
            .get::<_, Option<String>>(14)?
            .and_then(|c| ClockSync::parse(&c)),
    })
}

/// The employee's most recent recorded (recognised) punch, placed on `now`'s clock.
fn last_punch(
    tx: &rusqlite::Transaction<'_>,
    employee_id: &str,
    now: &Stamp,
) -> rusqlite::Result<Option<LastPunch>> {
    let row = tx
        .query_row(
            "SELECT type, ts_server, boot_id, since_boot_ms FROM attendance
             WHERE employee_id = ?1 AND reason IS NULL ORDER BY id DESC LIMIT 1",
            [employee_id],
            |r| {
                let boot: Option<String> = r.get(2)?;
                let ms: Option<i64> = r.get(3)?;
                let at: String = r.get(1)?;
                Ok((punch_kind(r, 0)?, at, boot.zip(ms)))
            },
        )
        .optional()?;
    Ok(row.and_then(|(kind, at, boot)| {
        let at = DateTime::parse_from_rfc3339(&at).ok()?.with_timezone(&Utc);
        let boot = boot.map(|(boot, ms)| BootTime {
            boot,
            since_boot: chrono::Duration::milliseconds(ms),
        });
        Some(LastPunch {
            kind,
            at: now.place(at, boot.as_ref()),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{attempt, rules, temp_store};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn punches_duplicates_and_unknowns() {
        let s = temp_store();
        let st = &s.store;
        let r = rules();
        let auto = PunchRequest::Auto;
        let t0 = at("2026-03-02T00:00:00Z");
        let first = st
            .record_attempt(&attempt(Some("EMP001"), auto), &r, &Stamp::synced(t0))
            .unwrap();
        let PunchOutcome::Recorded(row) = first else {
            panic!("{first:?}")
        };
        assert_eq!(row.kind, PunchKind::In);
        assert_eq!(row.source, "upload");
        assert_eq!(row.ts_server, "2026-03-02T00:00:00.000+00:00");
        // 20 s later: the same punch again.
        let dup = st
            .record_attempt(
                &attempt(Some("EMP001"), auto),
                &r,
                &Stamp::synced(t0 + chrono::Duration::seconds(20)),
            )
            .unwrap();
        assert_eq!(
            dup,
            PunchOutcome::Duplicate {
                kind: PunchKind::In
            }
        );
        // Unknown attempts are always written, employee NULL.
        for _ in 0..2 {
            let u = st
                .record_attempt(&attempt(None, auto), &r, &Stamp::synced(t0))
                .unwrap();
            assert!(matches!(u, PunchOutcome::Recorded(ref row) if row.employee_id.is_none()));
        }
        // Evening: AUTO alternates to OUT.
        let out = st
            .record_attempt(
                &attempt(Some("EMP001"), auto),
                &r,
                &Stamp::synced(at("2026-03-02T09:00:00Z")),
            )
            .unwrap();
        assert!(matches!(out, PunchOutcome::Recorded(ref row) if row.kind == PunchKind::Out));
        let all = st
            .attendance(&AttendanceQuery {
                limit: 100,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(st.outbox_pending().unwrap(), 4);
        let mine = st
            .attendance(&AttendanceQuery {
                employee_id: Some("EMP001".into()),
                from: Some(at("2026-03-02T08:00:00Z")),
                limit: 100,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].kind, PunchKind::Out);
    }

    #[test]
    fn punch_images_expire() {
        let s = temp_store();
        let st = &s.store;
        crate::store::files::write_atomic(st.image_dir(), "punch_a.jpg", b"jpg").unwrap();
        let mut a = attempt(None, PunchRequest::Auto);
        a.image_ref = Some("punch_a.jpg".into());
        let t0 = at("2026-03-02T00:00:00Z");
        st.record_attempt(&a, &rules(), &Stamp::synced(t0)).unwrap();
        assert_eq!(
            st.expire_punch_images(t0).unwrap(),
            0,
            "not older than the cut-off"
        );
        assert_eq!(
            st.expire_punch_images(t0 + chrono::Duration::days(1))
                .unwrap(),
            1
        );
        assert!(
            crate::store::files::list(st.image_dir())
                .unwrap()
                .is_empty()
        );
        let rows = st
            .attendance(&AttendanceQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(rows[0].image_ref, None);
    }
}
