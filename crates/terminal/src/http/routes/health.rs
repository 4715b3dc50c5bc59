//! `GET /health`: is the terminal fit to punch? 503 when the database is unusable.

use std::sync::Arc;

use hyper::{Response, StatusCode};
use serde_json::json;

use crate::http::App;
use crate::http::response::{Body, json};

pub(crate) async fn get(app: &Arc<App>) -> Response<Body> {
    let h = app.terminal.health().await;
    let camera = app.camera_state();
    let mqtt = app.mqtt_state();
    let status = if !h.database_ok {
        "unhealthy"
    } else if !h.storage_ok || camera == "unavailable" {
        "degraded"
    } else {
        "ok"
    };
    let code = if h.database_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(
        code,
        &json!({
            "status": status,
            "database": if h.database_ok { "connected" } else { "error" },
            "camera": camera,
            "mqtt": mqtt,
            "outbox_pending": h.outbox_pending,
            "outbox_unconfirmed": h.outbox_unconfirmed,
            "storage": if h.storage_ok { "ok" } else { "low" },
            "free_mb": h.free_mb,
            "embedder": h.embedder,
            "templates": h.templates,
            "people": h.people,
            // What the recognition figures hold for, and whether a face alone is
            // answered (a kiosk shows its PIN pad when "identify" is missing).
            "measured_people": h.measured_people,
            "identify_limit": h.identify_limit,
            "modes": if h.identifies() { vec!["identify", "verify"] } else { vec!["verify"] },
            // In a fleet: how far this door's copy of the site's roster is.
            // Entries it refused to apply (skipped; the last named) show here.
            "roster": h.roster.as_ref().map(|r| json!({
                "revision": r.revision,
                "head": r.head,
                "behind": r.head.saturating_sub(r.revision),
                "refused": r.refused,
                "last_refused": r.last_refused.as_ref().map(|(revision, why)| json!({
                    "revision": revision,
                    "why": why,
                })),
            })),
            // Who has no template of this embedder (the first 50 named).
            "cannot_recognise": h.cannot_recognise.as_ref().map(|ids| json!({
                "count": ids.len(),
                "employee_ids": &ids[..ids.len().min(50)],
            })),
            "version": env!("CARGO_PKG_VERSION"),
            "timestamp": crate::store::ts(chrono::Utc::now()),
        }),
    )
}
