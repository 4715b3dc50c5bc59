//! The outbox: events in punch order, marked published only once the broker has them.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Store, StoreError, ts};

/// An event waiting for the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub seq: i64,
    pub event_id: String,
    /// CBOR of one [`crate::event::AttendanceEvent`].
    pub payload: Vec<u8>,
}

impl Store {
    /// Number of events not yet acknowledged by the broker.
    pub fn outbox_pending(&self) -> Result<u64, StoreError> {
        let c = self.conn();
        let n: i64 = c.query_row(
            "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Creation time of the oldest unpublished event.
    pub fn outbox_oldest_pending(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
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
    pub fn outbox_next(&self, limit: usize) -> Result<Vec<Pending>, StoreError> {
        let c = self.conn();
        let mut stmt = c.prepare_cached(
            "SELECT seq, event_id, payload FROM outbox WHERE published_at IS NULL
             ORDER BY seq LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(Pending {
                seq: r.get(0)?,
                event_id: r.get(1)?,
                payload: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks events published (after the broker's PUBACK), and their attendance rows.
    pub fn outbox_mark_published(&self, seqs: &[i64], at: DateTime<Utc>) -> Result<(), StoreError> {
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

    /// Deletes published outbox entries older than `before` (attendance rows stay).
    pub fn outbox_prune(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let c = self.conn();
        Ok(c.execute(
            "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < ?1",
            [ts(before)],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventBatch, Source};
    use crate::punch::PunchRequest;
    use crate::reason::Reason;
    use crate::store::testing::temp_store;
    use crate::store::{NewAttempt, PunchRules};

    #[test]
    fn publish_cycle() {
        let s = temp_store();
        let st = &s.store;
        let rules = PunchRules {
            duplicate_window: chrono::Duration::seconds(60),
            zone: crate::punch::DayZone::Local,
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
            st.record_attempt(&a, &rules, now).unwrap();
        }
        assert_eq!(st.outbox_pending().unwrap(), 3);
        assert!(st.outbox_oldest_pending().unwrap().is_some());
        let batch = st.outbox_next(2).unwrap();
        assert_eq!(batch.len(), 2);
        assert!(batch[0].seq < batch[1].seq);
        // Stored payloads are valid events.
        let ev: crate::event::AttendanceEvent =
            ciborium::from_reader(&batch[0].payload[..]).unwrap();
        ev.validate().unwrap();
        assert_eq!(ev.event_id, batch[0].event_id);
        let _ = EventBatch {
            v: 1,
            events: vec![ev],
        };
        st.outbox_mark_published(&[batch[0].seq, batch[1].seq], now)
            .unwrap();
        assert_eq!(st.outbox_pending().unwrap(), 1);
        let row = st.attendance_by_event(&batch[0].event_id).unwrap().unwrap();
        assert!(row.published_at.is_some());
        assert_eq!(
            st.outbox_prune(now + chrono::Duration::seconds(1)).unwrap(),
            2
        );
        assert_eq!(st.outbox_pending().unwrap(), 1);
        assert_eq!(st.outbox_next(10).unwrap().len(), 1);
    }
}
