//! Face-recognition attendance terminal (`attendanced`) and its central uplink worker.
//!
//! The module tree is the architecture: `face` turns photos into decisions, `store`
//! keeps the terminal's state and outbox in SQLite, `terminal` applies the business rules
//! on top of both, and `http` is the spec's API in front of it.

pub mod admin;
pub mod backoff;
pub mod camera;
pub mod config;
pub mod daemon;
pub mod event;
pub mod face;
pub mod fuzz;
pub mod http;
pub mod i18n;
pub mod logging;
pub mod mqtt;
pub mod outbox;
pub mod punch;
pub mod reason;
pub mod reload;
pub mod shutdown;
pub mod store;
pub mod systemd;
pub mod terminal;
pub mod tls;
pub mod uplink;
