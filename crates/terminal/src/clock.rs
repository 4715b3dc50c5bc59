//! The door's real clocks, read into [`Stamp`]s: the wall clock, the time since boot
//! (`CLOCK_BOOTTIME`), the kernel's boot id, and whether the wall clock is synchronised
//! (`punch.clock_synced`). What is done with them is pure (`attendance_core::clock`).

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, Utc};
use nix::time::{ClockId, clock_gettime};

use attendance_core::clock::{BootTime, ClockSync, Stamp, SyncSource, floor};

/// Where stamps come from (the system's clocks; the store's tests give stamps of
/// `attendance_core::clock::FakeClock` directly).
pub(crate) trait Clock: Send + Sync {
    fn now(&self) -> Stamp;
}

/// The machine's clocks.
pub(crate) struct SystemClock {
    boot: Option<String>,
    synced: SyncSource,
}

impl SystemClock {
    pub(crate) fn shared(synced: SyncSource) -> Arc<dyn Clock> {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        if boot.is_none() {
            tracing::warn!("no boot id: duplicates across a clock step are told by wall time");
        }
        Arc::new(SystemClock { boot, synced })
    }

    fn is_synced(&self) -> bool {
        match &self.synced {
            SyncSource::Always => true,
            SyncSource::Kernel => kernel_synced(),
            SyncSource::File(path) => Path::new(path).exists(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Stamp {
        let since_boot = clock_gettime(ClockId::CLOCK_BOOTTIME).ok();
        let wall = Utc::now();
        let synced = wall >= floor() && self.is_synced();
        Stamp {
            wall,
            sync: if synced {
                ClockSync::Synced
            } else {
                ClockSync::Unsynced
            },
            // Through std's Duration: `tv_sec` is 32 bits on armv7, 64 on aarch64.
            boot: self.boot.clone().zip(since_boot).and_then(|(boot, t)| {
                let since_boot = Duration::from_std(std::time::Duration::from(t)).ok()?;
                Some(BootTime { boot, since_boot })
            }),
        }
    }
}

/// Whether an NTP client (timesyncd, chrony, ntpd) has told the kernel the clock is
/// synchronised: `adjtimex` answers `TIME_ERROR` until then. By hand: neither `nix` nor
/// `rustix` wraps `adjtimex`.
fn kernel_synced() -> bool {
    // SAFETY: `timex` is plain data; modes 0 only reads the kernel's state into it.
    let state = unsafe {
        let mut t: libc::timex = std::mem::zeroed();
        libc::adjtimex(&mut t)
    };
    state >= 0 && state != libc::TIME_ERROR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_knows_its_boot_and_counts_from_it() {
        let c = SystemClock {
            boot: Some("b".into()),
            synced: SyncSource::Always,
        };
        let (a, b) = (c.now(), c.now());
        assert_eq!(a.sync, ClockSync::Synced);
        let (ta, tb) = (a.boot.unwrap(), b.boot.unwrap());
        assert!(ta.since_boot > Duration::zero() && tb.since_boot >= ta.since_boot);
        let file = tempfile::NamedTempFile::new().unwrap();
        let c = SystemClock {
            boot: None,
            synced: SyncSource::File(file.path().display().to_string()),
        };
        assert_eq!(c.now().sync, ClockSync::Synced);
        let gone = file.path().to_owned();
        drop(file);
        assert!(!gone.exists());
        assert_eq!(c.now().sync, ClockSync::Unsynced);
    }
}
