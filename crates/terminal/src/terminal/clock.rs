//! Watching the door's clock: when it becomes synchronised (NTP stepped it, minutes
//! after boot), the attempts of this boot taken before are corrected and sent again
//! (`store::clock`).

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::{Terminal, blocking};
use attendance_core::shutdown::Shutdown;

/// How often the clock is looked at: an NTP client steps the clock once, and a
/// correction a few seconds later is as good as one at once.
const EVERY: Duration = Duration::from_secs(5);

impl Terminal {
    /// Corrects unsynchronised attempts whenever the clock is synchronised, until `stop`.
    pub(crate) async fn watch_clock(self: Arc<Self>, mut stop: Shutdown) {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.recv() => return,
            }
            let recorder = self.recorder().clone();
            match blocking(move || recorder.correct_clock()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => info!(
                    attempts = n,
                    "clock synchronised: attempts taken before corrected and sent again"
                ),
                Ok(Err(e)) | Err(e) => {
                    warn!(error = %e, "correcting unsynchronised attempts failed")
                }
            }
        }
    }
}
