//! What a timed-out request means for what it writes.
//!
//! The HTTP layer gives every request a deadline. Work that outlives the answer (an
//! analysis on the blocking pool) used to record its punch after the client had been told
//! `408 timeout`: a punch that exists, reported as failed. Now the two sides settle it
//! once, atomically: the operation asks to begin writing, the HTTP layer asks to expire,
//! and whichever comes first wins. So a `408` always means nothing was recorded (the
//! person simply tries again), and a write that began is always answered in full.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use super::TerminalError;

const WAITING: u8 = 0;
const WRITING: u8 = 1;
const EXPIRED: u8 = 2;

/// One request's side of the settlement; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct Deadline(Option<Arc<AtomicU8>>);

impl Deadline {
    /// For a request that may time out.
    pub(crate) fn new() -> Deadline {
        Deadline(Some(Arc::new(AtomicU8::new(WAITING))))
    }

    /// For callers nobody times out (walk-up punching, tests): writes always go ahead.
    pub(crate) fn none() -> Deadline {
        Deadline(None)
    }

    /// Called by an operation right before its first write: `TimedOut` if the request
    /// has already been answered `408`.
    pub(crate) fn begin_write(&self) -> Result<(), TerminalError> {
        let Some(state) = &self.0 else {
            return Ok(());
        };
        match state.compare_exchange(WAITING, WRITING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(()),
            Err(WRITING) => Ok(()),
            Err(_) => Err(TerminalError::TimedOut),
        }
    }

    /// Called by the HTTP layer when the deadline passes: true if nothing was written
    /// (answer `408`, and nothing will be), false if a write is under way (wait for its
    /// answer: it is a commit, not another analysis).
    pub(crate) fn expire(&self) -> bool {
        let Some(state) = &self.0 else {
            return false;
        };
        match state.compare_exchange(WAITING, EXPIRED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(s) => s == EXPIRED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whoever_comes_first_wins_once() {
        let d = Deadline::new();
        assert!(d.clone().expire(), "nothing written yet: 408");
        assert!(matches!(d.begin_write(), Err(TerminalError::TimedOut)));
        assert!(d.expire(), "still expired");

        let d = Deadline::new();
        d.begin_write().unwrap();
        d.begin_write().unwrap();
        assert!(!d.expire(), "a write began: the answer follows");

        let none = Deadline::none();
        assert!(!none.expire());
        none.begin_write().unwrap();
    }
}
