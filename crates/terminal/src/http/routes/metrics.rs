//! `GET /metrics`: Prometheus metrics, with the access rules of `/status`.

use std::sync::Arc;

use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use crate::http::App;
use crate::http::response::{ApiError, Body, full};
use crate::metrics::Scrape;
use attendance_core::reason::Reason;

pub(crate) async fn get(app: &Arc<App>) -> Result<Response<Body>, ApiError> {
    let metrics = app.terminal.metrics().clone();
    if !metrics.enabled() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, Reason::NotFound)
            .detail("/metrics: http.metrics = false"));
    }
    let h = app.terminal.health().await;
    let now = chrono::Utc::now();
    let scrape = Scrape {
        database_ok: h.database_ok,
        people: h.people,
        templates: h.templates,
        outbox_pending: h.outbox_pending,
        outbox_unconfirmed: h.outbox_unconfirmed,
        outbox_oldest_age: h.outbox_oldest.map(|oldest| {
            oldest
                .and_then(|t| (now - t).to_std().ok())
                .unwrap_or_default()
        }),
        free_mb: h.free_mb,
        mqtt: app.mqtt_state(),
        camera: app.camera.as_ref().map(|c| c.scrape()),
        roster: h.roster.map(|r| (r.revision, r.head)),
    };
    let mut r = Response::new(full(metrics.render(&scrape)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(attendance_core::metrics::MEDIA_TYPE),
    );
    Ok(r)
}
