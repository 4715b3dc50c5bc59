//! The uplink's metrics: what arrives over MQTT, what MySQL took, and how late.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug)]
pub(crate) struct UplinkMetrics {
    refused: Family<ReasonLabels, Counter>,
    registry: Registry,
    messages: Family<TopicLabels, Counter>,
    events_written: Counter,
    events_duplicate: Counter,
    events_corrected: Counter,
    dead_letters: Counter,
    commit: Histogram,
    lag: Histogram,
    mqtt_connected: Gauge,
}

impl Default for UplinkMetrics {
    fn default() -> Self {
        let mut registry = attendance_core::metrics::registry("attendance_uplink", &[]);
        let messages = Family::<TopicLabels, Counter>::default();
        registry.register(
            "messages",
            "MQTT messages received, by the last level of their topic",
            messages.clone(),
        );
        let events_written = Counter::default();
        registry.register(
            "events_written",
            "Attendance events newly written to MySQL",
            events_written.clone(),
        );
        let events_duplicate = Counter::default();
        registry.register(
            "events_duplicate",
            "Attendance events received again and ignored (already in MySQL)",
            events_duplicate.clone(),
        );
        let events_corrected = Counter::default();
        registry.register(
            "events_corrected",
            "Events stored with an unsynchronised clock whose door sent the corrected time",
            events_corrected.clone(),
        );
        let dead_letters = Counter::default();
        registry.register(
            "dead_letters",
            "Messages that did not decode, kept in the dead_letter table",
            dead_letters.clone(),
        );
        let refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "refused",
            "Messages acknowledged and not written, by why: a door over its share, oversized, \
             not a terminal's topic, dead letters beyond the door's share, roster changes \
             about another site's people",
            refused.clone(),
        );
        let commit = Histogram::new(attendance_core::metrics::latency_buckets());
        registry.register_with_unit(
            "mysql_commit",
            "Time to write one batch of messages in one MySQL transaction",
            Unit::Seconds,
            commit.clone(),
        );
        let lag = Histogram::new([0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0]);
        registry.register_with_unit(
            "event_lag",
            "From an event's ts_server on the terminal to its commit in MySQL",
            Unit::Seconds,
            lag.clone(),
        );
        let mqtt_connected = Gauge::default();
        registry.register(
            "mqtt_connected",
            "1 while connected to the broker",
            mqtt_connected.clone(),
        );
        Self {
            refused,
            registry,
            messages,
            events_written,
            events_duplicate,
            events_corrected,
            dead_letters,
            commit,
            lag,
            mqtt_connected,
        }
    }
}

impl UplinkMetrics {
    /// A message arrived on a topic ending in `last` (`events`, `roster_changes`, ...).
    pub(crate) fn message(&self, last: &'static str) {
        self.messages
            .get_or_create(&TopicLabels { topic: last })
            .inc();
    }

    /// A batch committed: how long it took, what it wrote, and each new event's lag.
    pub(crate) fn committed(
        &self,
        took: Duration,
        offered: usize,
        inserted: usize,
        corrected: usize,
        dead: usize,
        lags: impl Iterator<Item = Duration>,
    ) {
        self.commit.observe(took.as_secs_f64());
        self.events_written.inc_by(inserted as u64);
        self.events_corrected.inc_by(corrected as u64);
        self.events_duplicate
            .inc_by(offered.saturating_sub(inserted) as u64);
        self.dead_letters.inc_by(dead as u64);
        for l in lags {
            self.lag.observe(l.as_secs_f64());
        }
    }

    /// A message refused before (or instead of) being written, and why (the uplink's
    /// refusal reasons, snake_case).
    pub(crate) fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub(crate) fn mqtt_connected(&self, up: bool) {
        self.mqtt_connected.set(i64::from(up));
    }

    pub(crate) fn render(&self) -> String {
        attendance_core::metrics::render(&[&self.registry])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every uplink metric the Grafana dashboard queries is one the uplink exposes.
    #[test]
    fn the_grafana_dashboard_queries_only_metrics_that_exist() {
        let u = UplinkMetrics::default();
        u.message("events");
        u.refused("rate_limited");
        u.committed(
            Duration::from_millis(3),
            1,
            1,
            0,
            0,
            [Duration::from_secs(1)].into_iter(),
        );
        let exposed = u.render();
        let names = attendance_core::metrics::dashboard_queries("attendance_uplink_");
        assert!(names.len() >= 3, "{names:?}");
        for n in names {
            assert!(
                attendance_core::metrics::exposes(&exposed, n),
                "the dashboard queries {n}, which the uplink does not expose"
            );
        }
    }

    #[test]
    fn a_commit_moves_the_counters_and_histograms() {
        let m = UplinkMetrics::default();
        m.message("events");
        m.message("events");
        m.committed(
            Duration::from_millis(4),
            3,
            2,
            1,
            1,
            [Duration::from_millis(200), Duration::from_secs(2)].into_iter(),
        );
        m.refused("rate_limited");
        let t = m.render();
        for (series, want) in [
            (r#"attendance_uplink_messages_total{topic="events"} "#, "2"),
            ("attendance_uplink_events_written_total ", "2"),
            ("attendance_uplink_events_corrected_total ", "1"),
            ("attendance_uplink_events_duplicate_total ", "1"),
            ("attendance_uplink_dead_letters_total ", "1"),
            ("attendance_uplink_mysql_commit_seconds_count ", "1"),
            ("attendance_uplink_event_lag_seconds_count ", "2"),
            (
                r#"attendance_uplink_refused_total{reason="rate_limited"} "#,
                "1",
            ),
        ] {
            let line = t.lines().find(|l| l.starts_with(series));
            assert_eq!(line, Some(format!("{series}{want}").as_str()), "{t}");
        }
    }
}
