//! Punch rules a door terminal needs: which way (`IN`/`OUT`/`AUTO`), and when a second
//! punch is the same one again. Pure: the store applies them inside its transaction.

use std::fmt;

use chrono::{DateTime, FixedOffset, Local, Offset, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::SyncSource;

/// Direction of a recorded punch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PunchKind {
    #[serde(rename = "IN")]
    In,
    #[serde(rename = "OUT")]
    Out,
}

impl PunchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PunchKind::In => "IN",
            PunchKind::Out => "OUT",
        }
    }

    pub fn parse(s: &str) -> Option<PunchKind> {
        match s {
            "IN" => Some(PunchKind::In),
            "OUT" => Some(PunchKind::Out),
            _ => None,
        }
    }

    pub fn opposite(self) -> PunchKind {
        match self {
            PunchKind::In => PunchKind::Out,
            PunchKind::Out => PunchKind::In,
        }
    }
}

impl fmt::Display for PunchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the request asked for. In the configuration (`camera.walk_up_mode`) as `IN`,
/// `OUT` or `AUTO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PunchRequest {
    Kind(PunchKind),
    /// Alternate from the person's last punch today (first punch of the day is `IN`).
    Auto,
}

impl PunchRequest {
    /// Parses `IN`, `OUT` or `AUTO` (any case).
    pub fn parse(s: &str) -> Option<PunchRequest> {
        match s.trim().to_ascii_uppercase().as_str() {
            "AUTO" => Some(PunchRequest::Auto),
            other => PunchKind::parse(other).map(PunchRequest::Kind),
        }
    }

    /// `IN`, `OUT` or `AUTO`.
    pub fn as_str(self) -> &'static str {
        match self {
            PunchRequest::Kind(k) => k.as_str(),
            PunchRequest::Auto => "AUTO",
        }
    }

    /// The kind recorded for an unrecognised attempt (there is no history to alternate).
    pub fn or_in(self) -> PunchKind {
        match self {
            PunchRequest::Kind(k) => k,
            PunchRequest::Auto => PunchKind::In,
        }
    }
}

impl TryFrom<String> for PunchRequest {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        PunchRequest::parse(&s).ok_or_else(|| format!("must be IN, OUT or AUTO, got {s:?}"))
    }
}

impl From<PunchRequest> for String {
    fn from(r: PunchRequest) -> String {
        r.as_str().to_owned()
    }
}

/// The person's most recent recorded punch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastPunch {
    pub kind: PunchKind,
    pub at: DateTime<Utc>,
}

/// `[punch]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PunchSettings {
    /// A second identical punch within this many seconds records nothing new.
    pub duplicate_window_secs: u32,
    /// UTC offset that defines "today" for `AUTO` punches, e.g. `+09:00`; `local` uses
    /// the system time zone.
    pub timezone: DayZone,
    /// How the door knows its clock is synchronised; punches taken before are marked
    /// `unsynced` and corrected when it is (`crate::clock`).
    pub clock_synced: SyncSource,
}

impl Default for PunchSettings {
    fn default() -> Self {
        Self {
            duplicate_window_secs: 60,
            timezone: DayZone::Local,
            clock_synced: SyncSource::Kernel,
        }
    }
}

impl PunchSettings {
    pub fn rules(&self) -> PunchRules {
        PunchRules {
            duplicate_window: chrono::Duration::seconds(i64::from(self.duplicate_window_secs)),
            zone: self.timezone,
        }
    }
}

/// The terminal's punch rules, applied by the store inside its transaction.
#[derive(Debug, Clone, Copy)]
pub struct PunchRules {
    pub duplicate_window: chrono::Duration,
    pub zone: DayZone,
}

/// The terminal's notion of "today". Written `local` or as an offset (`+09:00`, `Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DayZone {
    /// The system time zone.
    Local,
    Fixed(FixedOffset),
}

impl TryFrom<String> for DayZone {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        if s == "local" {
            return Ok(DayZone::Local);
        }
        parse_offset(&s)
            .map(DayZone::Fixed)
            .ok_or_else(|| format!("must be local or an offset like +09:00, got {s:?}"))
    }
}

impl From<DayZone> for String {
    fn from(z: DayZone) -> String {
        match z {
            DayZone::Local => "local".into(),
            DayZone::Fixed(o) => o.to_string(),
        }
    }
}

