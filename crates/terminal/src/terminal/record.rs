//! Recording an attempt and answering it: the one path for photos, camera decisions and
//! manual punches. The row and its outbox event are written in one transaction, only if
//! the request is still waited for ([`Deadline`]). A handle of its own ([`Recorder`]):
//! what records needs no gallery, camera or analysis slot.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tracing::info;

use super::identification::Identification;
use super::thumbnails::Thumbnails;
use super::{Deadline, IdentifyAnswer, PunchInput, TerminalError, blocking};
use crate::clock::Clock;
use crate::feed::{Decision, Decisions};
use crate::metrics::{PunchResult, TerminalMetrics};
use crate::store::{NewAttempt, PunchOutcome, StorageSettings, Store, ts};
use attendance_core::punch::PunchRules;
use attendance_core::reason::Reason;
use attendance_wire::event::Source;

/// Writes attempts and tells who needs to know: the outbox publisher, the live feed,
/// the metrics.
pub(crate) struct Recorder {
    store: Arc<Store>,
    rules: PunchRules,
    storage: StorageSettings,
    /// For attempts whose request names no `device_id`.
    device_id: String,
    site: String,
    /// The active embedder's name, stored with every attempt (fixed while the daemon runs).
    embedder: &'static str,
    /// Poked after every recorded attempt so the outbox publisher sends it at once.
    outbox_wake: Arc<Notify>,
    /// Every recorded decision, for the live feed (`/events`).
    decisions: Decisions,
    metrics: Arc<TerminalMetrics>,
    /// What stamps each attempt (`crate::clock`).
    clock: Arc<dyn Clock>,
    thumbnails: Thumbnails,
}

/// Where a [`Recorder`] writes and what it stamps on each attempt.
pub(super) struct RecorderParts {
    pub(super) store: Arc<Store>,
    pub(super) rules: PunchRules,
    pub(super) storage: StorageSettings,
    pub(super) device_id: String,
    pub(super) site: String,
    pub(super) embedder: &'static str,
    pub(super) metrics: Arc<TerminalMetrics>,
    pub(super) clock: Arc<dyn Clock>,
}

impl Recorder {
    pub(super) fn new(p: RecorderParts) -> Recorder {
        let thumbnails = Thumbnails::new(p.store.clone(), &p.storage);
        Recorder {
            store: p.store,
            rules: p.rules,
            storage: p.storage,
            device_id: p.device_id,
            site: p.site,
            embedder: p.embedder,
            outbox_wake: Arc::new(Notify::new()),
            decisions: Decisions::default(),
            metrics: p.metrics,
            clock: p.clock,
            thumbnails,
        }
    }

    /// Poked after each recorded attempt or roster change (the outbox publisher waits
    /// on it).
    pub(crate) fn outbox_wake(&self) -> Arc<Notify> {
        self.outbox_wake.clone()
    }

