//! One batch of messages through the writer, pure (no broker, no MySQL): each message
//! sorted (to write, a roster request, or refused), then, once MySQL has committed,
//! answered in the order that loses nothing: receipts first (a lost one only means the
//! door sends again), then the MQTT acks. A [`Round`] is answered only by
//! [`Round::committed`]: a failed write is retried with the round still held, and a stop
//! drops it unanswered, so the broker delivers its messages again to the next run.

use std::time::Instant;

use super::admission::{Admission, Admit, Refusal};
use super::decode::{Decoded, Message, decode};
use super::sink::Written;
use super::sync::Request;
use attendance_wire::event::{Receipt, SCHEMA_VERSION};
use attendance_wire::mqtt::{self, DeviceTopic};
use attendance_wire::roster::wire::{self, SyncRequest};

/// Where one message goes.
#[derive(Debug)]
pub(crate) enum Sorted {
    /// Into MySQL (events, roster changes, or a dead letter within the sender's share).
    Write(Message, Decoded),
    /// To the sync task; acknowledged once queued.
    Sync(Request),
    /// Counted, acknowledged and dropped.
    Refuse { reason: Refusal, why: String },
}

/// Sorts one message by its sender's budgets and what it decodes to.
pub(crate) fn sort(admission: &mut Admission, topic: &str, payload: &[u8], now: Instant) -> Sorted {
    let refuse = |reason, why: String| Sorted::Refuse { reason, why };
    match admission.admit(topic, payload.len(), now) {
        Admit::Write => {
            let message = Message {
                topic: topic.to_owned(),
                payload: payload.to_vec(),
            };
            match decode(&message) {
                Decoded::Dead(why) if !admission.keep_dead_letter(topic, now) => {
                    refuse(Refusal::DeadLetterBudget, why)
                }
                decoded => Sorted::Write(message, decoded),
            }
        }
        Admit::Sync => {
            // Admission only says `Sync` of a door's roster request topic.
            let Some((site, device, _)) = mqtt::parse_device_topic(topic) else {
                return refuse(Refusal::UnknownTopic, String::new());
            };
            match wire::decode::<SyncRequest>(payload) {
                Ok(req) => Sorted::Sync(Request {
                    site: site.to_owned(),
                    device: device.to_owned(),
                    req,
                }),
                Err(e) => refuse(Refusal::BadRequest, e.to_string()),
            }
        }
        Admit::Refuse(reason) => refuse(reason, String::new()),
    }
}

/// What to do once a round is committed, in this order.
#[derive(Debug, PartialEq)]
pub(crate) enum Answer<M> {
    /// Tell a door which of its events and changes MySQL now holds.
    Receipt { topic: String, receipt: Receipt },
    /// A roster change about another site's person was written as a revocation.
    Foreign {
        topic: String,
        employee_id: String,
        owner: String,
    },
    /// Some site's roster head moved: republish the retained heads.
    HeadsChanged,
    /// Acknowledge the message to the broker.
    Ack(M),
}

/// The messages of one MySQL transaction, waiting for its commit.
#[derive(Debug)]
pub(crate) struct Round<M> {
    messages: Vec<M>,
}

impl<M> Round<M> {
    pub(crate) fn new(messages: Vec<M>) -> Round<M> {
        Round { messages }
    }

