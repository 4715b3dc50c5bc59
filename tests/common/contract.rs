//! Every answer the tests receive is checked against `docs/openapi.json`: its status is
//! documented for the operation, its media type too, and a JSON body validates against
//! the documented schema. Documentation and behaviour cannot drift apart unnoticed.
#![allow(dead_code)]

use std::cell::RefCell;

use hyper::{Method, StatusCode};
use serde_json::Value;

const BASE: &str = "file:///openapi.json";

struct Contract {
    doc: Value,
    compiler: boon::Compiler,
    schemas: boon::Schemas,
}

thread_local! {
    // boon's compiler is not `Send`: one per test thread.
    static CONTRACT: RefCell<Contract> = RefCell::new(load());
}

fn load() -> Contract {
    {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).expect(path))
            .expect("docs/openapi.json is JSON");
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V2020_12);
        compiler
            .add_resource(BASE, doc.clone())
            .expect("docs/openapi.json as a schema resource");
        Contract {
            doc,
            compiler,
            schemas: boon::Schemas::new(),
        }
    }
}

/// JSON pointer escaping of one token.
fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// The documented path template a request path falls under (without `/v1`).
fn template<'a>(paths: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a str> {
    let bare = path
        .strip_prefix("/v1")
        .filter(|p| p.starts_with('/'))
        .unwrap_or(path)
        .trim_end_matches('/');
    let segs: Vec<&str> = bare.split('/').filter(|s| !s.is_empty()).collect();
    paths.keys().map(String::as_str).find(|t| {
        if t.starts_with("/v1/") {
            return false;
        }
        let ts: Vec<&str> = t.split('/').filter(|s| !s.is_empty()).collect();
        ts.len() == segs.len()
            && ts
                .iter()
                .zip(&segs)
                .all(|(t, s)| (t.starts_with('{') && t.ends_with('}')) || t == s)
    })
}

/// Checks one answer; panics with what disagrees.
pub fn check(
    method: &Method,
    path: &str,
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) {
    CONTRACT.with_borrow_mut(|c| check_with(c, method, path, status, content_type, body));
}

fn check_with(
    c: &mut Contract,
    method: &Method,
    path: &str,
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) {
    let path = path.split('?').next().unwrap_or(path);
    if method == Method::OPTIONS {
        // The document's description: a CORS preflight on any path, 204 without a body.
        assert_eq!(status, StatusCode::NO_CONTENT, "OPTIONS {path}");
        assert!(body.is_empty(), "OPTIONS {path}: a body");
        return;
    }
    let doc = &c.doc;
    let paths = doc["paths"].as_object().expect("paths");
    let what = format!("{method} {path} → {}", status.as_u16());
    // An unknown path or method has no operation: its answer is the generic error.
    let schema_loc = match template(paths, path) {
        Some(t) if paths[t].get(method.as_str().to_lowercase()).is_some() => {
            let op_ptr = format!("/paths/{}/{}", token(t), method.as_str().to_lowercase());
            let responses = &doc.pointer(&op_ptr).expect("operation")["responses"];
            let code = status.as_u16().to_string();
            let Some(mut response) = responses.get(&code).or_else(|| responses.get("default"))
            else {
                panic!("{what}: status not documented for the operation");
            };
            let mut resp_ptr = format!("{op_ptr}/responses/{code}");
            if let Some(r) = response.get("$ref").and_then(Value::as_str) {
                resp_ptr = r.trim_start_matches('#').to_owned();
                response = doc.pointer(&resp_ptr).expect("response $ref resolves");
            }
            match response.get("content").and_then(Value::as_object) {
                None => {
                    assert!(body.is_empty(), "{what}: documented without a body");
                    return;
                }
                Some(content) => {
                    let media = content_type
                        .unwrap_or_else(|| panic!("{what}: no Content-Type"))
                        .split(';')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_owned();
                    assert!(
                        content.contains_key(&media),
                        "{what}: media type {media} not documented ({:?})",
                        content.keys().collect::<Vec<_>>()
                    );
                    if media != "application/json" {
                        return;
                    }
                    format!("{resp_ptr}/content/{}/schema", token(&media))
                }
            }
        }
        _ => {
            assert!(
                matches!(status.as_u16(), 401 | 404 | 405),
                "{what}: not a documented operation, yet answered {status}"
            );
            "/components/schemas/Error".to_owned()
        }
    };
    let instance: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what}: body is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    let Contract {
        compiler, schemas, ..
    } = c;
    let index = compiler
        .compile(&format!("{BASE}#{schema_loc}"), schemas)
        .unwrap_or_else(|e| panic!("{what}: schema {schema_loc} does not compile: {e}"));
    if let Err(e) = schemas.validate(&instance, index) {
        panic!(
            "{what}: the answer disagrees with docs/openapi.json ({schema_loc}): {e:#}\n{instance}"
        );
    }
}

/// Checks one `/events` payload against the schema the document names for its event:
/// the feed's per-event schema is a `oneOf` by `event`, each with its `data`'s
/// `contentSchema`.
pub fn check_event(event: &str, data: &Value) {
    CONTRACT.with_borrow_mut(|c| {
        let feed = "/paths/~1events/get/responses/200/content/text~1event-stream/schema/oneOf";
        let branches = c
            .doc
            .pointer(feed)
            .and_then(Value::as_array)
            .expect("the feed's per-event schema");
        let at = branches
            .iter()
            .position(|b| {
                b.pointer("/properties/event/const").and_then(Value::as_str) == Some(event)
            })
            .unwrap_or_else(|| panic!("event {event:?} is not documented"));
        let schema_loc = format!("{feed}/{at}/properties/data/contentSchema");
        let Contract {
            compiler, schemas, ..
        } = c;
        let index = compiler
            .compile(&format!("{BASE}#{schema_loc}"), schemas)
            .unwrap_or_else(|e| panic!("{schema_loc} does not compile: {e}"));
        if let Err(e) = schemas.validate(data, index) {
            panic!("event {event}: disagrees with docs/openapi.json ({schema_loc}): {e:#}\n{data}");
        }
    });
}
