//! The spec's HTTP API on hyper 1.x: a router, per-request limits, graceful shutdown.
//!
//! Every path is served both bare (the spec's, kept forever as v1) and under `/v1`.

pub mod auth;
mod conn_limit;
mod cors;
pub(crate) mod request;
pub(crate) mod response;
mod router;
mod routes;
mod session;
mod settings;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{ACCEPT_LANGUAGE, ALLOW, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::camera::Camera;
use crate::terminal::{Deadline, Terminal, TerminalError};
use attendance_core::i18n::{Locale, SharedLocale};
use attendance_core::reason::Reason;
use attendance_core::shutdown::Shutdown;
use attendance_wire::mqtt::LinkState;
pub(crate) use auth::AuthSettings;
use response::{ApiError, Body};
use router::{Op, Resolved};
pub(crate) use settings::HttpSettings;

/// Largest request head accepted (request line plus headers).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long open connections get to finish after shutdown is signalled.
const DRAIN: Duration = Duration::from_secs(5);

/// Everything a handler can reach. The settings SIGHUP changes live here once (keys,
/// certificate, language) and in the terminal (decision rule); nothing keeps a copy.
pub(crate) struct App {
    terminal: Arc<Terminal>,
    camera: Option<Arc<Camera>>,
    mqtt: watch::Receiver<LinkState>,
    /// Limits, timeouts and CORS: fixed until restart.
    settings: HttpSettings,
    /// Default language of answers (shared with the camera overlay).
    locale: SharedLocale,
    /// API key hashes; replaced on SIGHUP.
    keys: std::sync::RwLock<auth::Keys>,
    /// The HTTPS certificate, if any; re-read on SIGHUP (renewed certificates).
    tls: std::sync::RwLock<Option<TlsAcceptor>>,
    /// Admin browser sessions (`/session`).
    sessions: session::Sessions,
    /// Whether the terminal punches whoever walks up (the kiosk shows it).
    walk_up: bool,
}

/// What [`App::new`] is made of.
pub(crate) struct AppParts {
    pub(crate) terminal: Arc<Terminal>,
    pub(crate) camera: Option<Arc<Camera>>,
    pub(crate) mqtt: watch::Receiver<LinkState>,
    pub(crate) settings: HttpSettings,
    pub(crate) locale: SharedLocale,
    pub(crate) keys: auth::Keys,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) walk_up: bool,
}

impl App {
    pub(crate) fn new(p: AppParts) -> Self {
        if !p.keys.enforced() {
            warn!("no API keys configured: every endpoint is open (set [auth] for production)");
        }
        Self {
            sessions: session::Sessions::new(p.keys.session_lifetimes()),
            walk_up: p.walk_up,
            terminal: p.terminal,
            camera: p.camera,
            mqtt: p.mqtt,
            settings: p.settings,
            locale: p.locale,
            keys: std::sync::RwLock::new(p.keys),
            tls: std::sync::RwLock::new(p.tls),
        }
    }

    pub(crate) fn terminal(&self) -> &Arc<Terminal> {
        &self.terminal
    }

    /// Replaces the TLS certificate for the connections accepted from now on (SIGHUP);
    /// open connections keep theirs.
    pub(crate) fn set_tls(&self, tls: Option<TlsAcceptor>) {
        *self.tls.write().unwrap_or_else(|p| p.into_inner()) = tls;
    }

    /// The API keys in force.
    fn keys(&self) -> std::sync::RwLockReadGuard<'_, auth::Keys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    fn tls(&self) -> Option<TlsAcceptor> {
        self.tls.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rotates the API keys (SIGHUP). Browser sessions opened with a key that is gone
    /// end with it (under the keys' write lock: no request is admitted in between).
    pub(crate) fn set_keys(&self, keys: auth::Keys) {
        let mut held = self.keys.write().unwrap_or_else(|p| p.into_inner());
        self.sessions
            .rekey(keys.session_lifetimes(), |k| keys.is_admin(k));
        *held = keys;
    }

