//! `attendance-uplink` configuration: defaults < TOML file < environment (the spec's
//! `MYSQL_*` names, and `ATTENDANCE_UPLINK_SECTION__KEY`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use attendance_core::config::{self, ConfigError, Sources, check};
use attendance_core::logging::LogSettings;
use attendance_face::FaceSettings;
use attendance_wire::mqtt::{EVENTS_FILTER, MqttSettings, ROSTER_FILTERS};

/// The spec's MySQL environment variables.
const SOURCES: Sources = Sources {
    env_prefix: "ATTENDANCE_UPLINK_",
    aliases: &[
        ("MYSQL_HOST", "mysql.host"),
        ("MYSQL_PORT", "mysql.port"),
        ("MYSQL_USER", "mysql.user"),
        ("MYSQL_PASSWORD", "mysql.password"),
        ("MYSQL_DB", "mysql.database"),
        ("MYSQL_POOL_SIZE", "mysql.pool_size"),
    ],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UplinkConfig {
    pub(crate) mqtt: MqttSettings,
    /// Subscription filter of the terminals' events. The roster topics are subscribed
    /// the same way (see [`roster_filters`]). Several workers share the load with
    /// `$share/{random group}/attendance/+/+/events`: a group name a door could guess
    /// lets it take messages (Mosquitto's ACL file does not check subscriptions).
    pub(crate) subscription: String,
    pub mysql: MysqlSettings,
    /// Most MQTT messages (each a terminal's batch of events) written in one MySQL
    /// transaction: more amortises the commit, fewer bounds the work redone on failure.
    pub(crate) max_batch_messages: usize,
    /// Where Prometheus scrapes `GET /metrics` (unset: no listener). The listener has no
    /// keys: bind it to loopback or a management network.
    pub(crate) metrics_listen: Option<std::net::SocketAddr>,
    pub log: LogSettings,
    /// `attendance-uplink roster enrol|import`: how photos become faces (the same
    /// detector, gates and embedder choice as a terminal's `[face]`).
    pub(crate) face: FaceSettings,
}

/// The roster filters that go with an events filter: `.../events` with its last level
/// replaced (so a shared or narrowed subscription is shared or narrowed too), else the
/// defaults.
pub(crate) fn roster_filters(events: &str) -> Vec<String> {
    match events.strip_suffix("/events") {
        Some(stem) => ["roster_changes", "roster_sync"]
            .iter()
            .map(|last| format!("{stem}/{last}"))
            .collect(),
        None => ROSTER_FILTERS.iter().map(|f| (*f).to_owned()).collect(),
    }
}

impl Default for UplinkConfig {
    fn default() -> Self {
        Self {
            mqtt: MqttSettings {
                url: "mqtt://127.0.0.1:1883".into(),
                client_id: Some("attendance-uplink".into()),
                ..MqttSettings::default()
            },
            subscription: EVENTS_FILTER.into(),
            mysql: MysqlSettings::default(),
            max_batch_messages: 64,
            metrics_listen: None,
            log: LogSettings::default(),
            face: FaceSettings::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MysqlSettings {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    pub(crate) database: String,
    pub(crate) pool_size: usize,
    /// Connect with TLS (`REQUIRE SSL` accounts).
    pub(crate) tls: bool,
    /// CA certificate (PEM) the server's certificate must chain to.
    pub(crate) ca_file: Option<PathBuf>,
}

impl Default for MysqlSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 3306,
            user: "root".into(),
            password: None,
            database: "attendance_db".into(),
            pool_size: 5,
            tls: false,
            ca_file: None,
        }
    }
}

impl UplinkConfig {
    /// Defaults, then `file` (if given), then the environment; validated.
    pub fn load(file: Option<&Path>) -> Result<UplinkConfig, ConfigError> {
        let cfg: UplinkConfig = config::load(file, &SOURCES)?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check(self.mqtt.enabled(), "mqtt.url", || {
            "the uplink needs a broker: mqtt://HOST:PORT or mqtts://HOST:PORT".into()
        })?;
        self.mqtt.validate().map_err(|e| e.within("mqtt"))?;
        check(
            !self.subscription.starts_with("$share/uplink/"),
            "subscription",
            || {
                "the shared group `uplink` is the one documented: any broker user could join \
                 it and take messages; use a random group name, or no shared subscription"
                    .into()
            },
        )?;
        self.log.validate().map_err(|e| e.within("log"))?;
        self.face.validate().map_err(|e| e.within("face"))?;
        check(
            (1..=64).contains(&self.mysql.pool_size),
            "mysql.pool_size",
            || format!("must be 1..=64, got {}", self.mysql.pool_size),
        )?;
        check(
            (1..=1000).contains(&self.max_batch_messages),
            "max_batch_messages",
            || format!("must be 1..=1000, got {}", self.max_batch_messages),
        )?;
        check(
            !self.mysql.database.is_empty()
                && self
                    .mysql
                    .database
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "mysql.database",
            || {
                format!(
                    "must be letters, digits and _, got {:?}",
                    self.mysql.database
                )
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_filters_follow_the_events_subscription() {
        assert_eq!(roster_filters(EVENTS_FILTER), ROSTER_FILTERS);
        assert_eq!(
            roster_filters("$share/k3x9q/attendance/+/+/events"),
            [
                "$share/k3x9q/attendance/+/+/roster_changes",
                "$share/k3x9q/attendance/+/+/roster_sync"
            ]
        );
        // One uplink, one site: the roster topics narrow the same way.
        assert_eq!(
            roster_filters("attendance/hq/+/events"),
            [
                "attendance/hq/+/roster_changes",
                "attendance/hq/+/roster_sync"
            ]
        );
        assert_eq!(roster_filters("attendance/#"), ROSTER_FILTERS);
    }

    #[test]
    fn defaults_are_valid() {
        UplinkConfig::default().validate().unwrap();
    }

    #[test]
    fn the_documented_shared_group_is_refused() {
        let c = UplinkConfig {
            subscription: "$share/uplink/attendance/+/+/events".into(),
            ..UplinkConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "subscription");
    }

    #[test]
    fn database_name_is_an_identifier() {
        let mut c = UplinkConfig::default();
        c.mysql.database = "x; DROP DATABASE y".into();
        assert_eq!(c.validate().unwrap_err().key, "mysql.database");
    }

    #[test]
    fn the_uplink_needs_a_broker_it_can_reach() {
        let mut c = UplinkConfig::default();
        c.mqtt.url = String::new();
        assert_eq!(c.validate().unwrap_err().key, "mqtt.url");
        c.mqtt.url = "mqtt://h:x".into();
        assert_eq!(c.validate().unwrap_err().key, "mqtt.url");
    }
}