/// Parses `+09:00` / `-05:30` / `Z` into a fixed offset.
fn parse_offset(s: &str) -> Option<FixedOffset> {
    if s == "Z" || s == "UTC" {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

impl DayZone {
    fn offset_at(self, t: DateTime<Utc>) -> FixedOffset {
        match self {
            DayZone::Local => Local.from_utc_datetime(&t.naive_utc()).offset().fix(),
            DayZone::Fixed(o) => o,
        }
    }

    pub fn same_day(self, a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
        a.with_timezone(&self.offset_at(a)).date_naive()
            == b.with_timezone(&self.offset_at(b)).date_naive()
    }
}

/// What to do with a recognised person's punch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PunchDecision {
    Record(PunchKind),
    /// The same punch again within the window: answer success, record nothing.
    Duplicate(PunchKind),
}

/// Applies the rules: resolve `AUTO`, then suppress repeats inside `window`.
///
/// A repeat is the same direction inside the window; for `AUTO` any punch inside the
/// window is a repeat (a person lingering at the door must not flip IN to OUT).
pub fn decide(
    req: PunchRequest,
    last: Option<LastPunch>,
    now: DateTime<Utc>,
    window: chrono::Duration,
    zone: DayZone,
) -> PunchDecision {
    let recent = last.filter(|l| now.signed_duration_since(l.at) < window && l.at <= now);
    match req {
        PunchRequest::Kind(k) => match recent {
            Some(l) if l.kind == k => PunchDecision::Duplicate(k),
            _ => PunchDecision::Record(k),
        },
        PunchRequest::Auto => {
            if let Some(l) = recent {
                return PunchDecision::Duplicate(l.kind);
            }
            let kind = match last {
                Some(l) if zone.same_day(l.at, now) => l.kind.opposite(),
                _ => PunchKind::In,
            };
            PunchDecision::Record(kind)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn last(kind: PunchKind, at: &str) -> Option<LastPunch> {
        Some(LastPunch { kind, at: t(at) })
    }

    const W: i64 = 60;
    fn kst() -> DayZone {
        DayZone::Fixed(FixedOffset::east_opt(9 * 3600).unwrap())
    }

    fn d(req: PunchRequest, l: Option<LastPunch>, now: &str) -> PunchDecision {
        decide(req, l, t(now), Duration::seconds(W), kst())
    }

    #[test]
    fn zones_are_written_as_local_or_an_offset() {
        let z = |s: &str| DayZone::try_from(s.to_owned());
        assert_eq!(z("local"), Ok(DayZone::Local));
        assert_eq!(z("+09:00"), Ok(kst()));
        assert_eq!(
            z("-05:30"),
            Ok(DayZone::Fixed(
                FixedOffset::west_opt(5 * 3600 + 1800).unwrap()
            ))
        );
        assert_eq!(
            z("Z"),
            Ok(DayZone::Fixed(FixedOffset::east_opt(0).unwrap()))
        );
        for bad in ["09:00", "+25:00", "+09", "Asia/Seoul", "", "+é:00"] {
            assert!(z(bad).is_err(), "{bad:?}");
        }
        assert_eq!(String::from(kst()), "+09:00");
        assert_eq!(String::from(DayZone::Local), "local");
    }

    #[test]
    fn parse_requests() {
        assert_eq!(
            PunchRequest::parse("in"),
            Some(PunchRequest::Kind(PunchKind::In))
        );
        assert_eq!(
            PunchRequest::parse("OUT"),
            Some(PunchRequest::Kind(PunchKind::Out))
        );
        assert_eq!(PunchRequest::parse(" Auto "), Some(PunchRequest::Auto));
        assert_eq!(PunchRequest::parse("sideways"), None);
    }

    #[test]
    fn same_direction_inside_window_is_duplicate() {
        let req = PunchRequest::Kind(PunchKind::In);
        let l = last(PunchKind::In, "2026-01-05T00:00:00Z");
        assert_eq!(
            d(req, l, "2026-01-05T00:00:30Z"),
            PunchDecision::Duplicate(PunchKind::In)
        );
        assert_eq!(
            d(req, l, "2026-01-05T00:01:00Z"),
            PunchDecision::Record(PunchKind::In)
        );
        // Explicit opposite direction is recorded even inside the window.
        let out = PunchRequest::Kind(PunchKind::Out);
        assert_eq!(
            d(out, l, "2026-01-05T00:00:30Z"),
            PunchDecision::Record(PunchKind::Out)
        );
    }

    #[test]
    fn auto_alternates_within_the_local_day() {
        let a = PunchRequest::Auto;
        assert_eq!(
            d(a, None, "2026-01-05T00:00:00Z"),
            PunchDecision::Record(PunchKind::In)
        );
        // 09:00 KST IN, 18:00 KST same day -> OUT.
        let l = last(PunchKind::In, "2026-01-05T00:00:00Z");
        assert_eq!(
            d(a, l, "2026-01-05T09:00:00Z"),
            PunchDecision::Record(PunchKind::Out)
        );
        // Next local day (KST midnight is 15:00 UTC) starts with IN again.
        let l = last(PunchKind::In, "2026-01-05T14:00:00Z");
        assert_eq!(
            d(a, l, "2026-01-05T15:30:00Z"),
            PunchDecision::Record(PunchKind::In)
        );
    }

    #[test]
    fn auto_inside_window_repeats_the_last_punch() {
        let l = last(PunchKind::In, "2026-01-05T00:00:00Z");
        assert_eq!(
            d(PunchRequest::Auto, l, "2026-01-05T00:00:10Z"),
            PunchDecision::Duplicate(PunchKind::In)
        );
    }

    #[test]
    fn a_clock_step_backwards_is_not_a_duplicate() {
        let l = last(PunchKind::In, "2026-01-05T00:10:00Z");
        let req = PunchRequest::Kind(PunchKind::In);
        assert_eq!(
            d(req, l, "2026-01-05T00:09:50Z"),
            PunchDecision::Record(PunchKind::In)
        );
    }
}
