//! The publisher's connection life as a pure state machine: each MQTT event (or a
//! batch read from the store) goes in, what the I/O loop must do comes out. The loop in
//! `outbox/mod.rs` only translates rumqttc's events and carries the actions out, so the
//! order (subscribe before sending, resend on a new session, mark published only on the
//! PUBACK, back off after a failure) is tested here without a broker.

use std::time::Duration;

use super::state::{self, Sender};
use attendance_core::backoff::Backoff;
use attendance_wire::mqtt::{DeviceTopic, LinkState};

/// What happened.
#[derive(Debug)]
pub(crate) enum Input<'a> {
    /// CONNACK.
    ConnAck {
        session_present: bool,
    },
    /// SUBACK, or the subscription could not be queued (then no SUBACK comes and we send
    /// anyway rather than hold every punch; the receipt timeout still covers a drop).
    Subscribed,
    /// The event loop wrote a PUBLISH with this packet id (0 for QoS 0).
    OutgoingPublish(u16),
    PubAck(u16),
    /// The connection failed or was lost (rumqttc's error text).
    ConnectionError(&'a str),
    /// The store may hold entries not loaded yet: a punch was recorded, the periodic
    /// nudge, events requeued for want of a receipt.
    MaybeMore,
    /// The store was read: the next batch, or `None` when it holds nothing to send.
    Loaded(Option<Loaded>),
}

/// A batch read from the store.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) topic: DeviceTopic,
    pub(crate) seqs: Vec<i64>,
    pub(crate) payload: Vec<u8>,
}

/// How a connection failure is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A working connection broke.
    Lost,
    /// Connecting failed in a new way (a refused certificate or login is the operator's
    /// to fix: said once as a warning, not at every retry).
    New,
    /// The same failure again.
    Again,
}

/// What the I/O loop must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Tell the terminal (kiosk, /health) how the link is.
    Link(LinkState),
    /// Publish the retained `online` status and subscribe (nothing is published before
    /// the SUBACK: an uplink that subscribes after our events were dropped is then heard
    /// announcing it).
    Subscribe,
    /// Publish this batch (QoS 1) on this device topic.
    Publish {
        topic: DeviceTopic,
        payload: Vec<u8>,
    },
    /// The broker has these: mark them published in the store.
    MarkPublished(Vec<i64>),
    /// Log the failure, then wait this long before polling again.
    Retry {
        failure: Failure,
        error: String,
        after: Duration,
    },
}

/// The publisher's state between events.
#[derive(Debug)]
pub(crate) struct Link {
    sender: Sender,
    /// Where the batch in flight goes (one at a time, see `state`).
    topic: DeviceTopic,
    /// Whether the store may hold entries not yet loaded.
    maybe_more: bool,
    /// CONNACK's session flag, acted on once the subscriptions are in place.
    session_present: bool,
    /// The last connect error, to tell a new failure from a repeated one.
    last_failure: Option<String>,
    backoff: Backoff,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            sender: Sender::default(),
            topic: DeviceTopic::Events,
            maybe_more: true,
            session_present: false,
            last_failure: None,
            // At most 10 s between attempts: with a 5 s connect timeout, a door is back
            // within ~15 s of its link, and its queue drained well within 30 s.
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(10)),
        }
    }
}

impl Link {
    /// Subscribed and nothing in flight: status and stats may go out.
    pub(crate) fn is_connected(&self) -> bool {
        self.sender.is_connected()
    }

    /// The loop should read the next batch from the store now.
    pub(crate) fn wants_load(&self) -> bool {
        self.maybe_more && self.sender.wants_batch()
    }

    pub(crate) fn on(&mut self, input: Input<'_>) -> Vec<Action> {
        match input {
            Input::ConnAck { session_present } => {
                self.backoff.reset();
                self.last_failure = None;
                self.session_present = session_present;
                vec![Action::Link(LinkState::Connected), Action::Subscribe]
            }
            Input::Subscribed => {
                self.maybe_more = true;
                self.sender
                    .connected(self.session_present)
                    .map(|a| self.action(a))
                    .into_iter()
                    .collect()
            }
            Input::OutgoingPublish(pkid) => {
                self.sender.outgoing_publish(pkid);
                Vec::new()
            }
            Input::PubAck(pkid) => match self.sender.puback(pkid) {
                Some(a) => {
                    self.maybe_more = true;
                    vec![self.action(a)]
                }
                None => Vec::new(),
            },
            Input::ConnectionError(text) => {
                let failure = if self.sender.is_connected() {
                    Failure::Lost
                } else if self.last_failure.as_deref() == Some(text) {
                    Failure::Again
                } else {
                    Failure::New
                };
                self.last_failure = Some(text.to_owned());
                self.sender.disconnected();
                vec![
                    Action::Link(LinkState::Disconnected),
                    Action::Retry {
                        failure,
                        error: text.to_owned(),
                        after: self.backoff.next_delay(),
                    },
                ]
            }
            Input::MaybeMore => {
                self.maybe_more = true;
                Vec::new()
            }
            Input::Loaded(Some(b)) if !b.seqs.is_empty() => {
                self.topic = b.topic;
                self.sender
                    .start(b.seqs, b.payload)
                    .map(|a| self.action(a))
                    .into_iter()
                    .collect()
            }
            Input::Loaded(_) => {
                self.maybe_more = false;
                Vec::new()
            }
        }
    }

