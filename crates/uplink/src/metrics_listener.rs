//! The uplink's metrics listener: `GET /metrics` and nothing else, answered with the same
//! JSON errors as the terminal's API (`Locale::refusal`). (The terminal serves `/metrics`
//! from its own API.)

use std::convert::Infallible;
use std::sync::Arc;

use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::{debug, warn};

use attendance_core::i18n::Locale;
use attendance_core::metrics::MEDIA_TYPE;
use attendance_core::reason::Reason;
use attendance_core::shutdown::Shutdown;
use bytes::Bytes;
use http_body_util::Full;

use crate::metrics::UplinkMetrics;

type Body = Full<Bytes>;

/// Serves until `stop` fires.
pub(crate) async fn serve(listener: TcpListener, metrics: Arc<UplinkMetrics>, mut stop: Shutdown) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "metrics listener: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.recv() => return,
        };
        let metrics = metrics.clone();
        let svc = service_fn(move |req| {
            let m = metrics.clone();
            async move { Ok::<_, Infallible>(answer(&m, &req)) }
        });
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(10));
        tokio::spawn(async move {
            if let Err(e) = http.serve_connection(TokioIo::new(stream), svc).await {
                debug!(%peer, error = %e, "metrics connection ended with an error");
            }
        });
    }
}

fn answer<B>(m: &UplinkMetrics, req: &Request<B>) -> Response<Body> {
    if req.uri().path() != "/metrics" {
        return refused(StatusCode::NOT_FOUND, Reason::NotFound);
    }
    if req.method() != Method::GET {
        let mut r = refused(StatusCode::METHOD_NOT_ALLOWED, Reason::MethodNotAllowed);
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return r;
    }
    with_type(Response::new(Body::from(m.render())), MEDIA_TYPE)
}

/// The terminal API's JSON error, in English (an operator's tool reads it).
fn refused(status: StatusCode, reason: Reason) -> Response<Body> {
    let body = Locale::En.refusal(reason, None).to_string();
    let mut r = with_type(
        Response::new(Body::from(body)),
        "application/json; charset=utf-8",
    );
    *r.status_mut() = status;
    r
}

fn with_type(mut r: Response<Body>, media_type: &'static str) -> Response<Body> {
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(media_type));
    r
}
