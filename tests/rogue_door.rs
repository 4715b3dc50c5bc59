//! No door can harm another. An attacker holds door hq/R's broker account (the shipped
//! Mosquitto configuration and ACL in force), and a broken door sends garbage; MariaDB,
//! `attendance-uplink`, an honest door of hq and a door of site br are real. After every
//! case: both doors healthy and linked, a punch from br/X in MySQL within 10 s, site br's
//! roster untouched, and the rogue's message in `dead_letter` or a counted refusal.
//! docs/book "Security" has these cases as a table.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ciborium::Value;
use common::sites::{BR1, HQ1, Rogue, World};
use common::wait_until;
use common::wire::{
    batch, cbor, change, changes, delete_op, dlib_template, enrol_op, event, face, learned_face,
    map, template_bomb, text,
};
use rumqttc::QoS;

const EVENTS: &str = "attendance/hq/R/events";
const CHANGES: &str = "attendance/hq/R/roster_changes";
const SYNC: &str = "attendance/hq/R/roster_sync";

/// Sends `payload` on `topic` and waits until it is one more `dead_letter` row of hq/R.
async fn dead_lettered(w: &World, rogue: &Rogue, case: &str, topic: &str, payload: Vec<u8>) {
    let before = w.rogue_dead_letters().await;
    rogue.send(topic, payload).await;
    wait_until(case, Duration::from_secs(10), || async {
        (w.rogue_dead_letters().await == before + 1).then_some(())
    })
    .await;
}

/// Sends `payload` on `topic` and waits until the uplink counts a refusal for `reason`.
async fn refused(
    w: &World,
    rogue: &Rogue,
    case: &str,
    topic: &str,
    payload: Vec<u8>,
    reason: &str,
) {
    let before = w.refused(reason).await;
    rogue.send(topic, payload).await;
    wait_until(case, Duration::from_secs(10), || async {
        (w.refused(reason).await > before).then_some(())
    })
    .await;
}

fn connection_losses(w: &World) -> usize {
    w.uplink.log_text().matches("MQTT connection lost").count()
}

