//! Logs: native journald entries under systemd, human-readable lines on stderr otherwise.
//! Face data (templates, images, base64) is never logged; events carry ids, reasons and
//! distances only.
//!
//! journald through `tracing-journald` rather than `systemd-journal-logger`: every module
//! already logs with `tracing`, and this layer turns each event's fields into journal
//! fields (`employee_id` → `EMPLOYEE_ID`, `event_id` → `EVENT_ID`, `reason` → `REASON`)
//! and its level into the priority, with no `log` bridge in between.

use serde::{Deserialize, Serialize};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::{ConfigError, check};

/// `[log]` in both binaries' configuration.
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

impl LogSettings {
    /// The filter parses (else start-up would quietly fall back to `info`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let parsed = EnvFilter::try_new(&self.level);
        check(parsed.is_ok(), "level", || {
            format!(
                "not a log filter ({}), e.g. info or attendance=debug,info",
                parsed.err().map(|e| e.to_string()).unwrap_or_default()
            )
        })
    }
}

/// Changes the log level of the running process (SIGHUP).
#[derive(Clone)]
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
}

impl LogControl {
    /// Applies `level` (an `EnvFilter` directive such as `info` or `attendance=debug`).
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        self.handle.reload(filter).map_err(|e| e.to_string())
    }
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Journald,
    Stderr,
}

/// The sink for this process: journald when systemd connected our output to the journal
/// (it sets `JOURNAL_STREAM`), stderr otherwise.
pub fn sink_for(journal_stream: Option<&std::ffi::OsStr>) -> Sink {
    match journal_stream {
        Some(v) if !v.is_empty() => Sink::Journald,
        _ => Sink::Stderr,
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides `level` when set. Returns the
/// level control, or `None` if a subscriber was already installed.
pub fn init(level: &str, identifier: &str) -> Option<LogControl> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let journald = match sink_for(std::env::var_os("JOURNAL_STREAM").as_deref()) {
        Sink::Journald => tracing_journald::layer().ok().map(|l| {
            l.with_field_prefix(None)
                .with_syslog_identifier(identifier.into())
                .with_priority_mappings(priorities())
        }),
        Sink::Stderr => None,
    };
    let stderr = journald.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            // Colours for a person at a terminal; a file or a pipe gets plain text.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(journald)
        .with(stderr)
        .try_init()
        .ok()?;
    Some(LogControl { handle })
}

/// syslog's meaning of the levels: info is "informational" (6), not "notice" (5, the
/// crate's default), so `journalctl -p notice` shows only what needs an operator.
fn priorities() -> tracing_journald::PriorityMappings {
    use tracing_journald::Priority;
    tracing_journald::PriorityMappings {
        error: Priority::Error,
        warn: Priority::Warning,
        info: Priority::Informational,
        debug: Priority::Debug,
        trace: Priority::Debug,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journald_only_when_systemd_connected_the_output() {
        assert_eq!(sink_for(None), Sink::Stderr);
        assert_eq!(sink_for(Some("".as_ref())), Sink::Stderr);
        assert_eq!(sink_for(Some("8:12345".as_ref())), Sink::Journald);
    }

    #[test]
    fn a_filter_that_does_not_parse_is_a_config_error() {
        LogSettings::default().validate().unwrap();
        let ok = LogSettings {
            level: "attendance=debug,info".into(),
        };
        ok.validate().unwrap();
        let bad = LogSettings {
            level: "attendance=loud".into(),
        };
        assert_eq!(bad.validate().unwrap_err().key, "level");
    }
}
