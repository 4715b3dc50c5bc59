//! The fleet roster: who is enrolled, shared by every door of a site.
//!
//! The central MySQL roster is the record. Terminals send their enrolments and deletions
//! to it through the outbox (the punches' durable path), and keep a copy of their site's
//! roster by asking the uplink for the changes after the last revision they applied.
//! `wire` is the MQTT contract (CBOR, versioned like the events); the terminal applies
//! pages in `terminal::roster`, the uplink keeps the record in `uplink::roster`.

pub mod check;
pub mod sync;
pub mod wire;
