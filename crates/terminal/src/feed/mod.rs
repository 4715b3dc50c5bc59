//! The door's live feed, `GET /events` (Server-Sent Events): every decision the terminal
//! records, the camera's guidance as it changes, the walk-up punch mode and the link
//! status. A public contract like the MQTT events: `v` in every payload, documented in
//! `docs/openapi.json` (`FeedEvent`), validated by the tests. The kiosk page is its first
//! reader; a local dashboard can be another.
//!
//! Pure here (what an event says, how it is framed); the route in `http::routes::events`
//! does the I/O.

mod sse;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::answer::IdentifyAnswer;
use attendance_core::i18n::{Locale, Msg};
use attendance_core::punch::{PunchKind, PunchRequest};
use attendance_core::reason::{QualityIssue, Reason};
use attendance_wire::event::Source;
pub(crate) use sse::{comment, frame, retry};

/// Version of every feed payload. A change that breaks a reader gets a new version.
pub(crate) const FEED_VERSION: u32 = 1;

/// Decisions kept for a slow reader before it skips ahead (it then gets the newest).
const BACKLOG: usize = 32;

/// How a recorded attempt ended, as the screen shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// Recognised and punched.
    Punched,
    /// Recognised; the same punch was recorded moments ago (nothing new).
    Duplicate,
    /// Nobody recognised, or the face was refused: see `reason`.
    Failed,
}

/// One recorded decision.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decision {
    pub(crate) outcome: Outcome,
    pub(crate) employee_id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) kind: Option<PunchKind>,
    pub(crate) source: Source,
    pub(crate) reason: Option<Reason>,
    pub(crate) detail: Option<QualityIssue>,
    pub(crate) ambiguous: bool,
    pub(crate) event_id: Option<String>,
    pub(crate) ts_server: String,
    /// What the screen says (the answer's own choice, as the API returns it).
    pub(crate) message: Msg,
}

impl Decision {
    pub(crate) fn of(answer: &IdentifyAnswer, source: Source) -> Decision {
        let message = answer.message();
        match answer {
            IdentifyAnswer::Recognised {
                employee_id,
                name,
                kind,
                duplicate,
                event_id,
                ts_server,
                ..
            } => Decision {
                outcome: if *duplicate {
                    Outcome::Duplicate
                } else {
                    Outcome::Punched
                },
                employee_id: Some(employee_id.clone()),
                name: Some(name.clone()),
                kind: Some(*kind),
                source,
                reason: None,
                detail: None,
                ambiguous: false,
                event_id: event_id.clone(),
                ts_server: ts_server.clone(),
                message,
            },
            IdentifyAnswer::Failed {
                reason,
                detail,
                ambiguous,
                event_id,
                ts_server,
                ..
            } => Decision {
                outcome: Outcome::Failed,
                employee_id: None,
                name: None,
                kind: None,
                source,
                reason: Some(*reason),
                detail: *detail,
                ambiguous: *ambiguous,
                event_id: Some(event_id.clone()).filter(|e| !e.is_empty()),
                ts_server: ts_server.clone(),
                message,
            },
        }
    }

    /// The `decision` payload, its message in `locale`.
    pub(crate) fn payload(&self, locale: Locale) -> Value {
        json!({
            "v": FEED_VERSION,
            "outcome": self.outcome,
            "employee_id": self.employee_id,
            "name": self.name,
            "type": self.kind,
            "source": self.source,
            "reason": self.reason,
            "detail": self.detail,
            "ambiguous": self.ambiguous,
            "event_id": self.event_id,
            "ts_server": self.ts_server,
            "message": locale.text(self.message),
        })
    }
}

/// What the camera tells the person at the door right now (the overlay's band).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guidance {
    /// Nobody in front of the camera (no face at all): the screen rests.
    Idle,
    /// A face inside the guide, sharp and big enough.
    Ready,
    /// Ready, and walk-up has not recognised the person yet but is still trying.
    Trying,
    /// A face, refused by a gate.
    Adjust {
        reason: Reason,
        detail: Option<QualityIssue>,
    },
}

impl Guidance {
    /// What to show while walk-up is (`trying`) or is not still trying the person in
    /// view: "look at the camera" instead of "ready".
    pub(crate) fn while_trying(self, trying: bool) -> Guidance {
        match self {
            Guidance::Ready if trying => Guidance::Trying,
            g => g,
        }
    }

    /// The `guidance` payload, its message in `locale`.
    pub(crate) fn payload(self, locale: Locale) -> Value {
        let (code, detail, msg) = match self {
            Guidance::Idle => ("idle", None, None),
            Guidance::Ready => ("ready", None, Some(Msg::Ready)),
            Guidance::Trying => ("trying", None, Some(Msg::Trying)),
            Guidance::Adjust { reason, detail } => (
                reason.as_str(),
                detail,
                Some(detail.map_or(Msg::Reason(reason), Msg::Quality)),
            ),
        };
        json!({
            "v": FEED_VERSION,
            "code": code,
            "detail": detail,
            "message": msg.map(|m| locale.text(m)),
        })
    }
}

