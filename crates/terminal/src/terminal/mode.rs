//! Whether an attempt may be answered in the mode it asks for, before any analysis:
//! 1:1 claims rationed (`claims.rs`), 1:N refused past the embedder's gallery limit.

use std::sync::Arc;
use std::time::Instant;

use attendance_core::reason::Reason;

use super::{Terminal, TerminalError, blocking};
use crate::answer::{IdentifyAnswer, MatchMode, PunchInput};

impl Terminal {
    /// Refuses what cannot be answered before any analysis: a claim of nobody, or 1:N
    /// on a gallery larger than the embedder can tell apart (unless the operator allows
    /// it). Picks up gallery changes first.
    pub(super) async fn admit_mode(
        self: &Arc<Self>,
        mode: &MatchMode,
        device: &str,
    ) -> Result<(), TerminalError> {
        if let MatchMode::Verify { employee_id } = mode
            && !self.claims().allowed(employee_id, device, Instant::now())
        {
            return Err(TerminalError::TooManyClaims {
                employee_id: employee_id.clone(),
            });
        }
        let (me, mode) = (self.clone(), mode.clone());
        blocking(move || {
            me.refresh_gallery()?;
            match mode {
                MatchMode::Verify { employee_id } => match me.store.user(&employee_id)? {
                    Some(_) => Ok(()),
                    None => Err(TerminalError::UserNotFound(employee_id)),
                },
                MatchMode::Identify => {
                    let people = me.recognizer.size().1;
                    match me.identify_limit() {
                        Some(limit) if people > limit => {
                            Err(TerminalError::VerifyRequired { people, limit })
                        }
                        _ => Ok(()),
                    }
                }
            }
        })
        .await?
    }

    /// The device an attempt is recorded under: the request's, else the terminal's.
    pub(super) fn device_of(&self, p: &PunchInput) -> String {
        p.device_id
            .clone()
            .unwrap_or_else(|| self.settings.device_id.clone())
    }

    /// Counts a failed 1:1 claim against the id and the device.
    pub(super) fn note_claim(&self, mode: &MatchMode, device: &str, answer: &IdentifyAnswer) {
        if let (
            MatchMode::Verify { employee_id },
            IdentifyAnswer::Failed {
                reason: Reason::NotVerified,
                ..
            },
        ) = (mode, answer)
        {
            self.claims().failed(employee_id, device, Instant::now());
        }
    }

    fn claims(&self) -> std::sync::MutexGuard<'_, super::claims::Claims> {
        // A panic while holding it leaves at worst a missing count.
        self.claims.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gallery size above which 1:N is refused: the embedder's, unless the operator
    /// allowed 1:N beyond it.
    pub(crate) fn identify_limit(&self) -> Option<usize> {
        let limit = self.recognizer.embedder().calibration().identify_limit;
        limit.filter(|_| !self.settings.face.identify_beyond_limit)
    }
}
