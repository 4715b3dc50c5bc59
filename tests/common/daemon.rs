//! Starts the real `attendanced` binary on a free loopback port, and talks HTTP to it.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

pub use super::feed::Feed;
pub use super::multipart::Multipart;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running daemon with its own data folder.
pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    env: Vec<(String, String)>,
    args: Vec<String>,
    /// A command the daemon runs under (`ip netns exec NAME`), empty for none.
    prefix: Vec<String>,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `attendanced serve` with `data_dir` and extra environment, and waits until
    /// `/health` answers.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Daemon {
        Self::start_with(data_dir, env, &[])
    }

    pub fn start_with(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Daemon {
        Self::launch(
            data_dir,
            env,
            args,
            SocketAddr::from(([127, 0, 0, 1], free_port())),
            &[],
        )
    }

    /// Starts the daemon in network namespace `netns`, listening on `ip` there (the
    /// bad-link tests): `ip netns exec` execs, so the pid is the daemon's.
    pub fn start_in_netns(
        data_dir: &Path,
        env: &[(&str, &str)],
        netns: &str,
        ip: std::net::Ipv4Addr,
    ) -> Daemon {
        let prefix = ["ip", "netns", "exec", netns];
        Self::launch(
            data_dir,
            env,
            &[],
            SocketAddr::from((ip, free_port())),
            &prefix,
        )
    }

    fn launch(
        data_dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
        addr: SocketAddr,
        prefix: &[&str],
    ) -> Daemon {
        let mut d = Daemon {
            child: None,
            addr,
            data_dir: data_dir.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            log: data_dir.with_extension("log"),
        };
        d.spawn();
        d
    }

    /// Starts the process and waits for *its* "ready" line: connecting to the port is
    /// not enough, since another test's daemon may hold a port `free_port` handed out
    /// twice (then ours fails to bind, and on a first start we try another port).
    fn spawn(&mut self) {
        const READY: &str = "attendanced ready";
        for attempt in 0..5 {
            let ready_before = self.log_text().matches(READY).count();
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .unwrap();
            let bin = env!("CARGO_BIN_EXE_attendanced");
            let mut cmd = match self.prefix.split_first() {
                Some((first, rest)) => {
                    let mut c = Command::new(first);
                    c.args(rest).arg(bin);
                    c
                }
                None => Command::new(bin),
            };
            cmd.arg("serve")
                .arg("--listen")
                .arg(self.addr.to_string())
                .arg("--data-dir")
                .arg(&self.data_dir)
                .args(&self.args)
                .env("RUST_LOG", "info")
                // The ready line is read from stderr, not the journal.
                .env_remove("JOURNAL_STREAM")
                // The models scripts/test fetches, wherever the test runs from. Checked:
                // with them missing, `auto` would quietly run every daemon test on HOG.
                .env("ATTENDANCED_FACE__MODELS_DIR", super::models_dir())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log);
            for (k, v) in &self.env {
                cmd.env(k, v);
            }
            self.child = Some(cmd.spawn().expect("start attendanced"));
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if self.log_text().matches(READY).count() > ready_before {
                    return;
                }
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    let text = self.log_text();
                    let first_start = ready_before == 0;
                    if first_start && attempt < 4 && text.contains("cannot listen") {
                        self.addr.set_port(free_port());
                        break;
                    }
                    panic!("attendanced exited with {status}: {text}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if self.child.as_mut().unwrap().try_wait().unwrap().is_none() {
                panic!("attendanced did not become ready: {}", self.log_text());
            }
        }
        panic!("attendanced found no free port: {}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGHUP: re-read the configuration.
    pub fn hangup(&self) {
        let st = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill -HUP failed");
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        c.wait().unwrap()
    }

    /// Starts again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn client(&self) -> Client {
        Client { addr: self.addr }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

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
