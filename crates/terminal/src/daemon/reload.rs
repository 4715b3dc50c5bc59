//! SIGHUP: which settings of a re-read configuration can change while the daemon runs.
//! Pure: the daemon applies the plan; this only compares two configurations.

use serde_json::Value;

use super::config::Config;

/// Settings applied live: the decision rule, the default language, the log level, the
/// HTTPS certificate. Everything else (listen address, storage, camera, MQTT,
/// embedder...) needs a restart. `auth` (every key under it) rotates the API keys.
pub(crate) const LIVE_KEYS: &[&str] = &[
    "face.tolerance",
    "face.margin",
    "face.neighbour_ratio",
    "face.verify_tolerance",
    "locale",
    "log.level",
    "auth",
    "http.tls_cert_file",
    "http.tls_key_file",
];

fn is_live(key: &str) -> bool {
    LIVE_KEYS.iter().any(|k| {
        key == *k
            || key
                .strip_prefix(k)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// What a reload changes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Changed settings that take effect now.
    pub(crate) live: Vec<String>,
    /// Changed settings that keep their old value until the next restart.
    pub(crate) needs_restart: Vec<String>,
}

impl Plan {
    pub(crate) fn new(running: &Config, reread: &Config) -> Plan {
        let mut plan = Plan::default();
        for key in changed_keys(running, reread) {
            if is_live(&key) {
                plan.live.push(key);
            } else {
                plan.needs_restart.push(key);
            }
        }
        plan
    }
}

/// Copies the live settings of a re-read configuration into the running one, after the
/// daemon has applied them. Kept beside [`LIVE_KEYS`]; a test checks the two agree.
pub(crate) fn apply_live(running: &mut Config, new: &Config) {
    running.face.tolerance = new.face.tolerance;
    running.face.margin = new.face.margin;
    running.face.neighbour_ratio = new.face.neighbour_ratio;
    running.face.verify_tolerance = new.face.verify_tolerance;
    running.locale = new.locale;
    running.log.level = new.log.level.clone();
    running.auth = new.auth.clone();
    running.http.tls_cert_file = new.http.tls_cert_file.clone();
    running.http.tls_key_file = new.http.tls_key_file.clone();
}

/// Dotted paths of the leaves that differ between two configurations.
pub(crate) fn changed_keys(a: &Config, b: &Config) -> Vec<String> {
    let (a, b) = (
        serde_json::to_value(a).unwrap_or(Value::Null),
        serde_json::to_value(b).unwrap_or(Value::Null),
    );
    let mut out = Vec::new();
    diff("", &a, &b, &mut out);
    out.sort();
    out
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff(
                    &p,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if a != b => out.push(path.to_owned()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attendance_core::i18n::Locale;

    #[test]
    fn live_settings_apply_and_the_rest_waits_for_a_restart() {
        let running = Config::default();
        assert_eq!(Plan::new(&running, &running), Plan::default());
        let mut reread = running.clone();
        reread.face.tolerance = Some(0.5);
        reread.locale = Locale::En;
        reread.log.level = "debug".into();
        reread.http.max_body_bytes += 1;
        reread.camera.stream_fps = 5;
        reread.auth.public_stream = true;
        let plan = Plan::new(&running, &reread);
        assert_eq!(
            plan.live,
            vec![
                "auth.public_stream",
                "face.tolerance",
                "locale",
                "log.level"
            ]
        );
        assert_eq!(
            plan.needs_restart,
            vec!["camera.stream_fps", "http.max_body_bytes"]
        );
    }

    #[test]
    fn apply_live_copies_every_live_key_and_nothing_else() {
        let mut running = Config::default();
        let mut reread = running.clone();
        reread.face.tolerance = Some(0.5);
        reread.face.margin = Some(0.1);
        reread.face.neighbour_ratio = Some(0.9);
        reread.face.verify_tolerance = Some(0.45);
        reread.locale = Locale::En;
        reread.log.level = "debug".into();
        reread.auth.public_stream = true;
        reread.http.tls_cert_file = Some("/c.pem".into());
        reread.http.tls_key_file = Some("/k.pem".into());
        reread.camera.stream_fps = 5;
        let before = Plan::new(&running, &reread);
        for key in LIVE_KEYS {
            assert!(
                before.live.iter().any(|k| k.starts_with(key)),
                "the test does not change {key}"
            );
        }
        apply_live(&mut running, &reread);
        let after = Plan::new(&running, &reread);
        assert!(after.live.is_empty(), "not copied: {:?}", after.live);
        assert_eq!(after.needs_restart, vec!["camera.stream_fps"]);
    }
}
