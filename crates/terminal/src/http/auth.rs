//! API keys: who may call what. The configuration holds only SHA-256 hashes of the keys;
//! a presented key is hashed and compared in constant time with each. With no key
//! configured the API is open, as in the spec (the daemon warns at start-up).

use hyper::HeaderMap;
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use attendance_core::config::ConfigError;
use attendance_core::reason::Reason;

/// `[auth]` in the configuration. Reloaded on SIGHUP, so keys rotate without a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AuthSettings {
    /// SHA-256 (hex) of each admin key: enrol, delete, manual punches, reading records.
    pub(crate) admin_key_sha256: Vec<String>,
    /// SHA-256 (hex) of each device key: identification.
    pub(crate) device_key_sha256: Vec<String>,
    /// Let anyone call `/identify` although keys are configured (a kiosk on a closed LAN).
    pub(crate) open_identify: bool,
    /// `/health` without a key (monitoring).
    pub(crate) public_health: bool,
    /// `/stream.mjpeg`, `/capture`, `/status`, `/events` and `/metrics` without a key,
    /// for anyone (a closed LAN).
    pub(crate) public_stream: bool,
    /// The same without a key for the terminal itself only (loopback peers): the kiosk
    /// browser on the door's screen needs no key, and no page holds one. Off by default:
    /// behind a reverse proxy on the same machine every client is a loopback peer.
    pub(crate) local_screen: bool,
    /// An admin browser session (`POST /session`) ends after this many minutes unused.
    pub(crate) session_idle_minutes: u64,
    /// ... and after this many hours in all, however busy (a forgotten browser on a
    /// shared PC does not stay signed in for days).
    pub(crate) session_max_hours: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            admin_key_sha256: Vec::new(),
            device_key_sha256: Vec::new(),
            open_identify: false,
            public_health: true,
            public_stream: false,
            local_screen: false,
            session_idle_minutes: 30,
            session_max_hours: 12,
        }
    }
}

/// Who a route is for; the router's table assigns one to every route, and the settings
/// decide what each needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// `/health`: monitoring (public unless `public_health = false`).
    Monitoring,
    /// The live picture and analysis: the door's own screen.
    Screen,
    /// Identification: the door's devices.
    Door,
    /// Enrolment, deletions, manual punches, and reading personal records.
    Admin,
    /// The pages and their assets (`/`, `/admin`, `/assets/*`) and the sign-in: they
    /// hold no key and no personal data, so anyone may load them.
    Page,
}

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Access {
    Public,
    Device,
    Admin,
}

/// The parsed key hashes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Keys {
    admin: Vec<[u8; 32]>,
    device: Vec<[u8; 32]>,
    settings: AuthSettings,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No key, or a key we do not know: 401.
    Unauthenticated,
    /// A device key where an admin key is needed: 403.
    Forbidden,
    /// A browser session's changing request without its CSRF token: 403.
    Csrf,
    /// A changing request without a key from a page of another origin: 403.
    CrossSite,
}

impl Denied {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Denied::Unauthenticated => StatusCode::UNAUTHORIZED,
            Denied::Forbidden | Denied::Csrf | Denied::CrossSite => StatusCode::FORBIDDEN,
        }
    }

    pub(crate) fn reason(&self) -> Reason {
        match self {
            Denied::Unauthenticated => Reason::Unauthorized,
            Denied::Forbidden | Denied::Csrf | Denied::CrossSite => Reason::Forbidden,
        }
    }

    /// What the answer's message adds.
    pub(crate) fn detail(&self) -> Option<&'static str> {
        match self {
            Denied::Csrf => Some("X-CSRF-Token missing or wrong for this session"),
            Denied::CrossSite => Some("a changing request from a page of another origin"),
            _ => None,
        }
    }
}

fn parse_hashes(key: &str, list: &[String]) -> Result<Vec<[u8; 32]>, ConfigError> {
    list.iter()
        .map(|h| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h.trim(), &mut out).map_err(|_| {
                ConfigError::new(
                    key,
                    format!("{h:?} is not a SHA-256 hex digest (64 hex digits)"),
                )
            })?;
            Ok(out)
        })
        .collect()
}

impl AuthSettings {
    /// The hashes parse; keys relative to `[auth]`.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        Keys::new(self).map(|_| ())
    }
}

impl Keys {
    pub(crate) fn new(settings: &AuthSettings) -> Result<Keys, ConfigError> {
        Ok(Keys {
            admin: parse_hashes("admin_key_sha256", &settings.admin_key_sha256)?,
            device: parse_hashes("device_key_sha256", &settings.device_key_sha256)?,
            settings: settings.clone(),
        })
    }

    /// Whether a request from `peer` for `audience` is let through without a key: the
    /// screen's routes for the terminal itself (`local_screen`).
    pub(crate) fn local(&self, audience: Audience, peer: std::net::IpAddr) -> bool {
        audience == Audience::Screen && self.settings.local_screen && peer.is_loopback()
    }

    /// How long an admin browser session lasts: unused, and in all.
    pub(crate) fn session_lifetimes(&self) -> super::session::Lifetimes {
        let s = &self.settings;
        super::session::Lifetimes {
            idle: std::time::Duration::from_secs(s.session_idle_minutes.max(1) * 60),
            max: std::time::Duration::from_secs(s.session_max_hours.max(1) * 3600),
        }
    }

