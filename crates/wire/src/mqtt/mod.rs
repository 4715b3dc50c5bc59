//! MQTT contract and connection set-up shared by the terminal and the uplink.
//!
//! Topics (public contract, see docs/book):
//! - `attendance/{site}/{device_id}/events`: CBOR [`crate::event::EventBatch`], QoS 1
//! - `attendance/{site}/{device_id}/status`: `online` / `offline` (retained; `offline` is
//!   also the last will)
//! - `attendance/{site}/{device_id}/stats`: CBOR [`Stats`], QoS 0, periodic
//! - `attendance/{site}/{device_id}/receipts`: CBOR [`crate::event::Receipt`], QoS 1, from
//!   the uplink to the terminal once MySQL has committed the events (or roster changes)
//! - the roster topics, see [`crate::roster::wire`]

mod events;
mod settings;

use std::sync::Arc;

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use serde::{Deserialize, Serialize};

use attendance_core::tls::{self, TlsError};
pub use events::Events;
pub use settings::MqttSettings;

/// The uplink's subscription: every terminal's events. Not a shared subscription by
/// default: Mosquitto's ACL file does not check subscriptions, so any broker user could
/// join a shared group whose name it knows and have every second message routed to it
/// (and dropped there by the ACL). Several workers share a group with a random name.
pub const EVENTS_FILTER: &str = "attendance/+/+/events";

/// What the uplink also subscribes to: the terminals' roster changes and their requests
/// for the roster.
pub const ROSTER_FILTERS: [&str; 2] = [
    "attendance/+/+/roster_changes",
    "attendance/+/+/roster_sync",
];

/// Largest MQTT packet a terminal or the uplink sends or takes, and the broker's
/// `max_packet_size` in the shipped `config/mosquitto-attendance.conf`: the broker
/// refuses (and disconnects) a client that sends more, so nothing larger ever reaches
/// the uplink, which would otherwise drop its connection on it and have it redelivered
/// forever. A batch of 1,000 events is ~300 kB; roster messages carry at most
/// [`crate::roster::wire::PAGE_BYTES`] of face data.
pub(crate) const MAX_PACKET_BYTES: usize = 1 << 20;
// A page's face data and its envelope fit in one packet.
const _: () = assert!(crate::roster::wire::PAGE_BYTES + 64 * 1024 < MAX_PACKET_BYTES);

/// Where an uplink announces that it has subscribed ([`crate::roster::wire::UplinkOnline`]).
pub const UPLINK_TOPIC: &str = "attendance/uplink";

/// A terminal's topics, by their last level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum DeviceTopic {
    Events,
    Status,
    Stats,
    Receipts,
    RosterChanges,
    RosterSync,
    Roster,
}

pub fn device_topic(site: &str, device_id: &str, t: DeviceTopic) -> String {
    let last: &'static str = t.into();
    format!("attendance/{site}/{device_id}/{last}")
}

/// `(site, device_id, kind)` of a terminal's topic.
pub fn parse_device_topic(topic: &str) -> Option<(&str, &str, DeviceTopic)> {
    let mut p = topic.split('/');
    match (p.next(), p.next(), p.next(), p.next(), p.next()) {
        (Some("attendance"), Some(site), Some(dev), Some(last), None) => {
            Some((site, dev, last.parse().ok()?))
        }
        _ => None,
    }
}

/// The site's retained roster head ([`crate::roster::wire::Head`]).
pub fn site_roster_topic(site: &str) -> String {
    format!("attendance/{site}/roster")
}

/// Periodic terminal statistics (schema v1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub v: u32,
    pub site: String,
    pub device_id: String,
    /// Events not yet acknowledged by the broker.
    pub outbox_pending: u64,
    /// Age of the oldest of them, seconds.
    pub oldest_pending_secs: Option<i64>,
    pub uptime_secs: u64,
    pub ts: String,
    /// The roster revision applied here and the centre's latest (absent when the
    /// terminal does not share its site's roster; added in v1 without breaking readers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster_revision: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster_head: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum MqttConfigError {
    #[error("mqtt.url: {0}")]
    Url(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Host, port and TLS flag of `mqtt://host:port` / `mqtts://host:port`.
pub(crate) fn parse_url(url: &str) -> Result<(String, u16, bool), MqttConfigError> {
    let (rest, tls) = if let Some(r) = url.strip_prefix("mqtts://") {
        (r, true)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (r, false)
    } else {
        return Err(MqttConfigError::Url(format!(
            "{url:?} must start with mqtt:// or mqtts://"
        )));
    };
    let rest = rest.trim_end_matches('/');
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| MqttConfigError::Url(format!("{url:?}: unclosed bracket")))?;
        let port = after.strip_prefix(':').map(str::parse).transpose();
        (h.to_owned(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p.parse()).transpose()),
            None => (rest.to_owned(), Ok(None)),
        }
    };
    let port = port
        .map_err(|_| MqttConfigError::Url(format!("{url:?}: bad port")))?
        .unwrap_or(default_port);
    if host.is_empty() {
        return Err(MqttConfigError::Url(format!("{url:?}: no host")));
    }
    Ok((host, port, tls))
}

