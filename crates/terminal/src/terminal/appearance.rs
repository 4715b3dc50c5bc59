//! The person in view, as far as faces in frames can tell: when an appearance begins and
//! ends, and whether it has had its decision. Pure (the clock is passed in), so walk-up's
//! rules are tested frame by frame.

use std::time::{Duration, Instant};

use attendance_face::FaceBox;

/// An empty doorway for this long ends an appearance: longer than a blink or a turn of
/// the head away from the camera (the detector loses a face for a frame or two), shorter
/// than the next person in a queue takes to step up.
const GAP: Duration = Duration::from_millis(1500);

/// After a first try came to `unknown`, the door keeps trying this long while the person
/// stands there (they may be turning, blurred, or being enrolled right now) before it
/// records `unknown`: long enough for three or four more decision windows, short enough
/// that a stranger hears the answer while still at the door.
pub(super) const TRY_FOR: Duration = Duration::from_secs(5);

/// The person in view, as far as faces in frames can tell.
#[derive(Debug, Default)]
pub(super) struct Appearance {
    seen: Option<Seen>,
    /// An appearance whose tries came to `unknown` ended (the person left, or somebody
    /// else stepped in) before its `unknown` was recorded: to be recorded now.
    left_unknown: bool,
}

#[derive(Debug)]
struct Seen {
    at: Instant,
    face: FaceBox,
    decided: bool,
    /// A `not_live` refusal was recorded for this appearance (once is evidence enough;
    /// the person keeps being tried while they turn their head).
    refused: bool,
    /// When the first try came to `unknown` (None: no such try yet).
    unknown_since: Option<Instant>,
}

impl Seen {
    fn new(at: Instant, face: FaceBox) -> Seen {
        Seen {
            at,
            face,
            decided: false,
            refused: false,
            unknown_since: None,
        }
    }

    /// Whether it ends with an `unknown` not yet recorded.
    fn owes_unknown(&self) -> bool {
        !self.decided && self.unknown_since.is_some()
    }
}

impl Appearance {
    /// Feeds one analysis: the largest face in view (none: nobody) and whether it passed
    /// the gates. True when a decision is due: a face ready and its appearance undecided.
    pub(super) fn observe(&mut self, at: Instant, face: Option<FaceBox>, ready: bool) -> bool {
        let Some(face) = face else {
            if self
                .seen
                .as_ref()
                .is_some_and(|s| at.saturating_duration_since(s.at) >= GAP)
            {
                self.forget();
            }
            return false;
        };
        match &mut self.seen {
            Some(s) if at.saturating_duration_since(s.at) < GAP && same_place(&s.face, &face) => {
                s.at = at;
                s.face = face;
            }
            _ => {
                self.forget();
                self.seen = Some(Seen::new(at, face));
            }
        }
        ready && self.seen.as_ref().is_some_and(|s| !s.decided)
    }

    /// The appearance got its decision; `face` is where the person is now.
    pub(super) fn decided(&mut self, at: Instant, face: Option<FaceBox>) {
        let refused = self.seen.as_ref().is_some_and(|s| s.refused);
        if let Some(face) = face {
            self.seen = Some(Seen {
                decided: true,
                refused,
                ..Seen::new(at, face)
            });
        } else if let Some(s) = &mut self.seen {
            s.decided = true;
        }
    }

    /// Whether the person in view already has their decision.
    pub(super) fn is_decided(&self) -> bool {
        self.seen.as_ref().is_some_and(|s| s.decided)
    }

    /// The appearance in view ends (it left, or somebody else stands there): the next
    /// face seen starts a new one.
    pub(super) fn forget(&mut self) {
        if let Some(s) = self.seen.take() {
            self.left_unknown |= s.owes_unknown();
        }
    }

    /// A try came to `unknown` at `at` (its window's frames showed the person until
    /// then): true when the tries are over and it is to be recorded (then call
    /// [`Self::decided`]), false to try again.
    pub(super) fn unknown(&mut self, at: Instant) -> bool {
        let Some(s) = &mut self.seen else { return true };
        s.at = s.at.max(at);
        let since = *s.unknown_since.get_or_insert(at);
        at.saturating_duration_since(since) >= TRY_FOR
    }

    /// Somebody else took the place of the person being tried: their tries start over.
    pub(super) fn renew_tries(&mut self) {
        if let Some(s) = &mut self.seen {
            s.unknown_since = None;
        }
    }

    /// Whether an appearance ended owing its `unknown` since last asked: the caller
    /// records the last `unknown` it was told of.
    pub(super) fn take_left_unknown(&mut self) -> bool {
        std::mem::take(&mut self.left_unknown)
    }

    /// The person was in view until `at` (a decision window without a verdict: its
    /// frames were not observed here), so the gap counts from then.
    pub(super) fn touch(&mut self, at: Instant) {
        if let Some(s) = &mut self.seen {
            s.at = s.at.max(at);
        }
    }

    /// Whether a `not_live` refusal is to be recorded for this appearance: the first
    /// time only.
    pub(super) fn refuse(&mut self) -> bool {
        match &mut self.seen {
            Some(s) if !s.refused => {
                s.refused = true;
                true
            }
            _ => false,
        }
    }
}

