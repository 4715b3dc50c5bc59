//! `GET /status`: the live analysis for a kiosk screen, as JSON, or as server-sent events
//! (`Accept: text/event-stream`), one per analysed frame.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::camera::overlay::Guide;
use crate::camera::{Camera, LiveAnalysis};
use crate::http::App;
use crate::http::response::{ApiError, Body, json};
use attendance_core::i18n::Locale;

fn status_json(camera: &Camera, a: Option<&LiveAnalysis>, locale: Locale) -> Value {
    let state = camera.state().as_str();
    let Some(a) = a else {
        return json!({ "camera": state, "analysed": false });
    };
    let guide = Guide::of(a);
    let (reason, detail) = match &a.verdict {
        Ok(_) => (None, None),
        Err(r) => (Some(r.reason()), r.quality_issue()),
    };
    json!({
        "camera": state,
        "analysed": true,
        "frame_seq": a.frame_seq,
        "age_ms": a.at.elapsed().as_millis() as u64,
        "detection": a.detection.as_str(),
        "frame": { "width": a.frame_size.0, "height": a.frame_size.1 },
        "ready": a.verdict.is_ok(),
        "reason": reason,
        "detail": detail,
        "message": locale.text(guide.message),
        "face": guide.face.map(|(f, _)| json!({ "x": f.x, "y": f.y, "w": f.w, "h": f.h })),
        "faces": a.faces.len(),
        "quality": a.verdict.as_ref().ok().map(|f| json!({
            "brightness": f.quality.brightness,
            "sharpness": f.quality.sharpness,
            "size_ratio": f.quality.size_ratio,
        })),
    })
}

pub(crate) async fn get(
    app: &Arc<App>,
    req: &Request<Incoming>,
    locale: Locale,
) -> Result<Response<Body>, ApiError> {
    let camera = app.camera()?;
    let wants_events = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !wants_events {
        let a = camera.latest_analysis();
        return Ok(json(
            StatusCode::OK,
            &status_json(&camera, a.as_deref(), locale),
        ));
    }
    let rx = camera.subscribe_analysis();
    let events = futures_util::stream::unfold((rx, camera), move |(mut rx, camera)| async move {
        rx.changed().await.ok()?;
        let a = rx.borrow_and_update().clone();
        let line = format!("data: {}\n\n", status_json(&camera, a.as_deref(), locale));
        Some((
            Ok::<_, Infallible>(Frame::data(bytes::Bytes::from(line))),
            (rx, camera),
        ))
    });
    let mut r = Response::new(StreamBody::new(events).boxed_unsync());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}
