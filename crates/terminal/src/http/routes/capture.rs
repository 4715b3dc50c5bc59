//! `GET /capture?preview=0|1`: the current frame as JPEG, with the guide when `preview=1`.

use std::sync::Arc;

use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use crate::http::App;
use crate::http::response::{ApiError, Body, full};
use crate::terminal::TerminalError;

pub(crate) async fn get(app: &Arc<App>, query: Option<&str>) -> Result<Response<Body>, ApiError> {
    let mut preview = false;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == "preview" {
            preview = match v.as_ref() {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => return Err(ApiError::field("preview", "must be 0 or 1")),
            };
        }
    }
    let camera = app.camera()?;
    let jpeg = tokio::task::spawn_blocking(move || camera.capture_jpeg(preview))
        .await
        .map_err(|e| ApiError::from(TerminalError::Internal(e.to_string())))?
        .ok_or(TerminalError::CameraUnavailable)?;
    let mut r = Response::new(full(jpeg));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    r.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    Ok(r)
}
