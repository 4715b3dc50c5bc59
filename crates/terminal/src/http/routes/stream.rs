//! `GET /stream.mjpeg`: the live picture with the guide, `multipart/x-mixed-replace`.
//! Every viewer gets the same JPEG bytes (encoded once per frame); a slow viewer skips
//! frames instead of growing a queue.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use crate::http::App;
use crate::http::response::{ApiError, Body};
use crate::terminal::TerminalError;

pub(crate) const BOUNDARY: &str = "frame";

pub(crate) async fn get(app: &Arc<App>) -> Result<Response<Body>, ApiError> {
    let camera = app.camera()?;
    let rx = camera.subscribe_stream();
    let parts = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        let jpeg = rx.borrow_and_update().clone()?;
        let mut part = BytesMut::with_capacity(jpeg.len() + 96);
        part.put_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                jpeg.len()
            )
            .as_bytes(),
        );
        part.put_slice(&jpeg);
        part.put_slice(b"\r\n");
        Some((Ok::<_, Infallible>(Frame::data(part.freeze())), rx))
    });
    let mut r = Response::new(StreamBody::new(parts).boxed_unsync());
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_str(&format!("multipart/x-mixed-replace; boundary={BOUNDARY}"))
            .map_err(|_| ApiError::from(TerminalError::Internal("content type".into())))?,
    );
    r.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    Ok(r)
}
