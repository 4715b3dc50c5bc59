//! Face-recognition attendance terminal (`attendanced`) and its central uplink worker.
//!
//! The module tree is the architecture: `face` turns photos into decisions, `store`
//! keeps the terminal's state and outbox in SQLite, `terminal` applies the business rules
//! on top of both, `camera` captures, analyses and streams, and `http` is the spec's API
//! in front of it; `roster` is the fleet's shared roster on the wire; `daemon` and
//! `uplink` assemble the two processes. `config` is a leaf:
//! each module owns its settings and their validation.
//!
//! Public only what the binaries, the integration tests and the benchmarks use, so the
//! compiler reports the rest when it goes dead.

pub mod admin;
mod backoff;
pub mod camera;
pub mod config;
pub mod daemon;
pub mod event;
pub mod face;
mod feed;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod http;
mod i18n;
pub mod logging;
mod metrics;
pub mod mqtt;
pub mod outbox;
pub mod punch;
mod ration;
pub mod reason;
mod roster;
pub mod shutdown;
pub mod store;
mod systemd;
mod terminal;
pub mod tls;
pub mod uplink;
