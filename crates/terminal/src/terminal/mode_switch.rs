//! Which way the next walk-up punch goes: the configured default, or a screen button's
//! choice, which holds for one punch or a while, whichever ends first. A handle of its
//! own: the screen route chooses, walk-up reads and uses, the feed watches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::feed::PunchMode;
use attendance_core::punch::PunchRequest;

pub(crate) struct ModeSwitch {
    mode: watch::Sender<PunchMode>,
    default: PunchRequest,
    /// How long a choice holds without a punch.
    lapse: Duration,
    /// Counts changes, so a choice's lapse does not undo a later one.
    changes: AtomicU64,
}

impl ModeSwitch {
    pub(super) fn new(default: PunchRequest, lapse: Duration) -> ModeSwitch {
        ModeSwitch {
            mode: watch::channel(PunchMode {
                request: default,
                chosen: false,
            })
            .0,
            default,
            lapse,
            changes: AtomicU64::new(0),
        }
    }

    /// The way now.
    pub(crate) fn current(&self) -> PunchMode {
        *self.mode.borrow()
    }

    /// The way and its changes.
    pub(crate) fn watch(&self) -> watch::Receiver<PunchMode> {
        self.mode.subscribe()
    }

    /// A screen button chose the way of the next walk-up punch.
    pub(crate) fn choose(self: &Arc<Self>, request: PunchRequest) {
        let choice = self.changes.fetch_add(1, Ordering::SeqCst) + 1;
        self.mode.send_replace(PunchMode {
            request,
            chosen: request != self.default,
        });
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(me.lapse).await;
            // Only if no later choice replaced it.
            if me.changes.load(Ordering::SeqCst) == choice {
                me.reset();
            }
        });
    }

    /// A chosen way was used for a punch (or lapsed): back to the default.
    pub(crate) fn reset(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.mode.send_replace(PunchMode {
            request: self.default,
            chosen: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attendance_core::punch::PunchKind;

    #[tokio::test]
    async fn a_choice_lapses_unless_a_later_one_replaced_it() {
        let lapse = Duration::from_millis(300);
        let s = Arc::new(ModeSwitch::new(PunchRequest::Auto, lapse));
        let (out, inn) = (
            PunchRequest::Kind(PunchKind::Out),
            PunchRequest::Kind(PunchKind::In),
        );
        let mut w = s.watch();
        s.choose(out);
        assert_eq!((s.current().request, s.current().chosen), (out, true));
        // Half a lapse later a second choice: the first's lapse must not undo it.
        tokio::time::sleep(lapse / 2).await;
        s.choose(inn);
        let second = tokio::time::Instant::now();
        w.wait_for(|m| !m.chosen).await.unwrap();
        assert!(
            second.elapsed() >= lapse,
            "the second choice was undone after {:?}, by the first one's lapse",
            second.elapsed()
        );
        assert_eq!(s.current().request, PunchRequest::Auto);
        s.choose(PunchRequest::Auto);
        assert!(!s.current().chosen, "the default is no choice");
    }
}
