//! Request bodies: size-limited reading, and multipart or JSON forms turned into the same
//! field map, so every handler validates one shape.

use std::collections::HashMap;
use std::convert::Infallible;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Request, StatusCode};
use serde_json::Value;

use super::response::ApiError;
use attendance_core::reason::Reason;

/// Longest text field accepted, in bytes.
const MAX_TEXT_FIELD: u64 = 1024;
/// Deepest JSON nesting accepted (the forms are flat; this refuses stack-eating input
/// long before serde_json's own limit).
const MAX_JSON_DEPTH: usize = 8;

/// Reads the whole body, refusing more than `max` bytes (413) before or while reading.
pub(crate) async fn read_body(
    req: Request<Incoming>,
    max: usize,
) -> Result<(Parts, Bytes), ApiError> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large(max));
    }
    let bytes = Limited::new(body, max)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                too_large(max)
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, Reason::InvalidField)
                    .detail(format!("body: {e}"))
            }
        })?
        .to_bytes();
    Ok((parts, bytes))
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, Reason::PayloadTooLarge)
        .detail(format!("max {max} bytes"))
}

/// How the body was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Multipart,
    Json,
}

/// Form fields from either encoding: text fields by name, and the image's bytes.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    pub(crate) kind: Option<BodyKind>,
    text: HashMap<String, String>,
    pub(crate) image: Option<Vec<u8>>,
}

impl Fields {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.text.get(name).map(String::as_str)
    }
}

/// The body's encoding from `Content-Type`, or 415.
pub(crate) fn body_kind(parts: &Parts) -> Result<BodyKind, ApiError> {
    let ct = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if ct.starts_with("multipart/form-data") {
        Ok(BodyKind::Multipart)
    } else if ct.starts_with("application/json") {
        Ok(BodyKind::Json)
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Reason::UnsupportedMediaType,
        )
        .detail("use multipart/form-data or application/json"))
    }
}

/// Parses the body as a form with the given text fields (and an optional `image`).
pub(crate) async fn fields(
    parts: &Parts,
    body: Bytes,
    allowed: &[&str],
) -> Result<Fields, ApiError> {
    match body_kind(parts)? {
        BodyKind::Multipart => multipart(parts, body, allowed).await,
        BodyKind::Json => json(&body, allowed),
    }
}

/// Parses a JSON body only (415 otherwise): for requests a browser must not be able to
/// send from another site's page without a CORS preflight.
pub(crate) fn json_fields(
    parts: &Parts,
    body: Bytes,
    allowed: &[&str],
) -> Result<Fields, ApiError> {
    match body_kind(parts)? {
        BodyKind::Json => json(&body, allowed),
        BodyKind::Multipart => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Reason::UnsupportedMediaType,
        )
        .detail("use application/json")),
    }
}

async fn multipart(parts: &Parts, body: Bytes, allowed: &[&str]) -> Result<Fields, ApiError> {
    let ct = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(ct)
        .map_err(|_| ApiError::field("content-type", "multipart boundary missing"))?;
    let mut limits = multer::SizeLimit::new().per_field(MAX_TEXT_FIELD);
    limits = limits.for_field("image", body.len() as u64 + 1);
    let mut names: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
    names.push("image".into());
    let constraints = multer::Constraints::new()
        .allowed_fields(names)
        .size_limit(limits);
    let stream = futures_util::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut mp = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut out = Fields {
        kind: Some(BodyKind::Multipart),
        ..Fields::default()
    };
    // Every part must be one of the form's fields, each at most once (unknown parts are
    // refused by multer, repeats below): the part count is bounded by the form itself.
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e)),
        };
        let name = field.name().unwrap_or("").to_owned();
        let data = field.bytes().await.map_err(multipart_error)?;
        if name == "image" {
            if out.image.is_some() {
                return Err(ApiError::field("image", "given twice"));
            }
            out.image = Some(data.to_vec());
        } else {
            let text = String::from_utf8(data.to_vec())
                .map_err(|_| ApiError::field(&name, "not valid UTF-8"))?;
            if out.text.insert(name.clone(), text).is_some() {
                return Err(ApiError::field(&name, "given twice"));
            }
        }
    }
    Ok(out)
}