#[tokio::test]
async fn a_rogue_door_harms_no_other_door_and_no_other_site() {
    let w = World::start().await;
    let br = w.br_roster().await;
    let rogue = Rogue::connect(&w.mq, "hq-R", "hq-R");
    let losses = connection_losses(&w);

    // 0. The ACL: hq/R reads nothing of another door or site, and what it publishes on
    // their topics (a br punch, hq's roster head) is dropped by the broker.
    rogue
        .subscribe(&[
            "attendance/#",
            "attendance/br/X/roster",
            "attendance/+/+/receipts",
            "$share/uplink/attendance/+/+/events",
        ])
        .await;
    let forged_br = batch(vec![event("br", "X", "dlib-resnet-v1")]);
    rogue.send("attendance/br/X/events", forged_br).await;
    let head = map(vec![
        ("v", Value::Integer(1.into())),
        ("site", text("hq")),
        ("revision", Value::Integer(999_999.into())),
    ]);
    rogue.send("attendance/hq/roster", cbor(&head)).await;
    w.unharmed("ACL", &br).await;
    assert_eq!(
        w.count("SELECT COUNT(*) FROM attendance WHERE site = 'br' AND employee_id = 'HQ1'")
            .await,
        0,
        "a br punch forged by hq/R reached MySQL"
    );
    let hq_head = w.hq_a.client().get("/health").await.json()["roster"]["head"].clone();
    assert!(
        hq_head.as_u64().unwrap() < 999_999,
        "a forged head reached hq/A: {hq_head}"
    );

    // 1. A roster template that is an .npy header promising 256 GiB.
    let bomb = face("dlib-resnet-v1", template_bomb());
    let c = changes(vec![change("hq", "R", "HQ9", enrol_op("x", vec![bomb]))]);
    dead_lettered(&w, &rogue, "template bomb", CHANGES, c).await;
    w.unharmed("template bomb", &br).await;

    // 1b. The same template already in the roster of record (stored before the centre
    // checked): the doors of hq check it again, refuse that entry, count it in /health
    // and go on; they do not abort on it, now or after a restart.
    let revision = w.plant("hq", "HQ6", template_bomb()).await;
    let refused_at = wait_until(
        "hq/A refusing the planted entry",
        Duration::from_secs(20),
        || async {
            let h = w.hq_a.client().get("/health").await.json();
            let r = &h["roster"];
            (r["revision"].as_u64()? >= revision && r["refused"] == 1)
                .then(|| r["last_refused"].clone())
        },
    )
    .await;
    assert_eq!(refused_at["revision"], revision, "{refused_at}");
    assert!(
        refused_at["why"].as_str().unwrap().contains("template"),
        "{refused_at}"
    );
    assert_eq!(
        w.hq_a.client().get("/users/HQ6").await.status,
        hyper::StatusCode::NOT_FOUND
    );
    w.unharmed("a bad template in the roster of record", &br)
        .await;

    // 2a. A field longer than its column (MySQL 1406 held every site's events before).
    let long = batch(vec![event("hq", "R", &"x".repeat(40))]);
    dead_lettered(&w, &rogue, "40-character embedder", EVENTS, long).await;
    w.unharmed("40-character embedder", &br).await;

    // 2b. A message MySQL itself refuses (a trigger's veto stands in for any value the
    // checks miss): it goes to dead_letter with MySQL's reason, the rest is written.
    {
        let mut c = w.pool.get_conn().await.unwrap();
        mysql_async::prelude::Queryable::query_drop(
            &mut c,
            "CREATE TRIGGER poison BEFORE INSERT ON attendance FOR EACH ROW \
             IF NEW.device_id = 'POISON' THEN SIGNAL SQLSTATE '45000' \
             SET MESSAGE_TEXT = 'poison'; END IF",
        )
        .await
        .unwrap();
    }
    let good = event("hq", "R", "dlib-resnet-v1");
    let good_id = good.as_map().unwrap()[1].1.as_text().unwrap().to_owned();
    let dead = w.rogue_dead_letters().await;
    rogue
        .send(EVENTS, batch(vec![event("hq", "POISON", "dlib-resnet-v1")]))
        .await;
    rogue.send(EVENTS, batch(vec![good])).await;
    w.until_sql(
        "the poisoned message in dead_letter",
        &format!("SELECT COUNT(*) - {dead} FROM dead_letter WHERE site = 'hq' AND device_id = 'R'"),
        1,
    )
    .await;
    w.until_sql(
        "the good message after the poisoned one",
        &format!("SELECT COUNT(*) FROM attendance WHERE event_id = '{good_id}'"),
        1,
    )
    .await;
    assert_eq!(
        w.count("SELECT COUNT(*) FROM dead_letter WHERE error LIKE '%poison (error 1644)%'")
            .await,
        1
    );
    w.unharmed("a message MySQL refuses", &br).await;

    // 2c. 1.2 MB: the broker disconnects the sender; the uplink never sees it. (QoS 0,
    // so the rogue's client does not send it again on reconnecting.)
    let drops = rogue.drops.load(Ordering::SeqCst);
    rogue
        .client
        .publish(EVENTS, QoS::AtMostOnce, false, vec![0u8; 1_200_000])
        .await
        .unwrap();
    wait_until(
        "the broker dropping the rogue",
        Duration::from_secs(10),
        || async { (rogue.drops.load(Ordering::SeqCst) > drops).then_some(()) },
    )
    .await;
    w.unharmed("1.2 MB payload", &br).await;

    // 3. Another site's person: a deletion and an enrolment from hq under BR1's id.
    // Neither touches br; the enrolment is revoked at hq (its doors drop the id).
    let del = changes(vec![change("hq", "R", BR1, delete_op())]);
    let before = w.refused("foreign_person").await;
    rogue.send(CHANGES, del).await;
    let face_ok = face("dlib-resnet-v1", dlib_template());
    let take = changes(vec![change(
        "hq",
        "R",
        BR1,
        enrol_op("taken", vec![face_ok]),
    )]);
    rogue.send(CHANGES, take).await;
    wait_until(
        "two foreign changes counted",
        Duration::from_secs(10),
        || async { (w.refused("foreign_person").await >= before + 2.0).then_some(()) },
    )
    .await;
    w.unharmed("erase or take over br's person", &br).await;

    // 4. An event claiming site br, sent on hq/R's topic.
    let claim = batch(vec![event("br", "R", "dlib-resnet-v1")]);
    dead_lettered(&w, &rogue, "event for another site", EVENTS, claim).await;
    assert_eq!(
        w.count("SELECT COUNT(*) FROM attendance WHERE site = 'br' AND terminal = 'R'")
            .await,
        0
    );
    w.unharmed("event for another site", &br).await;

    // 4b. A change naming another door of its own site as its maker.
    let forged = changes(vec![change("hq", "A", "HQ8", enrol_op("x", vec![]))]);
    dead_lettered(&w, &rogue, "change in door A's name", CHANGES, forged).await;

    // 5. Connecting under the uplink's client id: the broker binds ids to users, so it
    // could only replace the rogue's own connection.
    rogue.stop();
    let impostor = Rogue::connect(&w.mq, "hq-R", "attendance-uplink");
    impostor
        .send(EVENTS, batch(vec![event("hq", "R", "dlib-resnet-v1")]))
        .await;
    w.unharmed("client id attendance-uplink", &br).await;
    assert_eq!(connection_losses(&w), losses, "the uplink was knocked off");
    let rogue = impostor;
    rogue
        .subscribe(&[
            "attendance/#",
            "attendance/br/X/roster",
            "attendance/+/+/receipts",
        ])
        .await;

    // Garbage a broken door sends forever, each a dead letter.
    let valid = batch(vec![event("hq", "R", "dlib-resnet-v1")]);
    let mut wrong_types = event("hq", "R", "dlib-resnet-v1");
    if let Value::Map(m) = &mut wrong_types {
        m[0].1 = text("one");
    }
    let mut huge = b"\xa2\x61v\x01\x66events\x9b\xff\xff\xff\xff\xff\xff\xff\xff".to_vec();
    huge.extend_from_slice(&cbor(&event("hq", "R", "dlib-resnet-v1")));
    for (case, payload) in [
        ("garbage", b"\xff\x00 not CBOR at all".to_vec()),
        ("truncated CBOR", valid[..valid.len() / 2].to_vec()),
        ("wrong types", batch(vec![wrong_types])),
        ("an array claiming 2^64 elements", huge),
        ("an events message on the changes topic", valid.clone()),
    ] {
        let topic = if case.contains("changes topic") {
            CHANGES
        } else {
            EVENTS
        };
        dead_lettered(&w, &rogue, case, topic, payload).await;
    }
    w.unharmed("garbage", &br).await;

    // Duplicate change ids: the second of a pair is the first seen again.
    let twice = change(
        "hq",
        "R",
        "HQ7",
        enrol_op("seven", vec![face("dlib-resnet-v1", dlib_template())]),
    );
    rogue
        .send(CHANGES, changes(vec![twice.clone(), twice]))
        .await;
    w.until_sql(
        "HQ7 once",
        "SELECT COUNT(*) FROM roster_changes WHERE employee_id = 'HQ7'",
        1,
    )
    .await;

    // Retiring faces: only the person's own learned faces go. HQ7 learns a face, then a
    // change retires it together with HQ7's enrolment photo and another person's face:
    // those two stay, and only the learned one is passed on to the doors.
    let photo = w.text("SELECT face_id FROM roster_faces WHERE employee_id = 'HQ7'");
    let photo = photo.await.unwrap();
    let others = "SELECT COUNT(*) FROM roster_faces WHERE employee_id <> 'HQ7'";
    let other = w.text("SELECT face_id FROM roster_faces WHERE employee_id <> 'HQ7'");
    let (other, other_faces) = (other.await.unwrap(), w.count(others).await);
    let lesson = learned_face("dlib-resnet-v1", dlib_template());
    let learned_id = lesson.as_map().unwrap()[0].1.as_text().unwrap().to_owned();
    let mut retire = enrol_op("seven", vec![]);
    if let Value::Map(m) = &mut retire {
        let ids = [&photo, &learned_id, &other].map(|id| text(id)).to_vec();
        m.push((text("retire"), Value::Array(ids)));
    }
    let learn_then_retire = changes(vec![
        change("hq", "R", "HQ7", enrol_op("seven", vec![lesson])),
        change("hq", "R", "HQ7", retire),
    ]);
    rogue.send(CHANGES, learn_then_retire).await;
    w.until_sql(
        "the retirement written",
        "SELECT COUNT(*) FROM roster_changes WHERE employee_id = 'HQ7'",
        3,
    )
    .await;
    let hq7 = "SELECT COUNT(*) FROM roster_faces WHERE employee_id = 'HQ7'";
    assert_eq!(w.count(hq7).await, 1, "HQ7's faces");
    let kept = "SELECT face_id FROM roster_faces WHERE employee_id = 'HQ7'";
    assert_eq!(w.text(kept).await, Some(photo), "HQ7's enrolment photo");
    assert_eq!(
        w.count(others).await,
        other_faces,
        "another person's face retired"
    );
    let last = "SELECT retire FROM roster_changes WHERE employee_id = 'HQ7' ORDER BY revision DESC";
    let retired = w.text(last).await;
    assert_eq!(
        retired,
        Some(learned_id),
        "what the doors are told to retire"
    );

    // A door that teaches without retiring: learned faces of HQ7 past twice the door's
    // bound are refused whole (a dead letter), so no door's gallery grows without end.
    let lessons = |n| {
        let faces = (0..n).map(|_| learned_face("dlib-resnet-v1", dlib_template()));
        let c = change("hq", "R", "HQ7", enrol_op("seven", faces.collect()));
        changes(vec![c])
    };
    let door_bound = attendance::face::learn::LEARNED;
    let learned = "SELECT COUNT(*) FROM roster_faces WHERE employee_id = 'HQ7' AND learned = 1";
    for _ in 0..2 {
        rogue.send(CHANGES, lessons(door_bound)).await;
    }
    let bound = 2 * door_bound as i64;
    w.until_sql("lessons up to the bound written", learned, bound)
        .await;
    dead_lettered(&w, &rogue, "one lesson past it", CHANGES, lessons(1)).await;
    assert_eq!(w.count(learned).await, bound, "HQ7's learned faces");

    // Roster requests out of order, beyond the head and backwards: answered for its own
    // site only; a request that does not decode is refused and counted.
    for since in [u64::MAX, 5_000, 0, 3] {
        let req = map(vec![
            ("v", Value::Integer(1.into())),
            ("since", Value::Integer(since.into())),
            ("embedder", text("dlib-resnet-v1")),
        ]);
        rogue.send(SYNC, cbor(&req)).await;
    }
    refused(
        &w,
        &rogue,
        "a roster request of garbage",
        SYNC,
        b"\x00".to_vec(),
        "bad_request",
    )
    .await;
    w.unharmed("roster requests out of order", &br).await;

    // A door asking for the whole roster in a loop: answered within its ration, on the
    // roster task, while punches go on.
    let storm = w.refused("sync_rate_limited").await;
    let since0 = cbor(&map(vec![
        ("v", Value::Integer(1.into())),
        ("since", Value::Integer(0.into())),
        ("embedder", text("dlib-resnet-v1")),
    ]));
    for _ in 0..500 {
        rogue
            .client
            .publish(SYNC, QoS::AtLeastOnce, false, since0.clone())
            .await
            .unwrap();
    }
    w.unharmed("500 roster requests from 0", &br).await;
    wait_until(
        "the request storm counted",
        Duration::from_secs(20),
        || async { (w.refused("sync_rate_limited").await - storm >= 450.0).then_some(()) },
    )
    .await;
    flood(&w, &rogue, &br).await;
}