    /// Something new waits in the outbox.
    pub(super) fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }

    /// The recorded decisions, as they happen.
    pub(crate) fn decisions(&self) -> &Decisions {
        &self.decisions
    }

    /// Refuses new punches when the disk is almost full (`storage.min_free_mb`).
    pub(super) fn check_disk(&self) -> Result<(), TerminalError> {
        let free = self.store.free_bytes()? / (1024 * 1024);
        if free < self.storage.min_free_mb {
            return Err(TerminalError::StorageFull { free_mb: free });
        }
        Ok(())
    }

    /// Records an identification, decided at `threshold`, as an attendance attempt,
    /// tells the feed (`/events`) and answers it. Blocks.
    pub(super) fn record(
        &self,
        ident: Identification,
        threshold: f32,
        p: PunchInput,
        source: Source,
        deadline: &Deadline,
    ) -> Result<IdentifyAnswer, TerminalError> {
        let answer = self.write_attempt(ident, threshold, p, source, deadline)?;
        self.decisions.publish(Decision::of(&answer, source));
        Ok(answer)
    }

    fn write_attempt(
        &self,
        ident: Identification,
        threshold: f32,
        p: PunchInput,
        source: Source,
        deadline: &Deadline,
    ) -> Result<IdentifyAnswer, TerminalError> {
        // Looked up before writing: a person deleted since the match is not punched.
        let name = match &ident.employee_id {
            Some(id) => Some(self.name_of(id)?),
            None => None,
        };
        deadline.begin_write()?;
        let known = ident.employee_id.is_some();
        let image_ref = self.thumbnails.keep(ident.thumbnail.as_ref(), known)?;
        let attempt = NewAttempt {
            employee_id: ident.employee_id.clone(),
            request: p.request,
            device_id: p.device_id.unwrap_or_else(|| self.device_id.clone()),
            site: self.site.clone(),
            source,
            distance: ident.distance,
            threshold: Some(threshold),
            embedder: Some(self.embedder.to_owned()),
            reason: ident.reason,
            detail: ident.detail,
            ts_client: p.ts_client,
            image_ref,
        };
        let (outcome, now) = self.commit(&attempt)?;
        let (Some(employee_id), Some(name)) = (ident.employee_id, name) else {
            let event_id = match outcome {
                PunchOutcome::Recorded(row) => row.event_id,
                // Failed attempts are never duplicates.
                PunchOutcome::Duplicate { .. } => String::new(),
            };
            let reason = ident.reason.unwrap_or(Reason::Unknown);
            self.metrics
                .punched(PunchResult::Failed(reason), source.as_str());
            info!(
                reason = %reason,
                event_id = %event_id,
                distance = ident.distance,
                source = source.as_str(),
                "not recognised"
            );
            return Ok(IdentifyAnswer::Failed {
                reason,
                detail: ident.detail,
                ambiguous: ident.ambiguous,
                min_distance: ident.distance,
                threshold,
                event_id,
                ts_server: ts(now),
            });
        };
        let answer = recognised(
            employee_id,
            name,
            ident.distance.unwrap_or(0.0),
            threshold,
            outcome,
            now,
        );
        if let IdentifyAnswer::Recognised {
            employee_id,
            kind,
            duplicate,
            event_id,
            ..
        } = &answer
        {
            let result = if *duplicate {
                PunchResult::Duplicate
            } else {
                PunchResult::Recognised
            };
            self.metrics.punched(result, source.as_str());
            info!(
                employee_id = %employee_id,
                event_id = event_id.as_deref().unwrap_or(""),
                kind = %kind,
                duplicate,
                distance = ident.distance,
                source = source.as_str(),
                "recognised"
            );
        }
        Ok(answer)
    }

    /// `POST /attendance`: a punch without a face (admin correction, badge fallback).
    pub(crate) async fn manual_punch(
        self: &Arc<Self>,
        employee_id: String,
        p: PunchInput,
        distance: Option<f32>,
        deadline: &Deadline,
    ) -> Result<IdentifyAnswer, TerminalError> {
        self.check_disk()?;
        let (me, deadline) = (self.clone(), deadline.clone());
        blocking(move || {
            let name = me.name_of(&employee_id)?;
            deadline.begin_write()?;
            let attempt = NewAttempt {
                employee_id: Some(employee_id.clone()),
                request: p.request,
                device_id: p.device_id.unwrap_or_else(|| me.device_id.clone()),
                site: me.site.clone(),
                source: Source::Manual,
                distance,
                threshold: None,
                embedder: None,
                reason: None,
                detail: None,
                ts_client: p.ts_client,
                image_ref: None,
            };
            let (outcome, now) = me.commit(&attempt)?;
            let result = match outcome {
                PunchOutcome::Duplicate { .. } => PunchResult::Duplicate,
                PunchOutcome::Recorded(_) => PunchResult::Recognised,
            };
            me.metrics.punched(result, Source::Manual.as_str());
            let answer = recognised(
                employee_id,
                name,
                distance.unwrap_or(0.0),
                0.0,
                outcome,
                now,
            );
            me.decisions.publish(Decision::of(&answer, Source::Manual));
            Ok(answer)
        })
        .await?
    }

    /// Writes the attempt with its outbox event and wakes the publisher.
    fn commit(&self, a: &NewAttempt) -> Result<(PunchOutcome, DateTime<Utc>), TerminalError> {
        let now = self.clock.now();
        let outcome = self.store.record_attempt(a, &self.rules, &now)?;
        if matches!(outcome, PunchOutcome::Recorded(_)) {
            self.outbox_wake.notify_one();
        }
        Ok((outcome, now.wall))
    }

    /// Once the clock is synchronised, corrects the attempts of this boot taken before
    /// and sends them again. Returns how many. Blocks.
    pub(super) fn correct_clock(&self) -> Result<usize, TerminalError> {
        let n = self.store.correct_clock(&self.clock.now())?;
        if n > 0 {
            self.outbox_wake.notify_one();
        }
        Ok(n)
    }

    /// The enrolled person's name, or `user_not_found`.
    pub(super) fn name_of(&self, employee_id: &str) -> Result<String, TerminalError> {
        self.store
            .user(employee_id)?
            .map(|u| u.name)
            .ok_or_else(|| TerminalError::UserNotFound(employee_id.to_owned()))
    }
}