    /// Whether `digest` is the SHA-256 of a configured admin key.
    pub(crate) fn is_admin(&self, digest: &[u8; 32]) -> bool {
        self.admin
            .iter()
            .fold(subtle::Choice::from(0), |acc, h| acc | h.ct_eq(digest))
            .into()
    }

    /// Whether any key is configured (else the API is open).
    pub(crate) fn enforced(&self) -> bool {
        !self.admin.is_empty() || !self.device.is_empty()
    }

    /// What a route for `audience` requires under these settings.
    pub(crate) fn access_for(&self, audience: Audience) -> Access {
        let s = &self.settings;
        match audience {
            Audience::Page => Access::Public,
            Audience::Monitoring if s.public_health => Access::Public,
            Audience::Screen if s.public_stream => Access::Public,
            Audience::Door if s.open_identify => Access::Public,
            Audience::Monitoring | Audience::Screen | Audience::Door => Access::Device,
            Audience::Admin => Access::Admin,
        }
    }

    /// Checks the key presented (if any) against what the route needs.
    pub(crate) fn authorize(&self, need: Access, presented: Option<&str>) -> Result<(), Denied> {
        if !self.enforced() || need == Access::Public {
            return Ok(());
        }
        let key = presented.ok_or(Denied::Unauthenticated)?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Every configured hash is compared, so timing does not say which one matched.
        let matches = |set: &[[u8; 32]]| {
            set.iter()
                .fold(subtle::Choice::from(0), |acc, h| acc | h.ct_eq(&digest))
                .into()
        };
        let (admin, device): (bool, bool) = (matches(&self.admin), matches(&self.device));
        match (need, admin, device) {
            (_, true, _) => Ok(()),
            (Access::Device, false, true) => Ok(()),
            (Access::Admin, false, true) => Err(Denied::Forbidden),
            _ => Err(Denied::Unauthenticated),
        }
    }
}

/// The key of a request: `Authorization: Bearer KEY` or `X-API-Key: KEY`.
pub(crate) fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, key) = v.trim().split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then_some(key.trim());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The hex SHA-256 of a key, for `attendanced hash-key` and tests.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(open_identify: bool) -> Keys {
        Keys::new(&AuthSettings {
            admin_key_sha256: vec![hash_key("admin-secret")],
            device_key_sha256: vec![hash_key("door-1"), hash_key("door-2")],
            open_identify,
            ..AuthSettings::default()
        })
        .unwrap()
    }

    #[test]
    fn the_access_matrix() {
        let k = keys(false);
        assert_eq!(k.access_for(Audience::Monitoring), Access::Public);
        assert_eq!(k.access_for(Audience::Door), Access::Device);
        assert_eq!(k.access_for(Audience::Screen), Access::Device);
        assert_eq!(k.access_for(Audience::Admin), Access::Admin);
        assert_eq!(k.access_for(Audience::Page), Access::Public);
        let (lo, lan) = ([127, 0, 0, 1].into(), [192, 168, 1, 9].into());
        assert!(!k.local(Audience::Screen, lo), "off unless asked for");
        let k = Keys::new(&AuthSettings {
            local_screen: true,
            ..k.settings.clone()
        })
        .unwrap();
        assert!(k.local(Audience::Screen, lo));
        assert!(!k.local(Audience::Screen, lan));
        assert!(
            !k.local(Audience::Admin, lo),
            "the admin routes need a key even locally"
        );
        assert!(!k.local(Audience::Door, lo));
        assert_eq!(keys(true).access_for(Audience::Door), Access::Public);
        let open_screen = Keys::new(&AuthSettings {
            public_stream: true,
            public_health: false,
            ..AuthSettings::default()
        })
        .unwrap();
        assert_eq!(open_screen.access_for(Audience::Screen), Access::Public);
        assert_eq!(open_screen.access_for(Audience::Monitoring), Access::Device);
        assert_eq!(open_screen.access_for(Audience::Admin), Access::Admin);

        assert_eq!(
            k.authorize(Access::Device, None),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            k.authorize(Access::Device, Some("wrong")),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(k.authorize(Access::Device, Some("door-2")), Ok(()));
        assert_eq!(
            k.authorize(Access::Admin, Some("door-1")),
            Err(Denied::Forbidden)
        );
        assert_eq!(k.authorize(Access::Admin, Some("admin-secret")), Ok(()));
        assert_eq!(k.authorize(Access::Device, Some("admin-secret")), Ok(()));
        assert_eq!(k.authorize(Access::Public, None), Ok(()));
    }

    #[test]
    fn no_keys_means_open_and_bad_hashes_are_config_errors() {
        let open = Keys::new(&AuthSettings::default()).unwrap();
        assert!(!open.enforced());
        assert_eq!(open.authorize(Access::Admin, None), Ok(()));
        let bad = AuthSettings {
            admin_key_sha256: vec!["not-hex".into()],
            ..AuthSettings::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "admin_key_sha256");
        let not_ascii = AuthSettings {
            device_key_sha256: vec!["é".repeat(32)],
            ..AuthSettings::default()
        };
        assert_eq!(not_ascii.validate().unwrap_err().key, "device_key_sha256");
    }

    #[test]
    fn keys_come_from_bearer_or_x_api_key() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-api-key", "k1".parse().unwrap());
        assert_eq!(presented_key(&h), Some("k1"));
        h.insert(hyper::header::AUTHORIZATION, "Bearer k2".parse().unwrap());
        assert_eq!(presented_key(&h), Some("k2"));
        h.insert(hyper::header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(presented_key(&h), None);
    }
}
