//! Walk-up punching: whoever stands in front of the camera is punched without anyone
//! calling `/identify`. A face that passes the gates opens a decision (the MODE_A vote of
//! `live`); the decision is recorded once per appearance — a person standing at the door
//! for a minute is one punch, a stranger one `unknown` — and an appearance ends when the
//! doorway has been empty for a while (`appearance.rs`), a face turns up somewhere else,
//! or the face there is no longer the decided person's ([`RECHECK`]). A try that
//! recognises nobody does not end the tries: the door keeps deciding while the person
//! stands there (`appearance::TRY_FOR`), punches them when a later try recognises them,
//! and records `unknown` once, when the tries run out or the person leaves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::appearance::Appearance;
use super::identification::Identification;
use super::learn::Teachable;
use super::{Deadline, PunchInput, Terminal, TerminalError, blocking};
use crate::answer::MatchMode;
use crate::camera::{Camera, LiveAnalysis};
use attendance_core::reason::Reason;
use attendance_core::shutdown::Shutdown;
use attendance_face::{Embedding, FaceBox};
use attendance_wire::event::Source;

/// While a decided appearance lasts, who stands there is checked this often (one embedded
/// frame): the next person in a queue may step into the same place before the doorway
/// is ever empty.
const RECHECK: Duration = Duration::from_secs(2);

/// What one try at a decision came to.
enum Attempt {
    /// Recorded; the last face embedded for it, to recognise the person by.
    Decided(Option<Embedding>),
    /// Usable faces, nobody recognised: recorded as `unknown` only once the tries are
    /// over (`Appearance::unknown`) or the person has left.
    Unrecognised(Box<Identification>),
    /// Nothing recorded for good: try again while the appearance lasts.
    Again,
}

/// After a failure to decide (the recorder refused, the gallery is too big for 1:N), the
/// next try waits this long.
const RETRY: Duration = Duration::from_secs(2);

/// The first face the camera embeds within a second (None: nobody usable, no camera).
async fn probe_once(camera: &Camera) -> Option<Embedding> {
    let mut window = camera.analyses_for(Duration::from_secs(1))?;
    while let Some(a) = window.next().await {
        if let Ok(face) = &a.verdict
            && let Some(e) = &face.embedding
        {
            return Some(e.clone());
        }
    }
    None
}

/// The largest face of an analysis (the one the gates judged).
fn largest(a: &LiveAnalysis) -> Option<FaceBox> {
    FaceBox::largest(&a.faces)
}

