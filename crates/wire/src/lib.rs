//! The fleet's public contracts on the wire, shared by the door and the centre: the
//! attendance events (CBOR, versioned), the roster's pages and changes, and the MQTT topics
//! and connections that carry them. Documented in `docs/asyncapi.yaml`.

pub mod event;
pub mod mqtt;
pub mod roster;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
