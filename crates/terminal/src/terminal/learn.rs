//! Learning at the door: after a walk-up punch, the face that was recognised may become
//! one more template of its person (`attendance_face::learn` decides: confident, new to
//! the gallery, at most a few per person). Only from walk-up: a person standing at the
//! camera, matched 1:N and live where the liveness guard is on — never from a 1:1
//! claim (the claim, not the face, chose whom to compare with), an uploaded photo, or
//! a `not_live` decision.

use std::sync::Arc;

use tracing::{debug, info, warn};

use super::identification::Identification;
use super::{Terminal, TerminalError, blocking};
use crate::store::learned::NewLesson;
use attendance_face::learn::{self, Lesson};
use attendance_face::{Embedding, template};

/// Quality recorded with a learned face: it passed the same gates as every punch, but
/// nobody chose it as an enrolment photo.
const LEARNED_QUALITY: f32 = 0.5;

/// What a walk-up decision may teach: the recognised person and the face.
pub(super) struct Teachable {
    employee_id: String,
    probe: Embedding,
}

impl Teachable {
    /// The lesson a decision offers: a 1:N recognition (not 1:1, not refused) with a face.
    pub(super) fn of(ident: &Identification) -> Option<Teachable> {
        if ident.verify || ident.reason.is_some() {
            return None;
        }
        Some(Teachable {
            employee_id: ident.employee_id.clone()?,
            probe: ident.probe.clone()?,
        })
    }
}

impl Terminal {
    /// Learns from a recorded walk-up punch in the background (the door goes on with the
    /// next person); failures are logged, the punch stands either way.
    pub(super) fn learn_in_background(self: &Arc<Self>, t: Teachable) {
        if !self.settings.learn_at_door {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            // One writer of people at a time: enrolments, deletions, pages and lessons.
            let writer = me.people_writer().await;
            let done = {
                let me = me.clone();
                blocking(move || {
                    let _writer = writer;
                    me.learn(&t)
                })
                .await
            };
            match done.and_then(|r| r) {
                Ok(state) => me.metrics.lesson(state),
                Err(e) => warn!(error = %e, "learning at the door failed"),
            }
        });
    }

    /// Teaches `t` if it is confident and new; what became of it (a metrics state).
    fn learn(&self, t: &Teachable) -> Result<&'static str, TerminalError> {
        let rule = self.recognizer.rule();
        if !learn::confident(&rule, &t.employee_id, self.recognizer.nearest(&t.probe)) {
            return Ok("not_confident");
        }
        let (mut enrolled, mut learned, mut learned_ids) = (Vec::new(), Vec::new(), Vec::new());
        for (row, rows) in self.recognizer.read(&self.store, Some(&t.employee_id))? {
            match (row.learned, row.face_id) {
                // One row per learned file (written so below).
                (true, Some(id)) => {
                    if let Some(e) = rows.into_iter().next() {
                        learned.push(e);
                        learned_ids.push(id);
                    }
                }
                _ => enrolled.extend(rows),
            }
        }
        let Lesson::Learn { retire } = learn::lesson(&rule, &enrolled, &learned, &t.probe) else {
            return Ok("redundant");
        };
        let npy = template::encode(std::slice::from_ref(&t.probe))
            .map_err(|e| TerminalError::Internal(format!("encoding a learned template: {e}")))?;
        let retire: Vec<&str> = retire
            .iter()
            .filter_map(|&i| learned_ids.get(i))
            .map(String::as_str)
            .collect();
        let face_id = self.store.learn(&NewLesson {
            employee_id: &t.employee_id,
            embedder: self.recognizer.embedder().name(),
            template: &npy,
            quality: LEARNED_QUALITY,
            retire: &retire,
        })?;
        self.recognizer.reload_person(&self.store, &t.employee_id)?;
        info!(employee_id = %t.employee_id, face_id, retired = ?retire, "learned at the door");
        debug!(
            learned = learned.len() + 1 - retire.len(),
            "learned templates"
        );
        Ok("learned")
    }
}

#[cfg(test)]
mod tests;
