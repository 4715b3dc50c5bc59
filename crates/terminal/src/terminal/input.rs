//! Validated request fields. Everything the HTTP layer accepts passes through here, so
//! the rules (and their error messages) are the same for multipart, JSON and the CLI.

use attendance_core::config::clip;
use attendance_core::punch::PunchRequest;

use super::TerminalError;

fn invalid(field: &'static str, why: impl Into<String>) -> TerminalError {
    TerminalError::InvalidField {
        field,
        why: why.into(),
    }
}

/// `type`: `IN`, `OUT` or `AUTO`.
pub(crate) fn punch_request(
    field: &'static str,
    v: Option<&str>,
) -> Result<PunchRequest, TerminalError> {
    let v = v.ok_or_else(|| invalid(field, "required: IN, OUT or AUTO"))?;
    PunchRequest::parse(v)
        .ok_or_else(|| invalid(field, format!("must be IN, OUT or AUTO, got {:?}", clip(v))))
}

/// Ids (`employee_id`, `device_id`): 1-50 characters of `A-Z a-z 0-9 _ - .`.
pub(crate) fn id(field: &'static str, v: &str) -> Result<String, TerminalError> {
    attendance_core::config::check_id(v).map_err(|why| invalid(field, why))?;
    Ok(v.to_owned())
}

/// Optional id: absent or empty means none.
pub(crate) fn opt_id(
    field: &'static str,
    v: Option<&str>,
) -> Result<Option<String>, TerminalError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => id(field, s).map(Some),
    }
}

/// A person's name: 1-100 characters, any script (Korean names are the norm), no control
/// characters.
pub(crate) fn name(field: &'static str, v: &str) -> Result<String, TerminalError> {
    let t = v.trim();
    attendance_core::config::check_name(t).map_err(|why| invalid(field, why))?;
    Ok(t.to_owned())
}

/// `ts_client`: kept exactly as sent when it is an ISO 8601 date-time (with or without
/// offset, `T` or space separator).
pub(crate) fn ts_client(
    field: &'static str,
    v: Option<&str>,
) -> Result<Option<String>, TerminalError> {
    let Some(v) = v.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if v.len() > 64 {
        return Err(invalid(field, "longer than 64 characters"));
    }
    let ok = chrono::DateTime::parse_from_rfc3339(v).is_ok()
        || [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
        ]
        .iter()
        .any(|f| chrono::NaiveDateTime::parse_from_str(v, f).is_ok());
    if ok {
        Ok(Some(v.to_owned()))
    } else {
        Err(invalid(
            field,
            format!(
                "must be an ISO 8601 date-time like 2025-01-01T09:00:00Z, got {:?}",
                clip(v)
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_korean_and_refuse_control_characters() {
        assert_eq!(name("name", "  홍길동 ").unwrap(), "홍길동");
        assert!(name("name", "").is_err());
        assert!(name("name", "a\u{0}b").is_err());
        assert!(name("name", &"가".repeat(101)).is_err());
    }

    #[test]
    fn timestamps() {
        for ok in [
            "2025-01-01T09:00:00Z",
            "2025-01-01T09:00:00+09:00",
            "2025-01-01T09:00:00",
            "2025-01-01 09:00:00.5",
        ] {
            assert_eq!(
                ts_client("ts_client", Some(ok)).unwrap().as_deref(),
                Some(ok)
            );
        }
        assert_eq!(ts_client("ts_client", Some("")).unwrap(), None);
        for bad in ["yesterday", "2025-13-01T00:00:00Z", "2025-01-01"] {
            assert!(ts_client("ts_client", Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_refuse_sql_and_topic_characters() {
        assert!(id("employee_id", "EMP001").is_ok());
        for bad in ["'; DROP TABLE users; --", "a/b", "+", "#", ""] {
            assert!(id("employee_id", bad).is_err(), "{bad}");
        }
        assert_eq!(opt_id("device_id", Some(" ")).unwrap(), None);
    }
}
