//! 1:1 claims are rationed. One stranger's claim passes about once in 4,000 (docs/book,
//! "1:1 verification"), but claims can be repeated: someone at a kiosk typing id after
//! id would get in within a few thousand tries. So failed verifications are counted per
//! claimed id and per device over a window, and past a limit further claims are refused
//! until the window moves on. Pure: the clock is passed in.

use std::time::{Duration, Instant};

use attendance_core::ration::Failures;

/// Failures allowed per claimed employee id within the window (typos and a bad angle
/// or two).
pub(super) const PER_ID: usize = 5;
/// Failures allowed per device within the window (a busy kiosk's honest mistakes).
const PER_DEVICE: usize = 20;
const WINDOW: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub(super) struct Claims {
    failures: Failures<String>,
}

impl Default for Claims {
    fn default() -> Self {
        Self {
            failures: Failures::new(WINDOW),
        }
    }
}

impl Claims {
    /// Whether a claim of `employee_id` from `device` may be tried now.
    pub(super) fn allowed(&mut self, employee_id: &str, device: &str, now: Instant) -> bool {
        self.failures.count(&id_key(employee_id), now) < PER_ID
            && self.failures.count(&device_key(device), now) < PER_DEVICE
    }

    /// A claim of `employee_id` from `device` failed (the face was not theirs).
    pub(super) fn failed(&mut self, employee_id: &str, device: &str, now: Instant) {
        for key in [id_key(employee_id), device_key(device)] {
            self.failures.fail(key, now);
        }
    }
}

fn id_key(employee_id: &str) -> String {
    format!("id:{employee_id}")
}

fn device_key(device: &str) -> String {
    format!("device:{device}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_refused_after_its_failures_until_the_window_moves_on() {
        let mut c = Claims::default();
        let t0 = Instant::now();
        for i in 0..PER_ID {
            assert!(c.allowed("EMP001", "K1", t0), "attempt {i}");
            c.failed("EMP001", "K1", t0);
        }
        assert!(!c.allowed("EMP001", "K1", t0));
        // Another id from the same kiosk is still tried; the same id from elsewhere is not.
        assert!(c.allowed("EMP002", "K1", t0));
        assert!(!c.allowed("EMP001", "K2", t0));
        assert!(c.allowed("EMP001", "K1", t0 + WINDOW));
    }

    #[test]
    fn a_device_trying_id_after_id_is_refused() {
        let mut c = Claims::default();
        let t0 = Instant::now();
        for i in 0..PER_DEVICE {
            let id = format!("EMP{i:03}");
            assert!(c.allowed(&id, "K1", t0));
            c.failed(&id, "K1", t0);
        }
        assert!(!c.allowed("EMP999", "K1", t0));
        assert!(c.allowed("EMP999", "K2", t0));
        // Aged out: forgotten, and the map is emptied on the next failure.
        c.failed("EMP500", "K2", t0 + WINDOW);
        assert!(c.allowed("EMP999", "K1", t0 + WINDOW));
        assert_eq!(c.failures.keys(), 2);
    }
}
