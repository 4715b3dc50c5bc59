//! `[mqtt]` in both binaries' configuration: the broker, the credentials, batching.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{MqttConfigError, parse_url};
use attendance_core::config::{ConfigError, check};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttSettings {
    /// Broker URL, `mqtt://host:1883` or `mqtts://host:8883`; empty disables the uplink.
    pub url: String,
    /// Fixed client id of the persistent session; `attendanced-{site}-{device_id}` if unset.
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// CA certificate (PEM) to trust for `mqtts://`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// Events per MQTT message.
    pub batch_size: usize,
    /// Expect the uplink's receipts (`.../receipts`): an event the broker acknowledged
    /// but MySQL has not confirmed within `receipt_timeout_secs` is sent again. Protects
    /// against a broker that loses messages (restart without persistence, or Mosquitto
    /// 2.0 forgetting shared subscriptions across a restart).
    pub receipts: bool,
    pub receipt_timeout_secs: u64,
    /// Seconds between stats messages.
    pub stats_interval_secs: u64,
    /// A link that hears nothing from the broker for this long is declared down (the
    /// kiosk shows offline) and reconnected. Pings go every third of it, so a dead link
    /// (a cut cable, a half-open connection that never sees a RST) is found within it.
    pub keep_alive_secs: u64,
    /// Share the site's roster with the other doors through the uplink: enrolments and
    /// deletions made here go to the centre, everyone enrolled at the site is recognised
    /// here, and generated ids become `{site}-{device_id}-NNN` (unique in the fleet).
    pub roster: bool,
}

impl Default for MqttSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            client_id: None,
            username: None,
            password: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            batch_size: 100,
            receipts: true,
            receipt_timeout_secs: 300,
            stats_interval_secs: 60,
            keep_alive_secs: 30,
            roster: true,
        }
    }
}

/// Below this the pings (a third of it, whole seconds as MQTT counts) come too close to
/// a slow link's round trip.
const KEEP_ALIVE_MIN_SECS: u64 = 6;

impl MqttSettings {
    /// How often to ping: a third of the keep-alive, so that the ping after a silent
    /// failure goes unanswered and the next one finds it, both within the keep-alive.
    pub fn ping_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs((self.keep_alive_secs / 3).max(1))
    }

    /// Whether a broker is configured at all.
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }

    /// Whether this terminal shares its site's roster (a broker and `roster` on).
    pub fn roster_sync(&self) -> bool {
        self.enabled() && self.roster
    }

    /// Range checks the types cannot express; keys relative to `[mqtt]`. The URL is
    /// checked with the same parser the link connects with, so a URL that passes here
    /// connects (or fails loudly) rather than leaving the link silently `disabled`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.enabled() {
            parse_url(&self.url).map_err(|e| match e {
                MqttConfigError::Url(why) => ConfigError::new("url", why),
                other => ConfigError::new("url", other.to_string()),
            })?;
        }
        check((1..=1000).contains(&self.batch_size), "batch_size", || {
            format!("must be in 1..=1000, got {}", self.batch_size)
        })?;
        check(
            (KEEP_ALIVE_MIN_SECS..=3600).contains(&self.keep_alive_secs),
            "keep_alive_secs",
            || {
                format!(
                    "must be in {KEEP_ALIVE_MIN_SECS}..=3600, got {}",
                    self.keep_alive_secs
                )
            },
        )?;
        check(
            self.client_cert_file.is_some() == self.client_key_file.is_some(),
            "client_key_file",
            || "client_cert_file and client_key_file go together".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_that_would_not_connect_is_refused_at_start() {
        let with = |url: &str| MqttSettings {
            url: url.into(),
            ..MqttSettings::default()
        };
        with("").validate().unwrap();
        with("mqtt://127.0.0.1:1883").validate().unwrap();
        with("mqtts://broker.example").validate().unwrap();
        for bad in ["mqtt://", "mqtt://h:x", "tcp://h:1883", "h:1883"] {
            assert_eq!(with(bad).validate().unwrap_err().key, "url", "{bad:?}");
        }
    }

    #[test]
    fn a_dead_link_is_found_within_the_keep_alive() {
        let with = |secs| MqttSettings {
            keep_alive_secs: secs,
            ..MqttSettings::default()
        };
        // rumqttc fails the link at the first ping after an unanswered one: at most two
        // intervals after the link died, and the first ping answered within one.
        for secs in [6, 10, 30, 31, 3600] {
            let ping = with(secs).ping_interval();
            assert!(
                ping * 2 <= std::time::Duration::from_secs(secs),
                "{secs}: {ping:?}"
            );
            assert!(
                ping >= std::time::Duration::from_secs(secs / 4),
                "{secs}: {ping:?}"
            );
        }
        assert_eq!(with(5).validate().unwrap_err().key, "keep_alive_secs");
        assert_eq!(with(3601).validate().unwrap_err().key, "keep_alive_secs");
    }

    #[test]
    fn certificate_and_key_go_together() {
        let s = MqttSettings {
            client_cert_file: Some("/c.pem".into()),
            ..MqttSettings::default()
        };
        assert_eq!(s.validate().unwrap_err().key, "client_key_file");
    }
}
