//! `POST /identify`: who is at the door? Multipart or JSON with a photo (MODE_B), or JSON
//! without one to use the terminal's camera (MODE_A). Every attempt is recorded.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::event::decimal;
use crate::http::App;
use crate::http::request::{BodyKind, fields, read_body};
use crate::http::response::{ApiError, Body, json};
use crate::i18n::{Locale, Msg};
use crate::terminal::{IdentifyAnswer, PunchInput, input};

pub async fn post(
    app: &Arc<App>,
    req: Request<Incoming>,
    locale: Locale,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = read_body(req, app.max_body()).await?;
    let f = fields(&parts, body, &["type", "device_id", "ts_client"]).await?;
    let p = PunchInput {
        request: input::punch_request("type", f.get("type"))?,
        device_id: input::opt_id("device_id", f.get("device_id"))?,
        ts_client: input::ts_client("ts_client", f.get("ts_client"))?,
    };
    let answer = match (f.image, f.kind) {
        (Some(image), _) => app.terminal.identify_photo(image, p).await?,
        (None, Some(BodyKind::Json)) => app.identify_camera(p).await?,
        (None, _) => return Err(ApiError::field("image", "required")),
    };
    Ok(json(StatusCode::OK, &answer_json(&answer, locale)))
}

/// The spec's success and failure shapes (field names are a contract).
pub fn answer_json(a: &IdentifyAnswer, locale: Locale) -> Value {
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
            "message": locale.text(if *duplicate { Msg::DuplicatePunch } else { Msg::Recognised }),
            "type": kind,
            "duplicate": duplicate,
            "event_id": event_id,
            "ts_server": ts_server,
        }),
        IdentifyAnswer::Failed {
            reason,
            detail,
            min_distance,
            threshold,
            event_id,
            ts_server,
        } => json!({
            "success": false,
            "message": locale.text(detail.map_or(Msg::Reason(*reason), Msg::Quality)),
            "reason": reason,
            "detail": detail,
            "distance": null,
            "min_distance": min_distance.map(decimal),
            "decided_threshold": decimal(*threshold),
            "event_id": event_id,
            "ts_server": ts_server,
        }),
    }
}
