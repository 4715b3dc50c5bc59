//! Configuration layering shared by both binaries: built-in defaults, then a TOML file,
//! then environment variables — legacy names (the spec's `TOLERANCE`, `MYSQL_HOST`, ...)
//! so an operator of the old system feels at home, and `PREFIX_SECTION__KEY` for
//! everything else.
//!
//! A leaf: each module owns its settings type and their validation (`face::FaceSettings`,
//! `mqtt::MqttSettings`, ...), and each binary assembles them (`daemon::Config`,
//! `uplink::config::UplinkConfig`). This module only layers the sources and names the key
//! that is wrong.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Uncased;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("config: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// The same problem seen from the enclosing table: `tolerance` becomes
    /// `face.tolerance`. Sections validate with their own key names and do not know
    /// where they are mounted.
    pub fn within(mut self, section: &str) -> Self {
        self.key = format!("{section}.{}", self.key);
        self
    }
}

/// `Ok` if `ok`, else the error for `key` (the message is built only when needed).
pub fn check(ok: bool, key: &str, message: impl FnOnce() -> String) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(key, message()))
    }
}

/// Where a binary's settings come from besides its defaults and file.
pub struct Sources {
    /// `{prefix}SECTION__KEY=value` sets `section.key`.
    pub env_prefix: &'static str,
    /// Legacy variable names and the dotted keys they set.
    pub aliases: &'static [(&'static str, &'static str)],
}

/// Defaults, then `file` (if given), then the environment. Range checks the types cannot
/// express are the caller's (`validate` of the assembled settings).
pub fn load<T>(file: Option<&Path>, sources: &Sources) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let mut fig = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::new(
                "--config",
                format!("{} is not a readable file", path.display()),
            ));
        }
        fig = fig.merge(Toml::file(path));
    }
    let aliases = sources.aliases;
    let legacy = Env::raw().filter_map(move |k| {
        aliases
            .iter()
            .find(|(name, _)| k == *name)
            .map(|(_, key)| Uncased::from(*key))
    });
    fig = fig
        .merge(legacy)
        .merge(Env::prefixed(sources.env_prefix).split("__"));
    fig.extract().map_err(|e| {
        let key = e.path.join(".");
        let key = if key.is_empty() { "(file)".into() } else { key };
        ConfigError::new(&key, e.kind.to_string())
    })
}

/// Identifiers that travel in MQTT topics and file names (`device_id`, `site`,
/// `employee_id`): no wildcards, slashes or spaces.
pub fn is_id(s: &str) -> bool {
    (1..=50).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A person's name: 1-100 characters of any script (Korean names are the norm), no
/// control characters, no surrounding spaces. `Err` says what is wrong.
pub fn check_name(s: &str) -> Result<(), String> {
    let n = s.chars().count();
    if n == 0 || n > 100 {
        return Err(format!("must be 1-100 characters, got {n}"));
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if s.trim() != s {
        return Err("must not start or end with spaces".into());
    }
    Ok(())
}

/// The message for a value that is not an [`is_id`] (naming at most its first 40
/// characters: a sender may send megabytes).
pub fn id_rule(got: &str) -> String {
    let got = clip(got);
    format!("must be 1-50 characters of A-Z a-z 0-9 _ - ., got {got:?}")
}

/// [`is_id`], with [`id_rule`] as the error.
pub fn check_id(s: &str) -> Result<(), String> {
    if is_id(s) { Ok(()) } else { Err(id_rule(s)) }
}

/// A bounded prefix of input for error messages.
pub fn clip(v: &str) -> String {
    v.chars().take(40).collect()
}

#[cfg(test)]
// figment's `Jail` closures return its own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, Default, PartialEq, Serialize, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        level: u32,
    }

    const SOURCES: Sources = Sources {
        env_prefix: "CONFIG_LEAF_TEST_",
        aliases: &[("LEAF_TEST_LEGACY_LEVEL", "inner.level")],
    };

    #[test]
    fn file_then_aliases_then_prefixed_variables() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "name = \"file\"\n[inner]\nlevel = 1\n")?;
            let d: Demo = load(Some(Path::new("c.toml")), &SOURCES).unwrap();
            assert_eq!((d.name.as_str(), d.inner.level), ("file", 1));
            jail.set_env("LEAF_TEST_LEGACY_LEVEL", "2");
            let d: Demo = load(Some(Path::new("c.toml")), &SOURCES).unwrap();
            assert_eq!(d.inner.level, 2, "a legacy name beats the file");
            jail.set_env("CONFIG_LEAF_TEST_INNER__LEVEL", "3");
            let d: Demo = load(Some(Path::new("c.toml")), &SOURCES).unwrap();
            assert_eq!(d.inner.level, 3, "the prefixed name beats the legacy one");
            jail.set_env("CONFIG_LEAF_TEST_INNER__COLOUR", "red");
            let e = load::<Demo>(None, &SOURCES).unwrap_err();
            assert!(e.message.contains("colour"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_file_and_a_bad_value_name_their_key() {
        let e = load::<Demo>(Some(Path::new("/nonexistent/c.toml")), &SOURCES).unwrap_err();
        assert_eq!(e.key, "--config");
        assert_eq!(
            ConfigError::new("tolerance", "x").within("face").key,
            "face.tolerance"
        );
        figment::Jail::expect_with(|jail| {
            jail.set_env("CONFIG_LEAF_TEST_INNER__LEVEL", "many");
            assert_eq!(load::<Demo>(None, &SOURCES).unwrap_err().key, "inner.level");
            Ok(())
        });
    }

    #[test]
    fn ids() {
        assert!(is_id("EMP-001.a_b"));
        for bad in ["", "a/b", "a b", "a+b", "a#", &"x".repeat(51), "가"] {
            assert!(!is_id(bad), "{bad:?}");
        }
    }
}
