//! The terminal's metrics: punches by result and reason, the identify stages' latency,
//! camera frames; and at scrape time the gallery, the outbox, the MQTT link, the camera
//! and the roster.

use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use attendance_core::reason::Reason;

const PREFIX: &str = "attendanced";

/// A step of answering a face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Photo bytes to pixels.
    Decode,
    /// Finding the faces and running the gates.
    Detect,
    /// The template of the accepted face.
    Embed,
    /// Comparing it with the gallery and deciding.
    Match,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Detect => "detect",
            Stage::Embed => "embed",
            Stage::Match => "match",
        }
    }
}

/// How a recorded attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PunchResult {
    Recognised,
    /// Recognised again inside the duplicate window: nothing recorded.
    Duplicate,
    Failed(Reason),
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PunchLabels {
    result: &'static str,
    reason: &'static str,
    source: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

type Stages = Family<StageLabels, Histogram, fn() -> Histogram>;

fn stage_histogram() -> Histogram {
    Histogram::new(attendance_core::metrics::latency_buckets())
}

/// What the terminal records as it works. With `enabled` false (`http.metrics = false`)
/// nothing is recorded and `/metrics` is not served.
#[derive(Debug)]
pub(crate) struct TerminalMetrics {
    enabled: bool,
    site: String,
    device_id: String,
    registry: Registry,
    punches: Family<PunchLabels, Counter>,
    stages: Stages,
    frames_analysed: Counter,
    frames_dropped: Counter,
    lessons: Family<StateLabels, Counter>,
}

/// The state read at scrape time. `None` where the read failed: a gauge is left out
/// rather than shown as 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Scrape {
    pub(crate) database_ok: bool,
    pub(crate) people: usize,
    pub(crate) templates: usize,
    pub(crate) outbox_pending: Option<u64>,
    pub(crate) outbox_unconfirmed: Option<u64>,
    /// Age of the oldest unpublished event (0 when none waits).
    pub(crate) outbox_oldest_age: Option<Duration>,
    pub(crate) free_mb: Option<u64>,
    /// `disabled`, `connecting`, `connected` or `disconnected`.
    pub(crate) mqtt: &'static str,
    pub(crate) camera: Option<CameraScrape>,
    /// The roster revision applied here and the site's head (in a fleet).
    pub(crate) roster: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CameraScrape {
    pub(crate) streaming: bool,
    /// Frames the camera delivered since it started.
    pub(crate) captured: u64,
    pub(crate) viewers: usize,
}

impl TerminalMetrics {
    pub(crate) fn new(enabled: bool, site: &str, device_id: &str) -> Self {
        let mut registry =
            attendance_core::metrics::registry(PREFIX, &[("site", site), ("device_id", device_id)]);
        let punches = Family::<PunchLabels, Counter>::default();
        registry.register(
            "punches",
            "Recorded attempts (and duplicates answered without a record), by result, reason and source",
            punches.clone(),
        );
        let stages: Stages = Family::new_with_constructor(stage_histogram);
        registry.register_with_unit(
            "identify_stage",
            "Time of each stage of answering a face: decode, detect, embed, match",
            Unit::Seconds,
            stages.clone(),
        );
        let frames_analysed = Counter::default();
        registry.register(
            "camera_frames_analysed",
            "Camera frames analysed (detection and gates)",
            frames_analysed.clone(),
        );
        let frames_dropped = Counter::default();
        registry.register(
            "camera_frames_dropped",
            "Camera frames never analysed: skipped while the analysis was busy or idle, or undecodable",
            frames_dropped.clone(),
        );
        let lessons = Family::<StateLabels, Counter>::default();
        registry.register(
            "walk_up_lessons",
            "Walk-up punches considered for learning at the door: learned, redundant (the gallery holds the face), not_confident",
            lessons.clone(),
        );
        Self {
            lessons,
            enabled,
            site: site.to_owned(),
            device_id: device_id.to_owned(),
            registry,
            punches,
            stages,
            frames_analysed,
            frames_dropped,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn punched(&self, result: PunchResult, source: &'static str) {
        if !self.enabled {
            return;
        }
        let (result, reason) = match result {
            PunchResult::Recognised => ("recognised", "none"),
            PunchResult::Duplicate => ("duplicate", "none"),
            PunchResult::Failed(r) => ("failed", r.as_str()),
        };
        self.punches
            .get_or_create(&PunchLabels {
                result,
                reason,
                source,
            })
            .inc();
    }

    /// What a walk-up punch taught (`learned`, `redundant`, `not_confident`).
    pub(crate) fn lesson(&self, state: &'static str) {
        if self.enabled {
            self.lessons.get_or_create(&StateLabels { state }).inc();
        }
    }

    /// Runs `f`, recording how long it took as `stage`.
    pub(crate) fn timed<T>(&self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        self.stage(stage, started.elapsed());
        out
    }

    fn stage(&self, stage: Stage, took: Duration) {
        if self.enabled {
            self.stages
                .get_or_create(&StageLabels {
                    stage: stage.as_str(),
                })
                .observe(took.as_secs_f64());
        }
    }

    /// One frame analysed, after `skipped` frames that were not.
    pub(crate) fn frame_analysed(&self, skipped: u64) {
        if self.enabled {
            self.frames_analysed.inc();
            self.frames_dropped.inc_by(skipped);
        }
    }

    pub(crate) fn frame_dropped(&self) {
        if self.enabled {
            self.frames_dropped.inc();
        }
    }

    /// The exposition: what was recorded, then the state read for this scrape.
    pub(crate) fn render(&self, s: &Scrape) -> String {
        let mut now = attendance_core::metrics::registry(
            PREFIX,
            &[("site", &self.site), ("device_id", &self.device_id)],
        );
        now.register(
            "database_up",
            "1 when the SQLite database answers",
            ConstGauge::new(i64::from(s.database_ok)),
        );
        now.register(
            "gallery_people",
            "People in the gallery",
            ConstGauge::new(s.people as i64),
        );
        now.register(
            "gallery_templates",
            "Templates in the gallery",
            ConstGauge::new(s.templates as i64),
        );
        if let Some(n) = s.outbox_pending {
            now.register(
                "outbox_pending",
                "Events and roster changes not yet published",
                ConstGauge::new(n as i64),
            );
        }
        if let Some(n) = s.outbox_unconfirmed {
            now.register(
                "outbox_unconfirmed",
                "Published, the uplink's receipt not yet seen",
                ConstGauge::new(n as i64),
            );
        }
        if let Some(age) = s.outbox_oldest_age {
            now.register_with_unit(
                "outbox_oldest_age",
                "Age of the oldest unpublished event (0 when none waits)",
                Unit::Seconds,
                ConstGauge::new(age.as_secs_f64()),
            );
        }
        if let Some(mb) = s.free_mb {
            now.register_with_unit(
                "storage_free",
                "Free space on the data folder's file system",
                Unit::Bytes,
                ConstGauge::new((mb * 1024 * 1024) as i64),
            );
        }
        let mqtt = Family::<StateLabels, Gauge>::default();
        for state in ["disabled", "connecting", "connected", "disconnected"] {
            mqtt.get_or_create(&StateLabels { state })
                .set(i64::from(state == s.mqtt));
        }
        now.register("mqtt_state", "The MQTT link: 1 for its state", mqtt);
        if let Some(c) = s.camera {
            now.register(
                "camera_streaming",
                "1 when the camera delivers frames",
                ConstGauge::new(i64::from(c.streaming)),
            );
            now.register(
                "camera_frames_captured",
                "Frames the camera delivered since it started",
                ConstCounter::new(c.captured),
            );
            now.register(
                "stream_viewers",
                "Open /stream.mjpeg viewers",
                ConstGauge::new(c.viewers as i64),
            );
        }
        if let Some((revision, head)) = s.roster {
            now.register(
                "roster_revision",
                "The site roster's revision applied here",
                ConstGauge::new(revision as i64),
            );
            now.register(
                "roster_behind",
                "Roster revisions the centre has that this door has not applied",
                ConstGauge::new(head.saturating_sub(revision) as i64),
            );
        }
        attendance_core::metrics::render(&[&self.registry, &now])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every terminal metric the Grafana dashboard queries is one the terminal exposes.
    #[test]
    fn the_grafana_dashboard_queries_only_metrics_that_exist() {
        let t = TerminalMetrics::new(true, "hq", "T1");
        t.punched(PunchResult::Failed(Reason::Unknown), "upload");
        t.timed(Stage::Decode, || ());
        t.frame_analysed(1);
        let exposed = t.render(&Scrape {
            database_ok: true,
            outbox_pending: Some(1),
            outbox_unconfirmed: Some(0),
            outbox_oldest_age: Some(Duration::from_secs(1)),
            free_mb: Some(1),
            mqtt: "connected",
            camera: Some(CameraScrape::default()),
            roster: Some((1, 2)),
            ..Scrape::default()
        });
        let names = attendance_core::metrics::dashboard_queries("attendanced_");
        assert!(names.len() >= 6, "{names:?}");
        for n in names {
            assert!(
                attendance_core::metrics::exposes(&exposed, n),
                "the dashboard queries {n}, which the terminal does not expose"
            );
        }
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn recorded_and_scraped_values_appear_with_the_terminals_labels() {
        let m = TerminalMetrics::new(true, "hq", "T1");
        m.punched(PunchResult::Recognised, "upload");
        m.punched(PunchResult::Recognised, "upload");
        m.punched(PunchResult::Failed(Reason::NoFace), "camera");
        m.stage(Stage::Detect, Duration::from_millis(30));
        m.frame_analysed(3);
        let text = m.render(&Scrape {
            database_ok: true,
            people: 4,
            outbox_pending: Some(2),
            outbox_oldest_age: Some(Duration::from_millis(1500)),
            mqtt: "connected",
            ..Scrape::default()
        });
        let labels = r#"site="hq",device_id="T1""#;
        assert_eq!(
            value(
                &text,
                &format!(
                    r#"attendanced_punches_total{{{labels},result="recognised",reason="none",source="upload"}}"#
                )
            ),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            value(
                &text,
                &format!(
                    r#"attendanced_punches_total{{{labels},result="failed",reason="no_face",source="camera"}}"#
                )
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                &format!(r#"attendanced_identify_stage_seconds_count{{{labels},stage="detect"}}"#)
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("attendanced_camera_frames_dropped_total{{{labels}}}")
            ),
            Some(3.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("attendanced_outbox_oldest_age_seconds{{{labels}}}")
            ),
            Some(1.5)
        );
        assert_eq!(
            value(
                &text,
                &format!(r#"attendanced_mqtt_state{{{labels},state="connected"}}"#)
            ),
            Some(1.0)
        );
        // A read that failed is left out, not shown as 0.
        assert!(!text.contains("outbox_unconfirmed"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn disabled_metrics_record_nothing() {
        let m = TerminalMetrics::new(false, "hq", "T1");
        m.punched(PunchResult::Recognised, "upload");
        m.stage(Stage::Match, Duration::from_millis(1));
        let text = m.render(&Scrape::default());
        assert!(!text.contains("attendanced_punches_total{"), "{text}");
        assert!(!text.contains("identify_stage_seconds_count{"), "{text}");
    }
}
