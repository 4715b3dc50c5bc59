//! Face-recognition attendance terminal (`attendanced`) and its central uplink worker.
//!
//! The workspace's crates are the layers, so a wrong import does not compile:
//! `attendance-core` (configuration, reasons and messages, punch kinds, shutdown, logging,
//! TLS, systemd) ← `attendance-face` (photos to decisions) ← `attendance-wire` (events,
//! roster pages, MQTT topics) ← `attendance-terminal` (the door) and `attendance-uplink`
//! (the centre), which do not know each other. This package holds the two thin binaries,
//! the integration tests and the benchmarks; the library re-exports the layers under one
//! name for them.

pub use attendance_core::{clock, config, logging, punch, reason, shutdown, tls};
/// The face pipeline, with its evaluation tool beside it (`face::eval`).
pub mod face {
    pub use attendance_eval as eval;
    pub use attendance_eval::liveness as liveness_eval;
    pub use attendance_face::*;
}
pub use attendance_terminal::{admin, camera, daemon, http, outbox, store};
pub use attendance_uplink as uplink;
pub use attendance_wire::{event, mqtt};

#[cfg(feature = "fuzzing")]
pub mod fuzz;
