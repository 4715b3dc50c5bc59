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

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::Registry;

pub(crate) use listener::{exposition, serve};
pub(crate) use terminal::{CameraScrape, PunchResult, Scrape, Stage, TerminalMetrics};
pub(crate) use uplink::UplinkMetrics;

/// The media type of the exposition (what Prometheus asks for first).
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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