/// Options for a persistent session (`clean_session = false`) with a fixed client id.
pub fn options(
    s: &MqttSettings,
    client_id: &str,
    last_will: Option<LastWill>,
) -> Result<MqttOptions, MqttConfigError> {
    let (host, port, tls) = parse_url(&s.url)?;
    let mut o = MqttOptions::new(client_id, host, port);
    o.set_keep_alive(s.ping_interval())
        .set_clean_session(false)
        .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    if let (Some(u), Some(p)) = (&s.username, &s.password) {
        o.set_credentials(u.clone(), p.clone());
    }
    if let Some(w) = last_will {
        o.set_last_will(w);
    }
    if tls {
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls_config(s)?,
        )));
    }
    Ok(o)
}

/// rustls with the ring provider; the CA file pins the broker's CA (else the public web
/// roots), optional client certificate for mutual TLS.
pub(crate) fn tls_config(s: &MqttSettings) -> Result<Arc<rustls::ClientConfig>, MqttConfigError> {
    tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    match &s.ca_file {
        Some(path) => {
            for cert in tls::read_certs("mqtt.ca_file", path)? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::new("mqtt.ca_file", e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match (&s.client_cert_file, &s.client_key_file) {
        (Some(cert), Some(key)) => {
            let chain = tls::read_certs("mqtt.client_cert_file", cert)?;
            let key = tls::read_key("mqtt.client_key_file", key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::new("mqtt.client_cert_file", e))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(TlsError::new(
                "mqtt.client_key_file",
                "client_cert_file and client_key_file go together",
            )
            .into());
        }
    };
    Ok(Arc::new(config))
}

/// The broker link as `/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Disabled,
    Connecting,
    Connected,
    Disconnected,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Disabled => "disabled",
            LinkState::Connecting => "connecting",
            LinkState::Connected => "connected",
            LinkState::Disconnected => "disconnected",
        }
    }
}

/// Last will: `offline`, retained, so dashboards see a terminal vanish.
pub fn offline_will(site: &str, device_id: &str) -> LastWill {
    LastWill::new(
        device_topic(site, device_id, DeviceTopic::Status),
        "offline",
        QoS::AtLeastOnce,
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1884").unwrap(),
            ("127.0.0.1".into(), 1884, false)
        );
        assert_eq!(
            parse_url("mqtts://broker.example").unwrap(),
            ("broker.example".into(), 8883, true)
        );
        assert_eq!(
            parse_url("mqtt://[::1]:1883").unwrap(),
            ("::1".into(), 1883, false)
        );
        assert!(parse_url("tcp://x").is_err());
        assert!(parse_url("mqtt://x:notaport").is_err());
        assert!(parse_url("mqtt://").is_err());
    }

    #[test]
    fn the_shipped_broker_config_holds_the_limits_and_identities_the_code_relies_on() {
        let conf = include_str!("../../../../config/mosquitto-attendance.conf");
        let set = |key: &str| {
            conf.lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
                .map(str::trim)
        };
        assert_eq!(
            set("max_packet_size"),
            Some(MAX_PACKET_BYTES.to_string().as_str())
        );
        assert_eq!(set("use_username_as_clientid"), Some("true"));
        assert_eq!(set("allow_anonymous"), Some("false"));
        assert!(set("acl_file").is_some() && set("password_file").is_some());
        assert!(set("max_queued_messages").is_some_and(|n| n.parse::<u64>().unwrap() >= 100_000));
        assert!(set("max_queued_bytes").is_some());
    }

    #[test]
    fn topics() {
        assert_eq!(
            device_topic("hq", "K1", DeviceTopic::Events),
            "attendance/hq/K1/events"
        );
        assert_eq!(
            parse_device_topic("attendance/hq/K1/status"),
            Some(("hq", "K1", DeviceTopic::Status))
        );
        assert_eq!(parse_device_topic("attendance/hq/K1/events/x"), None);
        assert_eq!(
            device_topic("hq", "K1", DeviceTopic::RosterChanges),
            "attendance/hq/K1/roster_changes"
        );
        assert_eq!(
            parse_device_topic("attendance/hq/K1/roster_sync"),
            Some(("hq", "K1", DeviceTopic::RosterSync))
        );
        assert_eq!(parse_device_topic("attendance/hq/K1/other"), None);
        assert_eq!(parse_device_topic("attendance/hq/roster"), None);
    }
}
