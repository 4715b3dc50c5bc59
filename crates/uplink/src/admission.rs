//! What the uplink does with a message before any MySQL work, per sender (pure, so every
//! rule is tested without a broker). With the broker's ACL a door can publish only on its
//! own topics, so the topic's `{site}/{device}` is who sent it: a door that floods is
//! refused beyond its share, one that sends garbage has only so much of it kept in
//! `dead_letter`, and its roster requests are rationed. No other door shares its budget.
//!
//! A refused message is acknowledged and dropped, never written; an honest door that is
//! refused loses nothing, since without a receipt it sends its events again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use attendance_wire::mqtt::{DeviceTopic, parse_device_topic};

/// Why a message was not written. The label of `attendance_uplink_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum Refusal {
    /// Not a terminal's events, roster changes or roster request.
    UnknownTopic,
    /// Larger than any such message can be.
    Oversized,
    /// The sender is over its message rate.
    RateLimited,
    /// The sender is over its roster request rate.
    SyncRateLimited,
    /// Roster requests are waiting for MySQL already: the door asks again in a while.
    SyncQueueFull,
    /// A roster request that does not decode.
    BadRequest,
    /// Undecodable or invalid, and the sender's `dead_letter` share is used up.
    DeadLetterBudget,
    /// A roster change about a person another site owns (it becomes a revocation at
    /// the sender's site).
    ForeignPerson,
}

/// Where an admitted message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Events or roster changes: decoded and written.
    Write,
    /// A roster request: answered off the write path.
    Sync,
    Refuse(Refusal),
}

/// A refill rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    pub(crate) per_sec: f64,
    pub(crate) burst: f64,
}

/// The per-sender budgets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    /// Events and roster changes. A door publishes one batch per PUBACK, so a backlog
    /// of 10,000 punches is 100 messages; after an uplink restart every door sends its
    /// unconfirmed events at once: the burst covers both.
    pub(crate) messages: Rate,
    /// Roster requests: a door catching up asks once per applied page.
    pub(crate) syncs: Rate,
    /// Messages kept in `dead_letter` (with their payload, for a human).
    pub(crate) dead_letters: Rate,
    /// Largest roster request (a real one is ~60 bytes).
    pub(crate) max_sync_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            messages: Rate {
                per_sec: 50.0,
                burst: 500.0,
            },
            syncs: Rate {
                per_sec: 2.0,
                burst: 20.0,
            },
            dead_letters: Rate {
                per_sec: 10.0 / 60.0,
                burst: 20.0,
            },
            max_sync_bytes: 1024,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            at: now,
        }
    }

    fn take(&mut self, rate: Rate, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_sec).min(rate.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Budgets {
    messages: Bucket,
    syncs: Bucket,
    dead_letters: Bucket,
    /// When a refusal of this sender was last logged.
    logged: Option<Instant>,
    seen: Instant,
}

/// Senders remembered at most (the ACL bounds them to the fleet's doors; without one, a
/// client spraying topics must not grow this without end).
const MAX_SENDERS: usize = 10_000;
/// One log line per sender and this long, however many refusals.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// The budgets of every sender heard from.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: Limits,
    senders: HashMap<(String, String), Budgets>,
}

impl Admission {
    pub(crate) fn new(limits: Limits) -> Admission {
        Admission {
            limits,
            senders: HashMap::new(),
        }
    }

    fn budgets(&mut self, site: &str, device: &str, now: Instant) -> &mut Budgets {
        let key = (site.to_owned(), device.to_owned());
        if self.senders.len() >= MAX_SENDERS && !self.senders.contains_key(&key) {
            self.senders
                .retain(|_, b| now.saturating_duration_since(b.seen) < LOG_EVERY);
            if self.senders.len() >= MAX_SENDERS {
                self.senders.clear();
            }
        }
        let l = self.limits;
        let b = self.senders.entry(key).or_insert_with(|| Budgets {
            messages: Bucket::full(l.messages, now),
            syncs: Bucket::full(l.syncs, now),
            dead_letters: Bucket::full(l.dead_letters, now),
            logged: None,
            seen: now,
        });
        b.seen = now;
        b
    }

    /// What to do with a message of `bytes` bytes on `topic`, arriving `now`.
    pub(crate) fn admit(&mut self, topic: &str, bytes: usize, now: Instant) -> Admit {
        let Some((site, device, kind)) = parse_device_topic(topic) else {
            return Admit::Refuse(Refusal::UnknownTopic);
        };
        let limits = self.limits;
        let b = self.budgets(site, device, now);
        match kind {
            DeviceTopic::Events | DeviceTopic::RosterChanges => {
                if b.messages.take(limits.messages, now) {
                    Admit::Write
                } else {
                    Admit::Refuse(Refusal::RateLimited)
                }
            }
            DeviceTopic::RosterSync if bytes > limits.max_sync_bytes => {
                Admit::Refuse(Refusal::Oversized)
            }
            DeviceTopic::RosterSync => {
                if b.syncs.take(limits.syncs, now) {
                    Admit::Sync
                } else {
                    Admit::Refuse(Refusal::SyncRateLimited)
                }
            }
            _ => Admit::Refuse(Refusal::UnknownTopic),
        }
    }

