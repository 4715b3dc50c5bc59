//! Prometheus metrics, the part both processes share: the terminal (`GET /metrics` on
//! `attendanced`) and the uplink (its own small listener, off by default) each keep their
//! own registry and render it with these.
//!
//! Counters and histograms are recorded where things happen; gauges that mirror state
//! (gallery size, outbox depth, the MQTT link, the camera) are read at scrape time, so a
//! scrape never shows a stale copy. The exposition is OpenMetrics text, which Prometheus
//! scrapes natively (`prometheus-client`, the Prometheus project's own crate).

use std::borrow::Cow;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::Registry;

/// The media type of the exposition (what Prometheus asks for first).
pub const MEDIA_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One exposition of several registries (the long-lived one, then the scrape-time one).
pub fn render(registries: &[&Registry]) -> String {
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
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 13)
}

/// A registry whose every metric carries `prefix_` and these labels.
pub fn registry(prefix: &str, labels: &[(&'static str, &str)]) -> Registry {
    Registry::with_prefix_and_labels(
        prefix,
        labels
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), Cow::Owned((*v).to_owned())))
            .collect::<Vec<_>>()
            .into_iter(),
    )
}

/// The shipped Grafana dashboard, whose queries each process's tests check it exposes
/// (a rename fails a test, not a dashboard in production).
const DASHBOARD: &str = include_str!("../../../docs/grafana/attendance-fleet.json");

/// The metric names starting with `prefix` that the shipped dashboard queries.
pub fn dashboard_queries(prefix: &str) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for (i, _) in DASHBOARD.match_indices(prefix) {
        let rest = &DASHBOARD[i..];
        let name = &rest[..rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len())];
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// True if an exposition has a sample of the metric `name` (with or without labels).
pub fn exposes(exposition: &str, name: &str) -> bool {
    exposition
        .lines()
        .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_is_json_and_queries_both_processes() {
        let _: serde_json::Value = serde_json::from_str(DASHBOARD).expect("valid JSON");
        assert!(dashboard_queries("attendanced_").len() >= 6);
        assert!(dashboard_queries("attendance_uplink_").len() >= 3);
        assert!(exposes("a_total{x=\"1\"} 2\n", "a_total"));
        assert!(!exposes("a_total_more 2\n", "a_total"));
    }
}
