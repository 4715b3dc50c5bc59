//! The door's screen through the real daemon: walk-up punching, the live feed
//! (`/events`), the kiosk and admin pages in headless Chromium, and how browsers are let
//! in (sessions, CSRF, the terminal itself). Screenshots go to `$KIOSK_SCREENSHOTS`
//! (docs/screens holds the committed ones), else the test's temp folder.

mod common;

use std::time::{Duration, Instant};

use common::browser::Browser;
use common::door::*;
use common::metrics::{scrape, series};
use common::wait_until;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

/// The kiosk card's outcome and title.
const CARD: &str = "(() => { const c = document.getElementById('card'); \
    return c.hidden ? null : { outcome: c.dataset.outcome, \
    title: document.getElementById('card-title').textContent, \
    body: document.getElementById('card-body').textContent }; })()";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kiosk_shows_who_walked_up_punches_them_once_and_shows_strangers() {
    let dir = tempfile::tempdir().unwrap();
    // Nobody (8 s), the enrolled person standing (12 s), nobody (2 s), a stranger (6 s),
    // nobody; then again. The camera shows other photos than the enrolment one.
    let mut photos = vec![CHART; 4];
    photos.extend(["caltech_p02/3.jpg"; 6]);
    photos.push(CHART);
    photos.extend(["_unenrolled/caltech_u01/1.jpg"; 3]);
    photos.push(CHART);
    let mut d = door(dir.path(), &photos).await;
    let c = d.client();
    let started = Instant::now();
    let r = enrol_hong(&c).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        started.elapsed() < Duration::from_millis(7000),
        "enrolled before the person walks up"
    );
    // The page holds no key.
    let page = c.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = String::from_utf8_lossy(&page.body).to_string();
    assert!(!html.contains(ADMIN) && !html.contains(DEVICE));
    // The test's own view of the feed: when the person appears (guidance ready).
    let (status, feed) = c.events("/events", &[]).await;
    assert_eq!(status, StatusCode::OK, "the terminal itself needs no key");
    let mut feed = feed.unwrap();
    let hello = feed.next(Duration::from_secs(5)).await.expect("hello");
    assert_eq!(hello.0, "hello");
    assert_eq!(hello.1["walk_up"], true);
    assert_eq!(hello.1["locale"], "ko");

    let addr = c.addr;
    let kiosk = tokio::task::spawn_blocking(move || {
        let browser = Browser::launch();
        let mut page = browser.page(1024, 600);
        page.goto(&format!("http://{addr}/"));
        page.wait_for(
            "document.getElementById('link').dataset.state === 'online'",
            Duration::from_secs(10),
            "the kiosk connected to the feed",
        );
        (browser, page)
    })
    .await
    .unwrap();
    let ready = feed
        .until("guidance", Duration::from_secs(20), |g| {
            g["code"] == "ready"
        })
        .await
        .expect("the person walked up");
    let appeared = Instant::now();
    assert_eq!(ready["message"], "인식 준비 완료");
    let (browser, mut page, card) = tokio::task::spawn_blocking(move || {
        let (browser, mut page) = kiosk;
        let card = page.wait_for(
            &format!(
                "(() => {{ const c = {CARD}; return c && c.outcome === 'punched' ? c : null; }})()"
            ),
            Duration::from_secs(3),
            "the result card names the person within 3 s of them appearing",
        );
        (browser, page, card)
    })
    .await
    .unwrap();
    let shown_after = appeared.elapsed();
    assert!(
        card["title"].as_str().unwrap().contains("홍길동님 출근"),
        "{card}"
    );
    assert!(
        card["body"].as_str().unwrap().len() == 8,
        "HH:MM:SS: {card}"
    );
    let shots = screenshots();
    let page = tokio::task::spawn_blocking(move || {
        for (w, h) in [(1024, 600), (800, 480), (1080, 1920)] {
            page.resize(w, h);
            // Laid out at the new size before it is measured.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while page.eval(&format!("innerWidth === {w} && innerHeight === {h}")) != json!(true)
            {
                assert!(std::time::Instant::now() < deadline, "{w}x{h}: not resized");
                std::thread::yield_now();
            }
            // Everything that matters is on screen at every size.
            let fits = page.eval(
                "['clock','card','modes','link'].every(id => { \
                   const r = document.getElementById(id).getBoundingClientRect(); \
                   return r.width > 0 && r.bottom <= innerHeight + 1 && r.right <= innerWidth + 1; })",
            );
            assert_eq!(fits, json!(true), "{w}x{h}: an element is off screen");
            page.screenshot(&shots.join(format!("kiosk-{w}x{h}.png")));
        }
        page.resize(1024, 600);
        page
    })
    .await
    .unwrap();
    eprintln!("card shown {shown_after:?} after the person appeared");

    // The stranger: an unknown card with what to do.
    let mut page = page;
    let (mut page, unknown) = tokio::task::spawn_blocking(move || {
        let card = page.wait_for(
            &format!(
                "(() => {{ const c = {CARD}; return c && c.outcome === 'unknown' ? c : null; }})()"
            ),
            Duration::from_secs(25),
            "the unknown card",
        );
        page.screenshot(&screenshots().join("kiosk-unknown-1024x600.png"));
        (page, card)
    })
    .await
    .unwrap();
    assert_eq!(unknown["title"], "등록되지 않은 얼굴입니다", "{unknown}");
    assert!(
        unknown["body"].as_str().unwrap().contains("관리자"),
        "{unknown}"
    );

    // 12 s of standing was one punch, the 6 s stranger one unknown row.
    let rows = rows(&c).await;
    let punches: Vec<&Value> = rows
        .iter()
        .filter(|r| r["employee_id"] == "EMP001")
        .collect();
    assert_eq!(punches.len(), 1, "{rows:?}");
    assert_eq!(punches[0]["source"], "camera");
    assert_eq!(punches[0]["type"], "IN");
    let unknowns = rows.iter().filter(|r| r["reason"] == "unknown").count();
    assert_eq!(unknowns, 1, "{rows:?}");
    // The feed told the same story.
    let mut decisions = Vec::new();
    while let Some((event, v)) = feed.next(Duration::from_millis(200)).await {
        if event == "decision" {
            decisions.push((v["outcome"].clone(), v["employee_id"].clone()));
        }
    }
    assert_eq!(
        decisions,
        [
            (json!("punched"), json!("EMP001")),
            (json!("failed"), Value::Null)
        ]
    );
    drop(feed);

    // The daemon dies and comes back: the page says so, then carries on by itself
    // (the feed reconnects, the picture is asked for again).
    let before = page.eval("document.getElementById('stream').src");
    d.restart();
    tokio::task::spawn_blocking(move || {
        page.wait_for(
            "document.getElementById('link').dataset.state === 'online' &&              document.getElementById('stream').src.includes('?t=')",
            Duration::from_secs(20),
            "the kiosk reconnected after the restart",
        );
        let after = page.eval("document.getElementById('stream').src");
        assert_ne!(before, after, "the picture was asked for again");
        drop(browser);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_page_enrols_from_the_camera_and_then_the_kiosk_knows_them() {
    let dir = tempfile::tempdir().unwrap();
    // Nobody (4 s), a person standing (14 s: long enough to be tried, then enrolled
    // while still there), nobody (4 s); looping.
    let mut photos = vec![CHART; 2];
    photos.extend([
        "caltech_p02/3.jpg",
        "caltech_p02/4.jpg",
        "caltech_p02/5.jpg",
        "caltech_p02/6.jpg",
        "caltech_p02/7.jpg",
        "caltech_p02/8.jpg",
        "caltech_p02/9.jpg",
    ]);
    photos.extend([CHART; 2]);
    let d = door(dir.path(), &photos).await;
    let c = d.client();
    let addr = c.addr;
    let shots = screenshots();
    tokio::task::spawn_blocking(move || {
        let browser = Browser::launch();
        let mut admin = browser.page(1280, 900);
        admin.goto(&format!("http://{addr}/admin"));
        admin.wait_for(
            "!document.getElementById('signin').hidden",
            Duration::from_secs(10),
            "the sign-in form",
        );
        // A wrong key is refused with the API's message.
        admin.eval(
            "document.getElementById('key').value = 'wrong'; \
             document.getElementById('signin-form').requestSubmit(); true",
        );
        admin.wait_for(
            "document.getElementById('signin-notice').textContent",
            Duration::from_secs(5),
            "the refusal",
        );
        // The page's own requests without the session are refused.
        let refused = admin.eval("fetch('/users').then(r => r.status)");
        assert_eq!(refused, json!(401));
        admin.eval(&format!(
            "document.getElementById('key').value = '{ADMIN}'; \
             document.getElementById('signin-form').requestSubmit(); true"
        ));
        admin.wait_for(
            "!document.getElementById('console').hidden && document.getElementById('people-count').textContent === '(0)'",
            Duration::from_secs(10),
            "signed in, nobody enrolled",
        );
        // The cookie is out of the page's reach; the key is not kept.
        assert_eq!(admin.eval("document.cookie"), json!(""));
        assert_eq!(admin.eval("document.getElementById('key').value"), json!(""));
        // A changing request with the cookie but without the CSRF token: refused.
        let csrf_less = admin.eval(
            "fetch('/users/EMP404', { method: 'DELETE' }).then(r => r.status)",
        );
        assert_eq!(csrf_less, json!(403));
        let with_token = admin.eval(
            "fetch('/users/EMP404', { method: 'DELETE', headers: { 'X-CSRF-Token': csrf } }).then(r => r.status)",
        );
        assert_eq!(with_token, json!(404), "the session acts as the admin");
        // The kiosk tries the person standing there, says so, and punches nobody.
        let mut kiosk = browser.page(800, 480);
        kiosk.goto(&format!("http://{addr}/"));
        kiosk.wait_for(
            "document.getElementById('guidance').dataset.code === 'trying' && \
             document.getElementById('guidance').textContent.includes('카메라를 바라봐')",
            Duration::from_secs(30),
            "the kiosk says it is still trying",
        );
        // Enrol from the camera while the person stands there (guidance: ready).
        admin.eval("document.getElementById('enrol-name').value = '김철수'; true");
        admin.wait_for(
            "document.getElementById('guidance').dataset.kind === 'ok'",
            Duration::from_secs(20),
            "the camera sees the person",
        );
        admin.eval("document.getElementById('enrol-camera').click(); true");
        admin.wait_for(
            "document.getElementById('enrol-notice').dataset.kind === 'ok'",
            Duration::from_secs(15),
            "enrolled from the camera",
        );
        admin.wait_for(
            "document.querySelector('#people tr[data-employee-id=\"EMP001\"]')",
            Duration::from_secs(5),
            "the person in the list",
        );
        admin.screenshot(&shots.join("admin-1280x900.png"));
        // The kiosk knows them: at once if they are still being tried, else the next
        // time they walk up.
        let card = kiosk.wait_for(
            &format!("(() => {{ const c = {CARD}; return c && c.outcome === 'punched' ? c : null; }})()"),
            Duration::from_secs(30),
            "the kiosk recognises the newly enrolled person",
        );
        assert!(card["title"].as_str().unwrap().contains("김철수님"), "{card}");
        // Today's records and the CSV export on the admin page: the punch is in the
        // terminal's day (Seoul time here, not UTC).
        admin.eval("loadToday().then(() => true)");
        let today = admin.eval("document.getElementById('today').textContent");
        assert!(today.as_str().unwrap().contains("EMP001"), "{today}");
        let csv = admin.eval(
            "fetch('/attendance?' + new URLSearchParams({ ...localDays(today(), today()), format: 'csv' })).then(r => r.text())",
        );
        assert!(csv.as_str().unwrap().contains(",EMP001,"), "{csv}");
        // Signing out ends the session.
        admin.eval("document.getElementById('signout').click(); true");
        admin.wait_for(
            "!document.getElementById('signin').hidden",
            Duration::from_secs(10),
            "signed out",
        );
        assert_eq!(admin.eval("fetch('/users').then(r => r.status)"), json!(401));
    })
    .await
    .unwrap();
    let rows = rows(&c).await;
    assert!(
        rows.iter()
            .any(|r| r["employee_id"] == "EMP001" && r["source"] == "camera"),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_liveness_guard_a_photo_held_up_is_refused_not_punched() {
    let dir = tempfile::tempdir().unwrap();
    // Nobody (6 s), then a photo of an enrolled person held still in front of the camera.
    let mut photos = vec![CHART; 3];
    photos.extend(["caltech_p02/3.jpg"; 5]);
    let d = door_with(
        dir.path(),
        &photos,
        &[("ATTENDANCED_CAMERA__LIVENESS", "true")],
    )
    .await;
    let c = d.client();
    let r = enrol_hong(&c).await;
    assert_eq!(r.status, StatusCode::OK);
    let (_, feed) = c.events("/events", &[]).await;
    let mut feed = feed.expect("the feed");
    let refused = feed
        .until("decision", Duration::from_secs(25), |d| {
            d["reason"] == "not_live"
        })
        .await
        .expect("the walk-up decision refused the photo");
    assert_eq!(refused["outcome"], "failed");
    assert_eq!(
        refused["employee_id"],
        Value::Null,
        "a refused photo names nobody"
    );
    // Asked again (camera identification): still refused.
    let r = c
        .request(
            Method::POST,
            "/identify",
            &[("content-type", "application/json"), ("x-api-key", DEVICE)],
            serde_json::to_vec(&json!({ "type": "IN" })).unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["reason"], "not_live", "{}", r.json());
    // Standing there longer (the camera goes on analysing the same photo): no punch, and
    // the walk-up refusal recorded once.
    let analysed = async || {
        let text = scrape(&c).await;
        series(&text, "attendanced_camera_frames_analysed_total", &[])
    };
    let before = analysed().await;
    wait_until(
        "more frames of the photo analysed",
        Duration::from_secs(8),
        || async { (analysed().await >= before + 4.0).then_some(()) },
    )
    .await;
    let rows = rows(&c).await;
    assert!(rows.iter().all(|r| r["employee_id"].is_null()), "{rows:?}");
    // One from walk-up (once for the whole appearance), one from /identify.
    assert_eq!(
        rows.iter().filter(|r| r["reason"] == "not_live").count(),
        2,
        "{rows:?}"
    );
}
