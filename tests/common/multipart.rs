//! A hand-made multipart/form-data body: tests need broken and odd forms a client
//! library would refuse to build.

/// A multipart/form-data body.
pub struct Multipart {
    pub boundary: String,
    pub body: Vec<u8>,
}

impl Multipart {
    pub fn new() -> Self {
        Multipart {
            boundary: "xTestBoundary7MA4YWxkTrZu0gW".into(),
            body: Vec::new(),
        }
    }

    pub fn text(self, name: &str, value: &str) -> Self {
        self.text_bytes(name, value.as_bytes())
    }

    /// A text field with raw bytes (invalid UTF-8 included).
    pub fn text_bytes(self, name: &str, value: &[u8]) -> Self {
        self.part(&format!("name=\"{name}\"\r\n"), value)
    }

    pub fn file(self, name: &str, bytes: &[u8]) -> Self {
        let head =
            format!("name=\"{name}\"; filename=\"face.jpg\"\r\nContent-Type: image/jpeg\r\n");
        self.part(&head, bytes)
    }

    /// One part: `head` is what follows `Content-Disposition: form-data; `, its lines
    /// ended with CRLF.
    fn part(mut self, head: &str, value: &[u8]) -> Self {
        let start = format!(
            "--{}\r\nContent-Disposition: form-data; {head}\r\n",
            self.boundary
        );
        self.body.extend_from_slice(start.as_bytes());
        self.body.extend_from_slice(value);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    pub fn finish(mut self) -> (String, Vec<u8>) {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body,
        )
    }
}
