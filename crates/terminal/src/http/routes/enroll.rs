//! `POST /enroll` (multipart, or JSON) and `POST /enroll/json` (base64 or data URL):
//! register a new person, or add a face to an existing `employee_id`.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::http::App;
use crate::http::request::{BodyKind, body_kind, fields, read_body};
use crate::http::response::{ApiError, Body, json};
use crate::terminal::{Deadline, EnrolAnswer, EnrolInput, input};
use attendance_core::i18n::{Locale, Msg};

pub(crate) async fn post(
    app: &Arc<App>,
    req: Request<Incoming>,
    locale: Locale,
    json_only: bool,
    deadline: &Deadline,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = read_body(req, app.max_body()).await?;
    if json_only && body_kind(&parts)? != BodyKind::Json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            attendance_core::reason::Reason::UnsupportedMediaType,
        )
        .detail("use application/json"));
    }
    let f = fields(&parts, body, &["name", "employee_id", "device_id"]).await?;
    let e = EnrolInput {
        employee_id: input::opt_id("employee_id", f.get("employee_id"))?,
        name: f.get("name").map(|n| input::name("name", n)).transpose()?,
        device_id: input::opt_id("device_id", f.get("device_id"))?,
    };
    let answer = match (f.image, f.kind) {
        (Some(image), _) => app.terminal.enrol_photo(image, e, deadline).await?,
        // JSON without an image: several frames of the terminal's camera.
        (None, Some(BodyKind::Json)) => {
            let camera = app.camera()?;
            app.terminal.enrol_live(&camera, e, deadline).await?
        }
        (None, _) => return Err(ApiError::field("image", "required")),
    };
    let body = match answer {
        EnrolAnswer::Enrolled {
            employee_id,
            name,
            new_user,
            template_id,
            templates,
            frames,
        } => json!({
            "success": true,
            "employee_id": employee_id,
            "name": name,
            "new_user": new_user,
            "template_id": template_id,
            "templates_added": templates,
            "frames_seen": frames,
            "embedder": app.terminal.embedder_name(),
            "message": locale.text(Msg::Enrolled),
        }),
        EnrolAnswer::Rejected(r) => json!({
            "success": false,
            "message": locale.text(r.guidance()),
            "reason": r.reason(),
            "detail": r.quality_issue(),
        }),
    };
    Ok(json(StatusCode::OK, &body))
}
