//! The door terminal (`attendanced`). `store` keeps its state and outbox in SQLite,
//! `terminal` applies the business rules on top of the face pipeline and the store,
//! `camera` captures, analyses and streams, `feed` and `metrics` report what happened,
//! `http` is the spec's API in front of it all, `outbox` carries punches to the broker, and
//! `daemon` assembles the process.
//!
//! Public only what the binary, the integration tests and the benchmarks use, so the
//! compiler reports the rest when it goes dead.

pub mod admin;
mod answer;
pub mod camera;
mod clock;
pub mod daemon;
mod feed;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod http;
mod metrics;
pub mod outbox;
pub mod store;
mod terminal;
