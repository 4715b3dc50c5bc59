//! The terminal's local state in SQLite: users, templates, every attendance attempt and
//! the outbox of events still to publish.
//!
//! One connection behind a mutex: writes are serialised anyway, and SQLite on an SD card
//! gains nothing from a pool. WAL with `synchronous=FULL`, so a punch answered with 200
//! has reached the disk. All methods block; async callers use `spawn_blocking`.

pub(crate) mod attendance;
mod clock;
pub(crate) mod files;
pub(crate) mod learned;
pub(crate) mod migrate;
pub(crate) mod outbox;
pub(crate) mod roster;
pub(crate) mod roster_apply;
pub(crate) mod seal;
mod settings;
pub(crate) mod templates;
pub(crate) mod users;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

pub use attendance::{AttendanceQuery, AttendanceRow, NewAttempt, PunchOutcome};
pub use seal::SealError;
pub(crate) use seal::Sealer;
pub use settings::{Paths, StorageSettings};
pub(crate) use users::{NewFace, NewTemplate, UserRow};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
    #[error("no user {0}")]
    UserNotFound(String),
    #[error("a name is required to create user {0}")]
    NameRequired(String),
    #[error("an enrolment needs at least one face")]
    NoFaces,
    #[error("{file}: {source}")]
    Seal {
        file: String,
        #[source]
        source: SealError,
    },
    #[error("database schema {found} is newer than this binary's {supported}")]
    SchemaTooNew { found: u32, supported: u32 },
}

/// What [`Store::reseal_files`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resealed {
    pub(crate) rewritten: usize,
    pub(crate) unreadable: usize,
    /// Plaintext files refused because a key is set (`attendanced seal-store` seals
    /// them).
    pub(crate) unsealed: usize,
}

/// The database and the files SQLite keeps beside it in WAL mode.
fn sqlite_files(database: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| PathBuf::from(format!("{}{suffix}", database.display()));
    [database.to_path_buf(), with("-wal"), with("-shm")]
}

/// Every table stores times as the events carry them (fixed width: text order is time order).
pub(crate) use attendance_wire::event::ts;

pub struct Store {
    conn: Mutex<Connection>,
    db_path: PathBuf,
    encoding_dir: PathBuf,
    image_dir: PathBuf,
    /// Encrypts biometric files at rest when a key is configured.
    sealer: Sealer,
    /// Set when the terminal belongs to a fleet (see [`Store::with_fleet`]).
    fleet: Option<roster::Fleet>,
}

