//! `attendanced` configuration: built-in defaults, then a TOML file, then environment
//! variables — the spec's own names (`TOLERANCE`, `IMAGE_DIR`, ...) so an operator of the
//! old system feels at home, and `ATTENDANCED_SECTION__KEY` for everything else.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Uncased;
use serde::{Deserialize, Serialize};

use crate::face::PipelineConfig;
use crate::i18n::Locale;

/// The spec's environment variables and the config keys they set.
pub const SPEC_ENV: [(&str, &str); 5] = [
    ("TOLERANCE", "face.tolerance"),
    ("IMAGE_DIR", "storage.image_dir"),
    ("ENCODING_DIR", "storage.encoding_dir"),
    ("STREAM_FPS", "camera.stream_fps"),
    ("CAMERA_DEVICE_INDEX", "camera.device_index"),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Root of the terminal's state: SQLite database, templates, images.
    pub data_dir: PathBuf,
    /// Language of messages when a request does not ask for one.
    pub locale: Locale,
    /// This terminal's id, used when a request names no `device_id`.
    pub device_id: String,
    /// Site name: the MQTT topic is `attendance/{site}/{device_id}/events`.
    pub site: String,
    pub face: FaceSettings,
    pub storage: StorageSettings,
    pub punch: PunchSettings,
    pub http: HttpSettings,
    pub camera: CameraSettings,
    pub mqtt: MqttSettings,
    pub log: LogSettings,
    pub auth: crate::http::auth::AuthSettings,
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
            auth: crate::http::auth::AuthSettings::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaceSettings {
    /// `auto` (the CNN when its model files are present, else HOG), `hog`, `hog-spec` or
    /// `dlib-resnet`.
    pub embedder: String,
    /// Largest accepted distance (the spec's `TOLERANCE`); the embedder's calibrated
    /// default when unset.
    pub tolerance: Option<f32>,
    /// Smallest gap to the runner-up person; the embedder's default when unset.
    pub margin: Option<f32>,
    /// Folder holding the CNN's model files.
    pub models_dir: PathBuf,
    /// Detection and quality gates.
    pub pipeline: PipelineConfig,
}

impl Default for FaceSettings {
    fn default() -> Self {
        Self {
            embedder: "auto".into(),
            tolerance: None,
            margin: None,
            models_dir: PathBuf::from("./models"),
            pipeline: PipelineConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// Face images (enrolment crops, optional punch thumbnails); `data_dir/images` if unset.
    pub image_dir: Option<PathBuf>,
    /// Templates (`.npy`); `data_dir/encodings` if unset.
    pub encoding_dir: Option<PathBuf>,
    /// Keep each enrolment's face crop so templates can be recomputed when the embedder
    /// changes. Without it, an embedder change means re-enrolling everyone.
    pub keep_enrolment_crops: bool,
    /// Save a face thumbnail with each punch (`image_ref`).
    pub keep_punch_images: bool,
    /// Days punch thumbnails are kept.
    pub punch_image_retention_days: u32,
    /// Days published outbox entries are kept before pruning.
    pub outbox_retention_days: u32,
    /// Free disk space under which new punches are refused (`storage_full`), in MB.
    pub min_free_mb: u64,
    /// Key that encrypts templates and face images at rest (64 hex digits, mode 0600;
    /// `attendanced new-storage-key` makes one). Unset: files are stored unencrypted.
    /// With systemd: `LoadCredential=storage-key:/etc/attendanced/storage.key` and
    /// `/run/credentials/attendanced.service/storage-key` here.
    pub encryption_key_file: Option<PathBuf>,
    /// Keys being rotated out: files sealed with them still open and are re-written
    /// under `encryption_key_file` (or as plain files, to turn encryption off) at start.
    pub previous_key_files: Vec<PathBuf>,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            image_dir: None,
            encoding_dir: None,
            keep_enrolment_crops: true,
            keep_punch_images: false,
            punch_image_retention_days: 30,
            outbox_retention_days: 7,
            min_free_mb: 64,
            encryption_key_file: None,
            previous_key_files: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PunchSettings {
    /// A second identical punch within this many seconds records nothing new.
    pub duplicate_window_secs: u32,
    /// UTC offset that defines "today" for `AUTO` punches, e.g. `+09:00`; `local` uses
    /// the system time zone.
    pub timezone: String,
}

impl Default for PunchSettings {
    fn default() -> Self {
        Self {
            duplicate_window_secs: 60,
            timezone: "local".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    pub max_body_bytes: usize,
    /// Face analyses running at once.
    pub max_concurrent_analyses: usize,
    /// Requests allowed to wait for an analysis slot (up to 10 s); beyond this they get
    /// 503 `busy` with `Retry-After` at once, never an unbounded queue.
    pub max_queued_analyses: usize,
    /// Whole-request deadline (slow clients included), seconds.
    pub request_timeout_secs: u64,
    /// Time allowed to send the request headers, seconds (slowloris).
    pub header_timeout_secs: u64,
    /// Origins (`https://hr.example.com`) whose browser pages may call the API; empty:
    /// no cross-origin access.
    pub cors_allow_origins: Vec<String>,
    /// Serve HTTPS with this PEM certificate chain (with `tls_key_file`), for sites
    /// without a TLS-terminating reverse proxy. Unset: plain HTTP.
    pub tls_cert_file: Option<PathBuf>,
    /// The certificate's private key (PEM; PKCS#8, PKCS#1 or SEC1).
    pub tls_key_file: Option<PathBuf>,
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CameraSettings {
    /// `none`, `replay:PATH` (folder of images or MJPEG file) or `v4l2:/dev/videoN`.
    pub source: String,
    /// The spec's `CAMERA_DEVICE_INDEX`: shorthand for `source = "v4l2:/dev/videoN"`.
    pub device_index: Option<u32>,
    pub width: u32,
    pub height: u32,
    /// Capture and stream rate (the spec's `STREAM_FPS`).
    pub stream_fps: u32,
    /// Analyses per second of the live frame (detection is the costly part).
    pub analysis_fps: u32,
    /// `replay:` only: how long each image is shown, ms (0: one frame each). A demo folder
    /// of a few stills looks like a camera with a few seconds per still.
    pub replay_hold_ms: u64,
    /// How long `/identify` without an image collects camera frames, ms.
    pub identify_window_ms: u64,
    /// Frames that must agree on the same person for a camera identification.
    pub identify_votes: usize,
    pub jpeg_quality: u8,
}

impl Default for CameraSettings {
    fn default() -> Self {
        Self {
            source: "none".into(),
            device_index: None,
            width: 640,
            height: 480,
            stream_fps: 20,
            analysis_fps: 5,
            replay_hold_ms: 0,
            identify_window_ms: 1500,
            identify_votes: 2,
            jpeg_quality: 80,
        }
    }
}

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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `tracing` filter, e.g. `info` or `attendance=debug,info`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("config: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::new(
                    "--config",
                    format!("{} is not a readable file", path.display()),
                ));
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
            .merge(Env::prefixed("ATTENDANCED_").split("__"));
        let mut cfg: Config = fig.extract().map_err(|e| {
            let key = e.path.join(".");
            let key = if key.is_empty() { "(file)".into() } else { key };
            ConfigError::new(&key, e.kind.to_string())
        })?;
        cfg.resolve();
        cfg.validate()?;
        Ok(cfg)
    }

    /// Folds shorthands into their canonical keys.
    fn resolve(&mut self) {
        if let Some(n) = self.camera.device_index.take() {
            self.camera.source = format!("v4l2:/dev/video{n}");
        }
    }

    pub fn image_dir(&self) -> PathBuf {
        self.storage
            .image_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("images"))
    }

    pub fn encoding_dir(&self) -> PathBuf {
        self.storage
            .encoding_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("encodings"))
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("attendance.sqlite3")
    }

    /// Range checks the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, key: &str, msg: String| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::new(key, msg))
            }
        };
        if let Some(t) = self.face.tolerance {
            check(
                t > 0.0 && t <= 2.0,
                "face.tolerance",
                format!("must be in (0, 2], got {t}"),
            )?;
        }
        if let Some(m) = self.face.margin {
            check(
                (0.0..=1.0).contains(&m),
                "face.margin",
                format!("must be in [0, 1], got {m}"),
            )?;
        }
        let e = &self.face.pipeline.quality.ellipse;
        check(
            e.width > 0.0 && e.width <= 1.0 && e.height > 0.0 && e.height <= 1.0,
            "face.pipeline.quality.ellipse",
            format!(
                "width and height must be in (0, 1], got {} x {}",
                e.width, e.height
            ),
        )?;
        let d = &self.face.pipeline.detector;
        check(
            (0.01..=1.0).contains(&d.min_face_ratio),
            "face.pipeline.detector.min_face_ratio",
            format!("must be in [0.01, 1], got {}", d.min_face_ratio),
        )?;
        check(
            (0.5..=0.95).contains(&d.pyramid_step),
            "face.pipeline.detector.pyramid_step",
            format!("must be in [0.5, 0.95], got {}", d.pyramid_step),
        )?;
        check(
            (1..=16).contains(&d.window_step),
            "face.pipeline.detector.window_step",
            format!("must be in 1..=16, got {}", d.window_step),
        )?;
        check(
            !self
                .http
                .cors_allow_origins
                .iter()
                .any(|o| o == "*" || o.is_empty()),
            "http.cors_allow_origins",
            "list each origin (scheme://host[:port]); \"*\" is not allowed".to_owned(),
        )?;
        if let Err(why) = crate::http::auth::Keys::new(&self.auth) {
            let (key, message) = why.split_once(": ").unwrap_or(("auth", why.as_str()));
            return Err(ConfigError::new(key, message));
        }
        check(
            matches!(
                self.face.embedder.as_str(),
                "auto" | "hog" | "hog-spec" | "dlib-resnet"
            ),
            "face.embedder",
            format!(
                "must be auto, hog, hog-spec or dlib-resnet, got {:?}",
                self.face.embedder
            ),
        )?;
        check(
            (1..=60).contains(&self.camera.stream_fps),
            "camera.stream_fps",
            format!("must be in 1..=60, got {}", self.camera.stream_fps),
        )?;
        check(
            (1..=30).contains(&self.camera.analysis_fps),
            "camera.analysis_fps",
            format!("must be in 1..=30, got {}", self.camera.analysis_fps),
        )?;
        check(
            (1..=100).contains(&self.camera.jpeg_quality),
            "camera.jpeg_quality",
            format!("must be in 1..=100, got {}", self.camera.jpeg_quality),
        )?;
        check(
            crate::camera::CameraSpec::parse(&self.camera.source).is_some(),
            "camera.source",
            format!(
                "must be none, replay:PATH or v4l2:DEVICE, got {:?}",
                self.camera.source
            ),
        )?;
        check(
            self.http.max_body_bytes >= 1024,
            "http.max_body_bytes",
            format!("must be at least 1024, got {}", self.http.max_body_bytes),
        )?;
        check(
            self.http.tls_cert_file.is_some() == self.http.tls_key_file.is_some(),
            "http.tls_key_file",
            "http.tls_cert_file and http.tls_key_file go together".into(),
        )?;
        check(
            self.http.max_concurrent_analyses >= 1,
            "http.max_concurrent_analyses",
            "must be at least 1".into(),
        )?;
        check(
            is_id(&self.device_id),
            "device_id",
            format!(
                "must be 1-50 characters of A-Z a-z 0-9 _ - ., got {:?}",
                self.device_id
            ),
        )?;
        check(
            is_id(&self.site),
            "site",
            format!(
                "must be 1-50 characters of A-Z a-z 0-9 _ - ., got {:?}",
                self.site
            ),
        )?;
        check(
            self.punch.timezone == "local" || parse_offset(&self.punch.timezone).is_some(),
            "punch.timezone",
            format!(
                "must be local or an offset like +09:00, got {:?}",
                self.punch.timezone
            ),
        )?;
        check(
            self.mqtt.url.is_empty()
                || self.mqtt.url.starts_with("mqtt://")
                || self.mqtt.url.starts_with("mqtts://"),
            "mqtt.url",
            format!(
                "must be empty, mqtt://HOST:PORT or mqtts://HOST:PORT, got {:?}",
                self.mqtt.url
            ),
        )?;
        check(
            (1..=1000).contains(&self.mqtt.batch_size),
            "mqtt.batch_size",
            format!("must be in 1..=1000, got {}", self.mqtt.batch_size),
        )?;
        Ok(())
    }
}

