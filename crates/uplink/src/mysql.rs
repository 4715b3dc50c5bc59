//! What MySQL refuses and how times reach it: shared by the event sink and the roster of
//! record, which write through the same transactions.

use chrono::{DateTime, NaiveDateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("mysql: {0}")]
    Mysql(#[from] mysql_async::Error),
    /// What a message holds breaks a rule of the roster of record (checked inside the
    /// transaction, against what is stored): a dead letter, like MySQL's own refusals.
    #[error("{0}")]
    Refused(String),
}

impl SinkError {
    /// MySQL's refusal of what a message holds (a value its column cannot take, a
    /// trigger's or constraint's veto): writing it again will fail again, so the message
    /// goes to `dead_letter` and the rest of its batch is written. Anything else (the
    /// connection, a lock, a full disk, a missing table) is retried.
    pub(crate) fn refusal(&self) -> Option<String> {
        let e = match self {
            SinkError::Refused(why) => return Some(why.clone()),
            SinkError::Mysql(mysql_async::Error::Server(e)) => e,
            SinkError::Mysql(_) => return None,
        };
        const DATA: [u16; 14] = [
            1048, // column cannot be null
            1062, // duplicate entry
            1264, // out of range value
            1265, // data truncated
            1292, // incorrect datetime / truncated incorrect value
            1366, // incorrect string value
            1367, // illegal double value
            1406, // data too long
            1411, // incorrect value for function
            1452, // foreign key constraint
            1644, // unhandled user-defined exception (a trigger's SIGNAL)
            1690, // value out of range
            3819, // check constraint violated
            4025, // MariaDB: constraint failed
        ];
        DATA.contains(&e.code)
            .then(|| format!("MySQL refused it: {} (error {})", e.message, e.code))
    }
}

/// RFC 3339 (converted to UTC) or a naive ISO 8601 time as MySQL `DATETIME(3)` text;
/// `None` when it is neither, or outside the years a `DATETIME` holds.
pub(crate) fn mysql_time(s: &str) -> Option<String> {
    use chrono::Datelike;
    const OUT: &str = "%Y-%m-%d %H:%M:%S%.3f";
    let t = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&Utc).naive_utc(),
        Err(_) => [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())?,
    };
    (1000..=9999)
        .contains(&t.year())
        .then(|| t.format(OUT).to_string())
}