    fn action(&self, a: state::Action) -> Action {
        match a {
            state::Action::Publish(payload) => Action::Publish {
                topic: self.topic,
                payload,
            },
            state::Action::MarkPublished(seqs) => Action::MarkPublished(seqs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(topic: DeviceTopic, seqs: &[i64], payload: &[u8]) -> Input<'static> {
        Input::Loaded(Some(Loaded {
            topic,
            seqs: seqs.to_vec(),
            payload: payload.to_vec(),
        }))
    }

    fn publish(topic: DeviceTopic, payload: &[u8]) -> Vec<Action> {
        vec![Action::Publish {
            topic,
            payload: payload.to_vec(),
        }]
    }

    /// A link through CONNACK (with `session_present`) and SUBACK.
    fn subscribed(session_present: bool) -> Link {
        let mut l = Link::default();
        l.on(Input::ConnAck { session_present });
        l.on(Input::Subscribed);
        l
    }

    #[test]
    fn nothing_is_sent_before_the_subscriptions_are_in_place() {
        let mut l = Link::default();
        assert!(!l.wants_load(), "not before CONNACK");
        assert_eq!(
            l.on(Input::ConnAck {
                session_present: false
            }),
            vec![Action::Link(LinkState::Connected), Action::Subscribe]
        );
        assert!(!l.wants_load(), "not between CONNACK and SUBACK");
        assert_eq!(l.on(loaded(DeviceTopic::Events, &[1], b"a")), vec![]);
        assert!(l.on(Input::Subscribed).is_empty());
        assert!(l.is_connected() && l.wants_load());
    }

    #[test]
    fn a_batch_goes_to_its_topic_and_is_marked_only_on_its_puback() {
        let mut l = subscribed(false);
        let sent = l.on(loaded(DeviceTopic::RosterChanges, &[4, 5], b"r"));
        assert_eq!(sent, publish(DeviceTopic::RosterChanges, b"r"));
        assert!(!l.wants_load(), "one batch in flight");
        l.on(Input::OutgoingPublish(9));
        assert!(l.on(Input::PubAck(8)).is_empty(), "another message's ack");
        assert_eq!(
            l.on(Input::PubAck(9)),
            vec![Action::MarkPublished(vec![4, 5])]
        );
        assert!(l.wants_load());
        let next = l.on(loaded(DeviceTopic::Events, &[6], b"e"));
        assert_eq!(next, publish(DeviceTopic::Events, b"e"));
    }

    #[test]
    fn a_drained_store_is_read_again_only_when_something_may_be_there() {
        let mut l = subscribed(true);
        l.on(Input::Loaded(None));
        assert!(!l.wants_load(), "drained");
        l.on(loaded(DeviceTopic::Events, &[], b""));
        assert!(!l.wants_load(), "an empty batch drains too");
        l.on(Input::MaybeMore);
        assert!(l.wants_load(), "a punch was recorded");
    }

    #[test]
    fn a_lost_session_resends_the_batch_in_flight_after_resubscribing() {
        let mut l = subscribed(false);
        l.on(loaded(DeviceTopic::Events, &[1], b"x"));
        l.on(Input::OutgoingPublish(1));
        let down = l.on(Input::ConnectionError("connection reset"));
        assert_eq!(down[0], Action::Link(LinkState::Disconnected));
        assert!(matches!(
            down[1],
            Action::Retry {
                failure: Failure::Lost,
                ..
            }
        ));
        // A resumed session: rumqttc retransmits by itself.
        l.on(Input::ConnAck {
            session_present: true,
        });
        assert!(l.on(Input::Subscribed).is_empty());
        l.on(Input::ConnectionError("connection reset"));
        // A new session: the batch goes again, on its own topic, after the SUBACK.
        let up = l.on(Input::ConnAck {
            session_present: false,
        });
        assert!(!up.iter().any(|a| matches!(a, Action::Publish { .. })));
        assert_eq!(l.on(Input::Subscribed), publish(DeviceTopic::Events, b"x"));
        assert_eq!(l.on(Input::PubAck(2)), vec![Action::MarkPublished(vec![1])]);
    }

    #[test]
    fn a_repeated_connect_failure_is_told_apart_and_backs_off() {
        let mut l = Link::default();
        let failure = |a: &[Action]| match a {
            [_, Action::Retry { failure, after, .. }] => (*failure, *after),
            other => panic!("unexpected {other:?}"),
        };
        let (f, first) = failure(&l.on(Input::ConnectionError("tls: bad certificate")));
        assert_eq!(f, Failure::New);
        assert!(first <= Duration::from_millis(250));
        let (f, _) = failure(&l.on(Input::ConnectionError("tls: bad certificate")));
        assert_eq!(f, Failure::Again);
        let (f, _) = failure(&l.on(Input::ConnectionError("connection refused")));
        assert_eq!(f, Failure::New);
        for _ in 0..20 {
            let (_, after) = failure(&l.on(Input::ConnectionError("connection refused")));
            assert!(after <= Duration::from_secs(10), "capped: {after:?}");
        }
        // A CONNACK forgets the failure: the same one later is news again.
        l.on(Input::ConnAck {
            session_present: false,
        });
        let (f, _) = failure(&l.on(Input::ConnectionError("connection refused")));
        assert_eq!(f, Failure::New);
    }
}