impl Terminal {
    /// Watches the camera until `stop`, punching whoever walks up.
    pub(crate) async fn walk_up(self: Arc<Self>, camera: Arc<Camera>, mut stop: Shutdown) {
        let mut analyses = camera.subscribe_analysis();
        let mut appearance = Appearance::default();
        // The decided person's face, and when it was last compared with who stands there.
        let (mut who, mut checked) = (None::<Embedding>, Instant::now());
        // The last `unknown` of the appearance being tried, recorded if the tries end so.
        let mut owed: Option<Box<Identification>> = None;
        loop {
            tokio::select! {
                changed = analyses.changed() => if changed.is_err() { break },
                _ = stop.recv() => break,
            }
            let Some(a) = analyses.borrow_and_update().clone() else {
                continue;
            };
            let due = appearance.observe(a.at, largest(&a), a.verdict.is_ok());
            if appearance.take_left_unknown()
                && let Some(ident) = owed.take()
            {
                self.trying.set(false);
                self.record_walk_up_or_log(*ident).await;
            }
            if !due {
                if a.verdict.is_ok() && appearance.is_decided() && checked.elapsed() >= RECHECK {
                    checked = Instant::now();
                    if let (Some(was), Some(now)) = (&who, probe_once(&camera).await)
                        && was.distance(&now) > self.recognizer.rule().threshold
                    {
                        debug!("walk-up: somebody else stands there now");
                        appearance.forget();
                    }
                    analyses.borrow_and_update();
                }
                continue;
            }
            match self.walk_up_decision(&camera, &mut appearance).await {
                Ok(Attempt::Decided(probe)) => {
                    // Recognised: the appearance owes no `unknown`, unless the one owed
                    // was somebody else's who stood in the same place before.
                    if let Some(was) = owed.take()
                        && !self.same_face(was.probe.as_ref(), probe.as_ref())
                    {
                        self.record_walk_up_or_log(*was).await;
                    }
                    let now = camera.latest_analysis();
                    appearance.decided(Instant::now(), now.as_deref().and_then(largest));
                    (who, checked) = (probe, Instant::now());
                }
                // Somebody else stepped into the same place while a stranger was tried:
                // the stranger's tries end, the newcomer's begin.
                Ok(Attempt::Unrecognised(ident))
                    if owed.as_ref().is_some_and(|was| {
                        !self.same_face(was.probe.as_ref(), ident.probe.as_ref())
                    }) =>
                {
                    if let Some(was) = owed.replace(ident) {
                        self.record_walk_up_or_log(*was).await;
                    }
                    appearance.renew_tries();
                    appearance.unknown(Instant::now());
                }
                Ok(Attempt::Unrecognised(ident)) if appearance.unknown(Instant::now()) => {
                    owed = None;
                    let probe = ident.probe.clone();
                    if self.record_walk_up_or_log(*ident).await {
                        let now = camera.latest_analysis();
                        appearance.decided(Instant::now(), now.as_deref().and_then(largest));
                        (who, checked) = (probe, Instant::now());
                    }
                }
                // Tries go on.
                Ok(Attempt::Unrecognised(ident)) => owed = Some(ident),
                // The face left or turned away within the window, or did not move like a
                // head: try again while the appearance lasts.
                Ok(Attempt::Again) => appearance.touch(Instant::now()),
                Err(e) => {
                    warn!(error = %e, "walk-up punch failed");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => {}
                        _ = stop.recv() => break,
                    }
                }
            }
            self.trying.set(owed.is_some());
            // The window's analyses are past: go on from the newest.
            analyses.borrow_and_update();
        }
        self.trying.set(false);
        // Stopping while somebody is being tried records nothing for them, as a stop in
        // the middle of a decision window always did: their appearance did not end.
        drop(owed);
    }

    /// Whether two tries saw the same face (as the identity re-check judges it); true
    /// when either has none to compare.
    fn same_face(&self, a: Option<&Embedding>, b: Option<&Embedding>) -> bool {
        match (a, b) {
            (Some(x), Some(y)) => x.distance(y) <= self.recognizer.rule().threshold,
            _ => true,
        }
    }

    /// Records a walk-up decision; false (logged) when it could not be.
    async fn record_walk_up_or_log(self: &Arc<Self>, ident: Identification) -> bool {
        match self.record_walk_up(ident).await {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %e, "walk-up punch failed");
                false
            }
        }
    }

    /// Records a walk-up decision in the way chosen on the screen, or the default one.
    async fn record_walk_up(self: &Arc<Self>, ident: Identification) -> Result<(), TerminalError> {
        self.recorder.check_disk()?;
        let chosen = self.modes.current();
        let p = PunchInput {
            request: chosen.request,
            device_id: None,
            ts_client: None,
        };
        let me = self.clone();
        let lesson = Teachable::of(&ident);
        blocking(move || me.record(ident, p, Source::Camera, &Deadline::none())).await??;
        if let Some(t) = lesson {
            self.learn_in_background(t);
        }
        if chosen.chosen {
            // A way chosen on the screen is for one punch.
            self.modes.reset();
        }
        Ok(())
    }

    /// Decides who is at the door and records it; false when the frames showed nobody
    /// usable, or a face that did not move like a head (recorded once per appearance).
    async fn walk_up_decision(
        self: &Arc<Self>,
        camera: &Camera,
        appearance: &mut Appearance,
    ) -> Result<Attempt, TerminalError> {
        let Some(mut window) = camera.analyses_for(self.settings.identify_window) else {
            return Ok(Attempt::Again);
        };
        let mode = MatchMode::Identify;
        self.admit_mode(&mode, &self.settings.device_id).await?;
        let Some(ident) = self.vote(&mut window, &mode).await else {
            return Ok(Attempt::Again);
        };
        let refused = ident.reason == Some(Reason::NotLive);
        if refused && !appearance.refuse() {
            return Ok(Attempt::Again);
        }
        if ident.employee_id.is_none() && ident.reason != Some(Reason::Unknown) && !refused {
            debug!(reason = ?ident.reason, "walk-up: no usable face in the window");
            return Ok(Attempt::Again);
        }
        if ident.reason == Some(Reason::Unknown) {
            return Ok(Attempt::Unrecognised(Box::new(ident)));
        }
        let probe = ident.probe.clone();
        self.record_walk_up(ident).await?;
        Ok(match refused {
            true => Attempt::Again,
            false => Attempt::Decided(probe),
        })
    }
}

#[cfg(test)]
mod tests;
