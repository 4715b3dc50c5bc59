//! `[http]` in the configuration: limits, timeouts, CORS and the optional HTTPS listener.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use attendance_core::config::{ConfigError, check};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct HttpSettings {
    pub(crate) max_body_bytes: usize,
    /// Face analyses running at once.
    pub(crate) max_concurrent_analyses: usize,
    /// Requests allowed to wait for an analysis slot (up to 10 s); beyond this they get
    /// 503 `busy` with `Retry-After` at once, never an unbounded queue.
    pub(crate) max_queued_analyses: usize,
    /// Whole-request deadline (slow clients included), seconds. A request answered
    /// `408 timeout` recorded nothing; one that began recording is answered in full.
    pub(crate) request_timeout_secs: u64,
    /// Time allowed to send the request headers, seconds (slowloris).
    pub(crate) header_timeout_secs: u64,
    /// Origins (`https://hr.example.com`) whose browser pages may call the API; empty:
    /// no cross-origin access.
    pub(crate) cors_allow_origins: Vec<String>,
    /// Serve HTTPS with this PEM certificate chain (with `tls_key_file`), for sites
    /// without a TLS-terminating reverse proxy. Unset: plain HTTP.
    pub(crate) tls_cert_file: Option<PathBuf>,
    /// The certificate's private key (PEM; PKCS#8, PKCS#1 or SEC1).
    pub(crate) tls_key_file: Option<PathBuf>,
    /// Serves `GET /metrics` (Prometheus) and records what it shows.
    pub(crate) metrics: bool,
    /// Connections held at once; more are closed as soon as they are accepted. Keep it
    /// well below the descriptor limit (the unit's `LimitNOFILE`).
    pub(crate) max_connections: usize,
    /// Connections one address may hold at once (a kiosk page holds two or three).
    pub(crate) max_connections_per_peer: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 * 1024 * 1024,
            max_concurrent_analyses: 2,
            max_queued_analyses: 32,
            request_timeout_secs: 30,
            header_timeout_secs: 10,
            cors_allow_origins: Vec::new(),
            tls_cert_file: None,
            tls_key_file: None,
            metrics: true,
            max_connections: 512,
            max_connections_per_peer: 64,
        }
    }
}

impl HttpSettings {
    /// Range checks the types cannot express; keys relative to `[http]`.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check(
            !self
                .cors_allow_origins
                .iter()
                .any(|o| o == "*" || o.is_empty()),
            "cors_allow_origins",
            || "list each origin (scheme://host[:port]); \"*\" is not allowed".to_owned(),
        )?;
        check(self.max_body_bytes >= 1024, "max_body_bytes", || {
            format!("must be at least 1024, got {}", self.max_body_bytes)
        })?;
        check(
            self.tls_cert_file.is_some() == self.tls_key_file.is_some(),
            "tls_key_file",
            || "http.tls_cert_file and http.tls_key_file go together".into(),
        )?;
        check(
            self.max_concurrent_analyses >= 1,
            "max_concurrent_analyses",
            || "must be at least 1".into(),
        )?;
        check(
            (1..=60_000).contains(&self.max_connections),
            "max_connections",
            || format!("must be 1..=60000, got {}", self.max_connections),
        )?;
        check(
            (1..=self.max_connections).contains(&self.max_connections_per_peer),
            "max_connections_per_peer",
            || {
                format!(
                    "must be 1..=max_connections, got {}",
                    self.max_connections_per_peer
                )
            },
        )?;
        check(
            self.request_timeout_secs >= 1,
            "request_timeout_secs",
            || "must be at least 1".into(),
        )
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub(crate) fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_sits_well_below_the_units_descriptor_limit() {
        let unit = include_str!("../../../../systemd/attendanced.service");
        let nofile: usize = unit
            .lines()
            .find_map(|l| l.strip_prefix("LimitNOFILE="))
            .and_then(|v| v.trim().parse().ok())
            .expect("LimitNOFILE in the unit");
        let d = HttpSettings::default();
        assert!(
            d.max_connections * 4 <= nofile,
            "{} vs {nofile}",
            d.max_connections
        );
        let s = HttpSettings {
            max_connections_per_peer: d.max_connections + 1,
            ..d.clone()
        };
        assert_eq!(s.validate().unwrap_err().key, "max_connections_per_peer");
    }

    #[test]
    fn wildcards_and_half_tls_are_refused() {
        HttpSettings::default().validate().unwrap();
        let s = HttpSettings {
            cors_allow_origins: vec!["*".into()],
            ..HttpSettings::default()
        };
        assert_eq!(s.validate().unwrap_err().key, "cors_allow_origins");
        let s = HttpSettings {
            tls_cert_file: Some("/c.pem".into()),
            ..HttpSettings::default()
        };
        assert_eq!(s.validate().unwrap_err().key, "tls_key_file");
    }
}
