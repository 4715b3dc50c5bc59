//! Server-Sent Events framing (the WHATWG `text/event-stream` format). Written by hand:
//! it is three line kinds, and the SSE crates bring a web framework with them.

use bytes::Bytes;

/// One event: `event: NAME`, the data (JSON: one line, never a bare newline), a blank
/// line.
pub(crate) fn frame(event: &str, data: &serde_json::Value) -> Bytes {
    // serde_json escapes newlines inside strings, so the data is one line.
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// A comment line: keeps proxies and the browser from timing the stream out.
pub(crate) fn comment(text: &str) -> Bytes {
    Bytes::from(format!(": {}\n\n", text.replace('\n', " ")))
}

/// Tells the browser how soon to reconnect after the stream breaks.
pub(crate) fn retry(ms: u64) -> Bytes {
    Bytes::from(format!("retry: {ms}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_data_line_even_with_newlines_inside() {
        let f = frame("decision", &serde_json::json!({"name": "홍\n길동"}));
        let text = std::str::from_utf8(&f).unwrap();
        assert_eq!(text, "event: decision\ndata: {\"name\":\"홍\\n길동\"}\n\n");
        assert_eq!(comment("a\nb"), Bytes::from(": a b\n\n"));
        assert_eq!(retry(2000), Bytes::from("retry: 2000\n\n"));
    }
}
