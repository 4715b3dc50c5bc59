//! A person belongs to one site. A door admin or HR at one site cannot enrol, rename or
//! erase another site's people (over HTTP, over MQTT, or with `attendance-uplink
//! roster`); a person moves between sites only when HR moves them on purpose.

mod common;

use std::time::Duration;

use common::sites::{BR1, World, uplink_env};
use common::uplink::Uplink;
use common::wait_until;
use hyper::StatusCode;

/// `attendance-uplink roster --site SITE ARGS`: (success, stdout + stderr).
fn roster_cli(w: &World, site: &str, args: &[&str]) -> (bool, String) {
    let args: Vec<&str> = ["roster", "--site", site]
        .iter()
        .chain(args)
        .copied()
        .collect();
    Uplink::command(&uplink_env(&w.mq, &w.db), &args)
}

/// Who `door` says `photo` is.
async fn who(door: &common::daemon::Daemon, photo: &str) -> Option<String> {
    let r = door
        .client()
        .identify("IN", &common::read(photo))
        .await
        .json();
    r["employee_id"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn a_door_admin_or_hr_of_one_site_cannot_take_or_erase_another_sites_person() {
    let w = World::start().await;
    let br = w.br_roster().await;
    let revoked = w.refused("foreign_person").await;

    // A door admin at hq enrols a face under br's employee id: hq/A takes it for now, the
    // centre refuses it for hq and revokes it there, and hq/A drops it again.
    let r = w
        .hq_a
        .client()
        .post_form(
            "/enroll",
            common::daemon::Multipart::new()
                .text("name", "impostor")
                .text("employee_id", BR1)
                .file("image", &common::read("caltech_p04/2.jpg")),
        )
        .await;
    assert_eq!(
        r.json()["employee_id"],
        BR1,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    wait_until(
        "hq/A dropping the revoked BR1",
        Duration::from_secs(20),
        || async {
            (w.hq_a.client().get(&format!("/users/{BR1}")).await.status == StatusCode::NOT_FOUND)
                .then_some(())
        },
    )
    .await;
    assert!(w.refused("foreign_person").await > revoked);
    // hq's doors hold nothing of BR1, so there is nothing there to erase.
    let r = w.hq_a.client().delete(&format!("/users/{BR1}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // HR working on hq's roster is told whose person it is and how a move is made.
    let photo = common::dev_photo("caltech_p04/2.jpg");
    let (ok, text) = roster_cli(
        &w,
        "hq",
        &[
            "enrol",
            "--id",
            BR1,
            "--name",
            "taken",
            photo.to_str().unwrap(),
        ],
    );
    assert!(
        !ok && text.contains("belongs to site br") && text.contains("move"),
        "{text}"
    );
    let (ok, text) = roster_cli(&w, "hq", &["delete", BR1]);
    assert!(!ok && text.contains("belongs to site br"), "{text}");

    // Through all of it, br's record and br's door are as they were.
    w.unharmed("HTTP and CLI at hq", &br).await;
    assert_eq!(
        w.br_x.client().get(&format!("/users/{BR1}")).await.json()["name"],
        "name of BR1"
    );
    assert_eq!(
        who(&w.br_x, "caltech_p03/3.jpg").await.as_deref(),
        Some(BR1)
    );
}

#[tokio::test]
async fn hr_moves_a_person_between_sites_on_purpose() {
    let w = World::start().await;
    assert_eq!(
        who(&w.br_x, "caltech_p03/3.jpg").await.as_deref(),
        Some(BR1)
    );
    let (ok, text) = roster_cli(&w, "hq", &["move", BR1, "--to", "hq"]);
    assert!(!ok, "only br can move its own: {text}");
    let (ok, text) = roster_cli(&w, "br", &["move", BR1, "--to", "hq"]);
    assert!(ok && text.contains("moved from site br"), "{text}");
    // hq's doors learn BR1 with the faces enrolled at br; br's door forgets them.
    wait_until(
        "hq/A recognising the moved person",
        Duration::from_secs(20),
        || async {
            (who(&w.hq_a, "caltech_p03/3.jpg").await.as_deref() == Some(BR1)).then_some(())
        },
    )
    .await;
    wait_until(
        "br/X forgetting the moved person",
        Duration::from_secs(20),
        || async {
            (w.br_x.client().get(&format!("/users/{BR1}")).await.status == StatusCode::NOT_FOUND)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        w.count(&format!(
            "SELECT COUNT(*) FROM roster_people WHERE employee_id = '{BR1}' AND site = 'hq'"
        ))
        .await,
        1
    );
    // br's log keeps only the tombstone; the faces are hq's now.
    assert_eq!(
        w.count(&format!(
            "SELECT COUNT(*) FROM roster_changes WHERE employee_id = '{BR1}' AND site = 'br' AND op = 'enrol'"
        ))
        .await,
        0
    );
    assert!(
        w.count(&format!(
            "SELECT COUNT(*) FROM roster_faces WHERE employee_id = '{BR1}' AND site = 'hq'"
        ))
        .await
            >= 1
    );
    // Now hq owns them: br can no longer change them.
    let (ok, text) = roster_cli(&w, "br", &["delete", BR1]);
    assert!(!ok && text.contains("belongs to site hq"), "{text}");
}
