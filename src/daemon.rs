//! `attendanced serve`: open the state, bind, serve until SIGTERM/SIGINT, drain.

use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::info;

use crate::config::Config;
use crate::http::{self, App};
use crate::shutdown::{self, Shutdown};
use crate::terminal::{Terminal, TerminalError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Terminal(#[from] TerminalError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Runs the daemon until `stop` fires.
pub async fn run(config: Config, stop: Shutdown) -> Result<(), DaemonError> {
    let addr = config.listen;
    let terminal = {
        let cfg = config.clone();
        tokio::task::spawn_blocking(move || Terminal::open(cfg))
            .await
            .map_err(|e| TerminalError::Internal(e.to_string()))??
    };
    let terminal = Arc::new(terminal);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    info!(listen = %local, data_dir = %config.data_dir.display(), "attendanced ready");
    let app = Arc::new(App::new(terminal));
    http::serve(listener, app, stop).await;
    info!("stopped");
    Ok(())
}

/// Fires `trigger` on SIGTERM or SIGINT.
pub fn stop_on_signals(trigger: shutdown::Trigger) -> std::io::Result<()> {
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
