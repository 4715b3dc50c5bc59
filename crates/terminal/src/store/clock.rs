//! Attempts taken before the door's clock was synchronised, corrected once it is: the
//! wall time each really had is recomputed from its time since boot, the row says
//! `corrected`, and its outbox event is rewritten and sent again (same `event_id`; the
//! centre applies a correction to the row it holds, once). Attempts of an earlier boot
//! cannot be placed and stay `unsynced`.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, ts};
use attendance_core::clock::{BootTime, ClockSync, Stamp};
use attendance_wire::event::AttendanceEvent;

impl Store {
    /// Corrects this boot's unsynchronised attempts by `now`, which must be synchronised
    /// (else nothing is done). Returns how many.
    pub(crate) fn correct_clock(&self, now: &Stamp) -> Result<usize, StoreError> {
        let Some(boot) = now.boot.as_ref().filter(|_| now.sync == ClockSync::Synced) else {
            return Ok(0);
        };
        const UNSYNCED: &str = "SELECT id, event_id, since_boot_ms FROM attendance
             WHERE clock = 'unsynced' AND boot_id = ?1 AND since_boot_ms IS NOT NULL";
        let mut c = self.conn();
        // Looked for first with a read (a partial index): a synchronised door asks every
        // few seconds, and nothing to correct must not take the write lock each time.
        let any: bool = c.query_row(&format!("SELECT EXISTS ({UNSYNCED})"), [&boot.boot], |r| {
            r.get(0)
        })?;
        if !any {
            return Ok(0);
        }
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let rows: Vec<(i64, String, i64)> = {
            let mut stmt = tx.prepare_cached(UNSYNCED)?;
            let rows = stmt.query_map([&boot.boot], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, event_id, ms) in &rows {
            let then = BootTime {
                boot: boot.boot.clone(),
                since_boot: chrono::Duration::milliseconds(*ms),
            };
            let Some(wall) = now.project(&then) else {
                continue;
            };
            let wall = ts(wall);
            tx.execute(
                "UPDATE attendance SET ts_server = ?2, clock = 'corrected', published_at = NULL
                 WHERE id = ?1",
                params![id, wall],
            )?;
            let payload: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT payload FROM outbox WHERE event_id = ?1",
                    [event_id],
                    |r| r.get(0),
                )
                .optional()?;
            // Pruned from the outbox (delivered long ago): the row is corrected here only.
            let Some(mut event) =
                payload.and_then(|p| ciborium::from_reader::<AttendanceEvent, _>(&p[..]).ok())
            else {
                continue;
            };
            event.ts_server = wall.clone();
            event.clock = Some(ClockSync::Corrected);
            tx.execute(
                "UPDATE outbox SET payload = ?2, created_at = ?3, published_at = NULL,
                                   confirmed_at = NULL
                 WHERE event_id = ?1",
                params![event_id, event.to_cbor(), wall],
            )?;
        }
        tx.commit()?;
        Ok(rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{attempt, rules, temp_store};
    use crate::store::{AttendanceQuery, PunchOutcome};
    use attendance_core::clock::FakeClock;
    use attendance_core::punch::{PunchKind, PunchRequest};
    use chrono::{DateTime, Duration, Utc};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn punch(st: &Store, emp: &str, now: &Stamp) -> PunchOutcome {
        let a = attempt(Some(emp), PunchRequest::Kind(PunchKind::In));
        st.record_attempt(&a, &rules(), now).unwrap()
    }

    fn recorded(o: &PunchOutcome) -> bool {
        matches!(o, PunchOutcome::Recorded(_))
    }

    #[test]
    fn a_repeat_across_a_step_of_hours_either_way_is_a_repeat() {
        let s = temp_store();
        // Booted at its last shutdown time, three hours behind: NTP steps it forward.
        let mut c = FakeClock::booted("b1", t("2026-03-02T06:00:00Z"));
        assert!(recorded(&punch(&s.store, "E1", &c.now())));
        c.advance(Duration::seconds(10));
        c.step(Duration::hours(3));
        let again = punch(&s.store, "E1", &c.now());
        assert!(
            !recorded(&again),
            "20 s apart by the boot's clock: {again:?}"
        );
        // A clock three hours ahead stepped back: the same.
        let mut c = FakeClock::booted("b2", t("2026-03-03T12:00:00Z"));
        assert!(recorded(&punch(&s.store, "E2", &c.now())));
        c.advance(Duration::seconds(10));
        c.step(Duration::hours(-3));
        assert!(!recorded(&punch(&s.store, "E2", &c.now())));
        // Outside the window by the boot's clock, though the wall says 2 h 59 min ago.
        c.advance(Duration::seconds(61));
        assert!(recorded(&punch(&s.store, "E2", &c.now())));
        // After a reboot only wall times are left.
        let c = FakeClock::booted("b3", t("2026-03-03T09:01:30Z"));
        assert!(!recorded(&punch(&s.store, "E2", &c.now())));
    }

    #[test]
    fn attempts_before_the_sync_are_corrected_and_sent_again() {
        let s = temp_store();
        let st = &s.store;
        let mut c = FakeClock::booted("b1", t("1970-01-01T00:00:05Z"));
        // Another boot's unsynchronised attempt cannot be placed.
        let other = FakeClock::booted("b0", t("1970-01-01T00:00:09Z"));
        assert!(recorded(&punch(st, "E0", &other.now())));
        assert!(recorded(&punch(st, "E1", &c.now())));
        c.advance(Duration::seconds(40));
        assert_eq!(
            st.correct_clock(&c.now()).unwrap(),
            0,
            "not synchronised yet"
        );
        let first = st.outbox_next(10).unwrap();
        st.outbox_mark_published(&[first[0].seq, first[1].seq], c.now().wall)
            .unwrap();
        st.outbox_confirm(&[first[1].event_id.clone()], c.now().wall)
            .unwrap();
        c.step(Duration::days(20_514) + Duration::hours(9));
        let now = c.now();
        assert_eq!(st.correct_clock(&now).unwrap(), 1);
        assert_eq!(st.correct_clock(&now).unwrap(), 0, "once");
        let rows = st
            .attendance(&AttendanceQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        let e1 = rows
            .iter()
            .find(|r| r.employee_id.as_deref() == Some("E1"))
            .unwrap();
        let want = ts(now.wall - Duration::seconds(40));
        assert_eq!(
            (e1.ts_server.as_str(), e1.clock),
            (want.as_str(), Some(ClockSync::Corrected))
        );
        let e0 = rows
            .iter()
            .find(|r| r.employee_id.as_deref() == Some("E0"))
            .unwrap();
        assert_eq!(e0.clock, Some(ClockSync::Unsynced));
        assert!(e0.ts_server.starts_with("1970"));
        // The corrected event is queued again, confirmed or not, with the new time.
        let again = st.outbox_next(10).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].event_id, e1.event_id);
        let ev: AttendanceEvent = ciborium::from_reader(&again[0].payload[..]).unwrap();
        assert_eq!((ev.ts_server, ev.clock), (want, Some(ClockSync::Corrected)));
        assert_eq!(
            st.outbox_oldest_pending().unwrap(),
            Some(now.wall - Duration::seconds(40))
        );
    }
}
