//! `POST /punch-mode`: the screen's IN/OUT/AUTO buttons choose which way the next
//! walk-up punch goes (for one punch, or until `camera.walk_up_choice_ms` passes).
//! JSON only: a form another site's page posts needs no preflight, JSON does.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::http::App;
use crate::http::request::{json_fields, read_body};
use crate::http::response::{ApiError, Body, json};
use crate::terminal::input;

pub(crate) async fn post(
    app: &Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = read_body(req, 4096).await?;
    let f = json_fields(&parts, body, &["mode"])?;
    let request = input::punch_request("mode", f.get("mode"))?;
    app.terminal().modes().choose(request);
    let mode = app.terminal().modes().current();
    Ok(json(StatusCode::OK, &mode.payload()))
}
