//! `attendanced serve`: open the state, bind, serve until SIGTERM/SIGINT, drain.

mod config;
mod reload;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::camera::Camera;
use crate::http::{self, App, auth::Keys};
use crate::outbox::Publisher;
use crate::store::{Paths, StorageSettings, Store};
use crate::terminal::{Terminal, TerminalError};
use attendance_core::config::ConfigError;
use attendance_core::i18n::SharedLocale;
use attendance_core::logging::LogControl;
use attendance_core::shutdown::Shutdown;
use attendance_core::systemd::{Liveness, Notifier, liveness};
use attendance_wire::mqtt::{LinkState, MqttConfigError};
pub use config::Config;
use reload::{Plan, apply_live};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The terminal could not start (its error types stay inside the library).
    #[error("{0}")]
    Terminal(String),
    #[error(transparent)]
    Tls(#[from] attendance_core::tls::TlsError),
    #[error(transparent)]
    Mqtt(#[from] MqttConfigError),
    #[error("another attendanced (pid {pid}) is using this database (lock {path})")]
    AlreadyRunning { path: PathBuf, pid: String },
    #[error("lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

impl From<TerminalError> for DaemonError {
    fn from(e: TerminalError) -> Self {
        DaemonError::Terminal(e.to_string())
    }
}

/// Re-reads the configuration the way the process first read it (file, environment,
/// command-line overrides), for SIGHUP.
pub type Reloader = Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// What the binary hands the daemon besides its configuration.
#[derive(Default)]
pub struct Hooks {
    pub log: Option<LogControl>,
    pub reload: Option<Reloader>,
}

/// Locks `<database>.lock` beside the database, or says which process holds it.
fn lock_database(paths: &Paths) -> Result<nix::fcntl::Flock<std::fs::File>, DaemonError> {
    let lock = paths.lock();
    let io = |source| DaemonError::Lock {
        path: lock.clone(),
        source,
    };
    if let Some(dir) = paths
        .database
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        crate::store::files::ensure_private_dir(dir).map_err(io)?;
    }
    crate::store::files::lock_exclusive(&lock)
        .map_err(io)?
        .map_err(|pid| DaemonError::AlreadyRunning { path: lock, pid })
}

/// A frame waiting this long for analysis means the analysis loop is wedged.
const ANALYSIS_STALL: std::time::Duration = std::time::Duration::from_secs(20);

/// Runs the daemon until `stop` fires.
pub async fn run(config: Config, stop: Shutdown, hooks: Hooks) -> Result<(), DaemonError> {
    let notifier = Notifier::from_env();
    notifier.status("opening the database and loading the gallery");
    let addr = config.listen;
    // Held until `run` returns: two daemons on one database would both publish its outbox.
    let _lock = lock_database(&config.paths())?;
    let terminal = {
        let settings = config.terminal();
        tokio::task::spawn_blocking(move || Terminal::open(settings))
            .await
            .map_err(|e| TerminalError::Internal(e.to_string()))??
    };
    let terminal = Arc::new(terminal);
    let tls = http::tls_acceptor(&config.http)?;
    let (link, link_rx) = watch::channel(LinkState::Disabled);
    let publisher = Publisher {
        store: terminal.store().clone(),
        settings: config.mqtt.clone(),
        site: config.site.clone(),
        device_id: config.device_id.clone(),
        wake: terminal.recorder().outbox_wake(),
        link,
        roster: terminal.start_roster()?,
    };
    let mqtt = publisher.options()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    info!(listen = %local, https = tls.is_some(), data_dir = %config.data_dir.display(), "attendanced ready");
    tokio::spawn(maintenance(
        terminal.store().clone(),
        config.storage.clone(),
        config.mqtt.receipts,
        stop.clone(),
    ));
    tokio::spawn(terminal.clone().watch_clock(stop.clone()));
    let outbox = tokio::spawn(publisher.run(mqtt, stop.clone()));
    let locale = SharedLocale::new(config.locale);
    let camera = Camera::start(
        &config.camera,
        terminal.pipeline().clone(),
        locale.clone(),
        terminal.metrics().clone(),
        stop.clone(),
    );
    if let Some(camera) = camera.as_ref().filter(|_| config.camera.walk_up) {
        info!("walk-up punching on: whoever the camera recognises is punched");
        tokio::spawn(terminal.clone().walk_up(camera.clone(), stop.clone()));
    }
    let walk_up = config.camera.walk_up && camera.is_some();
    let app = Arc::new(App::new(http::AppParts {
        terminal,
        camera,
        mqtt: link_rx,
        settings: config.http.clone(),
        locale: locale.clone(),
        // Validated with the configuration: the hashes parse.
        keys: Keys::new(&config.auth).unwrap_or_default(),
        tls,
        walk_up,
    }));
    notifier.ready(&status_line(&app).await);
    tokio::spawn(supervise(app.clone(), notifier, stop.clone()));
    if let Some(reload) = hooks.reload {
        let live = Live {
            app: app.clone(),
            locale,
            log: hooks.log,
        };
        match reload_on_hangup(live, config.clone(), reload, notifier, stop.clone()) {
            Ok(task) => {
                tokio::spawn(task);
            }
            Err(e) => warn!(error = %e, "SIGHUP handler not installed"),
        }
    }
    http::serve(listener, app, stop).await;
    notifier.stopping();
    let _ = outbox.await;
    info!("stopped");
    Ok(())
}

/// One line for `systemctl status`: camera, MQTT link, outbox depth, gallery.
async fn status_line(app: &App) -> String {
    status_of(app, &app.terminal().health().await)
}

fn status_of(app: &App, h: &crate::terminal::Health) -> String {
    format!(
        "camera {}, mqtt {}, outbox {} pending, {} people ({}){}",
        app.camera_state(),
        app.mqtt_state(),
        h.outbox_pending
            .map_or_else(|| "?".into(), |n| n.to_string()),
        h.people,
        h.embedder,
        if h.database_ok {
            ""
        } else {
            ", DATABASE ERROR"
        },
    )
}

/// Refreshes `STATUS=` and feeds the watchdog while the terminal works. A health check
/// that does not answer within a tick counts as a stall (a saturated blocking pool).
async fn supervise(app: Arc<App>, notifier: Notifier, mut stop: Shutdown) {
    let tick = notifier.tick();
    let mut timer = tokio::time::interval(tick);
    let mut last_stall = None;
    loop {
        tokio::select! {
            _ = timer.tick() => {}
            _ = stop.recv() => return,
        }
        let checked = tokio::time::timeout(tick, async {
            let health = app.terminal().health().await;
            let camera = app.camera_progress();
            (
                status_of(&app, &health),
                liveness(
                    health.database_ok,
                    camera,
                    std::time::Instant::now(),
                    ANALYSIS_STALL,
                ),
            )
        })
        .await;
        let (status, alive) = checked.unwrap_or_else(|_| {
            (
                "health check timed out".into(),
                Liveness::Stalled("health check"),
            )
        });
        match &alive {
            Liveness::Healthy => notifier.watchdog(),
            Liveness::Stalled(what) if last_stall.as_ref() != Some(&alive) => {
                warn!(
                    stalled = what,
                    "not feeding the watchdog: {what} is not making progress"
                )
            }
            Liveness::Stalled(_) => {}
        }
        last_stall = Some(alive);
        notifier.status(&status);
    }
}

/// The owners of the settings SIGHUP changes: each value lives in one place, which every
/// reader reads through (the rule in the terminal, keys and certificate in the app, the
/// language in the shared locale, the level in the log control).
struct Live {
    app: Arc<App>,
    locale: SharedLocale,
    log: Option<LogControl>,
}

impl Live {
    fn apply(&self, new: &Config) {
        self.app.terminal().set_rule(&new.face);
        self.locale.set(new.locale);
        // Validated by the reloader: the keys parse.
        if let Ok(keys) = Keys::new(&new.auth) {
            self.app.set_keys(keys);
        }
        // Re-read even when the paths are unchanged: a renewed certificate keeps its
        // file name.
        match http::tls_acceptor(&new.http) {
            Ok(tls) => {
                if tls.is_some() {
                    info!("SIGHUP: HTTPS certificate re-read");
                }
                self.app.set_tls(tls);
            }
            Err(e) => {
                warn!(error = %e, "SIGHUP: HTTPS certificate not reloaded, keeping the running one")
            }
        }
        if let Some(log) = &self.log
            && let Err(e) = log.set_level(&new.log.level)
        {
            warn!(error = %e, "SIGHUP: log level not changed");
        }
    }
}

/// SIGHUP: re-read the configuration, apply what can change live (decision rule,
/// language, keys, certificate, log level) and name what needs a restart.
fn reload_on_hangup(
    live: Live,
    mut running: Config,
    reload: Reloader,
    notifier: Notifier,
    mut stop: Shutdown,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    Ok(async move {
        loop {
            tokio::select! {
                _ = hup.recv() => {}
                _ = stop.recv() => return,
            }
            notifier.reloading();
            match reload() {
                Err(e) => {
                    warn!(error = %e, "SIGHUP: configuration not reloaded, keeping the running one")
                }
                Ok(new) => {
                    let plan = Plan::new(&running, &new);
                    live.apply(&new);
                    // `running` only tracks what was applied, to name the next change.
                    apply_live(&mut running, &new);
                    info!(applied = ?plan.live, "SIGHUP: configuration reloaded");
                    if !plan.needs_restart.is_empty() {
                        warn!(keys = ?plan.needs_restart, "SIGHUP: these settings take effect at the next restart");
                    }
                }
            }
            notifier.ready(&status_line(&live.app).await);
        }
    })
}

/// Hourly housekeeping: expire punch thumbnails and published outbox entries past their
/// retention.
async fn maintenance(
    store: Arc<Store>,
    storage: StorageSettings,
    receipts: bool,
    mut stop: Shutdown,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.recv() => return,
        }
        let (store, s) = (store.clone(), storage.clone());
        let done = tokio::task::spawn_blocking(move || {
            let now = chrono::Utc::now();
            let days = |d: u32| chrono::Duration::days(i64::from(d));
            let images = store.expire_punch_images(now - days(s.punch_image_retention_days))?;
            let outbox = store.outbox_prune(now - days(s.outbox_retention_days), receipts)?;
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
