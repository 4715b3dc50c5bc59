//! Prometheus metrics: the terminal's (`GET /metrics` on `attendanced`) and the uplink's
//! (its own small listener, off by default).
//!
//! Counters and histograms are recorded where things happen; gauges that mirror state
//! (gallery size, outbox depth, the MQTT link, the camera) are read at scrape time, so a
//! scrape never shows a stale copy. The exposition is OpenMetrics text, which Prometheus
//! scrapes natively (`prometheus-client`, the Prometheus project's own crate).

mod listener;
mod terminal;
mod uplink;

use std::borrow::Cow;

use hyper::Response;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::Registry;

pub(crate) use listener::serve;
pub(crate) use terminal::{CameraScrape, PunchResult, Scrape, Stage, TerminalMetrics};
pub(crate) use uplink::UplinkMetrics;

use crate::http::response::{Body, full};

/// The media type of the exposition (what Prometheus asks for first).
const MEDIA_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A 200 carrying an exposition.
pub(crate) fn exposition(text: String) -> Response<Body> {
    let mut r = Response::new(full(text));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    r
}

/// One exposition of several registries (the long-lived one, then the scrape-time one).
fn render(registries: &[&Registry]) -> String {
    let mut out = String::new();
    for r in registries {
        // Writing to a String cannot fail; a metric that does not encode is a bug that
        // shows as a truncated scrape, not a crash.
        if encode_registry(&mut out, r).is_err() {
            break;
        }
    }
    let _ = encode_eof(&mut out);
    out
}

/// Seconds from 1 ms to about 4 s, doubling: face stages and MySQL commits alike.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 13)
}

/// A registry whose every metric carries `prefix_` and these labels.
fn registry(prefix: &str, labels: &[(&'static str, &str)]) -> Registry {
    Registry::with_prefix_and_labels(
        prefix,
        labels
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), Cow::Owned((*v).to_owned())))
            .collect::<Vec<_>>()
            .into_iter(),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::reason::Reason;

    /// Every metric the Grafana dashboard queries is one the terminal or the uplink
    /// exposes (a rename here fails this test, not a dashboard in production).
    #[test]
    fn the_grafana_dashboard_queries_only_metrics_that_exist() {
        let dashboard = include_str!("../../docs/grafana/attendance-fleet.json");
        let _: serde_json::Value = serde_json::from_str(dashboard).expect("valid JSON");
        let t = TerminalMetrics::new(true, "hq", "T1");
        t.punched(PunchResult::Failed(Reason::Unknown), "upload");
        t.timed(Stage::Decode, || ());
        t.frame_analysed(1);
        let u = UplinkMetrics::default();
        u.message("events");
        u.refused("rate_limited");
        u.committed(
            Duration::from_millis(3),
            1,
            1,
            0,
            [Duration::from_secs(1)].into_iter(),
        );
        let exposed = format!(
            "{}{}",
            t.render(&Scrape {
                database_ok: true,
                outbox_pending: Some(1),
                outbox_unconfirmed: Some(0),
                outbox_oldest_age: Some(Duration::from_secs(1)),
                free_mb: Some(1),
                mqtt: "connected",
                camera: Some(CameraScrape::default()),
                roster: Some((1, 2)),
                ..Scrape::default()
            }),
            u.render()
        );
        let mut names: Vec<&str> = Vec::new();
        for (i, _) in dashboard.match_indices("attendance") {
            let name: &str = &dashboard[i..][..dashboard[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(dashboard.len() - i)];
            if (name.starts_with("attendanced_") || name.starts_with("attendance_uplink_"))
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
        assert!(names.len() >= 10, "{names:?}");
        for n in names {
            assert!(
                exposed
                    .lines()
                    .any(|l| l.starts_with(&format!("{n}{{")) || l.starts_with(&format!("{n} "))),
                "the dashboard queries {n}, which nothing exposes"
            );
        }
    }
}