    /// Lets a request through with a key, from the terminal itself (the screen's
    /// routes), or with an admin browser session (and, if it changes something, the
    /// session's CSRF token).
    fn admit(
        &self,
        headers: &hyper::HeaderMap,
        method: &Method,
        audience: auth::Audience,
        peer: std::net::IpAddr,
    ) -> Result<(), auth::Denied> {
        let keys = self.keys();
        let need = keys.access_for(audience);
        if let Some(key) = auth::presented_key(headers) {
            return keys.authorize(need, Some(key));
        }
        // Without a key, a changing request must come from the terminal's own pages or
        // an allowed origin: a page elsewhere cannot ride on an open API, the loopback
        // screen's pass or a session cookie.
        let changes = !matches!(*method, Method::GET | Method::HEAD);
        if changes && !cors::origin_allowed(&self.settings.cors_allow_origins, headers) {
            return Err(auth::Denied::CrossSite);
        }
        if keys.authorize(need, None).is_ok() || keys.local(audience, peer) {
            return Ok(());
        }
        let csrf = headers
            .get(session::CSRF_HEADER)
            .and_then(|v| v.to_str().ok());
        let token = session::cookie_token(headers);
        match self
            .sessions
            .check(token, csrf, changes, std::time::Instant::now())
        {
            Ok(_) => Ok(()),
            Err(session::SessionDenied::Csrf) => Err(auth::Denied::Csrf),
            Err(session::SessionDenied::NoSession) => Err(auth::Denied::Unauthenticated),
        }
    }

    /// The camera, or 503 `camera_unavailable`.
    fn camera(&self) -> Result<Arc<Camera>, TerminalError> {
        self.camera.clone().ok_or(TerminalError::CameraUnavailable)
    }

    /// The camera's progress, for the watchdog (`None` without a camera).
    pub(crate) fn camera_progress(&self) -> Option<attendance_core::systemd::CameraProgress> {
        self.camera.as_ref().map(|c| c.progress())
    }

    fn max_body(&self) -> usize {
        self.settings.max_body_bytes
    }

    /// `none`, `starting`, `streaming` or `unavailable`.
    pub(crate) fn camera_state(&self) -> &'static str {
        self.camera.as_ref().map_or("none", |c| c.state().as_str())
    }

    /// `disabled`, `connecting`, `connected` or `disconnected`.
    pub(crate) fn mqtt_state(&self) -> &'static str {
        self.mqtt.borrow().as_str()
    }
}

/// The TLS acceptor `http.tls_cert_file`/`http.tls_key_file` ask for (none if unset).
pub(crate) fn tls_acceptor(
    cfg: &HttpSettings,
) -> Result<Option<TlsAcceptor>, attendance_core::tls::TlsError> {
    match (&cfg.tls_cert_file, &cfg.tls_key_file) {
        (Some(cert), Some(key)) => Ok(Some(TlsAcceptor::from(
            attendance_core::tls::server_config(cert, key)?,
        ))),
        _ => Ok(None),
    }
}

/// Serves (over TLS if the app has a certificate) until `shutdown` fires, then lets open
/// requests finish (up to a few seconds).
pub(crate) async fn serve(listener: TcpListener, app: Arc<App>, mut shutdown: Shutdown) {
    let graceful = GracefulShutdown::new();
    let head_timeout = app.settings.header_timeout();
    let limits = conn_limit::ConnLimits::new(
        app.settings.max_connections,
        app.settings.max_connections_per_peer,
    );
    let mut refused = 0u64;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.recv() => break,
        };
        let slot = match limits.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(over) => {
                // Closed at once (dropping the stream); said once per thousand.
                if refused.is_multiple_of(1000) {
                    warn!(%peer, ?over, refused = refused + 1, "connection refused: too many open");
                }
                refused += 1;
                continue;
            }
        };
        let tls = app.tls();
        let app = app.clone();
        let svc = service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(handle(app, req, peer).await) }
        });
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(head_timeout)
            .max_buf_size(MAX_HEAD_BYTES.max(8192));
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let served = match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), svc))
                        .await
                }
                // The handshake gets the header timeout too: a client that connects and
                // says nothing must not hold a task forever.
                Some(tls) => match tokio::time::timeout(head_timeout, tls.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        watcher
                            .watch(http.serve_connection(TokioIo::new(stream), svc))
                            .await
                    }
                    Ok(Err(e)) => return debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => return debug!(%peer, "TLS handshake timed out"),
                },
            };
            if let Err(e) = served {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    info!("HTTP server draining");
    tokio::select! {
        _ = graceful.shutdown() => {},
        _ = tokio::time::sleep(DRAIN) => warn!("connections still open after the drain period"),
    }
}

/// Picks the language: `Accept-Language` if it names one we speak, else the config's.
fn locale_of(req: &Request<Incoming>, default: Locale) -> Locale {
    req.headers()
        .get(ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Locale::from_accept_language)
        .unwrap_or(default)
}

