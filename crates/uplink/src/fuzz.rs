//! The body of the `event_message` fuzz target in `fuzz/` (cargo-fuzz, nightly), behind the
//! `fuzzing` feature so it does not ship in the product. `tests/fuzz_replay.rs` replays
//! every committed seed and finding through it on stable Rust in every test run. It takes
//! arbitrary bytes and must return without panicking; the properties it checks beyond that
//! are asserted here, once.

use attendance_wire::event::EventBatch;

use crate::decode::{Decoded, Message, decode};
use crate::sink;

/// An MQTT message on a terminal's events topic as the uplink decodes it, and the rows
/// it would write. A batch that decodes must survive re-encoding unchanged. The number
/// of events, if it is a valid batch.
pub fn event_message(payload: &[u8]) -> Option<usize> {
    let m = Message {
        topic: attendance_wire::mqtt::device_topic(
            "fuzz",
            "T1",
            attendance_wire::mqtt::DeviceTopic::Events,
        ),
        payload: payload.to_vec(),
    };
    let decoded = match decode(&m) {
        Decoded::Events { terminal, events } => {
            for e in &events {
                let _ = sink::row(e, &terminal);
            }
            let again = EventBatch {
                v: attendance_wire::event::SCHEMA_VERSION,
                events,
            };
            let round = EventBatch::from_cbor(&again.to_cbor()).expect("re-encoded batch decodes");
            assert_eq!(round, again, "CBOR round trip changed a batch");
            Some(again.events.len())
        }
        Decoded::Changes(_) => unreachable!("an events topic decodes as events or dead"),
        Decoded::Dead(_) => None,
    };
    let _ = crate::decode_to_json(payload);
    decoded
}