/// Two boxes of one person in consecutive analyses: centres less than a face width
/// apart, sizes within a factor of two (a step closer is fine, a jump to the other side
/// of the frame is somebody else).
fn same_place(a: &FaceBox, b: &FaceBox) -> bool {
    let ((ax, ay), (bx, by)) = (a.centre(), b.centre());
    let width = a.w.max(b.w);
    let ratio = a.w.max(b.w) / a.w.min(b.w).max(1.0);
    (ax - bx).hypot(ay - by) < width && ratio < 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, w: f32) -> Option<FaceBox> {
        Some(FaceBox {
            x,
            y: 100.0,
            w,
            h: w,
            score: 5.0,
        })
    }

    #[test]
    fn a_liveness_refusal_is_recorded_once_per_appearance() {
        let t0 = Instant::now();
        let mut a = Appearance::default();
        assert!(a.observe(t0, face(100.0, 90.0), true));
        assert!(a.refuse());
        // The window took 1.8 s, longer than the gap: the person was there all along.
        a.touch(t0 + Duration::from_millis(1800));
        // Still undecided: tried again, but not recorded again.
        assert!(a.observe(t0 + Duration::from_millis(2000), face(100.0, 90.0), true));
        assert!(!a.refuse());
        // A new appearance may be refused (and recorded) again.
        assert!(!a.observe(t0 + Duration::from_millis(3600), None, false));
        assert!(a.observe(t0 + Duration::from_millis(3800), face(100.0, 90.0), true));
        assert!(a.refuse());
    }

    #[test]
    fn one_decision_per_appearance() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut a = Appearance::default();
        // Walking up: too far first (not ready), then ready: one decision due.
        assert!(!a.observe(at(0), face(200.0, 60.0), false));
        assert!(a.observe(at(200), face(210.0, 90.0), true));
        a.decided(at(1800), face(212.0, 92.0));
        // Standing there, a lost frame or two, a small move: nothing more.
        for ms in (2000..60_000).step_by(200) {
            let f = if ms % 3000 == 0 {
                None
            } else {
                face(215.0, 92.0)
            };
            assert!(!a.observe(at(ms), f, true), "{ms}");
        }
        // Gone for longer than the gap, back: a new appearance.
        assert!(!a.observe(at(60_000), None, false));
        assert!(!a.observe(at(61_600), None, false));
        assert!(a.observe(at(61_800), face(215.0, 92.0), true));
    }

    #[test]
    fn somebody_else_elsewhere_in_the_frame_is_a_new_appearance() {
        let t0 = Instant::now();
        let mut a = Appearance::default();
        assert!(a.observe(t0, face(100.0, 90.0), true));
        a.decided(t0, face(100.0, 90.0));
        assert!(!a.observe(t0 + Duration::from_millis(200), face(120.0, 90.0), true));
        // The next person in the queue steps in at once, at the other side.
        assert!(a.observe(t0 + Duration::from_millis(400), face(400.0, 90.0), true));
        // A face twice the size at the same place: somebody else stepped close.
        a.decided(t0 + Duration::from_millis(500), face(400.0, 90.0));
        assert!(a.observe(t0 + Duration::from_millis(600), face(380.0, 200.0), true));
    }

    #[test]
    fn an_unknown_is_tried_again_for_a_while_and_owed_when_the_person_leaves() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut a = Appearance::default();
        assert!(a.observe(at(0), face(100.0, 90.0), true));
        // Unknown at 1.5 s: tried again while the person stands there...
        assert!(!a.unknown(at(1500)));
        assert!(a.observe(at(1600), face(100.0, 90.0), true));
        assert!(!a.unknown(at(3100)));
        assert!(a.observe(at(3200), face(102.0, 90.0), true));
        assert!(!a.take_left_unknown());
        // ...until 5 s after the first unknown: recorded, and then decided.
        assert!(a.unknown(at(1500) + TRY_FOR));
        a.decided(at(6600), face(102.0, 90.0));
        assert!(!a.observe(at(6800), face(102.0, 90.0), true));
        // Leaving after it was recorded owes nothing.
        assert!(!a.observe(at(8400), None, false));
        assert!(!a.take_left_unknown());
        // A stranger who leaves after one unknown try is owed their unknown, once.
        assert!(a.observe(at(9000), face(100.0, 90.0), true));
        assert!(!a.unknown(at(10_500)));
        assert!(!a.observe(at(12_100), None, false));
        assert!(a.take_left_unknown());
        assert!(!a.take_left_unknown());
        // So is one replaced at once by somebody else elsewhere in the frame.
        assert!(a.observe(at(13_000), face(100.0, 90.0), true));
        assert!(!a.unknown(at(14_000)));
        assert!(a.observe(at(14_100), face(400.0, 90.0), true));
        assert!(a.take_left_unknown());
        // A person recognised on a later try owes nothing when they leave.
        assert!(!a.unknown(at(15_000)));
        a.decided(at(16_000), face(400.0, 90.0));
        assert!(!a.observe(at(17_600), None, false));
        assert!(!a.take_left_unknown());
    }

    #[test]
    fn a_face_not_ready_yet_waits_without_ending_its_appearance() {
        let t0 = Instant::now();
        let mut a = Appearance::default();
        for ms in (0..3000).step_by(200) {
            assert!(!a.observe(t0 + Duration::from_millis(ms), face(100.0, 90.0), false));
        }
        assert!(a.observe(t0 + Duration::from_millis(3000), face(100.0, 90.0), true));
    }
}