    /// MySQL committed the round: receipts, then the acks.
    pub(crate) fn committed(self, w: &Written) -> Vec<Answer<M>> {
        let mut answers = Vec::with_capacity(w.receipts.len() + self.messages.len() + 1);
        for (topic, ids) in &w.receipts {
            let Some((site, device, _)) = mqtt::parse_device_topic(topic) else {
                continue;
            };
            answers.push(Answer::Receipt {
                topic: mqtt::device_topic(site, device, DeviceTopic::Receipts),
                receipt: Receipt {
                    v: SCHEMA_VERSION,
                    event_ids: ids.clone(),
                },
            });
        }
        for (topic, employee_id, owner) in &w.foreign {
            answers.push(Answer::Foreign {
                topic: topic.clone(),
                employee_id: employee_id.clone(),
                owner: owner.clone(),
            });
        }
        if !w.heads.is_empty() {
            answers.push(Answer::HeadsChanged);
        }
        answers.extend(self.messages.into_iter().map(Answer::Ack));
        answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::Limits;
    use attendance_wire::event::EventBatch;
    use attendance_wire::testing::sample;

    const EVENTS: &str = "attendance/hq/door-1/events";

    fn batch(site: &str) -> Vec<u8> {
        let event = attendance_wire::event::AttendanceEvent {
            site: site.into(),
            device_id: "door-1".into(),
            ..sample()
        };
        EventBatch {
            v: SCHEMA_VERSION,
            events: vec![event],
        }
        .to_cbor()
    }

    fn written() -> Written {
        Written {
            events: 2,
            inserted: 1,
            receipts: vec![
                (EVENTS.into(), vec!["e1".into(), "e2".into()]),
                (
                    "attendance/hq/door-2/roster_changes".into(),
                    vec!["c1".into()],
                ),
            ],
            heads: vec![("hq".into(), 7)],
            ..Written::default()
        }
    }

    #[test]
    fn receipts_come_after_the_commit_and_before_every_ack() {
        let answers = Round::new(vec!["m1", "m2", "m3"]).committed(&written());
        let first_ack = answers
            .iter()
            .position(|a| matches!(a, Answer::Ack(_)))
            .expect("acks");
        let last_receipt = answers
            .iter()
            .rposition(|a| matches!(a, Answer::Receipt { .. }))
            .expect("receipts");
        assert!(last_receipt < first_ack, "{answers:?}");
        let acks: Vec<_> = answers
            .iter()
            .filter_map(|a| match a {
                Answer::Ack(m) => Some(*m),
                _ => None,
            })
            .collect();
        assert_eq!(acks, ["m1", "m2", "m3"], "each message acked once");
        let receipts: Vec<_> = answers
            .iter()
            .filter_map(|a| match a {
                Answer::Receipt { topic, receipt } => {
                    Some((topic.as_str(), receipt.event_ids.len()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            receipts,
            [
                ("attendance/hq/door-1/receipts", 2),
                ("attendance/hq/door-2/receipts", 1)
            ],
            "each door's receipt on its own topic"
        );
        assert_eq!(
            answers
                .iter()
                .filter(|a| **a == Answer::HeadsChanged)
                .count(),
            1
        );
    }

    #[test]
    fn a_commit_without_receipts_still_acks_and_leaves_the_heads_alone() {
        let answers = Round::new(vec![1]).committed(&Written::default());
        assert_eq!(answers, vec![Answer::Ack(1)]);
    }

    #[test]
    fn messages_are_sorted_by_their_sender_and_content() {
        let mut admission = Admission::new(Limits::default());
        let now = Instant::now();
        match sort(&mut admission, EVENTS, &batch("hq"), now) {
            Sorted::Write(_, Decoded::Events { terminal, events }) => {
                assert_eq!((terminal.as_str(), events.len()), ("door-1", 1));
            }
            other => panic!("events not written: {other:?}"),
        }
        assert!(matches!(
            sort(&mut admission, EVENTS, &batch("elsewhere"), now),
            Sorted::Write(_, Decoded::Dead(_))
        ));
        let sync = "attendance/hq/door-1/roster_sync";
        assert!(matches!(
            sort(&mut admission, sync, b"\xff garbage", now),
            Sorted::Refuse {
                reason: Refusal::BadRequest,
                ..
            }
        ));
        assert!(matches!(
            sort(&mut admission, "attendance/hq/door-1/nonsense", b"x", now),
            Sorted::Refuse {
                reason: Refusal::UnknownTopic,
                ..
            }
        ));
        // Garbage beyond the door's dead-letter share (one used above) is refused, not
        // written; another door's share is untouched.
        let share = Limits::default().dead_letters.burst as usize;
        let refused = (0..100)
            .filter(|_| match sort(&mut admission, EVENTS, b"garbage", now) {
                Sorted::Refuse { reason, .. } => reason == Refusal::DeadLetterBudget,
                _ => false,
            })
            .count();
        assert_eq!(refused, 100 - (share - 1));
        let other_door = "attendance/hq/door-2/events";
        assert!(matches!(
            sort(&mut admission, other_door, b"garbage", now),
            Sorted::Write(_, Decoded::Dead(_))
        ));
    }
}
