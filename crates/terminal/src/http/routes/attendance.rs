//! `POST /attendance` (a punch without a face) and `GET /attendance` (the log).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use hyper::body::Incoming;
use hyper::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::answer::IdentifyAnswer;
use crate::http::App;
use crate::http::request::{fields, read_body};
use crate::http::response::{ApiError, Body, full, json};
use crate::http::routes::punch_input;
use crate::store::{AttendanceQuery, AttendanceRow};
use crate::terminal::{Deadline, input};
use attendance_core::i18n::{Locale, Msg};
use attendance_core::reason::Reason;

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
        .recorder()
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
            attendance_core::reason::Reason::InternalError,
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
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // `format=csv`: a spreadsheet of a date range (the admin page's export), up to
    // CSV_MAX rows; JSON pages of up to 1,000.
    let csv = match pairs
        .iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.as_str())
    {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::field("format", "must be json or csv")),
    };
    let max = if csv { CSV_MAX } else { 1000 };
    let mut q = AttendanceQuery {
        limit: if csv { CSV_MAX } else { 100 },
        ..Default::default()
    };
    for (k, v) in &pairs {
        match k.as_str() {
            "employee_id" => q.employee_id = Some(input::id("employee_id", v)?),
            "limit" => {
                q.limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| ApiError::field("limit", format!("must be 1..={max}")))?
            }
            "from" => q.from = Some(time_bound("from", v, false)?),
            "to" => q.to = Some(time_bound("to", v, true)?),
            _ => {}
        }
    }
    let records = app.terminal.attendance(q).await?;
    if csv {
        return csv_answer(&records);
    }
    Ok(json(
        StatusCode::OK,
        &json!({ "count": records.len(), "records": records }),
    ))
}

/// Most rows one CSV export holds (a month of a 1,000-person site with a few punches
/// each).
const CSV_MAX: u32 = 100_000;

/// A cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, or a tab or
/// carriage return first: a device id `-A1-A1` or `=HYPERLINK(...)`) gets a leading `'`,
/// which spreadsheets show as text (OWASP's CSV injection advice).
fn neutralise(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// The records as `text/csv`, a header row first, as a download; every cell
/// [`neutralise`]d.
fn csv_answer(records: &[AttendanceRow]) -> Result<Response<Body>, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let bad = |e: &dyn std::fmt::Display| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Reason::InternalError)
            .detail(format!("csv: {e}"))
    };
    w.write_record(AttendanceRow::CSV_HEADER)
        .map_err(|e| bad(&e))?;
    for r in records {
        // The row as serde gives it (the JSON answer's values), in the header's order.
        let v = serde_json::to_value(r).map_err(|e| bad(&e))?;
        let cells = AttendanceRow::CSV_HEADER.iter().map(|k| {
            neutralise(match &v[k] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        });
        w.write_record(cells).map_err(|e| bad(&e))?;
    }
    let bytes = w.into_inner().map_err(|e| bad(&e))?;
    let mut r = Response::new(full(bytes));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"attendance.csv\""),
    );
    Ok(r)
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn the_csv_header_is_serdes_with_or_without_rows() {
        let row = AttendanceRow {
            id: 1,
            event_id: "e".into(),
            employee_id: Some("EMP001".into()),
            kind: attendance_core::punch::PunchKind::In,
            device_id: None,
            distance: Some(0.25),
            threshold: None,
            embedder: None,
            reason: None,
            source: "camera".into(),
            ts_server: "2026-12-03T09:00:00Z".into(),
            ts_client: None,
            image_ref: None,
            published_at: None,
            clock: Some(attendance_core::clock::ClockSync::Unsynced),
        };
        let text = |r: Response<Body>| async move {
            String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
        };
        let with = text(csv_answer(std::slice::from_ref(&row)).unwrap()).await;
        let without = text(csv_answer(&[]).unwrap()).await;
        let header = with.lines().next().unwrap();
        assert_eq!(header, AttendanceRow::CSV_HEADER.join(","));
        assert_eq!(without.trim_end(), header);
        assert!(
            with.lines().nth(1).unwrap().contains(",EMP001,IN,"),
            "{with}"
        );
        assert!(with.lines().nth(1).unwrap().contains(",0.25,"), "{with}");
        assert!(
            with.lines().nth(1).unwrap().ends_with(",unsynced"),
            "{with}"
        );
        // A cell a spreadsheet would run as a formula is text.
        let hostile = AttendanceRow {
            device_id: Some("-A1-A1".into()),
            employee_id: Some("@SUM(1)".into()),
            ts_client: Some("=HYPERLINK(\"http://x\")".into()),
            ..row
        };
        let text = text(csv_answer(&[hostile]).unwrap()).await;
        let cells: Vec<String> = csv::Reader::from_reader(text.as_bytes())
            .records()
            .next()
            .unwrap()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(cells[2], "'@SUM(1)");
        assert_eq!(cells[4], "'-A1-A1");
        assert_eq!(cells[11], "'=HYPERLINK(\"http://x\")");
        assert_eq!(cells[1], "e", "other cells as they are");
    }
}
