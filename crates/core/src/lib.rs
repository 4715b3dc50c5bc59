//! The bottom layer: what both processes and every other crate share, and nothing that
//! knows about faces, the wire or a door. Configuration layering (`config`, a leaf: each
//! crate owns its settings and their validation), reason codes and their Korean/English
//! messages, punch kinds and days, the door's clock (synced or not), shutdown, logging,
//! TLS, systemd, rationing, and the metrics exposition both processes serve.

pub mod backoff;
pub mod clock;
pub mod config;
pub mod i18n;
pub mod logging;
pub mod metrics;
pub mod punch;
pub mod ration;
pub mod reason;
pub mod shutdown;
pub mod systemd;
pub mod tls;