impl Store {
    /// Opens (creating if needed) the database and the file folders, and migrates.
    pub fn open(paths: &Paths) -> Result<Store, StoreError> {
        if let Some(parent) = paths
            .database
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            files::ensure_private_dir(parent)?;
        }
        files::ensure_private_dir(&paths.encodings)?;
        files::ensure_private_dir(&paths.images)?;
        // SQLite creates the database 0644 under the usual umask, and its -wal and -shm
        // files take the database's mode: made private first, all three stay private
        // whatever the umask (only systemd's `UMask=` protected them before).
        for f in sqlite_files(&paths.database) {
            files::make_private_file(&f, f == paths.database)?;
        }
        let mut conn = Connection::open(&paths.database)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let found = migrate::version(&conn)?;
        if found > migrate::latest() {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: migrate::latest(),
            });
        }
        migrate::apply(&mut conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
            db_path: paths.database.clone(),
            encoding_dir: paths.encodings.clone(),
            image_dir: paths.images.clone(),
            sealer: Sealer::plain(),
            fleet: None,
        })
    }

    /// Encrypts the biometric files written from now on (and [`Store::reseal_files`]
    /// those written before).
    pub(crate) fn with_sealer(mut self, sealer: Sealer) -> Self {
        self.sealer = sealer;
        self
    }

    /// Writes a biometric file (`dir` is the encoding or image folder): sealed if a key
    /// is configured, atomically, mode 0600.
    pub(crate) fn write_file(
        &self,
        dir: &Path,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let stored = self
            .sealer
            .seal(name, bytes)
            .map_err(|source| StoreError::Seal {
                file: name.to_owned(),
                source,
            })?;
        files::write_atomic(dir, name, &stored)?;
        Ok(())
    }

    /// Reads a biometric file written by [`Store::write_file`].
    pub(crate) fn read_file(&self, path: &Path) -> Result<Vec<u8>, StoreError> {
        let stored = std::fs::read(path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        self.sealer
            .open(&name, &stored)
            .map_err(|source| StoreError::Seal {
                file: name.into_owned(),
                source,
            })
    }

    /// Rewrites the biometric files not stored the way the sealer writes: files under a
    /// previous key once the key is rotated, sealed files once encryption is turned off,
    /// and plaintext under a key only for a sealer that accepts it (`seal-store`: no
    /// plaintext template stays behind). Files left as they are are counted.
    pub(crate) fn reseal_files(&self) -> Result<Resealed, StoreError> {
        let mut r = Resealed::default();
        for dir in [&self.encoding_dir, &self.image_dir] {
            for name in files::list(dir)? {
                let stored = std::fs::read(dir.join(&name))?;
                match self.sealer.open_checked(&name, &stored) {
                    Ok(o) if o.current => {}
                    Ok(o) => {
                        self.write_file(dir, &name, &o.plain)?;
                        r.rewritten += 1;
                    }
                    Err(SealError::Unsealed) => r.unsealed += 1,
                    Err(_) => r.unreadable += 1,
                }
            }
        }
        Ok(r)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (an open
        // transaction rolls back when dropped), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn encoding_dir(&self) -> &Path {
        &self.encoding_dir
    }

    pub(crate) fn image_dir(&self) -> &Path {
        &self.image_dir
    }

    /// Reads the schema header from disk: fails when the database is unusable.
    pub(crate) fn ping(&self) -> Result<(), StoreError> {
        let c = self.conn();
        c.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0))?;
        Ok(())
    }

    /// Changes when *another* connection (the admin CLI) commits; used to reload the
    /// in-memory gallery after `attendanced users delete` on a running terminal.
    pub(crate) fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// Free bytes on the disk holding the database.
    pub(crate) fn free_bytes(&self) -> Result<u64, StoreError> {
        let dir = self
            .db_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Ok(files::free_bytes(dir)?)
    }

    /// Deletes template and image files no row refers to: leftovers of a crash between
    /// writing a file and committing its row, or of a delete interrupted after its commit.
    pub(crate) fn sweep_orphans(&self) -> Result<usize, StoreError> {
        let referenced = {
            let c = self.conn();
            let mut stmt = c.prepare(
                "SELECT vector_path FROM templates
                 UNION SELECT crop_path FROM templates WHERE crop_path IS NOT NULL
                 UNION SELECT image_ref FROM attendance WHERE image_ref IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<std::collections::HashSet<String>, _>>()?
        };
        let mut removed = 0;
        for dir in [&self.encoding_dir, &self.image_dir] {
            for name in files::list(dir)? {
                if !referenced.contains(&name) {
                    files::remove(&dir.join(&name))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A store in a fresh temporary folder (removed when the guard drops).
    pub(crate) struct TempStore {
        pub(crate) store: Store,
        pub(crate) dir: PathBuf,
    }

    impl Drop for TempStore {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub(crate) fn temp_store() -> TempStore {
        temp_store_with(None)
    }

    /// A 60 s duplicate window, days in Korea.
    pub(crate) fn rules() -> attendance_core::punch::PunchRules {
        attendance_core::punch::PunchRules {
            duplicate_window: chrono::Duration::seconds(60),
            zone: attendance_core::punch::DayZone::Fixed(
                chrono::FixedOffset::east_opt(9 * 3600).unwrap(),
            ),
        }
    }

    /// An attempt at door `K1` of `hq`: `emp` recognised, or nobody (`unknown`).
    pub(crate) fn attempt(
        emp: Option<&str>,
        req: attendance_core::punch::PunchRequest,
    ) -> NewAttempt {
        use attendance_core::reason::Reason;
        NewAttempt {
            employee_id: emp.map(str::to_owned),
            request: req,
            device_id: "K1".into(),
            site: "hq".into(),
            source: attendance_wire::event::Source::Upload,
            distance: Some(0.2),
            threshold: Some(0.3),
            embedder: Some("hog-v1".into()),
            reason: emp.is_none().then_some(Reason::Unknown),
            detail: None,
            ts_client: None,
            image_ref: None,
        }
    }

    /// [`temp_store`] of a terminal in a fleet (`hq`, `K1`).
    pub(crate) fn temp_fleet_store() -> TempStore {
        temp_store_with(Some(roster::Fleet {
            site: "hq".into(),
            device_id: "K1".into(),
        }))
    }

    fn temp_store_with(fleet: Option<roster::Fleet>) -> TempStore {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("att-store-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = Store::open(&StorageSettings::default().paths(&dir)).unwrap();
        store.fleet = fleet;
        TempStore { store, dir }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::testing::temp_store;
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_database_and_its_wal_files_are_private_whatever_the_umask() {
        // The umask is process-wide: this test is the only one in the crate that sets it,
        // and it only widens what a file may get (022 is the usual default).
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        let s = temp_store();
        s.store.ping().unwrap();
        nix::sys::stat::umask(old);
        let files = sqlite_files(&s.dir.join("attendance.sqlite3"));
        for f in &files {
            assert!(f.exists(), "{} not created", f.display());
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        // A database left 0644 by an older version is tightened on the next open.
        drop(s.store.conn());
        std::fs::set_permissions(&files[0], std::fs::Permissions::from_mode(0o644)).unwrap();
        let again = Store::open(&StorageSettings::default().paths(&s.dir)).unwrap();
        again.ping().unwrap();
        assert_eq!(mode(&files[0]), 0o600);
    }
}
