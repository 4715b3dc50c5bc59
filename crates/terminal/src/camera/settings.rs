//! `[camera]` in the configuration: where frames come from and how often they are
//! streamed and analysed.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use attendance_core::config::{ConfigError, check};
use attendance_core::punch::PunchRequest;

/// Where frames come from: `none`, `replay:PATH` (a folder of images or an MJPEG file) or
/// `v4l2:/dev/videoN` (`v4l2:N` for short).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CameraSpec {
    None,
    Replay(PathBuf),
    V4l2(PathBuf),
}

impl FromStr for CameraSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "none" {
            return Ok(CameraSpec::None);
        }
        if let Some(p) = s.strip_prefix("replay:").filter(|p| !p.is_empty()) {
            return Ok(CameraSpec::Replay(PathBuf::from(p)));
        }
        let dev = s
            .strip_prefix("v4l2:")
            .filter(|d| !d.is_empty())
            .ok_or_else(|| format!("must be none, replay:PATH or v4l2:DEVICE, got {s:?}"))?;
        Ok(CameraSpec::V4l2(match dev.parse::<u32>() {
            Ok(n) => PathBuf::from(format!("/dev/video{n}")),
            Err(_) => PathBuf::from(dev),
        }))
    }
}

impl TryFrom<String> for CameraSpec {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for CameraSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CameraSpec::None => f.write_str("none"),
            CameraSpec::Replay(p) => write!(f, "replay:{}", p.display()),
            CameraSpec::V4l2(p) => write!(f, "v4l2:{}", p.display()),
        }
    }
}

impl From<CameraSpec> for String {
    fn from(s: CameraSpec) -> String {
        s.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CameraSettings {
    pub source: CameraSpec,
    /// The spec's `CAMERA_DEVICE_INDEX`: shorthand for `source = "v4l2:/dev/videoN"`.
    pub(crate) device_index: Option<u32>,
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// Capture and stream rate (the spec's `STREAM_FPS`).
    pub(crate) stream_fps: u32,
    /// Analyses per second of the live frame (detection is the costly part).
    pub(crate) analysis_fps: u32,
    /// Analyses per second while the last one saw no face and nobody waits for a
    /// decision (an empty doorway: detection was most of an idle terminal's CPU). Taken
    /// as every n-th analysis, n = analysis_fps / idle_analysis_fps.
    pub(crate) idle_analysis_fps: u32,
    /// Longest the live analysis goes without a full detection while a face is in view
    /// and nobody waits for a decision, ms. Meanwhile a frame that shows the scene of the
    /// last detection (to within sensor noise and a pixel of jitter) takes over its
    /// result, and the one face in view is looked for only near where it was. An empty
    /// scene is detected again only when it changes. 0: a full detection on every frame
    /// with a face. Detection was nearly all of an idle terminal's CPU; a waiting
    /// decision always gets full detections.
    pub(crate) redetect_ms: u64,
    /// Frames analysed at once (each analysis runs on one core, start to end); results
    /// are published in frame order. Unset: the cores less one, which is left to capture,
    /// the stream and HTTP. One is enough where an analysis takes less than a period.
    pub(crate) analysis_threads: Option<usize>,
    /// `replay:` only: how long each image is shown, ms (0: one frame each). A demo folder
    /// of a few stills looks like a camera with a few seconds per still.
    pub(crate) replay_hold_ms: u64,
    /// How long `/identify` without an image collects camera frames, ms. Read by the
    /// terminal's MODE_A decision, which votes over the camera's analyses.
    pub(crate) identify_window_ms: u64,
    /// Frames that must agree on the same person for a camera identification. Measured
    /// on replayed sequences (docs/book, "Decisions from several frames"): strangers who pass
    /// are look-alikes every frame repeats, so more votes do not lower far; each costs
    /// a point of tar and 0.2 s. 2 guards against one stray frame for little.
    pub(crate) identify_votes: usize,
    /// How long `/enroll` without an image collects camera frames, ms.
    pub(crate) enrol_window_ms: u64,
    /// Most templates one camera enrolment keeps (frames that passed the gates and
    /// differ from each other). Three photos instead of one: tar 0.736 → 0.874 with a
    /// 1,018-person gallery (docs/book).
    pub(crate) enrol_frames: usize,
    pub(crate) jpeg_quality: u8,
    /// Punch whoever walks up: a face that passes the gates starts a decision over
    /// `identify_votes` frames, and one decision is recorded per appearance (a person
    /// standing at the door for a minute is one punch). Off: only `/identify` punches.
    pub(crate) walk_up: bool,
    /// Which way a walk-up punch goes: `AUTO` (alternate from the person's last punch
    /// today), `IN` or `OUT`. The screen's buttons override it for `walk_up_choice_ms`.
    pub(crate) walk_up_mode: PunchRequest,
    /// How long a way chosen on the screen (IN/OUT buttons) holds, ms.
    pub(crate) walk_up_choice_ms: u64,
    /// The buddy-punching guard: a camera decision also needs the head to turn a little
    /// within its frames (a photo held up to the camera does not). Needs the dlib
    /// models (the landmarks). Off by default: a person standing perfectly still is then
    /// asked to turn their head, which a door used to walking through may not want.
    pub(crate) liveness: bool,
    /// How far the nose must move across the eye line, in eye distances (docs/book,
    /// "Buddy punching": still photos stay under 0.045 on dev).
    pub(crate) liveness_min_turn: f64,
    /// Learning at the door: a walk-up punch whose face is recognised with room to spare
    /// and differs from the person's templates is kept as one more of them (at most 6,
    /// the most redundant replaced; shared with the site's doors). Follows faces that
    /// change; `eval --learn` measures it (docs/book, "Learning at the door").
    pub(crate) learn_at_door: bool,
}

impl Default for CameraSettings {
    fn default() -> Self {
        Self {
            source: CameraSpec::None,
            device_index: None,
            width: 640,
            height: 480,
            stream_fps: 20,
            analysis_fps: 5,
            idle_analysis_fps: 2,
            redetect_ms: 1000,
            analysis_threads: None,
            replay_hold_ms: 0,
            identify_window_ms: 1500,
            identify_votes: 2,
            enrol_window_ms: 3000,
            enrol_frames: 3,
            jpeg_quality: 80,
            walk_up: true,
            walk_up_mode: PunchRequest::Auto,
            walk_up_choice_ms: 10_000,
            liveness: false,
            liveness_min_turn: attendance_face::liveness::LivenessRule::DEFAULT.min_turn,
            learn_at_door: true,
        }
    }
}

impl CameraSettings {
    /// Folds the `device_index` shorthand into `source`.
    pub(crate) fn resolve(&mut self) {
        if let Some(n) = self.device_index.take() {
            self.source = CameraSpec::V4l2(PathBuf::from(format!("/dev/video{n}")));
        }
    }

    /// [`Self::analysis_threads`], or the cores less one (at least one).
    pub(crate) fn analysis_threads(&self) -> usize {
        self.analysis_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
        })
    }