async fn handle(app: Arc<App>, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let locale = locale_of(&req, app.locale.get());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let cors = cors::headers_for(&app.settings.cors_allow_origins, req.headers());
    if method == Method::OPTIONS {
        // A preflight: allowed origins get the CORS headers, others a bare 204 the
        // browser will refuse to act on.
        let mut r = Response::new(response::full(bytes::Bytes::new()));
        *r.status_mut() = StatusCode::NO_CONTENT;
        r.headers_mut().extend(cors.unwrap_or_default());
        return r;
    }
    let deadline = Deadline::new();
    let routed = route(&app, req, locale, peer, &deadline);
    tokio::pin!(routed);
    let result = match tokio::time::timeout(app.settings.request_timeout(), &mut routed).await {
        Ok(r) => r,
        // Nothing was written, and now nothing will be: the client may simply retry.
        Err(_) if deadline.expire() => {
            Err(ApiError::new(StatusCode::REQUEST_TIMEOUT, Reason::Timeout))
        }
        // A write began before the deadline: its answer is on its way (a commit, not an
        // analysis), and the client must get it.
        Err(_) => routed.await,
    };
    let mut response = result.unwrap_or_else(|e| e.into_response(locale));
    if let Some(h) = cors {
        response.headers_mut().extend(h);
    }
    debug!(%peer, %method, %path, status = response.status().as_u16(), "request");
    response
}

async fn route(
    app: &Arc<App>,
    req: Request<Incoming>,
    locale: Locale,
    peer: SocketAddr,
    deadline: &Deadline,
) -> Result<Response<Body>, ApiError> {
    let full = req.uri().path().to_owned();
    let path = full
        .strip_prefix("/v1")
        .filter(|p| p.starts_with('/'))
        .unwrap_or(&full)
        .trim_end_matches('/')
        .to_owned();
    let query = req.uri().query().map(str::to_owned);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let resolved = router::resolve(&segments, req.method());
    // Paths that are not routes are refused like admin routes when keys are set: a
    // caller without a key learns nothing about which paths exist.
    let audience = match &resolved {
        Resolved::Found { audience, .. } | Resolved::MethodNotAllowed { audience, .. } => *audience,
        Resolved::NotFound => auth::Audience::Admin,
    };
    let allowed = app.admit(req.headers(), req.method(), audience, peer.ip());
    if let Err(denied) = allowed {
        let mut e = ApiError::new(denied.status(), denied.reason());
        if let Some(d) = denied.detail() {
            e = e.detail(d);
        }
        let mut r = e.into_response(locale);
        if denied == auth::Denied::Unauthenticated {
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
        }
        return Ok(r);
    }
    let (op, id) = match resolved {
        Resolved::Found { op, id, .. } => (op, id),
        Resolved::MethodNotAllowed { allow, .. } => {
            let mut r = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, Reason::MethodNotAllowed)
                .detail(format!("allowed: {allow}"))
                .into_response(locale);
            if let Ok(v) = HeaderValue::from_str(&allow) {
                r.headers_mut().insert(ALLOW, v);
            }
            return Ok(r);
        }
        Resolved::NotFound => {
            return Err(ApiError::new(StatusCode::NOT_FOUND, Reason::NotFound)
                .detail(full.chars().take(100).collect::<String>()));
        }
    };
    let id = id.unwrap_or_default();
    let query = query.as_deref();
    match op {
        Op::Health => Ok(routes::health::get(app).await),
        Op::Identify => routes::identify::post(app, req, locale, deadline).await,
        Op::Enroll => routes::enroll::post(app, req, locale, false, deadline).await,
        Op::EnrollJson => routes::enroll::post(app, req, locale, true, deadline).await,
        Op::Punch => routes::attendance::post(app, req, locale, deadline).await,
        Op::Records => routes::attendance::get(app, query).await,
        Op::Users => routes::users::list(app).await,
        Op::ResetUsers => routes::users::reset(app, query, locale, deadline).await,
        Op::User => routes::users::get(app, id).await,
        Op::DeleteUser => routes::users::delete(app, id, locale, deadline).await,
        Op::ForgetLearned => routes::users::forget_learned(app, id, locale, deadline).await,
        Op::Stream => routes::stream::get(app).await,
        Op::Capture => routes::capture::get(app, query).await,
        Op::Status => routes::status::get(app, &req, locale).await,
        Op::Metrics => routes::metrics::get(app).await,
        Op::OpenApi => Ok(routes::openapi::get()),
        Op::Kiosk => Ok(routes::pages::kiosk()),
        Op::AdminPage => Ok(routes::pages::admin()),
        Op::Asset => routes::pages::asset(id),
        Op::Events => routes::events::get(app, query).await,
        Op::PunchMode => routes::punch_mode::post(app, req).await,
        Op::Session => Ok(routes::session::get(app, req.headers())),
        Op::SignIn => routes::session::post(app, req, peer.ip()).await,
        Op::SignOut => Ok(routes::session::delete(app, req.headers())),
    }
}
