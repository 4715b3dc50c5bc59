//! `attendance-uplink` configuration: defaults < TOML file < environment (the spec's
//! `MYSQL_*` names, and `ATTENDANCE_UPLINK_SECTION__KEY`).

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Uncased;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, LogSettings, MqttSettings};
use crate::mqtt::SHARED_EVENTS_FILTER;

/// The spec's MySQL environment variables.
pub const SPEC_ENV: [(&str, &str); 6] = [
    ("MYSQL_HOST", "mysql.host"),
    ("MYSQL_PORT", "mysql.port"),
    ("MYSQL_USER", "mysql.user"),
    ("MYSQL_PASSWORD", "mysql.password"),
    ("MYSQL_DB", "mysql.database"),
    ("MYSQL_POOL_SIZE", "mysql.pool_size"),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UplinkConfig {
    pub mqtt: MqttSettings,
    /// Subscription filter; the default shares the load among every uplink worker.
    pub subscription: String,
    pub mysql: MysqlSettings,
    /// Most MQTT messages (each a terminal's batch of events) written in one MySQL
    /// transaction: more amortises the commit, fewer bounds the work redone on failure.
    pub max_batch_messages: usize,
    pub log: LogSettings,
}

impl Default for UplinkConfig {
    fn default() -> Self {
        Self {
            mqtt: MqttSettings {
                url: "mqtt://127.0.0.1:1883".into(),
                client_id: Some("attendance-uplink".into()),
                ..MqttSettings::default()
            },
            subscription: SHARED_EVENTS_FILTER.into(),
            mysql: MysqlSettings::default(),
            max_batch_messages: 64,
            log: LogSettings::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MysqlSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub pool_size: usize,
    /// Connect with TLS (`REQUIRE SSL` accounts).
    pub tls: bool,
    /// CA certificate (PEM) the server's certificate must chain to.
    pub ca_file: Option<PathBuf>,
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
    pub fn load(file: Option<&Path>) -> Result<UplinkConfig, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(UplinkConfig::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError {
                    key: "--config".into(),
                    message: format!("{} is not a readable file", path.display()),
                });
            }
            fig = fig.merge(Toml::file(path));
        }
        let spec_env = Env::raw().filter_map(|k| {
            SPEC_ENV
                .iter()
                .find(|(name, _)| k == *name)
                .map(|(_, key)| Uncased::from(*key))
        });
        fig = fig
            .merge(spec_env)
            .merge(Env::prefixed("ATTENDANCE_UPLINK_").split("__"));
        let cfg: UplinkConfig = fig.extract().map_err(|e| ConfigError {
            key: e.path.join("."),
            message: e.kind.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| {
            Err(ConfigError {
                key: key.into(),
                message,
            })
        };
        if let Err(e) = crate::mqtt::parse_url(&self.mqtt.url) {
            return err("mqtt.url", e.to_string());
        }
        if !(1..=64).contains(&self.mysql.pool_size) {
            return err(
                "mysql.pool_size",
                format!("must be 1..=64, got {}", self.mysql.pool_size),
            );
        }
        if !(1..=1000).contains(&self.max_batch_messages) {
            return err(
                "max_batch_messages",
                format!("must be 1..=1000, got {}", self.max_batch_messages),
            );
        }
        if self.mysql.database.is_empty()
            || !self
                .mysql
                .database
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return err(
                "mysql.database",
                format!(
                    "must be letters, digits and _, got {:?}",
                    self.mysql.database
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        UplinkConfig::default().validate().unwrap();
    }

    #[test]
    fn database_name_is_an_identifier() {
        let mut c = UplinkConfig::default();
        c.mysql.database = "x; DROP DATABASE y".into();
        assert_eq!(c.validate().unwrap_err().key, "mysql.database");
    }
}
