//! The screen's access rules on the real daemon: sessions, the Origin rule for changing
//! requests, and what a page without a key may and may not do.

mod common;

use common::daemon::Daemon;
use common::door::*;
use hyper::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn sessions_csrf_and_the_screen_rules_refuse_what_they_should() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), false);
    let d = Daemon::start_with(
        &dir.path().join("data"),
        &[],
        &["--config", cfg.to_str().unwrap()],
    );
    let c = d.client();
    // Pages and the sign-in are public; they hold no key.
    for path in [
        "/",
        "/admin",
        "/assets/kiosk.js",
        "/assets/style.css",
        "/v1/",
    ] {
        let r = c.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let text = String::from_utf8_lossy(&r.body).to_string();
        assert!(!text.contains(ADMIN) && !text.contains(DEVICE), "{path}");
        assert!(r.headers.contains_key("content-security-policy"), "{path}");
    }
    assert_eq!(c.get("/assets/nope.js").await.status, StatusCode::NOT_FOUND);
    // The screen's feed: a key (or the terminal itself, off here).
    assert_eq!(c.events("/events", &[]).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        c.events("/events", &[("x-api-key", DEVICE)]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        c.events("/events?lang=fr", &[("x-api-key", DEVICE)])
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let state = c.get("/session").await.json();
    assert_eq!(
        state,
        json!({"signed_in": false, "csrf": null, "keys_required": true})
    );
    // Signing in: a wrong key 401, a device key 403, the admin key a cookie.
    let sign_in = |key: &str| json!({ "key": key });
    assert_eq!(
        c.post_json("/session", &sign_in("nope")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.post_json("/session", &sign_in(DEVICE)).await.status,
        StatusCode::FORBIDDEN
    );
    let r = c.post_json("/session", &sign_in(ADMIN)).await;
    assert_eq!(r.status, StatusCode::OK);
    let set_cookie = r.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let csrf = r.json()["csrf"].as_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let with_cookie = [("cookie", cookie.as_str())];
    // Reads with the cookie; writes need the CSRF token too.
    assert_eq!(
        c.request(Method::GET, "/users", &with_cookie, vec![])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(c.get("/users").await.status, StatusCode::UNAUTHORIZED);
    let json_ct = ("content-type", "application/json");
    let mode = serde_json::to_vec(&json!({"mode": "OUT"})).unwrap();
    let r = c
        .request(
            Method::POST,
            "/punch-mode",
            &[with_cookie[0], json_ct],
            mode.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("X-CSRF-Token")
    );
    let wrong = [with_cookie[0], json_ct, ("x-csrf-token", "0000")];
    assert_eq!(
        c.request(Method::POST, "/punch-mode", &wrong, mode.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let right = [with_cookie[0], json_ct, ("x-csrf-token", csrf.as_str())];
    let r = c.request(Method::POST, "/punch-mode", &right, mode).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"v": 1, "mode": "OUT", "chosen": true}));
    // A forged or ended session is no session.
    let forged = [("cookie", "att_session=0123456789abcdef")];
    assert_eq!(
        c.request(Method::GET, "/users", &forged, vec![])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let r = c
        .request(Method::DELETE, "/session", &with_cookie, vec![])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        c.request(Method::GET, "/users", &with_cookie, vec![])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // The CSV export: a header row, the admin's only.
    let r = c
        .request(
            Method::GET,
            "/attendance?format=csv&from=2026-01-01&to=2026-12-31",
            &admin_headers(),
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&r.body).starts_with("id,event_id,employee_id,type,"));
    assert_eq!(
        c.get("/attendance?format=csv").await.status,
        StatusCode::UNAUTHORIZED
    );
}
