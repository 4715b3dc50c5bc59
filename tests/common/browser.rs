//! Headless Chromium (Debian's `chromium`, installed by scripts/setup) driven over the
//! DevTools protocol. Written against the protocol directly: the tests need a handful of
//! commands (viewport, navigate, evaluate, screenshot), and the driver crates compile
//! the whole generated protocol into every CI run. Blocking: call from a multi-thread
//! runtime (the daemon is another process).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// A running headless Chromium, killed on drop.
pub struct Browser {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium() -> PathBuf {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!(
        "chromium is not installed: run scripts/setup (apt-get install chromium fonts-noto-cjk)"
    );
}

impl Browser {
    pub fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        // The flags keep Chromium from reaching for Google's hosts (closed network here:
        // refused connections by the dozen) and from any first-run UI.
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--mute-audio",
                "--lang=ko-KR",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            // A Korean terminal's clock: 09:00 there is midnight UTC, so a page that
            // confused the two would show the wrong day for nine hours of every day.
            .env("TZ", "Asia/Seoul")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium did not start its DevTools endpoint within 60 s");
        let port = url
            .trim_start_matches("ws://127.0.0.1:")
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("DevTools URL {url}"));
        Browser {
            child,
            port,
            _profile: profile,
        }
    }

    /// A new tab of `width` x `height` CSS pixels.
    pub fn page(&self, width: u32, height: u32) -> Page {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "PUT /json/new?about:blank HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        // Chromium keeps the connection open: read the head, then Content-Length bytes.
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut reader = BufReader::new(s);
        let mut length = 0usize;
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            head.push_str(&line);
            if line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
        let text = format!("{head}{}", String::from_utf8_lossy(&body));
        let body = String::from_utf8_lossy(&body).to_string();
        let body = body.as_str();
        let target: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
        let ws_url = target["webSocketDebuggerUrl"].as_str().expect("page URL");
        let (ws, _) = tungstenite::connect(ws_url).expect("DevTools websocket");
        if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
            tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        }
        let mut page = Page { ws, next_id: 0 };
        page.resize(width, height);
        page
    }
}

/// One tab.
pub struct Page {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Page {
    /// Sends a command and waits for its answer (events in between are skipped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws.send(Message::text(msg)).expect("send to chromium");
        loop {
            let m = self.ws.read().expect("read from chromium");
            let Message::Text(text) = m else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("CDP JSON");
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    pub fn resize(&mut self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        );
    }

    pub fn goto(&mut self, url: &str) {
        let r = self.call("Page.navigate", json!({ "url": url }));
        assert!(r.get("errorText").is_none(), "{url}: {r}");
    }

    /// Evaluates `js` in the page (awaiting a promise), returning its value.
    pub fn eval(&mut self, js: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": js, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{js}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Polls `js` until it is truthy (its value), or panics with `what` after `within`.
    pub fn wait_for(&mut self, js: &str, within: Duration, what: &str) -> Value {
        let end = Instant::now() + within;
        loop {
            // A page still loading has no document yet: evaluation errors count as no.
            let r = self.call(
                "Runtime.evaluate",
                json!({ "expression": js, "returnByValue": true, "awaitPromise": true }),
            );
            let v = r["result"]["value"].clone();
            if r.get("exceptionDetails").is_none()
                && !matches!(v, Value::Null | Value::Bool(false))
                && v != json!("")
                && v != json!(0)
            {
                return v;
            }
            if Instant::now() > end {
                let body = self.eval("document.body ? document.body.innerText : ''");
                panic!("{what}: not within {within:?}; the page shows: {body}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG of the viewport.
    pub fn screenshot(&mut self, path: &Path) {
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}
