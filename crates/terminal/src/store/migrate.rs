//! Schema migrations, embedded in the binary and applied in order at start-up.
//!
//! Hand-written rather than a crate: the version lives in SQLite's own `user_version`
//! header field and each step is one transaction, which is all a single-file database
//! needs.

use rusqlite::Connection;

/// `(version, SQL)` in order; a released step is never edited, only followed.
pub(crate) const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        include_str!("../../../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        include_str!("../../../../migrations/sqlite/0002_receipts.sql"),
    ),
    (
        3,
        include_str!("../../../../migrations/sqlite/0003_roster.sql"),
    ),
    (
        4,
        include_str!("../../../../migrations/sqlite/0004_roster_refused.sql"),
    ),
    (
        5,
        include_str!("../../../../migrations/sqlite/0005_learned.sql"),
    ),
    (
        6,
        include_str!("../../../../migrations/sqlite/0006_clock.sql"),
    ),
];

/// The schema version this binary expects.
pub(crate) fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Applies every step above the database's version. Returns the versions applied.
pub(crate) fn apply(conn: &mut Connection) -> rusqlite::Result<Vec<u32>> {
    let current: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut applied = Vec::new();
    for &(version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        applied.push(version);
    }
    Ok(applied)
}

/// The database's schema version.
pub(crate) fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_once() {
        let mut c = Connection::open_in_memory().unwrap();
        assert_eq!(apply(&mut c).unwrap(), vec![1, 2, 3, 4, 5, 6]);
        assert!(apply(&mut c).unwrap().is_empty());
        assert_eq!(version(&c).unwrap(), latest());
    }
}
