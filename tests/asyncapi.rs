//! Every MQTT message a door and the uplink send, captured from a real broker, agrees with
//! `docs/asyncapi.yaml`: its channel, its QoS and its payload's schema.

mod common;

use std::time::Duration;

use common::daemon::Daemon;
use common::fleet::{P2, door_env, enrol, health, uplink, who};
use common::services::{MariaDb, Mosquitto};
use common::wait_until;
use hyper::StatusCode;
use serde_json::Value;

/// CBOR's data model as JSON: byte strings as base64 text (as `docs/asyncapi.yaml` says).
fn cbor_to_json(v: ciborium::Value) -> Value {
    use base64::Engine;
    use ciborium::Value as C;
    match v {
        C::Null => Value::Null,
        C::Bool(b) => Value::Bool(b),
        C::Integer(i) => Value::from(i128::from(i) as i64),
        C::Float(f) => Value::from(f),
        C::Text(s) => Value::String(s),
        C::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        C::Array(a) => Value::Array(a.into_iter().map(cbor_to_json).collect()),
        C::Map(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| match k {
                    C::Text(k) => (k, cbor_to_json(v)),
                    other => panic!("a map key that is not text: {other:?}"),
                })
                .collect(),
        ),
        C::Tag(_, inner) => cbor_to_json(*inner),
        other => panic!("unexpected CBOR value {other:?}"),
    }
}

/// `docs/asyncapi.yaml`'s channel for a topic: its name and its address's parameters.
fn channel_of<'a>(doc: &'a Value, topic: &str) -> Option<&'a str> {
    let levels: Vec<&str> = topic.split('/').collect();
    doc["channels"].as_object()?.iter().find_map(|(name, c)| {
        let address: Vec<&str> = c["address"].as_str()?.split('/').collect();
        let fits = address.len() == levels.len()
            && address
                .iter()
                .zip(&levels)
                .all(|(a, l)| a == l || (a.starts_with('{') && a.ends_with('}')));
        fits.then_some(name.as_str())
    })
}

/// Not a documented channel: the capture's own readiness probe, left out of the checks.
const PROBE: &str = "probe/capture-ready";

