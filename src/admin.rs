//! Admin commands that work on the terminal's files directly (the spec's helper scripts:
//! `reset_users.py` and friends). Safe while the daemon runs: SQLite serialises writers
//! and the daemon reloads its gallery when it sees another process's commit.

use std::io::Write;

use crate::config::Config;
use crate::store::{Store, StoreError, migrate};

fn open(config: &Config) -> Result<Store, StoreError> {
    Store::open(
        &config.database_path(),
        &config.encoding_dir(),
        &config.image_dir(),
    )
}

/// `attendanced users list`: one line per user.
pub fn list_users(config: &Config, out: &mut impl Write) -> Result<(), StoreError> {
    let store = open(config)?;
    writeln!(
        out,
        "{:<12} {:<24} {:>9}  {:<24} EMBEDDERS",
        "EMPLOYEE_ID", "NAME", "TEMPLATES", "CREATED_AT"
    )?;
    for u in store.users()? {
        writeln!(
            out,
            "{:<12} {:<24} {:>9}  {:<24} {}",
            u.employee_id,
            u.name,
            u.templates,
            u.created_at,
            u.embedders.join(",")
        )?;
    }
    Ok(())
}

/// `attendanced users delete ID`.
pub fn delete_user(config: &Config, employee_id: &str) -> Result<usize, StoreError> {
    Ok(open(config)?.delete_user(employee_id)?.templates)
}

/// `attendanced users reset --yes`: every user and template; attendance stays.
pub fn reset_users(config: &Config) -> Result<usize, StoreError> {
    Ok(open(config)?.reset_users()?.users)
}

/// `attendanced migrate`: applies pending schema steps; returns the resulting version.
pub fn migrate(config: &Config) -> Result<u32, StoreError> {
    open(config)?;
    Ok(migrate::latest())
}