/// 10,000 small messages in 10 s from one door: refused beyond its share and counted;
/// br/X's punch, made mid-flood, still lands within 10 s.
async fn flood(w: &World, rogue: &Rogue, br: &str) {
    let before = w.refused("rate_limited").await;
    let started = Instant::now();
    for i in 0..10_000u32 {
        let payload = batch(vec![event("hq", "R", "dlib-resnet-v1")]);
        rogue
            .client
            .publish(EVENTS, QoS::AtMostOnce, false, payload)
            .await
            .unwrap();
        if i == 5_000 {
            w.unharmed("mid-flood", br).await;
        }
        let due = Duration::from_millis(u64::from(i));
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    wait_until("the flood counted", Duration::from_secs(30), || async {
        (w.refused("rate_limited").await - before >= 8_000.0).then_some(())
    })
    .await;
    eprintln!(
        "flood: 10,000 messages in {:?}, {} refused as over the door's share",
        started.elapsed(),
        w.refused("rate_limited").await - before
    );
    w.unharmed("after the flood", br).await;
    let written = w
        .count("SELECT COUNT(*) FROM attendance WHERE site = 'hq' AND terminal = 'R'")
        .await;
    assert!(written < 1_500, "{written} of the flood written");
    eprintln!("flood: {written} of hq/R's events written in all (its share)");
    // Everything it heard was its own: its receipts, its pages, its site's head and the
    // uplink's announcement.
    let heard = rogue.received.lock().unwrap().clone();
    assert!(
        !heard.is_empty(),
        "the rogue heard nothing, not even its receipts"
    );
    let own = [
        "attendance/hq/R/receipts",
        "attendance/hq/R/roster",
        "attendance/hq/roster",
        "attendance/uplink",
    ];
    for (topic, _) in &heard {
        assert!(own.contains(&topic.as_str()), "the rogue heard {topic}");
    }
    let _ = HQ1;
}