/// The answer for a recognised person's recorded (or repeated) punch.
fn recognised(
    employee_id: String,
    name: String,
    distance: f32,
    threshold: f32,
    outcome: PunchOutcome,
    now: DateTime<Utc>,
) -> IdentifyAnswer {
    let (kind, duplicate, event_id) = match outcome {
        PunchOutcome::Recorded(row) => (row.kind, false, Some(row.event_id)),
        PunchOutcome::Duplicate { kind } => (kind, true, None),
    };
    IdentifyAnswer::Recognised {
        employee_id,
        name,
        distance,
        threshold,
        kind,
        duplicate,
        event_id,
        ts_server: ts(now),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Terminal;
    use super::super::testing::{terminal, terminal_with};
    use super::*;
    use attendance_core::punch::{PunchKind, PunchRequest};

    fn input(request: PunchRequest) -> PunchInput {
        PunchInput {
            request,
            device_id: None,
            ts_client: None,
        }
    }

    fn enrol_by_hand(t: &Terminal, id: &str, name: &str) {
        let rows = vec![attendance_face::Embedding(vec![
            0.0;
            t.pipeline.embedder().dim()
        ])];
        t.store()
            .enrol(&crate::store::NewTemplate {
                employee_id: Some(id),
                name: Some(name),
                embedder: t.embedder_name(),
                device_id: None,
                faces: &[crate::store::NewFace {
                    template: &attendance_face::template::encode(&rows).unwrap(),
                    crop_png: None,
                    quality: 1.0,
                    face_id: None,
                    learned: false,
                }],
                publish: false,
            })
            .unwrap();
    }

    #[tokio::test]
    async fn manual_punches_alternate_repeat_and_refuse_strangers() {
        let t = terminal();
        enrol_by_hand(&t.terminal, "EMP007", "김철수");
        let none = Deadline::none();
        let punch = |r| {
            t.terminal
                .recorder()
                .manual_punch("EMP007".into(), input(r), None, &none)
        };
        let first = punch(PunchRequest::Auto).await.unwrap();
        assert!(
            matches!(&first, IdentifyAnswer::Recognised { kind: PunchKind::In, duplicate: false, event_id: Some(_), name, .. } if name == "김철수"),
            "{first:?}"
        );
        let again = punch(PunchRequest::Auto).await.unwrap();
        assert!(
            matches!(
                again,
                IdentifyAnswer::Recognised {
                    kind: PunchKind::In,
                    duplicate: true,
                    event_id: None,
                    ..
                }
            ),
            "inside the window: {again:?}"
        );
        let out = punch(PunchRequest::Kind(PunchKind::Out)).await.unwrap();
        assert!(matches!(
            out,
            IdentifyAnswer::Recognised {
                kind: PunchKind::Out,
                duplicate: false,
                ..
            }
        ));
        assert_eq!(t.terminal.store().outbox_pending().unwrap(), 2);
        let e = t
            .terminal
            .recorder()
            .manual_punch("EMP999".into(), input(PunchRequest::Auto), None, &none)
            .await
            .unwrap_err();
        assert!(
            matches!(e, TerminalError::UserNotFound(ref id) if id == "EMP999"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_full_disk_refuses_and_an_expired_request_writes_nothing() {
        let full = terminal_with(|s| s.storage.min_free_mb = u64::MAX / (1 << 20));
        enrol_by_hand(&full.terminal, "EMP001", "A");
        let e = full
            .terminal
            .recorder()
            .manual_punch(
                "EMP001".into(),
                input(PunchRequest::Auto),
                None,
                &Deadline::none(),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, TerminalError::StorageFull { .. }), "{e}");

        let t = terminal();
        enrol_by_hand(&t.terminal, "EMP001", "A");
        let expired = Deadline::new();
        assert!(expired.expire());
        let e = t
            .terminal
            .recorder()
            .manual_punch("EMP001".into(), input(PunchRequest::Auto), None, &expired)
            .await
            .unwrap_err();
        assert!(matches!(e, TerminalError::TimedOut), "{e}");
        assert_eq!(t.terminal.store().outbox_pending().unwrap(), 0);
    }
}