    /// Whether one more dead letter of the sender on `topic` is kept (else it is only
    /// counted, as [`Refusal::DeadLetterBudget`]).
    pub(crate) fn keep_dead_letter(&mut self, topic: &str, now: Instant) -> bool {
        let Some((site, device, _)) = parse_device_topic(topic) else {
            return false;
        };
        let rate = self.limits.dead_letters;
        self.budgets(site, device, now).dead_letters.take(rate, now)
    }

    /// Whether a refusal of the sender on `topic` should be logged now (once a minute).
    pub(crate) fn log_due(&mut self, topic: &str, now: Instant) -> bool {
        let (site, device) = match parse_device_topic(topic) {
            Some((s, d, _)) => (s, d),
            None => ("", ""),
        };
        let b = self.budgets(site, device, now);
        match b.logged {
            Some(at) if now.saturating_duration_since(at) < LOG_EVERY => false,
            _ => {
                b.logged = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "attendance/hq/A/events";
    const B: &str = "attendance/hq/B/events";

    #[test]
    fn a_flooding_door_is_refused_beyond_its_share_and_no_other_door_notices() {
        let mut a = Admission::new(Limits::default());
        let t0 = Instant::now();
        let admitted = (0..10_000)
            .filter(|i| {
                // 10,000 messages in 10 s.
                let now = t0 + Duration::from_millis(*i);
                a.admit(A, 100, now) == Admit::Write
            })
            .count();
        // The burst, then 50 a second for 10 s.
        assert!((995..=1001).contains(&admitted), "{admitted}");
        assert_eq!(
            a.admit(A, 100, t0 + Duration::from_millis(9_999)),
            Admit::Refuse(Refusal::RateLimited)
        );
        // Door B, same site, same moment: its own budget.
        for _ in 0..500 {
            assert_eq!(a.admit(B, 100, t0 + Duration::from_secs(10)), Admit::Write);
        }
        // A recovers as time passes.
        assert_eq!(a.admit(A, 100, t0 + Duration::from_secs(12)), Admit::Write);
    }

    #[test]
    fn roster_requests_are_rationed_and_sized() {
        let mut a = Admission::new(Limits::default());
        let t0 = Instant::now();
        let sync = "attendance/hq/A/roster_sync";
        let answered = (0..100)
            .filter(|_| a.admit(sync, 60, t0) == Admit::Sync)
            .count();
        assert_eq!(answered, 20, "the burst");
        assert_eq!(
            a.admit(sync, 60, t0),
            Admit::Refuse(Refusal::SyncRateLimited)
        );
        assert_eq!(a.admit(sync, 60, t0 + Duration::from_secs(1)), Admit::Sync);
        assert_eq!(
            a.admit("attendance/hq/B/roster_sync", 5000, t0),
            Admit::Refuse(Refusal::Oversized)
        );
        // Requests do not use up the door's events.
        assert_eq!(a.admit(A, 100, t0), Admit::Write);
    }

    #[test]
    fn unknown_topics_are_refused_and_dead_letters_are_rationed_per_sender() {
        let mut a = Admission::new(Limits::default());
        let t0 = Instant::now();
        for t in [
            "attendance/hq/A/status",
            "attendance/hq/roster",
            "elsewhere/x",
            "attendance/hq/A/events/extra",
        ] {
            assert_eq!(
                a.admit(t, 1, t0),
                Admit::Refuse(Refusal::UnknownTopic),
                "{t}"
            );
        }
        let kept = (0..100).filter(|_| a.keep_dead_letter(A, t0)).count();
        assert_eq!(kept, 20);
        assert!(a.keep_dead_letter(B, t0), "B's share is its own");
        assert!(!a.keep_dead_letter(A, t0 + Duration::from_secs(5)));
        assert!(
            a.keep_dead_letter(A, t0 + Duration::from_secs(7)),
            "10 a minute"
        );
        assert!(a.log_due(A, t0));
        assert!(!a.log_due(A, t0 + Duration::from_secs(59)));
        assert!(a.log_due(B, t0));
        assert!(a.log_due(A, t0 + Duration::from_secs(60)));
    }

    #[test]
    fn senders_are_bounded() {
        let mut a = Admission::new(Limits::default());
        let t0 = Instant::now();
        for i in 0..(MAX_SENDERS + 10) {
            a.admit(&format!("attendance/s{i}/d/events"), 1, t0);
        }
        assert!(a.senders.len() <= MAX_SENDERS);
    }
}
