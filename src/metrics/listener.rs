//! The uplink's metrics listener: `GET /metrics` and nothing else, answered with the same
//! JSON errors as the terminal's API. (The terminal serves `/metrics` from its own API.)

use std::convert::Infallible;
use std::sync::Arc;

use hyper::header::{ALLOW, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::{debug, warn};

use super::UplinkMetrics;
use crate::http::response::{ApiError, Body};
use crate::i18n::Locale;
use crate::reason::Reason;
use crate::shutdown::Shutdown;

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
        return ApiError::new(StatusCode::NOT_FOUND, Reason::NotFound).into_response(Locale::En);
    }
    if req.method() != Method::GET {
        let mut r = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, Reason::MethodNotAllowed)
            .into_response(Locale::En);
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return r;
    }
    super::exposition(m.render())
}