/// Whether walk-up is still trying to recognise the person in view (an `unknown` try
/// that is not the last), for the screen.
#[derive(Debug)]
pub(crate) struct Trying(watch::Sender<bool>);

impl Default for Trying {
    fn default() -> Self {
        Trying(watch::channel(false).0)
    }
}

impl Trying {
    pub(crate) fn set(&self, trying: bool) {
        self.0
            .send_if_modified(|t| std::mem::replace(t, trying) != trying);
    }

    pub(crate) fn watch(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// Which way the next walk-up punch goes: the configured default, or a button pressed on
/// the screen moments ago.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PunchMode {
    pub(crate) request: PunchRequest,
    /// Whether a button chose it (it lapses back to the default).
    pub(crate) chosen: bool,
}

impl PunchMode {
    pub(crate) fn payload(self) -> Value {
        json!({
            "v": FEED_VERSION,
            "mode": self.request.as_str(),
            "chosen": self.chosen,
        })
    }
}

/// The terminal's decisions, to every feed reader.
#[derive(Debug, Clone)]
pub(crate) struct Decisions(broadcast::Sender<std::sync::Arc<Decision>>);

impl Default for Decisions {
    fn default() -> Self {
        Decisions(broadcast::channel(BACKLOG).0)
    }
}

impl Decisions {
    /// Tells the readers (none listening is fine).
    pub(crate) fn publish(&self, d: Decision) {
        let _ = self.0.send(std::sync::Arc::new(d));
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<std::sync::Arc<Decision>> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(reason: Reason, detail: Option<QualityIssue>, ambiguous: bool) -> IdentifyAnswer {
        IdentifyAnswer::Failed {
            reason,
            detail,
            ambiguous,
            min_distance: None,
            threshold: 0.5,
            event_id: "e1".into(),
            ts_server: "2026-12-03T09:00:00Z".into(),
        }
    }

    #[test]
    fn a_punch_names_the_person_and_the_way_in_both_languages() {
        let a = IdentifyAnswer::Recognised {
            employee_id: "EMP001".into(),
            name: "홍길동".into(),
            distance: 0.2,
            threshold: 0.5,
            kind: PunchKind::In,
            duplicate: false,
            event_id: Some("e0".into()),
            ts_server: "2026-12-03T08:59:12Z".into(),
        };
        let p = Decision::of(&a, Source::Camera).payload(Locale::Ko);
        assert_eq!(p["v"], 1);
        assert_eq!(p["outcome"], "punched");
        assert_eq!(p["name"], "홍길동");
        assert_eq!(p["type"], "IN");
        assert_eq!(p["source"], "camera");
        assert_eq!(p["message"], Locale::Ko.text(Msg::Recognised));
        let en = Decision::of(&a, Source::Camera).payload(Locale::En);
        assert_eq!(en["message"], Locale::En.text(Msg::Recognised));
    }

    #[test]
    fn a_failure_says_why_with_the_most_specific_message() {
        let d = |a| Decision::of(&a, Source::Upload).payload(Locale::En);
        let unknown = d(failed(Reason::Unknown, None, false));
        assert_eq!(unknown["outcome"], "failed");
        assert_eq!(unknown["reason"], "unknown");
        assert_eq!(unknown["type"], Value::Null);
        assert_eq!(
            unknown["message"],
            Locale::En.text(Msg::Reason(Reason::Unknown))
        );
        let close = d(failed(Reason::Unknown, None, true));
        assert_eq!(close["message"], Locale::En.text(Msg::Ambiguous));
        let blurry = d(failed(
            Reason::BadQuality,
            Some(QualityIssue::Blurred),
            false,
        ));
        assert_eq!(blurry["detail"], "blurred");
        assert_eq!(
            blurry["message"],
            Locale::En.text(Msg::Quality(QualityIssue::Blurred))
        );
    }

    #[test]
    fn guidance_codes_are_ready_idle_or_the_gate_reason() {
        assert_eq!(Guidance::Idle.payload(Locale::Ko)["code"], "idle");
        assert_eq!(Guidance::Idle.payload(Locale::Ko)["message"], Value::Null);
        assert_eq!(Guidance::Ready.payload(Locale::Ko)["code"], "ready");
        let g = Guidance::Adjust {
            reason: Reason::BadQuality,
            detail: Some(QualityIssue::TooSmall),
        }
        .payload(Locale::Ko);
        assert_eq!(g["code"], "bad_quality");
        assert_eq!(g["detail"], "too_small");
    }
}
