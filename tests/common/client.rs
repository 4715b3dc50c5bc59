//! An HTTP/1 client for the daemon's API: a new connection per request, every answer
//! checked against `docs/openapi.json`.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::feed::Feed;
use super::multipart::Multipart;

#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub addr: SocketAddr,
}

/// Reads a whole answer and checks it against `docs/openapi.json`; None when the
/// connection breaks first.
async fn read_checked(
    method: &Method,
    path: &str,
    resp: hyper::Response<hyper::body::Incoming>,
) -> Option<Reply> {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.ok()?.to_bytes();
    super::contract::check(
        method,
        path,
        parts.status,
        parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        &body,
    );
    Some(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// A response, with the body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

impl Client {
    /// Sends one request on a new connection; the answer's head, its body unread.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> hyper::Response<hyper::body::Incoming> {
        self.try_send(method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// As `send`, with an error when the daemon is not there or the connection breaks
    /// before the answer's head (a killed daemon's requests in flight).
    async fn try_send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        sender
            .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .map_err(|e| format!("send: {e}"))
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let resp = self.send(method.clone(), path, headers, body).await;
        read_checked(&method, path, resp).await.expect("body")
    }

    /// As `request`, with None when the connection breaks before the whole answer.
    pub async fn try_request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Option<Reply> {
        let resp = self
            .try_send(method.clone(), path, headers, body)
            .await
            .ok()?;
        read_checked(&method, path, resp).await
    }

    /// Opens `/events` (with `headers`): the status and, if 200, the feed. Every event
    /// read is checked against the document.
    pub async fn events(&self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, Option<Feed>) {
        let resp = self.send(Method::GET, path, headers, Vec::new()).await;
        let status = resp.status();
        if status != StatusCode::OK {
            read_checked(&Method::GET, path, resp).await.expect("body");
            return (status, None);
        }
        let ct = resp.headers().get(hyper::header::CONTENT_TYPE).cloned();
        assert_eq!(
            ct.as_ref().and_then(|v| v.to_str().ok()),
            Some("text/event-stream; charset=utf-8")
        );
        (
            status,
            Some(Feed {
                body: resp.into_body(),
                buf: String::new(),
            }),
        )
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, &[], Vec::new()).await
    }

    /// The list under `key` of a GET answer (`/users` → `users`, `/attendance` →
    /// `records`). A failed read fails the test: it must never pass as "no rows".
    pub async fn list(&self, path: &str, key: &str) -> Vec<Value> {
        let r = self.get(path).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let j = r.json();
        let list = j[key]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: no {key} list in {j}"))
            .clone();
        assert_eq!(
            j["count"],
            list.len(),
            "{path}: count disagrees with the list: {j}"
        );
        list
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.request(Method::DELETE, path, &[], Vec::new()).await
    }

    pub async fn post_json(&self, path: &str, v: &Value) -> Reply {
        self.request(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            v.to_string().into_bytes(),
        )
        .await
    }

    /// A manual punch (`kind` "IN" or "OUT") that must be answered 200: its event id.
    pub async fn punch(&self, employee_id: &str, kind: &str) -> String {
        self.try_punch(employee_id, kind)
            .await
            .expect("the daemon answered the punch")
    }

    /// As `punch`, with None when the connection breaks before the answer (any answer
    /// but a 200 fails the test).
    pub async fn try_punch(&self, employee_id: &str, kind: &str) -> Option<String> {
        let body = serde_json::json!({ "employee_id": employee_id, "type": kind });
        let r = self
            .try_request(
                Method::POST,
                "/attendance",
                &[("content-type", "application/json")],
                body.to_string().into_bytes(),
            )
            .await?;
        let text = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status, StatusCode::OK, "{text}");
        Some(r.json()["event_id"].as_str().expect("event_id").to_owned())
    }

    pub async fn post_form(&self, path: &str, form: Multipart) -> Reply {
        let (ct, body) = form.finish();
        self.post_raw(path, &ct, body).await
    }

    /// POST with this `Content-Type` and body as given (hand-made or broken forms).
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        self.request(Method::POST, path, &[("content-type", content_type)], body)
            .await
    }

    pub async fn enrol(&self, name: &str, photo: &[u8]) -> Reply {
        self.post_form(
            "/enroll",
            Multipart::new().text("name", name).file("image", photo),
        )
        .await
    }

    pub async fn identify(&self, kind: &str, photo: &[u8]) -> Reply {
        self.post_form(
            "/identify",
            Multipart::new().text("type", kind).file("image", photo),
        )
        .await
    }
}
