//! Bounded admission to the face analysis: a few run at once, a few more wait (boundedly),
//! the rest are told `busy` at once. Never an unbounded queue behind a slow board.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::TerminalError;

/// How long a request may wait for an analysis slot before `busy`.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

pub(super) struct Admission {
    /// Requests admitted (running or waiting for an analysis slot): bounds the queue.
    admitted: Arc<Semaphore>,
    /// Analyses running at once.
    running: Arc<Semaphore>,
}

/// Held while an analysis runs. Owned, so the blocking work itself holds it: a request
/// that times out and is dropped mid-analysis does not free its place while its
/// analysis still runs on (the bound is for the board's CPU, not for the requests).
pub(super) struct Slot {
    _admitted: OwnedSemaphorePermit,
    _running: OwnedSemaphorePermit,
}

impl Admission {
    pub(super) fn new(running: usize, queued: usize) -> Admission {
        Admission {
            admitted: Arc::new(Semaphore::new(running + queued)),
            running: Arc::new(Semaphore::new(running)),
        }
    }

    /// Waits (boundedly) for an analysis slot.
    pub(super) async fn slot(&self) -> Result<Slot, TerminalError> {
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| TerminalError::Busy)?;
        let running = tokio::time::timeout(QUEUE_WAIT, self.running.clone().acquire_owned())
            .await
            .map_err(|_| TerminalError::Busy)?
            .map_err(|_| TerminalError::Busy)?;
        Ok(Slot {
            _admitted: admitted,
            _running: running,
        })
    }

    /// Places free to run an analysis now.
    #[cfg(test)]
    pub(super) fn free(&self) -> usize {
        self.running.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_runs_one_waits_the_third_is_busy() {
        let a = Admission::new(1, 1);
        let first = a.slot().await.unwrap();
        let waiting = a.slot();
        tokio::pin!(waiting);
        // The second is admitted and waits for the running slot.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut waiting)
                .await
                .is_err()
        );
        assert!(matches!(a.slot().await, Err(TerminalError::Busy)));
        drop(first);
        let second = waiting.await.unwrap();
        drop(second);
        a.slot().await.unwrap();
    }
}
