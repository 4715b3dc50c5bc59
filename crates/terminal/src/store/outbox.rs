//! The outbox: events in punch order, marked published only once the broker has them.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Store, StoreError, ts};

/// What an outbox entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutboxKind {
    /// An attendance event.
    Event,
    /// A roster change made here (enrolment, deletion), for the centre.
    Roster,
}

/// An entry waiting for the broker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pending {
    pub(crate) seq: i64,
    /// The event's id, or the roster change's.
    pub(crate) event_id: String,
    pub(crate) kind: OutboxKind,
    /// CBOR of one [`attendance_wire::event::AttendanceEvent`] or one [`attendance_wire::roster::wire::Change`]
    /// (whose faces are named, their data read when sent).
    pub(crate) payload: Vec<u8>,
}

impl Store {
    /// Number of events not yet acknowledged by the broker.
    pub(crate) fn outbox_pending(&self) -> Result<u64, StoreError> {
        let c = self.conn();
        let n: i64 = c.query_row(
            "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Creation time of the oldest unpublished event.
    pub(crate) fn outbox_oldest_pending(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let c = self.conn();
        let t: Option<String> = c.query_row(
            "SELECT MIN(created_at) FROM outbox WHERE published_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(t.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    /// The oldest `limit` unpublished events, in order.
    pub(crate) fn outbox_next(&self, limit: usize) -> Result<Vec<Pending>, StoreError> {
        let c = self.conn();
        let mut stmt = c.prepare_cached(
            "SELECT seq, event_id, payload, kind FROM outbox WHERE published_at IS NULL
             ORDER BY seq LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(Pending {
                seq: r.get(0)?,
                event_id: r.get(1)?,
                payload: r.get(2)?,
                kind: match r.get_ref(3)?.as_str()? {
                    "roster" => OutboxKind::Roster,
                    _ => OutboxKind::Event,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks events published (after the broker's PUBACK), and their attendance rows.
    pub(crate) fn outbox_mark_published(
        &self,
        seqs: &[i64],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        let at = ts(at);
        {
            let mut ob = tx.prepare_cached(
                "UPDATE outbox SET published_at = ?2 WHERE seq = ?1 AND published_at IS NULL",
            )?;
            let mut att = tx.prepare_cached(
                "UPDATE attendance SET published_at = ?2
                 WHERE event_id = (SELECT event_id FROM outbox WHERE seq = ?1)",
            )?;
            for s in seqs {
                ob.execute(params![s, at])?;
                att.execute(params![s, at])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records the uplink's receipt: MySQL has these events.
    pub(crate) fn outbox_confirm(
        &self,
        event_ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        let at = ts(at);
        let mut n = 0;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET confirmed_at = ?2,
                        published_at = COALESCE(published_at, ?2)
                 WHERE event_id = ?1 AND confirmed_at IS NULL",
            )?;
            for id in event_ids {
                n += stmt.execute(params![id, at])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Published but not confirmed since before `cutoff`: back to unpublished, to be sent
    /// again. Returns how many. Published after `now` means the clock was stepped back
    /// since: those are sent again too, not in hours when the clock has caught up.
    pub(crate) fn outbox_requeue_unconfirmed(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let c = self.conn();
        Ok(c.execute(
            "UPDATE outbox SET published_at = NULL
             WHERE published_at IS NOT NULL AND confirmed_at IS NULL
               AND (published_at < ?1 OR published_at > ?2)",
            [ts(cutoff), ts(now)],
        )?)
    }

    /// Events the broker has but the uplink has not confirmed.
    pub(crate) fn outbox_unconfirmed(&self) -> Result<u64, StoreError> {
        let c = self.conn();
        let n: i64 = c.query_row(
            "SELECT COUNT(*) FROM outbox WHERE published_at IS NOT NULL AND confirmed_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Deletes delivered outbox entries older than `before` (attendance rows stay). With
    /// receipts, delivered means confirmed by the uplink; without, published.
    pub(crate) fn outbox_prune(
        &self,
        before: DateTime<Utc>,
        receipts: bool,
    ) -> Result<usize, StoreError> {
        let c = self.conn();
        let sql = if receipts {
            "DELETE FROM outbox WHERE confirmed_at IS NOT NULL AND confirmed_at < ?1"
        } else {
            "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < ?1"
        };
        Ok(c.execute(sql, [ts(before)])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewAttempt;
    use crate::store::testing::temp_store;
    use attendance_core::clock::Stamp;
    use attendance_core::punch::PunchRequest;
    use attendance_core::punch::PunchRules;
    use attendance_core::reason::Reason;
    use attendance_wire::event::{EventBatch, Source};

    #[test]
    fn publish_cycle() {
        let s = temp_store();
        let st = &s.store;
        let rules = PunchRules {
            duplicate_window: chrono::Duration::seconds(60),
            zone: attendance_core::punch::DayZone::Local,
        };
        let now = Utc::now();
        for _ in 0..3 {
            let a = NewAttempt {
                employee_id: None,
                request: PunchRequest::Auto,
                device_id: "K1".into(),
                site: "hq".into(),
                source: Source::Camera,
                distance: None,
                threshold: None,
                embedder: None,
                reason: Some(Reason::NoFace),
                detail: None,
                ts_client: None,
                image_ref: None,
            };
            st.record_attempt(&a, &rules, &Stamp::synced(now)).unwrap();
        }
        assert_eq!(st.outbox_pending().unwrap(), 3);
        // Times are stored to the millisecond.
        let oldest = st
            .outbox_oldest_pending()
            .unwrap()
            .expect("an oldest entry");
        assert!(
            (oldest - now).num_milliseconds().abs() <= 1,
            "{oldest} vs {now}"
        );
        let batch = st.outbox_next(2).unwrap();
        assert_eq!(batch.len(), 2);
        assert!(batch[0].seq < batch[1].seq);
        // Stored payloads are the events of their rows, and publish as a valid batch.
        let events: Vec<attendance_wire::event::AttendanceEvent> = batch
            .iter()
            .map(|p| ciborium::from_reader(&p.payload[..]).unwrap())
            .collect();
        for (ev, p) in events.iter().zip(&batch) {
            assert_eq!(ev.event_id, p.event_id);
            let row = st
                .attendance_by_event(&p.event_id)
                .unwrap()
                .expect("its row");
            assert_eq!(ev.reason, Some(Reason::NoFace));
            assert_eq!((ev.device_id.as_str(), ev.site.as_str()), ("K1", "hq"));
            assert_eq!(ev.kind, row.kind);
            assert_eq!(ev.ts_server, row.ts_server);
        }
        let published = EventBatch {
            v: attendance_wire::event::SCHEMA_VERSION,
            events,
        };
        assert_eq!(
            EventBatch::from_cbor(&published.to_cbor()).unwrap(),
            published
        );
        st.outbox_mark_published(&[batch[0].seq, batch[1].seq], now)
            .unwrap();
        assert_eq!(st.outbox_pending().unwrap(), 1);
        let row = st.attendance_by_event(&batch[0].event_id).unwrap().unwrap();
        assert!(row.published_at.is_some());
        assert_eq!(st.outbox_unconfirmed().unwrap(), 2);
        // Not confirmed in time: both go back to the queue.
        let later = now + chrono::Duration::seconds(1);
        assert_eq!(st.outbox_requeue_unconfirmed(now, later).unwrap(), 0);
        assert_eq!(st.outbox_requeue_unconfirmed(later, later).unwrap(), 2);
        assert_eq!(st.outbox_pending().unwrap(), 3);
        st.outbox_mark_published(&[batch[0].seq, batch[1].seq], now)
            .unwrap();
        // The clock stepped back an hour: published "in the future" goes again now.
        let back = now - chrono::Duration::hours(1);
        let cutoff = back - chrono::Duration::seconds(30);
        assert_eq!(st.outbox_requeue_unconfirmed(cutoff, back).unwrap(), 2);
        st.outbox_mark_published(&[batch[0].seq, batch[1].seq], now)
            .unwrap();
        let first = vec![batch[0].event_id.clone()];
        assert_eq!(st.outbox_confirm(&first, now).unwrap(), 1);
        assert_eq!(st.outbox_confirm(&first, now).unwrap(), 0, "once");
        assert_eq!(st.outbox_unconfirmed().unwrap(), 1);
        assert_eq!(
            st.outbox_prune(later, true).unwrap(),
            1,
            "only the confirmed one"
        );
        assert_eq!(
            st.outbox_prune(later, false).unwrap(),
            1,
            "published is enough without receipts"
        );
        assert_eq!(st.outbox_pending().unwrap(), 1);
        assert_eq!(st.outbox_next(10).unwrap().len(), 1);
    }
}
