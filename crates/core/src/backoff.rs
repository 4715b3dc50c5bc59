//! Exponential backoff with full jitter, for reconnecting to the broker and retrying
//! MySQL. Hand-written: the arithmetic is five lines, and the crates for it pull a random
//! number generator we have no other use for (the jitter here is an xorshift seeded from
//! the clock and the process id, which is all spreading out reconnects needs).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
    seed: u64,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Self {
            base,
            max,
            attempt: 0,
            seed: nanos ^ (u64::from(std::process::id()) << 32) | 1,
        }
    }

    /// Next delay: uniform in `[0, min(max, base * 2^attempt)]`, never below 10 ms.
    pub fn next_delay(&mut self) -> Duration {
        let cap = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let frac = (self.seed >> 11) as f64 / (1u64 << 53) as f64;
        cap.mul_f64(frac).max(Duration::from_millis(10))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<Duration> = (0..30).map(|_| b.next_delay()).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2)));
        assert!(delays[0] <= Duration::from_millis(100));
        assert!(
            delays
                .iter()
                .skip(10)
                .any(|d| *d > Duration::from_millis(400)),
            "{delays:?}"
        );
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 20, "jittered");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
