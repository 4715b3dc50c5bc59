//! `POST /attendance` (a punch without a face) and `GET /attendance` (the log).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::http::App;
use crate::http::request::{fields, read_body};
use crate::http::response::{ApiError, Body, json};
use crate::http::routes::punch_input;
use crate::i18n::{Locale, Msg};
use crate::store::AttendanceQuery;
use crate::terminal::{Deadline, IdentifyAnswer, input};

pub(crate) async fn post(
    app: &Arc<App>,
    req: Request<Incoming>,
    locale: Locale,
    deadline: &Deadline,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = read_body(req, app.max_body()).await?;
    let f = fields(
        &parts,
        body,
        &[
            "employee_id",
            "type",
            "device_id",
            "distance",
            "image_ref",
            "ts_client",
        ],
    )
    .await?;
    let employee_id = input::id(
        "employee_id",
        f.get("employee_id")
            .ok_or_else(|| ApiError::field("employee_id", "required"))?,
    )?;
    let distance = match f.get("distance") {
        None | Some("") => None,
        Some(d) => Some(
            d.parse::<f32>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| ApiError::field("distance", "must be a non-negative number"))?,
        ),
    };
    let p = punch_input(&f)?;
    let answer = app
        .terminal
        .manual_punch(employee_id, p, distance, deadline)
        .await?;
    let IdentifyAnswer::Recognised {
        employee_id,
        kind,
        duplicate,
        event_id,
        ts_server,
        ..
    } = answer
    else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::reason::Reason::InternalError,
        ));
    };
    Ok(json(
        StatusCode::OK,
        &json!({
            "success": true,
            "message": locale.text(if duplicate { Msg::DuplicatePunch } else { Msg::Punched }),
            "employee_id": employee_id,
            "type": kind,
            "duplicate": duplicate,
            "event_id": event_id,
            "ts_server": ts_server,
        }),
    ))
}

pub(crate) async fn get(app: &Arc<App>, query: Option<&str>) -> Result<Response<Body>, ApiError> {
    let mut q = AttendanceQuery {
        limit: 100,
        ..Default::default()
    };
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "employee_id" => q.employee_id = Some(input::id("employee_id", &v)?),
            "limit" => {
                q.limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| ApiError::field("limit", "must be 1..=1000"))?
            }
            "from" => q.from = Some(time_bound("from", &v, false)?),
            "to" => q.to = Some(time_bound("to", &v, true)?),
            _ => {}
        }
    }
    let records = app.terminal.attendance(q).await?;
    Ok(json(
        StatusCode::OK,
        &json!({ "count": records.len(), "records": records }),
    ))
}

/// RFC 3339 time, or a date (`from` = start of that UTC day, `to` = its end).
fn time_bound(field: &str, v: &str, end: bool) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
        ApiError::field(
            field,
            "must be RFC 3339 (2025-01-01T09:00:00Z) or a date (2025-01-01)",
        )
    })?;
    let t = if end {
        d.and_hms_milli_opt(23, 59, 59, 999)
    } else {
        d.and_hms_opt(0, 0, 0)
    };
    t.map(|t| t.and_utc())
        .ok_or_else(|| ApiError::field(field, "invalid date"))
}
