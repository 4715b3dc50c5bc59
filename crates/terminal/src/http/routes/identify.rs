//! `POST /identify`: who is at the door? Multipart or JSON with a photo (MODE_B), or JSON
//! without one to use the terminal's camera (MODE_A). Every attempt is recorded.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::answer::{IdentifyAnswer, MatchMode};
use crate::http::App;
use crate::http::request::{BodyKind, fields, read_body};
use crate::http::response::{ApiError, Body, json};
use crate::http::routes::punch_input;
use crate::terminal::{Deadline, input};
use attendance_core::i18n::Locale;
use attendance_wire::event::decimal;

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
        &["type", "device_id", "ts_client", "employee_id"],
    )
    .await?;
    let p = punch_input(&f)?;
    // An employee id (typed, badged) makes it a 1:1 verification.
    let mode = match input::opt_id("employee_id", f.get("employee_id"))? {
        Some(employee_id) => MatchMode::Verify { employee_id },
        None => MatchMode::Identify,
    };
    let mode_name = mode.as_str();
    let answer = match (f.image, f.kind) {
        (Some(image), _) => {
            app.terminal
                .identify_photo(image, p, mode, deadline)
                .await?
        }
        (None, Some(BodyKind::Json)) => {
            let camera = app.camera()?;
            app.terminal
                .identify_live(&camera, p, mode, deadline)
                .await?
        }
        (None, _) => return Err(ApiError::field("image", "required")),
    };
    let mut body = answer_json(&answer, locale);
    body["mode"] = mode_name.into();
    Ok(json(StatusCode::OK, &body))
}

/// The spec's success and failure shapes (field names are a contract).
fn answer_json(a: &IdentifyAnswer, locale: Locale) -> Value {
    match a {
        IdentifyAnswer::Recognised {
            employee_id,
            name,
            distance,
            threshold,
            kind,
            duplicate,
            event_id,
            ts_server,
        } => json!({
            "success": true,
            "employee_id": employee_id,
            "name": name,
            "user": name,
            "distance": decimal(*distance),
            "decided_threshold": decimal(*threshold),
            "message": locale.text(a.message()),
            "type": kind,
            "duplicate": duplicate,
            "event_id": event_id,
            "ts_server": ts_server,
        }),
        IdentifyAnswer::Failed {
            reason,
            detail,
            ambiguous,
            min_distance,
            threshold,
            event_id,
            ts_server,
        } => json!({
            "success": false,
            "message": locale.text(a.message()),
            "reason": reason,
            "detail": detail,
            "ambiguous": ambiguous,
            "distance": null,
            "min_distance": min_distance.map(decimal),
            "decided_threshold": decimal(*threshold),
            "event_id": event_id,
            "ts_server": ts_server,
        }),
    }
}
