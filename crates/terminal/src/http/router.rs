//! The route table: every path, the methods it answers, the operation behind each and who
//! may call it. The dispatcher, the `405 Allow` answers and the access rules all read this
//! one table, so a new route cannot be served without its access rule or its `Allow`.

use hyper::Method;

use super::auth::Audience;

/// One operation of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Health,
    Identify,
    Enroll,
    EnrollJson,
    Punch,
    Records,
    Users,
    ResetUsers,
    User,
    DeleteUser,
    ForgetLearned,
    Stream,
    Capture,
    Status,
    Metrics,
    OpenApi,
    Kiosk,
    AdminPage,
    Asset,
    Events,
    PunchMode,
    Session,
    SignIn,
    SignOut,
}

/// A path segment pattern: a literal, or a segment captured for the handler (named as
/// the OpenAPI document's path parameter).
#[derive(Debug, Clone, Copy)]
enum Seg {
    Lit(&'static str),
    Id(#[cfg_attr(not(test), allow(dead_code, reason = "read by the OpenAPI test"))] &'static str),
}

use Seg::{Id, Lit};

const ROUTES: &[(&[Seg], Method, Op, Audience)] = &[
    (
        &[Lit("health")],
        Method::GET,
        Op::Health,
        Audience::Monitoring,
    ),
    (
        &[Lit("identify")],
        Method::POST,
        Op::Identify,
        Audience::Door,
    ),
    (&[Lit("enroll")], Method::POST, Op::Enroll, Audience::Admin),
    (
        &[Lit("enroll"), Lit("json")],
        Method::POST,
        Op::EnrollJson,
        Audience::Admin,
    ),
    (
        &[Lit("attendance")],
        Method::GET,
        Op::Records,
        Audience::Admin,
    ),
    (
        &[Lit("attendance")],
        Method::POST,
        Op::Punch,
        Audience::Admin,
    ),
    (&[Lit("users")], Method::GET, Op::Users, Audience::Admin),
    (
        &[Lit("users")],
        Method::DELETE,
        Op::ResetUsers,
        Audience::Admin,
    ),
    (
        &[Lit("users"), Id("employee_id")],
        Method::GET,
        Op::User,
        Audience::Admin,
    ),
    (
        &[Lit("users"), Id("employee_id")],
        Method::DELETE,
        Op::DeleteUser,
        Audience::Admin,
    ),
    (
        &[Lit("users"), Id("employee_id"), Lit("learned")],
        Method::DELETE,
        Op::ForgetLearned,
        Audience::Admin,
    ),
    (
        &[Lit("stream.mjpeg")],
        Method::GET,
        Op::Stream,
        Audience::Screen,
    ),
    (
        &[Lit("capture")],
        Method::GET,
        Op::Capture,
        Audience::Screen,
    ),
    (&[Lit("status")], Method::GET, Op::Status, Audience::Screen),
    (
        &[Lit("metrics")],
        Method::GET,
        Op::Metrics,
        Audience::Screen,
    ),
    (
        &[Lit("openapi.json")],
        Method::GET,
        Op::OpenApi,
        Audience::Monitoring,
    ),
    (&[], Method::GET, Op::Kiosk, Audience::Page),
    (&[Lit("admin")], Method::GET, Op::AdminPage, Audience::Page),
    (
        &[Lit("assets"), Id("name")],
        Method::GET,
        Op::Asset,
        Audience::Page,
    ),
    (&[Lit("events")], Method::GET, Op::Events, Audience::Screen),
    (
        &[Lit("punch-mode")],
        Method::POST,
        Op::PunchMode,
        Audience::Screen,
    ),
    (&[Lit("session")], Method::GET, Op::Session, Audience::Page),
    (&[Lit("session")], Method::POST, Op::SignIn, Audience::Page),
    (
        &[Lit("session")],
        Method::DELETE,
        Op::SignOut,
        Audience::Page,
    ),
];

/// A request matched against the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved<'a> {
    Found {
        op: Op,
        audience: Audience,
        /// The `{id}` segment, if the route has one.
        id: Option<&'a str>,
    },
    /// A known path, another method: the methods it does answer, for `Allow`, and who
    /// the path is for (every method of a path has the same audience).
    MethodNotAllowed {
        allow: String,
        audience: Audience,
    },
    NotFound,
}

fn matches<'a>(pattern: &[Seg], segments: &[&'a str]) -> Option<Option<&'a str>> {
    if pattern.len() != segments.len() {
        return None;
    }
    let mut id = None;
    for (p, s) in pattern.iter().zip(segments) {
        match p {
            Lit(l) if l == s => {}
            Lit(_) => return None,
            Id(_) => id = Some(*s),
        }
    }
    Some(id)
}

