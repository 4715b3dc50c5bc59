//! systemd integration: `READY=1` once the service can work, `STATUS=` lines an operator
//! sees in `systemctl status`, and a watchdog fed only while the work is actually being
//! done, so a wedged loop gets the process restarted. Every call is a no-op outside
//! systemd (no `NOTIFY_SOCKET`).

use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tracing::debug;

/// Talks to the service manager.
#[derive(Debug, Clone, Copy)]
pub struct Notifier {
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` / `WATCHDOG_USEC` from the environment.
    pub fn from_env() -> Self {
        Self {
            watchdog: sd_notify::watchdog_enabled(),
        }
    }

    fn send(&self, state: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(state) {
            debug!(error = %e, "sd_notify failed");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// Feeds the watchdog; call only when [`Liveness::Healthy`].
    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// A configuration reload begins (`systemctl reload` waits for [`Notifier::ready`]).
    pub fn reloading(&self) {
        if let Ok(now) = sd_notify::NotifyState::monotonic_usec_now() {
            self.send(&[NotifyState::Reloading, now]);
        } else {
            self.send(&[NotifyState::Reloading]);
        }
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    /// How often to check health and feed the watchdog: half its timeout, and at least
    /// every 5 s so `STATUS=` stays fresh.
    pub fn tick(&self) -> Duration {
        self.watchdog
            .map_or(Duration::from_secs(5), |w| {
                (w / 2).min(Duration::from_secs(5))
            })
            .max(Duration::from_millis(100))
    }
}

/// Whether the terminal is doing its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Healthy,
    /// Something that should make progress did not; the watchdog is not fed.
    Stalled(&'static str),
}

/// What the supervisor sees of the camera loop.
#[derive(Debug, Clone, Copy)]
pub struct CameraProgress {
    /// When the last frame arrived from the camera.
    pub last_frame: Option<Instant>,
    /// When the analysis loop last finished a frame.
    pub last_analysis: Option<Instant>,
}

/// The terminal's liveness. The analysis loop is wedged when frames keep arriving but
/// none has been analysed for `stall`; no camera, or a camera that sends nothing, is a
/// degraded terminal (reported in `/health`), not a wedged process.
pub fn liveness(
    database_ok: bool,
    camera: Option<CameraProgress>,
    now: Instant,
    stall: Duration,
) -> Liveness {
    if !database_ok {
        return Liveness::Stalled("database unusable");
    }
    let Some(c) = camera else {
        return Liveness::Healthy;
    };
    let fresh = |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < stall);
    let frames_arrive = fresh(c.last_frame);
    // The analysis is measured from the later of its last result and the first frame it
    // has not yet seen, so a camera that just came back is not a stall.
    if frames_arrive && !fresh(c.last_analysis) {
        let waiting_since = match (c.last_analysis, c.last_frame) {
            (Some(a), _) => a,
            (None, Some(f)) => f,
            (None, None) => now,
        };
        if now.saturating_duration_since(waiting_since) >= stall {
            return Liveness::Stalled("camera analysis loop");
        }
    }
    Liveness::Healthy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wedged_analysis_loop_is_a_stall_and_a_silent_camera_is_not() {
        let t0 = Instant::now();
        let stall = Duration::from_secs(10);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let cam = |f: Option<u64>, a: Option<u64>| {
            Some(CameraProgress {
                last_frame: f.map(at),
                last_analysis: a.map(at),
            })
        };
        assert_eq!(liveness(true, None, at(100), stall), Liveness::Healthy);
        // Frames arrive and are analysed.
        assert_eq!(
            liveness(true, cam(Some(99), Some(98)), at(100), stall),
            Liveness::Healthy
        );
        // Frames arrive, the last analysis is 30 s old: wedged.
        assert_eq!(
            liveness(true, cam(Some(99), Some(70)), at(100), stall),
            Liveness::Stalled("camera analysis loop")
        );
        // Camera unplugged 60 s ago: nothing to analyse, not a stall.
        assert_eq!(
            liveness(true, cam(Some(40), Some(40)), at(100), stall),
            Liveness::Healthy
        );
        // First frame just arrived, nothing analysed yet: give it time.
        assert_eq!(
            liveness(true, cam(Some(99), None), at(100), stall),
            Liveness::Healthy
        );
        assert_eq!(
            liveness(false, None, at(100), stall),
            Liveness::Stalled("database unusable")
        );
    }

    #[test]
    fn watchdog_is_fed_at_half_its_timeout() {
        let n = Notifier {
            watchdog: Some(Duration::from_secs(4)),
        };
        assert_eq!(n.tick(), Duration::from_secs(2));
        let n = Notifier { watchdog: None };
        assert_eq!(n.tick(), Duration::from_secs(5));
        let n = Notifier {
            watchdog: Some(Duration::from_secs(60)),
        };
        assert_eq!(n.tick(), Duration::from_secs(5));
    }
}
