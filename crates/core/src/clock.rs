//! Time at a door that may not know the time. A Pi has no battery clock: it boots at 1970
//! or at its last shutdown time, and NTP steps the clock minutes later, forward or back by
//! hours. So every stamp carries, beside the wall time, whether that time was synchronised
//! and the time since boot (which no step moves): within one boot, two stamps are
//! compared by time since boot, and a stamp taken before the sync is corrected to the
//! wall time it really had. Pure: the terminal reads the real clocks ([`Stamp`]s in,
//! decisions out).

use std::fmt;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Whether a wall time can be believed. On the wire (`clock` in an event) and in every
/// table as `synced`, `unsynced` or `corrected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockSync {
    /// Taken while the clock was synchronised (or trusted by configuration).
    Synced,
    /// Taken before the clock was synchronised: the date may be 1970 or days old.
    Unsynced,
    /// Taken unsynchronised, then recomputed from the time since boot when the clock
    /// became synchronised in the same boot: as good as `synced`.
    Corrected,
}

impl ClockSync {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockSync::Synced => "synced",
            ClockSync::Unsynced => "unsynced",
            ClockSync::Corrected => "corrected",
        }
    }

    pub fn parse(s: &str) -> Option<ClockSync> {
        match s {
            "synced" => Some(ClockSync::Synced),
            "unsynced" => Some(ClockSync::Unsynced),
            "corrected" => Some(ClockSync::Corrected),
            _ => None,
        }
    }
}

impl fmt::Display for ClockSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the door knows its wall clock is synchronised (`punch.clock_synced`): `kernel`
/// (an NTP client, timesyncd, chrony or ntpd, told the kernel so), `always` (a board with a
/// battery clock and no NTP), or the absolute path of a file that exists once it is
/// (systemd-timesyncd's `/run/systemd/timesync/synchronized`). Whatever it says, a wall
/// time before [`floor`] is unsynchronised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SyncSource {
    Kernel,
    Always,
    File(String),
}

impl TryFrom<String> for SyncSource {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "kernel" => Ok(SyncSource::Kernel),
            "always" => Ok(SyncSource::Always),
            p if p.starts_with('/') => Ok(SyncSource::File(s)),
            _ => Err(format!(
                "must be kernel, always or an absolute path, got {s:?}"
            )),
        }
    }
}

impl From<SyncSource> for String {
    fn from(s: SyncSource) -> String {
        match s {
            SyncSource::Kernel => "kernel".into(),
            SyncSource::Always => "always".into(),
            SyncSource::File(p) => p,
        }
    }
}

/// No punch happened before this: a wall time earlier than it is a clock that was never
/// set, whatever the kernel says (2025-01-01, before this software existed).
pub fn floor() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Where in one boot an instant lies: the kernel's boot id and the time since boot
/// (`CLOCK_BOOTTIME`, which counts suspend too and is never stepped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootTime {
    pub boot: String,
    pub since_boot: Duration,
}

/// One reading of the door's clocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub wall: DateTime<Utc>,
    pub sync: ClockSync,
    /// `None` where the boot cannot be told (then only wall times are compared).
    pub boot: Option<BootTime>,
}

impl Stamp {
    /// A reading whose wall time is believed, with no boot (tests, uploads of history).
    pub fn synced(wall: DateTime<Utc>) -> Stamp {
        Stamp {
            wall,
            sync: ClockSync::Synced,
            boot: None,
        }
    }

    /// The wall time, by this reading's clock, of an earlier instant of the same boot
    /// (`None` for another boot or an unknown one). What a step does not change: a punch
    /// 20 s ago is 20 s ago even if NTP moved the clock by hours in between.
    pub fn project(&self, then: &BootTime) -> Option<DateTime<Utc>> {
        let now = self.boot.as_ref()?;
        (now.boot == then.boot).then(|| self.wall - (now.since_boot - then.since_boot))
    }

    /// The best wall time of an earlier reading: projected when it is of this boot,
    /// else its own.
    pub fn place(&self, then_wall: DateTime<Utc>, then: Option<&BootTime>) -> DateTime<Utc> {
        then.and_then(|b| self.project(b)).unwrap_or(then_wall)
    }
}

/// A clock for tests: a wall time that steps when told, a time since boot that only
/// advances, and a sync state that is set.
#[derive(Debug, Clone)]
pub struct FakeClock {
    now: Stamp,
}

impl FakeClock {
    /// Boot `boot`, `since_boot` zero, wall at `wall`, not synchronised.
    pub fn booted(boot: &str, wall: DateTime<Utc>) -> FakeClock {
        FakeClock {
            now: Stamp {
                wall,
                sync: ClockSync::Unsynced,
                boot: Some(BootTime {
                    boot: boot.to_owned(),
                    since_boot: Duration::zero(),
                }),
            },
        }
    }

    pub fn now(&self) -> Stamp {
        self.now.clone()
    }

    /// Real time passing: both clocks advance.
    pub fn advance(&mut self, d: Duration) {
        self.now.wall += d;
        if let Some(b) = &mut self.now.boot {
            b.since_boot += d;
        }
    }

    /// NTP stepping the wall clock by `d` (either sign) and marking it synchronised.
    pub fn step(&mut self, d: Duration) {
        self.now.wall += d;
        self.now.sync = ClockSync::Synced;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn an_earlier_instant_of_the_boot_is_placed_by_time_since_boot() {
        let mut c = FakeClock::booted("b1", t("1970-01-01T00:00:10Z"));
        let then = c.now();
        c.advance(Duration::seconds(30));
        c.step(Duration::days(20_000));
        let now = c.now();
        let placed = now.project(then.boot.as_ref().unwrap()).unwrap();
        assert_eq!(now.wall - placed, Duration::seconds(30));
        // A step back of hours: still 30 s + 5 s earlier.
        c.advance(Duration::seconds(5));
        c.step(Duration::hours(-3));
        let now = c.now();
        assert_eq!(
            now.wall - now.place(then.wall, then.boot.as_ref()),
            Duration::seconds(35)
        );
    }

    #[test]
    fn another_boot_keeps_its_own_wall_time() {
        let a = FakeClock::booted("b1", t("2026-01-05T00:00:00Z")).now();
        let mut c = FakeClock::booted("b2", t("2026-01-05T01:00:00Z"));
        c.advance(Duration::seconds(3));
        let now = c.now();
        assert_eq!(now.project(a.boot.as_ref().unwrap()), None);
        assert_eq!(now.place(a.wall, a.boot.as_ref()), a.wall);
        assert_eq!(Stamp::synced(a.wall).place(a.wall, a.boot.as_ref()), a.wall);
    }

    #[test]
    fn sync_sources_are_written_as_words_or_a_path() {
        let s = |v: &str| SyncSource::try_from(v.to_owned());
        assert_eq!(s("kernel"), Ok(SyncSource::Kernel));
        assert_eq!(s("always"), Ok(SyncSource::Always));
        let p = "/run/systemd/timesync/synchronized";
        assert_eq!(s(p), Ok(SyncSource::File(p.into())));
        assert_eq!(String::from(SyncSource::File(p.into())), p);
        for bad in ["", "ntp", "run/x"] {
            assert!(s(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sync_states_are_written_as_words() {
        for s in [ClockSync::Synced, ClockSync::Unsynced, ClockSync::Corrected] {
            assert_eq!(ClockSync::parse(s.as_str()), Some(s));
        }
        assert_eq!(ClockSync::parse("maybe"), None);
        assert!(t("1970-01-01T00:00:00Z") < floor() && floor() < t("2026-01-01T00:00:00Z"));
    }
}
