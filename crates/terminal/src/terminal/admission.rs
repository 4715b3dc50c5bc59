//! Bounded admission to the face analysis: a few run at once, a few more wait (boundedly),
//! the rest are told `busy` at once. Never an unbounded queue behind a slow board.

use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::TerminalError;

/// How long a request may wait for an analysis slot before `busy`.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

pub(super) struct Admission {
    /// Requests admitted (running or waiting for an analysis slot): bounds the queue.
    admitted: Semaphore,
    /// Analyses running at once.
    running: Semaphore,
}

/// Held while an analysis runs.
pub(super) struct Slot<'a> {
    _admitted: SemaphorePermit<'a>,
    _running: SemaphorePermit<'a>,
}

impl Admission {
    pub(super) fn new(running: usize, queued: usize) -> Admission {
        Admission {
            admitted: Semaphore::new(running + queued),
            running: Semaphore::new(running),
        }
    }

    /// Waits (boundedly) for an analysis slot.
    pub(super) async fn slot(&self) -> Result<Slot<'_>, TerminalError> {
        let admitted = self
            .admitted
            .try_acquire()
            .map_err(|_| TerminalError::Busy)?;
        let running = tokio::time::timeout(QUEUE_WAIT, self.running.acquire())
            .await
            .map_err(|_| TerminalError::Busy)?
            .map_err(|_| TerminalError::Busy)?;
        Ok(Slot {
            _admitted: admitted,
            _running: running,
        })
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
