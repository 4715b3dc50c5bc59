//! `GET /events`: the live feed as Server-Sent Events (`feed`). First a `hello` (who the
//! terminal is, its language, whether it punches on walk-up, the punch mode), then
//! `decision`, `guidance`, `mode` and `status` events as they happen, a keep-alive
//! comment when nothing does. `?lang=ko|en` picks the messages' language (default: the
//! terminal's, not the browser's: the door's screen speaks the door's language).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::camera::LiveAnalysis;
use crate::feed::{self, Decision, FEED_VERSION, Guidance, PunchMode};
use crate::http::App;
use crate::http::response::{ApiError, Body};
use crate::terminal::TerminalError;
use attendance_core::i18n::Locale;

/// How often the link status is looked at (sent only when it changed).
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// A comment after this long without an event keeps proxies from closing the stream.
const KEEP_ALIVE_TICKS: u32 = 8;
/// How soon the browser reconnects after the stream breaks (a daemon restart).
const RECONNECT_MS: u64 = 1500;

/// One reader's state.
struct Reader {
    app: Arc<App>,
    locale: Locale,
    queue: VecDeque<Bytes>,
    decisions: broadcast::Receiver<Arc<Decision>>,
    mode: watch::Receiver<PunchMode>,
    analyses: Option<watch::Receiver<Option<Arc<LiveAnalysis>>>>,
    /// Whether walk-up is still trying the person in view.
    trying: watch::Receiver<bool>,
    guidance: Option<Guidance>,
    status: Option<Value>,
    tick: tokio::time::Interval,
    quiet_ticks: u32,
}

impl Reader {
    async fn status(&self) -> Value {
        let h = self.app.terminal().health().await;
        json!({
            "v": FEED_VERSION,
            "camera": self.app.camera_state(),
            "mqtt": self.app.mqtt_state(),
            "outbox_pending": h.outbox_pending,
            "database": if h.database_ok { "connected" } else { "error" },
        })
    }

    fn push(&mut self, event: &str, data: &Value) {
        self.queue.push_back(feed::frame(event, data));
    }

    /// Queues the guidance if it changed: the camera's, "trying" while walk-up is.
    fn guide(&mut self) {
        let trying = *self.trying.borrow_and_update();
        let g = self
            .analyses
            .as_mut()
            .and_then(|rx| rx.borrow_and_update().as_ref().map(|a| a.guidance()))
            .map(|g| g.while_trying(trying));
        if let Some(g) = g.filter(|g| self.guidance != Some(*g)) {
            self.guidance = Some(g);
            self.push("guidance", &g.payload(self.locale));
        }
    }

    /// The next bytes of the stream; None ends it (the daemon is stopping).
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(b) = self.queue.pop_front() {
                self.quiet_ticks = 0;
                return Some(b);
            }
            tokio::select! {
                d = self.decisions.recv() => match d {
                    Ok(d) => self.push("decision", &d.payload(self.locale)),
                    // Fell behind: the missed ones are gone, the next ones come.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                changed = self.mode.changed() => {
                    changed.ok()?;
                    let mode = *self.mode.borrow_and_update();
                    self.push("mode", &mode.payload());
                }
                changed = analysis_changed(&mut self.analyses) => {
                    changed?;
                    self.guide();
                }
                changed = self.trying.changed() => {
                    changed.ok()?;
                    self.guide();
                }
                _ = self.tick.tick() => {
                    let status = self.status().await;
                    if self.status.as_ref() != Some(&status) {
                        self.push("status", &status);
                        self.status = Some(status);
                    } else {
                        self.quiet_ticks += 1;
                        if self.quiet_ticks >= KEEP_ALIVE_TICKS {
                            self.queue.push_back(feed::comment("keep-alive"));
                        }
                    }
                }
            }
        }
    }
}

/// Waits for the camera's next analysis (forever without a camera); None when it
/// stopped.
async fn analysis_changed(
    rx: &mut Option<watch::Receiver<Option<Arc<LiveAnalysis>>>>,
) -> Option<()> {
    match rx {
        Some(rx) => rx.changed().await.ok(),
        None => std::future::pending().await,
    }
}

pub(crate) async fn get(app: &Arc<App>, query: Option<&str>) -> Result<Response<Body>, ApiError> {
    let locale = lang(query)?.unwrap_or_else(|| app.locale.get());
    let terminal = app.terminal();
    let mode = terminal.modes().watch();
    let hello = json!({
        "v": FEED_VERSION,
        "device_id": terminal.device_id(),
        "site": terminal.site(),
        "locale": locale,
        "walk_up": app.walk_up,
        "camera": app.camera_state(),
        "mode": mode.borrow().payload()["mode"],
        "version": env!("CARGO_PKG_VERSION"),
    });
    let mut tick = tokio::time::interval(STATUS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut reader = Reader {
        app: app.clone(),
        locale,
        queue: VecDeque::from([feed::retry(RECONNECT_MS), feed::frame("hello", &hello)]),
        decisions: terminal.recorder().decisions().subscribe(),
        mode,
        analyses: app.camera.as_ref().map(|c| c.subscribe_analysis()),
        trying: terminal.trying(),
        guidance: None,
        status: None,
        tick,
        quiet_ticks: 0,
    };
    // The current guidance at once, not at the next change.
    if let Some(rx) = reader.analyses.as_mut() {
        rx.mark_changed();
    }
    let stream = futures_util::stream::unfold(reader, |mut r| async move {
        let b = r.next().await?;
        Some((Ok::<_, Infallible>(Frame::data(b)), r))
    });
    let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    Ok(r)
}

/// `lang=ko|en` from the query, if given.
fn lang(query: Option<&str>) -> Result<Option<Locale>, ApiError> {
    let Some(q) = query else { return Ok(None) };
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        if k == "lang" {
            return match v.as_ref() {
                "ko" => Ok(Some(Locale::Ko)),
                "en" => Ok(Some(Locale::En)),
                other => Err(TerminalError::InvalidField {
                    field: "lang",
                    why: format!(
                        "must be ko or en, got {:?}",
                        other.chars().take(20).collect::<String>()
                    ),
                }
                .into()),
            };
        }
    }
    Ok(None)
}