/// Identifiers that travel in MQTT topics and file names: no wildcards, slashes or spaces.
pub fn is_id(s: &str) -> bool {
    (1..=50).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Parses `+09:00` / `-05:30` / `Z` into a fixed offset.
pub fn parse_offset(s: &str) -> Option<chrono::FixedOffset> {
    if s == "Z" || s == "UTC" {
        return chrono::FixedOffset::east_opt(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = Config::default();
        c.face.tolerance = Some(5.0);
        assert_eq!(c.validate().unwrap_err().key, "face.tolerance");
        let c = Config {
            device_id: "a/b".into(),
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "device_id");
        let mut c = Config::default();
        c.camera.source = "usb".into();
        assert_eq!(c.validate().unwrap_err().key, "camera.source");
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+09:00").unwrap().local_minus_utc(), 9 * 3600);
        assert_eq!(
            parse_offset("-05:30").unwrap().local_minus_utc(),
            -(5 * 3600 + 1800)
        );
        assert!(parse_offset("09:00").is_none());
        assert!(parse_offset("+25:00").is_none());
    }

    #[test]
    fn device_index_becomes_a_v4l2_source() {
        let mut c = Config::default();
        c.camera.device_index = Some(2);
        c.resolve();
        assert_eq!(c.camera.source, "v4l2:/dev/video2");
    }
}
