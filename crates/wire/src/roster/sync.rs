//! When a terminal asks the centre for roster changes: pure, so every ordering of
//! connects, announcements, pages and lost answers is tested without a broker.
//!
//! One request is outstanding at a time. It is repeated when its answer does not come
//! within `retry` (the uplink was away, or the broker dropped it) and at once when an
//! uplink announces itself; a page being applied is never re-asked for.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Syncer {
    /// Last revision applied here.
    revision: u64,
    /// Latest revision heard of.
    head: u64,
    /// Subscribed to the answers: requests may go.
    ready: bool,
    /// The request in flight and when it went.
    asked: Option<Instant>,
    /// A page is being applied.
    applying: bool,
    retry: Duration,
}

impl Syncer {
    pub fn new(revision: u64, head: u64, retry: Duration) -> Syncer {
        Syncer {
            revision,
            head,
            ready: false,
            asked: None,
            applying: false,
            retry,
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn head(&self) -> u64 {
        self.head.max(self.revision)
    }

    fn ask(&mut self, now: Instant) -> Option<u64> {
        if !self.ready || self.applying {
            return None;
        }
        self.asked = Some(now);
        Some(self.revision)
    }

    /// Subscribed after a (re)connect: always ask, which also learns the head when the
    /// broker kept no retained one. Returns the `since` of the request to send.
    pub fn subscribed(&mut self, now: Instant) -> Option<u64> {
        self.ready = true;
        self.ask(now)
    }

    pub fn disconnected(&mut self) {
        self.ready = false;
        self.asked = None;
    }

    /// The centre's head (retained message or a page's): ask if behind and not asking.
    pub fn head_seen(&mut self, head: u64, now: Instant) -> Option<u64> {
        self.head = self.head.max(head);
        if self.head > self.revision && self.asked.is_none() {
            return self.ask(now);
        }
        None
    }

    /// A page arrived and went to be applied.
    pub fn page_received(&mut self, head: u64) {
        self.head = self.head.max(head);
        self.applying = true;
        self.asked = None;
    }

    /// The page was applied (or refused as stale or gapped): `revision` is where the
    /// store is now. Asks for the next page while behind.
    pub fn applied(&mut self, revision: u64, now: Instant) -> Option<u64> {
        self.applying = false;
        self.revision = self.revision.max(revision);
        if self.head > self.revision {
            return self.ask(now);
        }
        None
    }

    /// An uplink (re)subscribed: a request sent before may have been dropped.
    pub fn uplink_online(&mut self, now: Instant) -> Option<u64> {
        self.ask(now)
    }

    /// Called now and then: repeats a request whose answer is overdue.
    pub fn tick(&mut self, now: Instant) -> Option<u64> {
        match self.asked {
            Some(at) if now.duration_since(at) >= self.retry => self.ask(now),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETRY: Duration = Duration::from_secs(10);

    #[test]
    fn asks_on_subscribe_then_pages_until_caught_up() {
        let t0 = Instant::now();
        let mut s = Syncer::new(0, 0, RETRY);
        assert_eq!(s.head_seen(5, t0), None, "not before subscribing");
        assert_eq!(s.subscribed(t0), Some(0));
        assert_eq!(s.head_seen(7, t0), None, "one request at a time");
        s.page_received(9);
        assert_eq!(
            s.tick(t0 + RETRY * 2),
            None,
            "a page being applied is not re-asked"
        );
        assert_eq!(s.applied(4, t0), Some(4), "behind the head: next page");
        s.page_received(9);
        assert_eq!(s.applied(9, t0), None, "caught up");
        assert_eq!((s.revision(), s.head()), (9, 9));
        assert_eq!(s.head_seen(9, t0), None);
        assert_eq!(s.head_seen(10, t0), Some(9), "a new change announced");
    }

    #[test]
    fn a_lost_answer_is_asked_again_and_an_uplink_announcement_asks_at_once() {
        let t0 = Instant::now();
        let mut s = Syncer::new(3, 3, RETRY);
        assert_eq!(s.subscribed(t0), Some(3));
        assert_eq!(s.tick(t0 + RETRY / 2), None);
        assert_eq!(s.tick(t0 + RETRY), Some(3), "no answer: again");
        assert_eq!(s.uplink_online(t0 + RETRY), Some(3));
        s.disconnected();
        assert_eq!(s.tick(t0 + RETRY * 3), None, "not while disconnected");
        assert_eq!(s.uplink_online(t0), None);
        assert_eq!(s.subscribed(t0), Some(3));
    }

    #[test]
    fn a_stale_or_gapped_page_leaves_the_revision_and_asks_again_while_behind() {
        let t0 = Instant::now();
        let mut s = Syncer::new(5, 8, RETRY);
        s.subscribed(t0);
        s.page_received(8);
        // The store refused it: still at 5, the head is 8.
        assert_eq!(s.applied(5, t0), Some(5));
        s.page_received(8);
        assert_eq!(s.applied(2, t0), Some(5), "the revision never goes back");
    }
}
