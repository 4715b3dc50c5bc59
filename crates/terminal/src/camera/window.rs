//! A caller's window on the camera's analyses: while one is open the camera embeds the
//! faces it analyses (embedding is half an analysis's cost, so only when somebody waits).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use super::LiveAnalysis;

/// New analyses until a deadline: see [`Camera::analyses_for`].
pub(crate) struct AnalysisWindow {
    rx: watch::Receiver<Option<Arc<LiveAnalysis>>>,
    end: tokio::time::Instant,
    _waiting: Waiting,
}

impl AnalysisWindow {
    /// A window on the analyses `rx` publishes after now, for `length`, counted in
    /// `waiting` while it is open.
    pub(super) fn open(
        mut rx: watch::Receiver<Option<Arc<LiveAnalysis>>>,
        length: Duration,
        waiting: &Arc<AtomicUsize>,
    ) -> AnalysisWindow {
        // What is already there was analysed before the request.
        rx.borrow_and_update();
        AnalysisWindow {
            rx,
            end: tokio::time::Instant::now() + length,
            _waiting: Waiting::new(waiting),
        }
    }
}

/// One open [`AnalysisWindow`] in the camera's count: faces are embedded while the count
/// is above zero.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    fn new(count: &Arc<AtomicUsize>) -> Waiting {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl AnalysisWindow {
    /// The next frame's analysis; None once the window has passed (or the camera
    /// stopped).
    pub(crate) async fn next(&mut self) -> Option<Arc<LiveAnalysis>> {
        loop {
            match tokio::time::timeout_at(self.end, self.rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
            if let Some(a) = self.rx.borrow_and_update().clone() {
                return Some(a);
            }
        }
    }
}
