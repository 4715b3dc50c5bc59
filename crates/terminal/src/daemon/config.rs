//! `attendanced`'s configuration: its own keys (`listen`, `data_dir`, ...) and one section
//! per module, each section owned and validated by its module.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::camera::CameraSettings;
use crate::http::{AuthSettings, HttpSettings};
use crate::store::roster::Fleet;
use crate::store::{Paths, StorageSettings};
use crate::terminal::TerminalSettings;
use attendance_core::config::{self, ConfigError, Sources, check, id_rule, is_id};
use attendance_core::i18n::Locale;
use attendance_core::logging::LogSettings;
use attendance_core::punch::PunchSettings;
use attendance_face::FaceSettings;
use attendance_face::liveness::LivenessRule;
use attendance_wire::mqtt::MqttSettings;

/// The spec's environment variables and the config keys they set.
const SOURCES: Sources = Sources {
    env_prefix: "ATTENDANCED_",
    aliases: &[
        ("TOLERANCE", "face.tolerance"),
        ("IMAGE_DIR", "storage.image_dir"),
        ("ENCODING_DIR", "storage.encoding_dir"),
        ("STREAM_FPS", "camera.stream_fps"),
        ("CAMERA_DEVICE_INDEX", "camera.device_index"),
    ],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Root of the terminal's state: SQLite database, templates, images.
    pub data_dir: PathBuf,
    /// Language of messages when a request does not ask for one.
    pub(crate) locale: Locale,
    /// This terminal's id, used when a request names no `device_id`.
    pub(crate) device_id: String,
    /// Site name: the MQTT topic is `attendance/{site}/{device_id}/events`.
    pub(crate) site: String,
    pub(crate) face: FaceSettings,
    pub(crate) storage: StorageSettings,
    pub(crate) punch: PunchSettings,
    pub(crate) http: HttpSettings,
    pub camera: CameraSettings,
    pub(crate) mqtt: MqttSettings,
    pub log: LogSettings,
    pub(crate) auth: AuthSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 5000)),
            data_dir: PathBuf::from("./data"),
            locale: Locale::Ko,
            device_id: "TERMINAL_01".into(),
            site: "default".into(),
            face: FaceSettings::default(),
            storage: StorageSettings::default(),
            punch: PunchSettings::default(),
            http: HttpSettings::default(),
            camera: CameraSettings::default(),
            mqtt: MqttSettings::default(),
            log: LogSettings::default(),
            auth: AuthSettings::default(),
        }
    }
}

impl Config {
    /// Defaults, then `file` (if given), then the environment; shorthands resolved, not
    /// yet validated (command-line overrides come first).
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut cfg: Config = config::load(file, &SOURCES)?;
        cfg.camera.resolve();
        Ok(cfg)
    }

    /// Every section's checks, with the key named from the top.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(is_id(&self.device_id), "device_id", || {
            id_rule(&self.device_id)
        })?;
        check(is_id(&self.site), "site", || id_rule(&self.site))?;
        self.face.validate().map_err(|e| e.within("face"))?;
        self.http.validate().map_err(|e| e.within("http"))?;
        self.camera.validate().map_err(|e| e.within("camera"))?;
        self.mqtt.validate().map_err(|e| e.within("mqtt"))?;
        self.log.validate().map_err(|e| e.within("log"))?;
        self.auth.validate().map_err(|e| e.within("auth"))
    }

    pub(crate) fn paths(&self) -> Paths {
        self.storage.paths(&self.data_dir)
    }

    /// The part of the configuration the terminal's operations need.
    pub(crate) fn terminal(&self) -> TerminalSettings {
        TerminalSettings {
            device_id: self.device_id.clone(),
            site: self.site.clone(),
            paths: self.paths(),
            storage: self.storage.clone(),
            face: self.face.clone(),
            punch: self.punch.clone(),
            max_upload_bytes: self.http.max_body_bytes,
            max_concurrent_analyses: self.http.max_concurrent_analyses,
            max_queued_analyses: self.http.max_queued_analyses,
            identify_window: Duration::from_millis(self.camera.identify_window_ms),
            identify_votes: self.camera.identify_votes,
            enrol_window: Duration::from_millis(self.camera.enrol_window_ms),
            enrol_frames: self.camera.enrol_frames,
            fleet: self.fleet(),
            metrics: self.http.metrics,
            walk_up_mode: self.camera.walk_up_mode,
            walk_up_choice: Duration::from_millis(self.camera.walk_up_choice_ms),
            liveness: self.camera.liveness.then_some(LivenessRule {
                min_turn: self.camera.liveness_min_turn,
            }),
            learn_at_door: self.camera.learn_at_door,
        }
    }

    /// The terminal's place in a fleet, when it shares its site's roster.
    pub(crate) fn fleet(&self) -> Option<Fleet> {
        self.mqtt.roster_sync().then(|| Fleet {
            site: self.site.clone(),
            device_id: self.device_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::CameraSpec;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn validation_names_the_key_from_the_top() {
        let mut c = Config::default();
        c.face.tolerance = Some(5.0);
        assert_eq!(c.validate().unwrap_err().key, "face.tolerance");
        let c = Config {
            device_id: "a/b".into(),
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "device_id");
        let mut c = Config::default();
        c.mqtt.url = "mqtt://h:x".into();
        assert_eq!(c.validate().unwrap_err().key, "mqtt.url");
        let mut c = Config::default();
        c.http.cors_allow_origins = vec!["*".into()];
        assert_eq!(c.validate().unwrap_err().key, "http.cors_allow_origins");
        let mut c = Config::default();
        c.auth.admin_key_sha256 = vec!["abc".into()];
        assert_eq!(c.validate().unwrap_err().key, "auth.admin_key_sha256");
        let mut c = Config::default();
        c.log.level = "attendance=loud".into();
        assert_eq!(c.validate().unwrap_err().key, "log.level");
    }

    #[test]
    fn typed_values_print_back_as_written() {
        let mut c = Config::default();
        c.camera.source = CameraSpec::V4l2("/dev/video1".into());
        c.punch.timezone = attendance_core::punch::DayZone::try_from("+09:00".to_owned()).unwrap();
        let toml = toml::to_string_pretty(&c).unwrap();
        assert!(toml.contains("source = \"v4l2:/dev/video1\""), "{toml}");
        assert!(toml.contains("timezone = \"+09:00\""), "{toml}");
        assert!(toml.contains("embedder = \"auto\""), "{toml}");
        let back: Config = toml::from_str(&toml).unwrap();
        assert_eq!(back, c);
    }
}
