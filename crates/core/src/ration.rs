//! Failures counted per key over a sliding window (pure: the clock is passed in). What
//! rations guesses: 1:1 claims per id and per device, admin sign-ins per peer.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Keys remembered at most: beyond this (many peers failing at once) the oldest
/// failures are forgotten rather than memory grown without end.
const MAX_KEYS: usize = 10_000;

#[derive(Debug)]
pub struct Failures<K> {
    window: Duration,
    seen: HashMap<K, VecDeque<Instant>>,
}

impl<K: Hash + Eq + Clone> Failures<K> {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: HashMap::new(),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Failures of `key` within the window before `now`.
    pub fn count(&mut self, key: &K, now: Instant) -> usize {
        let window = self.window;
        self.seen.get_mut(key).map_or(0, |q| {
            while q
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= window)
            {
                q.pop_front();
            }
            q.len()
        })
    }

    /// One more failure of `key` at `now`.
    pub fn fail(&mut self, key: K, now: Instant) {
        self.seen.entry(key).or_default().push_back(now);
        // Forget keys whose failures have all aged out, so the map stays small.
        let window = self.window;
        self.seen.retain(|_, q| {
            q.retain(|t| now.saturating_duration_since(*t) < window);
            !q.is_empty()
        });
        if self.seen.len() > MAX_KEYS {
            self.seen.clear();
        }
    }

    /// How many keys have failures within the window.
    pub fn keys(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_age_out_of_the_window_and_keys_are_forgotten() {
        let w = Duration::from_secs(60);
        let mut f = Failures::new(w);
        let t0 = Instant::now();
        f.fail("a", t0);
        f.fail("a", t0 + Duration::from_secs(30));
        assert_eq!(f.count(&"a", t0 + Duration::from_secs(31)), 2);
        assert_eq!(f.count(&"a", t0 + w), 1);
        assert_eq!(f.count(&"b", t0), 0);
        f.fail("b", t0 + w * 2);
        assert_eq!(f.keys(), 1, "a aged out and is forgotten");
        for i in 0..=MAX_KEYS {
            f.fail(format!("k{i}").leak() as &str, t0 + w * 2);
        }
        assert!(f.keys() <= MAX_KEYS);
    }
}