    /// Range checks the types cannot express; keys relative to `[camera]`.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check((1..=60).contains(&self.stream_fps), "stream_fps", || {
            format!("must be in 1..=60, got {}", self.stream_fps)
        })?;
        check(
            (1..=30).contains(&self.analysis_fps),
            "analysis_fps",
            || format!("must be in 1..=30, got {}", self.analysis_fps),
        )?;
        check(
            (1..=self.analysis_fps).contains(&self.idle_analysis_fps),
            "idle_analysis_fps",
            || {
                format!(
                    "must be in 1..=analysis_fps ({}), got {}",
                    self.analysis_fps, self.idle_analysis_fps
                )
            },
        )?;
        if let Some(n) = self.analysis_threads {
            check((1..=16).contains(&n), "analysis_threads", || {
                format!("must be in 1..=16, got {n}")
            })?;
        }
        check(self.redetect_ms <= 60_000, "redetect_ms", || {
            format!("must be in 0..=60000, got {}", self.redetect_ms)
        })?;
        check(
            (1..=100).contains(&self.jpeg_quality),
            "jpeg_quality",
            || format!("must be in 1..=100, got {}", self.jpeg_quality),
        )?;
        check(
            (1..=30).contains(&self.identify_votes),
            "identify_votes",
            || format!("must be in 1..=30, got {}", self.identify_votes),
        )?;
        check(
            (1..=10).contains(&self.enrol_frames),
            "enrol_frames",
            || format!("must be in 1..=10, got {}", self.enrol_frames),
        )?;
        check(
            (0.01..=0.5).contains(&self.liveness_min_turn),
            "liveness_min_turn",
            || format!("must be in 0.01..=0.5, got {}", self.liveness_min_turn),
        )?;
        check(
            (1000..=120_000).contains(&self.walk_up_choice_ms),
            "walk_up_choice_ms",
            || format!("must be in 1000..=120000, got {}", self.walk_up_choice_ms),
        )?;
        check(
            (500..=30_000).contains(&self.enrol_window_ms),
            "enrol_window_ms",
            || format!("must be in 500..=30000, got {}", self.enrol_window_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        let p = |s: &str| s.parse::<CameraSpec>();
        assert_eq!(p("none"), Ok(CameraSpec::None));
        assert_eq!(p("v4l2:0"), Ok(CameraSpec::V4l2("/dev/video0".into())));
        assert_eq!(
            p("v4l2:/dev/v4l/by-id/usb-cam"),
            Ok(CameraSpec::V4l2("/dev/v4l/by-id/usb-cam".into()))
        );
        assert_eq!(p("replay:demo"), Ok(CameraSpec::Replay("demo".into())));
        for bad in ["replay:", "usb", "v4l2:", ""] {
            assert!(p(bad).unwrap_err().contains("replay:PATH"), "{bad:?}");
        }
        for s in ["none", "replay:demo", "v4l2:/dev/video2"] {
            assert_eq!(p(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn device_index_becomes_a_v4l2_source() {
        let mut c = CameraSettings {
            device_index: Some(2),
            ..CameraSettings::default()
        };
        c.resolve();
        assert_eq!(c.source, CameraSpec::V4l2("/dev/video2".into()));
        assert_eq!(c.device_index, None);
    }

    #[test]
    fn ranges_name_their_key() {
        CameraSettings::default().validate().unwrap();
        let c = CameraSettings {
            identify_votes: 0,
            ..CameraSettings::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "identify_votes");
        let c = CameraSettings {
            analysis_fps: 5,
            idle_analysis_fps: 6,
            ..CameraSettings::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "idle_analysis_fps");
        for (c, key) in [
            (
                CameraSettings {
                    analysis_threads: Some(0),
                    ..CameraSettings::default()
                },
                "analysis_threads",
            ),
            (
                CameraSettings {
                    redetect_ms: 60_001,
                    ..CameraSettings::default()
                },
                "redetect_ms",
            ),
        ] {
            assert_eq!(c.validate().unwrap_err().key, key);
        }
        assert!(CameraSettings::default().analysis_threads() >= 1);
    }
}