/// Every message of a real run — a door enrolling, punching, reporting stats and going
/// offline, the uplink answering — captured from the broker and validated against the
/// AsyncAPI document: the channel exists, the QoS is the documented one, the payload
/// decodes and validates against the message's schema. Every channel is seen.
#[tokio::test]
async fn the_mqtt_messages_match_the_asyncapi_document() {
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/asyncapi.yaml"))
        .expect("docs/asyncapi.yaml");
    let doc: Value = serde_yaml_ng::from_str(&yaml).expect("docs/asyncapi.yaml is YAML");
    assert_eq!(doc["asyncapi"], "3.0.0");
    let dir = tempfile::tempdir().unwrap();
    let mq = Mosquitto::start(&dir.path().join("mqtt"));
    let db = MariaDb::start(&dir.path().join("mysql"));
    let capture = dir.path().join("capture.txt");
    let mut sub = std::process::Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &mq.port.to_string(), "-q", "1"])
        .args(["-t", "attendance/#", "-t", PROBE, "-F", "%t %q %x"])
        .stdout(std::fs::File::create(&capture).unwrap())
        .spawn()
        .expect("mosquitto_sub (scripts/setup installs mosquitto-clients)");
    // Subscribed before anyone speaks (the uplink announces itself once): probes are
    // published until the capture holds one.
    wait_until(
        "the capture subscribed",
        Duration::from_secs(30),
        || async {
            mq.publish(PROBE, b"probe");
            let text = std::fs::read_to_string(&capture).ok()?;
            text.lines().any(|l| l.starts_with(PROBE)).then_some(())
        },
    )
    .await;
    let _uplink = uplink(dir.path(), &mq, &db);
    let mut env = door_env(&mq, "A");
    env.push(("ATTENDANCED_MQTT__STATS_INTERVAL_SECS".into(), "1".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut a = Daemon::start(&dir.path().join("A"), &env);
    let alice = enrol(a.client(), "홍길동", P2.0).await;
    assert_eq!(who(a.client(), P2.1).await.as_deref(), Some(alice.as_str()));
    assert_eq!(who(a.client(), "_unenrolled/caltech_u01/1.jpg").await, None);
    assert_eq!(
        a.client().delete(&format!("/users/{alice}")).await.status,
        StatusCode::OK
    );
    // Receipts for the punches and the changes, a stats message, the roster pages.
    wait_until("the outbox confirmed", Duration::from_secs(30), || async {
        let h = health(&a).await;
        (h["outbox_pending"] == 0 && h["outbox_unconfirmed"] == 0 && h["roster"]["behind"] == 0)
            .then_some(())
    })
    .await;
    // Every documented channel has spoken (the stats come every second).
    let channels: Vec<&String> = doc["channels"].as_object().unwrap().keys().collect();
    wait_until(
        "a message on every channel",
        Duration::from_secs(30),
        || async {
            let text = std::fs::read_to_string(&capture).ok()?;
            let seen: Vec<&str> = text
                .lines()
                .filter_map(|l| channel_of(&doc, l.split(' ').next()?))
                .collect();
            channels
                .iter()
                .all(|c| seen.contains(&c.as_str()))
                .then_some(())
        },
    )
    .await;
    assert!(a.stop().success());
    // The door's goodbye (`offline`, retained) reaches the subscriber too.
    let offline = format!(" {}", hex::encode("offline"));
    wait_until(
        "the door's offline status",
        Duration::from_secs(30),
        || async {
            let text = std::fs::read_to_string(&capture).ok()?;
            text.lines().any(|l| l.ends_with(&offline)).then_some(())
        },
    )
    .await;
    let _ = sub.kill();
    let _ = sub.wait();

    let mut compiler = boon::Compiler::new();
    compiler.set_default_draft(boon::Draft::V2020_12);
    compiler
        .add_resource("file:///asyncapi.json", doc.clone())
        .unwrap();
    let mut schemas = boon::Schemas::new();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let text = std::fs::read_to_string(&capture).unwrap();
    for line in text.lines().filter(|l| !l.starts_with(PROBE)) {
        let mut parts = line.splitn(3, ' ');
        let (topic, qos, hex) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap_or(""),
        );
        let channel = channel_of(&doc, topic)
            .unwrap_or_else(|| panic!("{topic}: no channel in docs/asyncapi.yaml"));
        *seen.entry(channel.to_owned()).or_default() += 1;
        let documented: Vec<String> = doc["operations"]
            .as_object()
            .unwrap()
            .values()
            .filter(|o| o["channel"]["$ref"] == format!("#/channels/{channel}"))
            .filter_map(|o| o["bindings"]["mqtt"]["qos"].as_u64())
            .map(|q| q.to_string())
            .collect();
        assert!(
            documented.iter().any(|q| q == qos),
            "{topic}: delivered at QoS {qos}, documented {documented:?}"
        );
        let messages = doc["channels"][channel]["messages"].as_object().unwrap();
        let (_, message) = messages.iter().next().expect("a message");
        let pointer = message["$ref"].as_str().unwrap().trim_start_matches('#');
        let m = doc.pointer(pointer).unwrap();
        let bytes = hex::decode(hex).unwrap();
        let payload = match m["contentType"].as_str() {
            Some("text/plain") => Value::String(String::from_utf8(bytes).unwrap()),
            _ => cbor_to_json(
                ciborium::from_reader(bytes.as_slice())
                    .unwrap_or_else(|e| panic!("{topic}: not CBOR: {e}")),
            ),
        };
        let index = compiler
            .compile(
                &format!("file:///asyncapi.json#{pointer}/payload"),
                &mut schemas,
            )
            .unwrap_or_else(|e| panic!("{pointer}: {e}"));
        if let Err(e) = schemas.validate(&payload, index) {
            panic!("{topic}: disagrees with docs/asyncapi.yaml: {e:#}\n{payload}");
        }
    }
    let channels: Vec<&String> = doc["channels"].as_object().unwrap().keys().collect();
    for c in channels {
        assert!(seen.contains_key(c), "no message on {c} was seen: {seen:?}");
    }
    println!("validated {} messages: {seen:?}", text.lines().count());
}
