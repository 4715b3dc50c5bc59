//! What a terminal's message is, checked against who sent it (pure). With the broker's
//! ACL only door `{device}` of `{site}` publishes on `attendance/{site}/{device}/...`,
//! so the topic is the sender: what a payload says of its site and device must agree.

use attendance_wire::event::{AttendanceEvent, EventBatch};
use attendance_wire::mqtt::{DeviceTopic, parse_device_topic};
use attendance_wire::roster::wire::{Change, ChangeBatch};

/// One MQTT message as received.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) topic: String,
    pub(crate) payload: Vec<u8>,
}

/// What a message turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decoded {
    /// Attendance events of the topic's site, sent by door `terminal`.
    Events {
        terminal: String,
        events: Vec<AttendanceEvent>,
    },
    /// Roster changes made at the topic's door.
    Changes(Vec<Change>),
    /// Undecodable, invalid, or not the sender's to send: kept with the reason for a
    /// human (within the sender's share, see `admission`).
    Dead(String),
}

/// Decodes a message and checks it against its sender.
pub(crate) fn decode(m: &Message) -> Decoded {
    let Some((site, device, kind)) = parse_device_topic(&m.topic) else {
        return Decoded::Dead(format!("unexpected topic {}", m.topic));
    };
    match kind {
        DeviceTopic::Events => match EventBatch::from_cbor(&m.payload) {
            Ok(b) => match b.events.iter().find(|e| e.site != site) {
                Some(e) => Decoded::Dead(format!(
                    "event {} claims site {}, sent by a door of {site}",
                    e.event_id, e.site
                )),
                None => Decoded::Events {
                    terminal: device.to_owned(),
                    events: b.events,
                },
            },
            Err(e) => Decoded::Dead(e.to_string()),
        },
        DeviceTopic::RosterChanges => match ChangeBatch::from_cbor(&m.payload) {
            Ok(b) => match b
                .changes
                .iter()
                .find(|c| c.site != site || c.device_id.as_deref() != Some(device))
            {
                Some(c) => Decoded::Dead(format!(
                    "change {} claims site {} and device {:?}, sent by {site}/{device}",
                    c.change_id, c.site, c.device_id
                )),
                None => Decoded::Changes(b.changes),
            },
            Err(e) => Decoded::Dead(e.to_string()),
        },
        _ => Decoded::Dead(format!("unexpected topic {}", m.topic)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attendance_wire::roster::wire;

    fn m(topic: &str, payload: &[u8]) -> Message {
        Message {
            topic: topic.into(),
            payload: payload.to_vec(),
        }
    }

    fn why(d: Decoded) -> String {
        match d {
            Decoded::Dead(why) => why,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn events_are_the_topics_site_and_name_their_door() {
        let e = attendance_wire::testing::sample();
        let good = EventBatch {
            v: 1,
            events: vec![e.clone()],
        }
        .to_cbor();
        assert_eq!(
            decode(&m("attendance/hq/K1/events", &good)),
            Decoded::Events {
                terminal: "K1".into(),
                events: vec![e]
            }
        );
        // A door of another site cannot record punches for hq.
        assert!(why(decode(&m("attendance/br/X/events", &good))).contains("claims site hq"));
        assert!(!why(decode(&m("attendance/hq/K1/events", b"\x00garbage"))).is_empty());
        assert!(why(decode(&m("other/topic", &good))).contains("unexpected topic"));
    }

    #[test]
    fn roster_changes_only_from_their_own_site_and_door() {
        let batch = wire::ChangeBatch {
            v: 1,
            changes: vec![attendance_wire::testing::enrol("hq-K1-001", "홍길동")],
        };
        let bytes = wire::encode(&batch);
        assert_eq!(
            decode(&m("attendance/hq/K1/roster_changes", &bytes)),
            Decoded::Changes(batch.changes.clone())
        );
        assert!(why(decode(&m("attendance/branch/K1/roster_changes", &bytes))).contains("site hq"));
        // Door K2 of the same site cannot speak for K1, nor pass a change off as central.
        assert!(
            why(decode(&m("attendance/hq/K2/roster_changes", &bytes))).contains("sent by hq/K2")
        );
        let mut central = batch.clone();
        central.changes[0].device_id = None;
        assert!(
            !why(decode(&m(
                "attendance/hq/K1/roster_changes",
                &wire::encode(&central)
            )))
            .is_empty()
        );
        // Nor send changes as events.
        assert!(!why(decode(&m("attendance/hq/K1/events", &bytes))).is_empty());
    }
}
