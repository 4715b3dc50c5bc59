//! Graceful shutdown as its own small type (after mini-redis): one trigger, many
//! listeners, each able to ask "are we stopping?" or wait for it.

use tokio::sync::watch;
use tracing::info;

/// Fires shutdown for every [`Shutdown`] made from it.
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// Listens for shutdown. Cheap to clone; every task that must stop holds one.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    pub fn is_shutdown(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown has been fired (at once if it already has). A dropped
    /// trigger counts as shutdown.
    pub async fn recv(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Fires `trigger` on SIGTERM or SIGINT.
pub fn on_signals(trigger: Trigger) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: shutting down"),
            _ = int.recv() => info!("SIGINT: shutting down"),
        }
        trigger.fire();
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_all_listeners() {
        let (t, s) = channel();
        let mut a = s.clone();
        let mut b = s.clone();
        assert!(!a.is_shutdown());
        t.fire();
        a.recv().await;
        b.recv().await;
        assert!(b.is_shutdown());
    }
}
