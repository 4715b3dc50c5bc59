//! A fleet of doors: three (then four) real `attendanced` processes, one Mosquitto, one
//! `attendance-uplink` and MariaDB on loopback. Enrol anywhere, recognised everywhere;
//! ids never collide; delete anywhere, erased everywhere; a face learned at one door is
//! learned at all.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::fleet::*;
use common::wait_until;
use hyper::StatusCode;
use mysql_async::prelude::Queryable;

#[tokio::test]
async fn enrol_anywhere_recognised_everywhere_deleted_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    // Bound, not `..`: a dropped Uplink is a stopped one.
    let common::centre::Centre {
        mut mq,
        db,
        pool,
        uplink: _uplink,
    } = centre(dir.path()).await;
    let doors: Vec<Daemon> = ["A", "B", "C"]
        .iter()
        .map(|d| door(dir.path(), &mq, d))
        .collect();
    let (a, b, c) = (&doors[0], &doors[1], &doors[2]);

    // Enrol at A: B and C recognise the person from another photo within 5 s.
    let alice = enrol(a.client(), "홍길동", P2.0).await;
    assert_eq!(alice, "hq-A-001", "a fleet id names its door");
    let enrolled = Instant::now();
    for d in [b, c] {
        until_recognised(d, P2.1, Some(&alice), Duration::from_secs(5)).await;
    }
    println!(
        "enrolled at A, recognised at B and C after {:?}",
        enrolled.elapsed()
    );
    let h = health(b).await;
    assert_eq!(h["roster"]["revision"], h["roster"]["head"], "{h}");
    assert!(h["roster"]["revision"].as_u64().unwrap() >= 1, "{h}");

    // A and B enrol while the broker is down: distinct ids, and both people reach all
    // three doors once it is back.
    mq.stop();
    let bob = enrol(a.client(), "김철수", P3.0).await;
    let carol = enrol(b.client(), "이영희", P4.0).await;
    assert_ne!(bob, carol);
    assert_eq!((bob.as_str(), carol.as_str()), ("hq-A-002", "hq-B-001"));
    mq.restart();
    for d in &doors {
        until_recognised(d, P3.1, Some(&bob), Duration::from_secs(30)).await;
        until_recognised(d, P4.1, Some(&carol), Duration::from_secs(30)).await;
    }

    // The centre has everyone's name for dashboards.
    let mut conn = pool.get_conn().await.unwrap();
    let names: Vec<(String, String)> = conn
        .query("SELECT employee_id, name FROM users ORDER BY employee_id")
        .await
        .unwrap();
    assert_eq!(
        names,
        vec![
            (alice.clone(), "홍길동".to_owned()),
            (bob.clone(), "김철수".to_owned()),
            (carol.clone(), "이영희".to_owned()),
        ]
    );

    // Delete at B: unknown at A and C, no file of the person anywhere, nothing central
    // but the tombstone.
    let r = b.client().delete(&format!("/users/{alice}")).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    for d in [a, c] {
        until_recognised(d, P2.1, None, Duration::from_secs(10)).await;
        wait_until("the user gone", Duration::from_secs(10), || async {
            (d.client().get(&format!("/users/{alice}")).await.status == StatusCode::NOT_FOUND)
                .then_some(())
        })
        .await;
    }
    for d in &doors {
        assert_eq!(files_named(&d.data_dir, &alice), Vec::<String>::new());
    }
    let left: Vec<(String, i64)> = conn
        .query(format!(
            "SELECT 'faces', COUNT(*) FROM roster_faces WHERE employee_id = '{alice}'
             UNION ALL SELECT 'people', COUNT(*) FROM roster_people WHERE employee_id = '{alice}'
             UNION ALL SELECT 'users', COUNT(*) FROM users WHERE employee_id = '{alice}'
             UNION ALL SELECT 'named changes', COUNT(*) FROM roster_changes
                 WHERE employee_id = '{alice}' AND name IS NOT NULL"
        ))
        .await
        .unwrap();
    assert!(left.iter().all(|(_, n)| *n == 0), "{left:?}");
    let punches: i64 = conn
        .query_first(format!(
            "SELECT COUNT(*) FROM attendance WHERE employee_id = '{alice}'"
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(punches > 0, "attendance rows stay");

    // HR imports a CSV centrally: bad rows reported by line, the rest enrolled, and the
    // doors recognise them within a few seconds (the uplink polls for heads it did not
    // write itself).
    let faces = common::faces_dir().join("dev");
    let csv = dir.path().join("staff.csv");
    std::fs::write(
        &csv,
        format!(
            "employee_id,name,photo\nE500,박민수,{}\nE501,No Face,_negatives/no_face_chart.jpg\n\
             E502,Missing,nowhere.jpg\nE503,정수진,{}\nbad id,x,{}\n",
            P5.0, P6.0, P5.0
        ),
    )
    .unwrap();
    let (ok, text) = roster_cli(
        &mq,
        &db,
        &[
            "import",
            csv.to_str().unwrap(),
            "--photos",
            faces.to_str().unwrap(),
        ],
    );
    assert!(!ok, "refused rows make the import fail: {text}");
    assert!(text.contains("2 enrolled, 3 rows not imported"), "{text}");
    for line in [
        "line 3: not imported",
        "line 4: not imported",
        "line 6: not imported",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    until_recognised(a, P5.1, Some("E500"), Duration::from_secs(10)).await;
    until_recognised(c, P6.1, Some("E503"), Duration::from_secs(10)).await;
    let (ok, text) = roster_cli(&mq, &db, &["list"]);
    assert!(ok, "{text}");
    for id in ["E500", "E503", bob.as_str(), carol.as_str()] {
        assert!(text.contains(id), "{id} not listed: {text}");
    }
    assert!(!text.contains(&alice), "{text}");
    let (ok, text) = roster_cli(&mq, &db, &["delete", "E503"]);
    assert!(ok, "{text}");
    until_recognised(c, P6.1, None, Duration::from_secs(10)).await;
    let (ok, text) = roster_cli(&mq, &db, &["delete", "E503"]);
    assert!(!ok && text.contains("no person E503"), "{text}");

    // A fourth door installed now receives the whole roster; a fifth with another
    // embedder re-embeds every face from its crop.
    let d = door(dir.path(), &mq, "D");
    until_recognised(&d, P3.1, Some(&bob), Duration::from_secs(10)).await;
    until_recognised(&d, P4.1, Some(&carol), Duration::from_secs(10)).await;
    until_recognised(&d, P5.1, Some("E500"), Duration::from_secs(10)).await;
    assert_eq!(who(d.client(), P2.1).await, None);
    let users = d.client().get("/users").await.json();
    assert_eq!(users["count"], 3, "{users}");
    let mut env = door_env(&mq, "E");
    env.push(("ATTENDANCED_FACE__EMBEDDER".into(), "hog".into()));
    env.push((
        "ATTENDANCED_FACE__IDENTIFY_BEYOND_LIMIT".into(),
        "true".into(),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let e = Daemon::start(&dir.path().join("E"), &env);
    let h = wait_until("door E caught up", Duration::from_secs(20), || async {
        let h = health(&e).await;
        (h["roster"]["behind"] == 0 && h["people"] == 3).then_some(h)
    })
    .await;
    assert_eq!(h["embedder"], "hog-v1");
    assert_eq!(h["cannot_recognise"]["count"], 0, "{h}");
    let users = e.client().get("/users").await.json();
    for u in users["users"].as_array().unwrap() {
        assert_eq!(
            u["embedders"],
            serde_json::json!(["hog-v1"]),
            "re-embedded: {u}"
        );
    }
}

/// What a killed door's store holds: (roster revision, users, templates whose files
/// are all there, templates with a file missing, template files no row names).
fn store_state(data_dir: &Path) -> (i64, i64, usize, usize, usize) {
    let db = rusqlite::Connection::open(data_dir.join("attendance.sqlite3")).unwrap();
    let revision: i64 = db
        .query_row("SELECT revision FROM roster_state", [], |r| r.get(0))
        .unwrap();
    let users: i64 = db
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .unwrap();
    let mut stmt = db.prepare("SELECT vector_path FROM templates").unwrap();
    let files: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let present = files
        .iter()
        .filter(|f| data_dir.join("encodings").join(f).is_file())
        .count();
    let orphans = template_files(data_dir)
        .iter()
        .filter(|f| !files.contains(f))
        .count();
    (revision, users, present, files.len() - present, orphans)
}

/// A killed door's store holds the roster before or after a page, never between:
/// (revision, orphan files).
fn killed_door_state(data_dir: &Path) -> (i64, usize) {
    let (revision, users, present, missing, orphans) = store_state(data_dir);
    assert_eq!(missing, 0, "a template row without its file");
    assert!(
        (revision == 0 && users == 0) || (revision > 0 && users == 12 && present == 24),
        "half a page: revision {revision}, {users} users, {present} templates"
    );
    (revision, orphans)
}

/// The names of the files in a door's template folder.
fn template_files(data_dir: &Path) -> Vec<String> {
    std::fs::read_dir(data_dir.join("encodings")).map_or(Vec::new(), |d| {
        d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
            .collect()
    })
}

#[tokio::test]
async fn a_door_killed_while_applying_the_roster_recovers_to_the_right_state() {
    let dir = tempfile::tempdir().unwrap();
    let common::centre::Centre {
        mq,
        db,
        uplink: _uplink,
        ..
    } = centre(dir.path()).await;
    // Twelve people enrolled centrally, each with two photos.
    let faces = common::faces_dir().join("dev");
    let mut csv = String::from("employee_id,name,photo\n");
    for p in 1..=12 {
        for photo in [2, 4] {
            csv.push_str(&format!("E{p:03},person {p},caltech_p{p:02}/{photo}.jpg\n"));
        }
    }
    std::fs::write(dir.path().join("staff.csv"), csv).unwrap();
    let (ok, text) = roster_cli(
        &mq,
        &db,
        &[
            "import",
            dir.path().join("staff.csv").to_str().unwrap(),
            "--photos",
            faces.to_str().unwrap(),
        ],
    );
    assert!(ok, "{text}");

    // A new door, killed with SIGKILL once ready (before it has the roster) and again as
    // soon as its first template file appears (while it writes the page, before the
    // commit). After every kill the store holds the roster before or after the page,
    // never between. A kill must land mid-page (files written, not committed: orphans
    // the next start sweeps); a door that was quicker than the watcher is replaced by a
    // new one, up to 8 times.
    let mut kills = Vec::new();
    let mut landed_mid_page = false;
    let mut attempt = 0;
    let k = loop {
        let mut k = door(dir.path(), &mq, &format!("K{attempt}"));
        k.kill();
        kills.push(killed_door_state(&k.data_dir));
        k.restart();
        let deadline = Instant::now() + Duration::from_secs(30);
        while template_files(&k.data_dir).is_empty() {
            assert!(Instant::now() < deadline, "no template file within 30 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        k.kill();
        let (revision, orphans) = killed_door_state(&k.data_dir);
        kills.push((revision, orphans));
        landed_mid_page |= revision == 0 && orphans > 0;
        k.restart();
        attempt += 1;
        if landed_mid_page || attempt == 8 {
            break k;
        }
    };
    println!("(roster revision, orphan files) at each kill: {kills:?}");
    assert!(
        landed_mid_page,
        "no kill landed while a page was written: {kills:?}"
    );
    let h = wait_until("the door caught up", Duration::from_secs(20), || async {
        let h = health(&k).await;
        (h["roster"]["behind"] == 0 && h["people"] == 12).then_some(h)
    })
    .await;
    assert_eq!(h["roster"]["revision"], 24, "one change per CSV row: {h}");
    let (_, users, present, missing, _) = store_state(&k.data_dir);
    assert_eq!((users, present, missing), (12, 24, 0));
    let files = std::fs::read_dir(k.data_dir.join("encodings"))
        .unwrap()
        .count();
    assert_eq!(files, 24, "no stray template file");
    until_recognised(&k, P5.1, Some("E005"), Duration::from_secs(5)).await;
}

/// Learned templates of `id` (and all of their templates) a door holds.
fn learned_at(data_dir: &Path, id: &str) -> (i64, i64) {
    let db = rusqlite::Connection::open(data_dir.join("attendance.sqlite3")).unwrap();
    db.query_row(
        "SELECT COALESCE(SUM(learned), 0), COUNT(*) FROM templates WHERE employee_id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

#[tokio::test]
async fn a_face_learned_at_one_door_is_learned_at_every_door_and_erasable_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let common::centre::Centre {
        mq,
        pool,
        db: _db,
        uplink: _uplink,
    } = centre(dir.path()).await;
    // Door A's camera: the same person in five other photos, an empty doorway between
    // them (each a new appearance); door B has no camera. caltech_p08: most of its
    // photos are 0.28-0.33 from the enrolment photo, beyond half the threshold, so
    // they teach (another person's photos all within 0.25 of theirs would each be
    // redundant, and whether any teaches would be the replay's luck).
    let reel = dir.path().join("reel");
    std::fs::create_dir_all(&reel).unwrap();
    let chart = common::dev_photo("_negatives/no_face_chart.jpg");
    for p in 3..=7 {
        let photo = common::dev_photo(&format!("caltech_p08/{p}.jpg"));
        std::fs::copy(photo, reel.join(format!("{p:03}a.jpg"))).unwrap();
        std::fs::copy(&chart, reel.join(format!("{p:03}b.jpg"))).unwrap();
    }
    let mut env = door_env(&mq, "A");
    env.push(("ATTENDANCED_CAMERA__REPLAY_HOLD_MS".into(), "1200".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let spec = format!("replay:{}", reel.display());
    let a = Daemon::start_with(&dir.path().join("A"), &env, &["--camera", &spec]);
    let b = door(dir.path(), &mq, "B");
    let alice = enrol(a.client(), "홍길동", "caltech_p08/2.jpg").await;

    // A learns from the walk-ups; the centre and B follow, learned face for learned face.
    let central = |pool: mysql_async::Pool, id: String| async move {
        let mut c = pool.get_conn().await.unwrap();
        let n: Option<(i64, i64)> = c
            .exec_first(
                "SELECT COALESCE(SUM(learned), 0), COUNT(*) FROM roster_faces WHERE employee_id = ?",
                (id,),
            )
            .await
            .unwrap();
        n.unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let (at_a, centre_has) = loop {
        let at_a = learned_at(&a.data_dir, &alice);
        let (at_b, centre_has) = (
            learned_at(&b.data_dir, &alice),
            central(pool.clone(), alice.clone()).await,
        );
        if at_a.0 >= 1 && at_b == at_a && centre_has == at_a {
            break (at_a, centre_has);
        }
        assert!(
            Instant::now() < deadline,
            "(learned, templates) at A {at_a:?}, B {at_b:?}, centre {centre_has:?}; A's log: {}",
            a.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let metrics = a.client().get("/metrics").await.body;
    let metrics = String::from_utf8_lossy(&metrics);
    let lessons: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("attendanced_walk_up_lessons_total"))
        .collect();
    println!("learned at A {at_a:?} (learned, all), centre {centre_has:?}; {lessons:?}");
    assert!(
        at_a.0 <= attendance::face::learn::LEARNED as i64,
        "at most {} learned per person: {at_a:?}",
        attendance::face::learn::LEARNED
    );
    let taught: i64 = lessons
        .iter()
        .find(|l| l.contains("state=\"learned\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("lessons counted");
    assert!(taught >= at_a.0, "{lessons:?}");

    // HR erases the lessons at B (the admin page's button): they go at B, centrally and
    // at A (a retirement every door applies); the enrolment stays everywhere.
    let users = b.client().get("/users").await.json();
    assert_eq!(users["users"][0]["learned"], at_a.0, "{users}");
    let r = b.client().delete(&format!("/users/{alice}/learned")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["templates_deleted"], at_a.0);
    let enrolment_only = (0, at_a.1 - at_a.0);
    wait_until("unlearned everywhere", Duration::from_secs(20), || async {
        let everywhere = [
            learned_at(&a.data_dir, &alice),
            learned_at(&b.data_dir, &alice),
            central(pool.clone(), alice.clone()).await,
        ];
        everywhere
            .iter()
            .all(|n| *n == enrolment_only)
            .then_some(())
    })
    .await;
    until_recognised(
        &a,
        "caltech_p08/1.jpg",
        Some(&alice),
        Duration::from_secs(5),
    )
    .await;

    // Erased at B: the person goes, at A and centrally.
    let r = b.client().delete(&format!("/users/{alice}")).await;
    assert_eq!(r.status, StatusCode::OK);
    wait_until("erased at A", Duration::from_secs(10), || async {
        (learned_at(&a.data_dir, &alice) == (0, 0)).then_some(())
    })
    .await;
    assert_eq!(central(pool.clone(), alice.clone()).await, (0, 0));
}
