//! `attendanced serve`: open the state, bind, serve until SIGTERM/SIGINT, drain.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::camera::{Camera, CameraSpec};
use crate::config::Config;
use crate::http::{self, App};
use crate::mqtt::LinkState;
use crate::outbox::Publisher;
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
    tokio::spawn(maintenance(terminal.clone(), stop.clone()));
    let (link, link_rx) = watch::channel(LinkState::Disabled);
    let publisher = Publisher {
        store: terminal.store().clone(),
        settings: config.mqtt.clone(),
        site: config.site.clone(),
        device_id: config.device_id.clone(),
        wake: terminal.outbox_wake.clone(),
        link,
    };
    let outbox = tokio::spawn(publisher.run(stop.clone()));
    let spec = CameraSpec::parse(&config.camera.source).unwrap_or(CameraSpec::None);
    let camera = Camera::start(
        &spec,
        &config.camera,
        terminal.pipeline().clone(),
        config.locale,
        stop.clone(),
    );
    let app = Arc::new(App::new(terminal, camera, link_rx));
    http::serve(listener, app, stop).await;
    let _ = outbox.await;
    info!("stopped");
    Ok(())
}

/// Hourly housekeeping: expire punch thumbnails and published outbox entries past their
/// retention.
async fn maintenance(terminal: Arc<Terminal>, mut stop: Shutdown) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.recv() => return,
        }
        let t = terminal.clone();
        let done = tokio::task::spawn_blocking(move || {
            let now = chrono::Utc::now();
            let days = |d: u32| chrono::Duration::days(i64::from(d));
            let s = &t.config.storage;
            let images = t
                .store()
                .expire_punch_images(now - days(s.punch_image_retention_days))?;
            let outbox = t
                .store()
                .outbox_prune(now - days(s.outbox_retention_days), t.config.mqtt.receipts)?;
            Ok::<_, crate::store::StoreError>((images, outbox))
        })
        .await;
        match done {
            Ok(Ok((images, outbox))) if images + outbox > 0 => {
                info!(images, outbox, "expired data past its retention")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "maintenance failed"),
            _ => {}
        }
    }
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