/// Matches a path (without `/v1`, split on `/`) and method against the table.
pub(crate) fn resolve<'a>(segments: &[&'a str], method: &Method) -> Resolved<'a> {
    let mut allowed: Vec<&str> = Vec::new();
    let mut path_audience = Audience::Admin;
    for (pattern, m, op, audience) in ROUTES {
        let Some(id) = matches(pattern, segments) else {
            continue;
        };
        if m == method {
            return Resolved::Found {
                op: *op,
                audience: *audience,
                id,
            };
        }
        allowed.push(m.as_str());
        path_audience = *audience;
    }
    if allowed.is_empty() {
        Resolved::NotFound
    } else {
        Resolved::MethodNotAllowed {
            allow: allowed.join(", "),
            audience: path_audience,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(path: &[&str], m: Method) -> (Op, Audience, Option<String>) {
        match resolve(path, &m) {
            Resolved::Found { op, audience, id } => (op, audience, id.map(str::to_owned)),
            other => panic!("{path:?} {m}: {other:?}"),
        }
    }

    #[test]
    fn every_operation_has_one_route_and_an_audience() {
        assert_eq!(
            found(&["health"], Method::GET),
            (Op::Health, Audience::Monitoring, None)
        );
        assert_eq!(
            found(&["identify"], Method::POST),
            (Op::Identify, Audience::Door, None)
        );
        assert_eq!(
            found(&["users", "EMP001"], Method::DELETE),
            (Op::DeleteUser, Audience::Admin, Some("EMP001".into()))
        );
        for (path, m) in [
            (&["enroll"][..], Method::POST),
            (&["enroll", "json"], Method::POST),
            (&["users"], Method::GET),
            (&["users"], Method::DELETE),
            (&["users", "x"], Method::GET),
            (&["attendance"], Method::POST),
            (&["attendance"], Method::GET),
        ] {
            assert_eq!(found(path, m.clone()).1, Audience::Admin, "{path:?} {m}");
        }
        for path in ["stream.mjpeg", "capture", "status", "metrics"] {
            assert_eq!(found(&[path], Method::GET).1, Audience::Screen, "{path}");
        }
        let mut ops: Vec<String> = ROUTES.iter().map(|r| format!("{:?}", r.2)).collect();
        ops.sort();
        ops.dedup();
        assert_eq!(ops.len(), ROUTES.len(), "an operation served twice");
    }

    /// The route's path as the OpenAPI document writes it.
    fn documented_path(pattern: &[Seg]) -> String {
        let path: String = pattern
            .iter()
            .map(|s| match s {
                Lit(l) => format!("/{l}"),
                Id(name) => format!("/{{{name}}}"),
            })
            .collect();
        if path.is_empty() { "/".into() } else { path }
    }

    #[test]
    fn every_route_is_in_the_openapi_document_and_nothing_else_is() {
        let doc: serde_json::Value =
            serde_json::from_str(crate::http::routes::openapi::DOCUMENT).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().expect("paths");
        for (pattern, method, op, _) in ROUTES {
            let path = documented_path(pattern);
            let m = method.as_str().to_lowercase();
            assert!(
                paths.get(&path).and_then(|p| p.get(&m)).is_some(),
                "{op:?}: {} {path} is not documented",
                method.as_str()
            );
            // The /v1 twin names the same path item.
            let pointer = format!("#/paths/{}", path.replace('/', "~1"));
            assert_eq!(
                paths.get(&format!("/v1{path}")).map(|p| &p["$ref"]),
                Some(&serde_json::Value::from(pointer)),
                "{op:?}: /v1{path}"
            );
        }
        // Nothing is documented that is not served.
        let verbs = ["get", "put", "post", "delete", "patch", "head", "options"];
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                panic!("{path}: not an object");
            };
            let bare = path.strip_prefix("/v1").unwrap_or(path);
            for verb in item.keys().filter(|k| verbs.contains(&k.as_str())) {
                let served = ROUTES.iter().any(|(p, m, _, _)| {
                    documented_path(p) == bare && m.as_str().eq_ignore_ascii_case(verb)
                });
                assert!(served, "{verb} {path} is documented but not served");
            }
        }
        // Every reason code and quality issue, and no other.
        let listed = |name: &str| -> Vec<String> {
            doc["components"]["schemas"][name]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{name} enum"))
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect()
        };
        let reasons: Vec<String> = attendance_core::reason::Reason::iter()
            .map(|r| r.as_str().to_owned())
            .collect();
        assert_eq!(listed("Reason"), reasons);
        let issues: Vec<String> = attendance_core::reason::QualityIssue::iter()
            .map(|q| q.as_str().to_owned())
            .collect();
        assert_eq!(listed("QualityIssue"), issues);
    }

    #[test]
    fn wrong_methods_list_the_right_ones_and_unknown_paths_are_not_found() {
        let not_allowed = |allow: &str, audience| Resolved::MethodNotAllowed {
            allow: allow.into(),
            audience,
        };
        assert_eq!(
            resolve(&["attendance"], &Method::PUT),
            not_allowed("GET, POST", Audience::Admin)
        );
        assert_eq!(
            resolve(&["users", "x"], &Method::POST),
            not_allowed("GET, DELETE", Audience::Admin)
        );
        assert_eq!(
            resolve(&["health"], &Method::POST),
            not_allowed("GET", Audience::Monitoring)
        );
        // Every method of a path is for the same audience.
        for (p, _, _, a) in ROUTES {
            for (q, _, _, b) in ROUTES {
                if format!("{p:?}") == format!("{q:?}") {
                    assert_eq!(a, b, "{p:?}");
                }
            }
        }
        assert_eq!(
            resolve(&["users", "x", "y"], &Method::GET),
            Resolved::NotFound
        );
        assert_eq!(
            resolve(&[], &Method::POST),
            not_allowed("GET", Audience::Page)
        );
        assert_eq!(resolve(&["v2"], &Method::GET), Resolved::NotFound);
        assert_eq!(
            resolve(&["enroll", "xml"], &Method::POST),
            Resolved::NotFound
        );
    }
}