fn multipart_error(e: multer::Error) -> ApiError {
    match e {
        multer::Error::UnknownField { field_name } => ApiError::field(
            field_name.as_deref().unwrap_or("(unnamed)"),
            "unknown field",
        ),
        multer::Error::FieldSizeExceeded { field_name, limit } => ApiError::field(
            field_name.as_deref().unwrap_or("(unnamed)"),
            format!("longer than {limit} bytes"),
        ),
        other => ApiError::field("multipart", other.to_string()),
    }
}

fn json(body: &[u8], allowed: &[&str]) -> Result<Fields, ApiError> {
    if json_depth_exceeds(body, MAX_JSON_DEPTH) {
        return Err(ApiError::field(
            "body",
            format!("JSON nested deeper than {MAX_JSON_DEPTH}"),
        ));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::field("body", format!("invalid JSON: {e}")))?;
    let Value::Object(map) = v else {
        return Err(ApiError::field("body", "must be a JSON object"));
    };
    let mut out = Fields {
        kind: Some(BodyKind::Json),
        ..Fields::default()
    };
    for (k, v) in map {
        // Unknown fields are ignored: kiosk apps send extras.
        if k != "image" && !allowed.contains(&k.as_str()) {
            continue;
        }
        let s = match v {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => return Err(ApiError::field(&k, "must be a string")),
        };
        if k == "image" {
            out.image = Some(decode_image_string(&s)?);
        } else {
            if s.len() as u64 > MAX_TEXT_FIELD {
                return Err(ApiError::field(
                    &k,
                    format!("longer than {MAX_TEXT_FIELD} bytes"),
                ));
            }
            out.text.insert(k, s);
        }
    }
    Ok(out)
}

/// Whether brackets nest deeper than `max` (strings skipped), without parsing.
fn json_depth_exceeds(body: &[u8], max: usize) -> bool {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for &b in body {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Base64 (standard alphabet, padding optional, whitespace ignored) or a data URL of
/// an image type.
pub(crate) fn decode_image_string(s: &str) -> Result<Vec<u8>, ApiError> {
    let s = s.trim();
    let b64 = if let Some(rest) = s.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| ApiError::field("image", "data URL without data"))?;
        let meta = meta.to_ascii_lowercase();
        let Some(mime) = meta.strip_suffix(";base64") else {
            return Err(ApiError::field("image", "data URL must be base64"));
        };
        if !matches!(
            mime,
            "image/jpeg" | "image/jpg" | "image/png" | "image/bmp" | "image/x-portable-pixmap"
        ) {
            return Err(ApiError::field(
                "image",
                format!("data URL type {mime:?} is not a supported image"),
            ));
        }
        data
    } else {
        s
    };
    let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bytes = LENIENT
        .decode(compact.as_bytes())
        .map_err(|e| ApiError::field("image", format!("invalid base64: {e}")))?;
    if bytes.is_empty() {
        return Err(ApiError::field("image", "empty"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_and_plain_base64() {
        assert_eq!(
            decode_image_string("data:image/png;base64,AQID").unwrap(),
            vec![1, 2, 3]
        );
        assert_eq!(decode_image_string("AQI").unwrap(), vec![1, 2]);
        assert_eq!(decode_image_string("AQ\nID").unwrap(), vec![1, 2, 3]);
        for bad in [
            "data:text/plain;base64,AQID",
            "data:image/png,AQID",
            "!!!",
            "",
            "data:image/png;base64",
        ] {
            assert!(decode_image_string(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn depth_check_ignores_brackets_in_strings() {
        assert!(!json_depth_exceeds(br#"{"a":"[[[[[[[[[[[["}"#, 3));
        assert!(json_depth_exceeds(b"[[[[", 3));
        assert!(!json_depth_exceeds(br#"{"a":"\"[[[["}"#, 2));
    }

    #[test]
    fn json_fields() {
        let f = json(
            br#"{"type":"IN","device_id":null,"extra":{"x":1},"image":"AQID"}"#,
            &["type", "device_id"],
        )
        .unwrap();
        assert_eq!(f.get("type"), Some("IN"));
        assert_eq!(f.get("device_id"), None);
        assert_eq!(f.image, Some(vec![1, 2, 3]));
        assert!(json(br#"{"type":["IN"]}"#, &["type"]).is_err());
        assert!(json(b"[1]", &["type"]).is_err());
        assert!(json(b"{", &["type"]).is_err());
    }
}
