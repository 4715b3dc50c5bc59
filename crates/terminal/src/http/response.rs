//! JSON answers and the mapping of every error to a status and a `reason`.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::terminal::TerminalError;
use attendance_core::i18n::Locale;
use attendance_core::reason::Reason;

/// Response body: whole JSON/JPEG bodies and endless streams alike.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub(crate) fn json(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(full(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// A request that could not be served, as the client will see it.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) reason: Reason,
    /// Extra detail appended to the localised message (field names, limits).
    pub(crate) detail: Option<String>,
    /// Extra JSON fields (e.g. who a face is already enrolled as).
    pub(crate) extra: Option<Value>,
    pub(crate) retry_after: Option<u32>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, reason: Reason) -> Self {
        Self {
            status,
            reason,
            detail: None,
            extra: None,
            retry_after: None,
        }
    }

    pub(crate) fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }

    /// 422 naming the field.
    /// Asks the client to wait this long before trying again (`Retry-After`).
    pub(crate) fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(u32::try_from(wait.as_secs().max(1)).unwrap_or(u32::MAX));
        self
    }

    pub(crate) fn field(field: &str, why: impl std::fmt::Display) -> Self {
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, Reason::InvalidField)
            .detail(format!("{field}: {why}"));
        e.extra = Some(json!({ "field": field }));
        e
    }

    pub(crate) fn into_response(self, locale: Locale) -> Response<Body> {
        let mut body = locale.refusal(self.reason, self.detail.as_deref());
        if let (Some(Value::Object(extra)), Value::Object(map)) = (self.extra, &mut body) {
            map.extend(extra);
        }
        let mut r = json(self.status, &body);
        if let Some(s) = self.retry_after {
            r.headers_mut().insert("retry-after", HeaderValue::from(s));
        }
        r
    }
}

impl From<TerminalError> for ApiError {
    fn from(e: TerminalError) -> Self {
        let reason = e.reason();
        match e {
            TerminalError::BadImage(d) => {
                let mut e =
                    Self::new(StatusCode::UNPROCESSABLE_ENTITY, reason).detail(d.to_string());
                e.extra = Some(json!({ "field": "image" }));
                e
            }
            TerminalError::InvalidField { field, why } => Self::field(field, why),
            TerminalError::UserNotFound(id) => Self::new(StatusCode::NOT_FOUND, reason).detail(id),
            TerminalError::AlreadyEnrolled {
                employee_id,
                name,
                distance,
            } => {
                let mut e =
                    Self::new(StatusCode::CONFLICT, reason).detail(format!("{employee_id} {name}"));
                e.extra = Some(
                    json!({ "employee_id": employee_id, "name": name, "distance": attendance_wire::event::decimal(distance) }),
                );
                e
            }
            TerminalError::Busy => Self::new(StatusCode::SERVICE_UNAVAILABLE, reason)
                .retry_after(std::time::Duration::from_secs(1)),
            TerminalError::StorageFull { free_mb } => {
                Self::new(StatusCode::INSUFFICIENT_STORAGE, reason)
                    .detail(format!("{free_mb} MB free"))
            }
            TerminalError::CameraUnavailable => Self::new(StatusCode::SERVICE_UNAVAILABLE, reason),
            e @ TerminalError::TooManyClaims { .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, reason).detail(e.to_string())
            }
            e @ TerminalError::VerifyRequired { .. } => {
                Self::new(StatusCode::CONFLICT, reason).detail(e.to_string())
            }
            TerminalError::TimedOut => Self::new(StatusCode::REQUEST_TIMEOUT, reason),
            TerminalError::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, reason)
            }
        }
    }
}
