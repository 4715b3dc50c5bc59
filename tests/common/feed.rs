//! An open `/events` feed (server-sent events), each event checked against the document.

use http_body_util::BodyExt;
use serde_json::Value;

/// An open `/events` feed.
pub struct Feed {
    pub(super) body: hyper::body::Incoming,
    pub(super) buf: String,
}

impl Feed {
    /// The next event (name and JSON payload), checked against the document; None when
    /// `within` passes first or the stream ends.
    pub async fn next(&mut self, within: std::time::Duration) -> Option<(String, Value)> {
        let end = tokio::time::Instant::now() + within;
        loop {
            while let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let (mut event, mut data) = (None, None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(v.to_owned());
                    }
                }
                if let (Some(event), Some(data)) = (event, data) {
                    let v: Value = serde_json::from_str(&data).expect("event data is JSON");
                    super::contract::check_event(&event, &v);
                    return Some((event, v));
                }
            }
            let frame = tokio::time::timeout_at(end, self.body.frame())
                .await
                .ok()??;
            if let Ok(data) = frame.expect("feed frame").into_data() {
                self.buf
                    .push_str(std::str::from_utf8(&data).expect("UTF-8 feed"));
            }
        }
    }

    /// Reads until an event named `name` whose payload satisfies `pred`.
    pub async fn until(
        &mut self,
        name: &str,
        within: std::time::Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let end = tokio::time::Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            let (event, v) = self.next(left).await?;
            if event == name && pred(&v) {
                return Some(v);
            }
        }
    }
}
