//! The links off the terminal over TLS with real servers: Mosquitto on TLS only, requiring
//! a client certificate (terminal and uplink each present one; the broker's CA is pinned
//! by `mqtt.ca_file`), and MariaDB refusing connections without TLS (`mysql.tls`).

mod common;

use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::pki::Pki;
use common::services::{MariaDb, Mosquitto};
use common::uplink::Uplink;
use common::wait_until;
use hyper::StatusCode;
use mysql_async::prelude::Queryable;
use serde_json::json;

const DB: &str = "attendance_tls";

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// MQTT over TLS with this CA pinned and the PKI's client certificate.
fn mqtt_env(
    prefix: &str,
    mq: &Mosquitto,
    ca: &std::path::Path,
    pki: &Pki,
) -> Vec<(String, String)> {
    vec![
        (format!("{prefix}MQTT__URL"), mq.url()),
        (format!("{prefix}MQTT__CA_FILE"), path(ca)),
        (
            format!("{prefix}MQTT__CLIENT_CERT_FILE"),
            path(&pki.client_cert),
        ),
        (
            format!("{prefix}MQTT__CLIENT_KEY_FILE"),
            path(&pki.client_key),
        ),
    ]
}

fn start_terminal(dir: &std::path::Path, env: &[(String, String)]) -> Daemon {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Daemon::start(dir, &env)
}

async fn health(d: &Daemon) -> serde_json::Value {
    d.client().get("/health").await.json()
}

#[tokio::test]
async fn punches_reach_mysql_over_tls_end_to_end_and_wrong_trust_does_not_connect() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki"));
    let mq = Mosquitto::start_tls(&dir.path().join("mqtt"), &pki);
    let db = MariaDb::start_tls(&dir.path().join("mysql"), &pki);

    // The uplink: MQTT with its client certificate, MySQL over TLS with the CA pinned.
    let mut env = db.env(DB);
    env.extend(mqtt_env("ATTENDANCE_UPLINK_", &mq, &pki.ca, &pki));
    env.push((
        "ATTENDANCE_UPLINK_MQTT__CLIENT_ID".into(),
        "uplink-tls".into(),
    ));
    env.push(("ATTENDANCE_UPLINK_MYSQL__TLS".into(), "true".into()));
    env.push(("ATTENDANCE_UPLINK_MYSQL__CA_FILE".into(), path(&pki.ca)));
    let uplink = Uplink::start(&dir.path().join("uplink.log"), env);

    let terminal = start_terminal(
        &dir.path().join("terminal"),
        &mqtt_env("ATTENDANCED_", &mq, &pki.ca, &pki),
    );
    let c = terminal.client();
    let r = c.enrol("홍길동", &common::read("caltech_p02/2.jpg")).await;
    assert_eq!(r.status, StatusCode::OK);
    // In a fleet (a broker is configured), generated ids carry site and device.
    let employee = r.json()["employee_id"].as_str().unwrap().to_owned();
    assert_eq!(employee, "default-TERMINAL_01-001");
    let mut ids = Vec::new();
    for kind in ["IN", "OUT"] {
        let r = c
            .post_json(
                "/attendance",
                &json!({"employee_id": employee, "type": kind}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        ids.push(r.json()["event_id"].as_str().unwrap().to_owned());
    }

    let pool = db.pool(DB);
    let deadline = Instant::now() + Duration::from_secs(90);
    let stored: Vec<String> = loop {
        let got: Option<Vec<String>> = async {
            let mut conn = pool.get_conn().await.ok()?;
            conn.query("SELECT event_id FROM attendance ORDER BY event_id")
                .await
                .ok()
        }
        .await;
        if let Some(got) = got.filter(|g| g.len() >= ids.len()) {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "events not in MySQL: terminal {} / uplink {}",
            health(&terminal).await,
            uplink.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    ids.sort();
    assert_eq!(stored, ids);
    let h = health(&terminal).await;
    assert_eq!(h["mqtt"], "connected", "{h}");

    // A terminal that pins another CA does not talk to this broker, and keeps its punch.
    let wrong = start_terminal(
        &dir.path().join("wrong-ca"),
        &mqtt_env("ATTENDANCED_", &mq, &pki.other_ca, &pki),
    );
    let r = wrong
        .client()
        .identify("IN", &common::read("_unenrolled/caltech_u01/1.jpg"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "an attempt is recorded");
    // Its connection attempt has failed once the log says why.
    wait_until(
        "the certificate refusal logged",
        Duration::from_secs(30),
        || async {
            wrong
                .log_text()
                .to_lowercase()
                .contains("certificate")
                .then_some(())
        },
    )
    .await;
    let h = health(&wrong).await;
    // Tried and refused, not switched off: a disabled link would say `disabled`.
    assert_eq!(h["mqtt"], "disconnected", "{h}");
    assert_eq!(
        h["outbox_pending"], 1,
        "the attempt waits in the outbox: {h}"
    );
    assert!(
        wrong.log_text().to_lowercase().contains("certificate"),
        "the log names the certificate problem: {}",
        wrong.log_text()
    );

    // A terminal without a client certificate is turned away by the broker.
    let mut no_cert = mqtt_env("ATTENDANCED_", &mq, &pki.ca, &pki);
    no_cert.truncate(2);
    let anonymous = start_terminal(&dir.path().join("no-cert"), &no_cert);
    wait_until(
        "the broker's refusal logged",
        Duration::from_secs(30),
        || async {
            anonymous
                .log_text()
                .contains("MQTT connect failed")
                .then_some(())
        },
    )
    .await;
    let h = health(&anonymous).await;
    assert_eq!(h["mqtt"], "disconnected", "{h}");
    assert!(
        anonymous.log_text().contains("MQTT connect failed"),
        "the log says the broker refused: {}",
        anonymous.log_text()
    );
}

#[test]
fn the_uplink_without_tls_is_refused_by_a_tls_only_mysql() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki"));
    let db = MariaDb::start_tls(&dir.path().join("mysql"), &pki);
    let run = |tls: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_attendance-uplink"));
        cmd.arg("migrate").envs(db.env(DB));
        if tls {
            cmd.env("ATTENDANCE_UPLINK_MYSQL__TLS", "true")
                .env("ATTENDANCE_UPLINK_MYSQL__CA_FILE", &pki.ca);
        }
        cmd.output().unwrap()
    };
    // MariaDB answers an insecure login with "access denied" rather than naming the
    // transport; the same login over TLS succeeds below.
    let plain = run(false);
    assert!(!plain.status.success());
    let err = String::from_utf8_lossy(&plain.stderr).to_lowercase();
    assert!(err.contains("mysql"), "{err}");
    let tls = run(true);
    assert!(
        tls.status.success(),
        "{}",
        String::from_utf8_lossy(&tls.stderr)
    );
}
