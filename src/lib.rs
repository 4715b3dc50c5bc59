//! Face-recognition attendance terminal (`attendanced`) and its central uplink worker.

pub mod face;
pub mod i18n;
pub mod reason;
