//! The central MySQL attendance tables: schema migrations and idempotent batch writes.

use chrono::{DateTime, NaiveDateTime, Utc};
use mysql_async::prelude::*;
use mysql_async::{
    Opts, OptsBuilder, Params, Pool, PoolConstraints, PoolOpts, SslOpts, TxOpts, Value,
};

use super::config::MysqlSettings;
use crate::event::{AttendanceEvent, EventBatch};
use crate::mqtt::{DeviceTopic, parse_device_topic};
use crate::roster::wire::{Change, ChangeBatch};

/// `(version, SQL)` in order; a released step is never edited, only followed.
pub(crate) const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("../../migrations/mysql/0001_init.sql")),
    (2, include_str!("../../migrations/mysql/0002_roster.sql")),
];

/// Rows per INSERT statement (14 parameters each, far under MySQL's 65535).
const ROWS_PER_INSERT: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("mysql: {0}")]
    Mysql(#[from] mysql_async::Error),
}

/// One MQTT message as received.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) topic: String,
    pub(crate) payload: Vec<u8>,
}

/// What a message turned out to be.
#[derive(Debug)]
pub(crate) enum Decoded {
    Events(Vec<AttendanceEvent>),
    /// Roster changes made at a terminal of the topic's site.
    Changes(Vec<Change>),
    /// Undecodable or invalid: kept with the error for a human.
    Dead(String),
}

/// Decodes and validates a message (pure).
pub(crate) fn decode(m: &Message) -> Decoded {
    match parse_device_topic(&m.topic) {
        Some((_, _, DeviceTopic::Events)) => match EventBatch::from_cbor(&m.payload) {
            Ok(b) => Decoded::Events(b.events),
            Err(e) => Decoded::Dead(e.to_string()),
        },
        Some((site, _, DeviceTopic::RosterChanges)) => match ChangeBatch::from_cbor(&m.payload) {
            // A terminal changes its own site's roster only.
            Ok(b) => match b.changes.iter().find(|c| c.site != site) {
                Some(c) => Decoded::Dead(format!("change for site {} on {}", c.site, m.topic)),
                None => Decoded::Changes(b.changes),
            },
            Err(e) => Decoded::Dead(e.to_string()),
        },
        _ => Decoded::Dead(format!("unexpected topic {}", m.topic)),
    }
}

/// Result of one write.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// Events offered.
    pub(crate) events: usize,
    /// Of which new (the rest were duplicates of already stored events).
    pub(crate) inserted: usize,
    pub(crate) dead: usize,
    /// Per terminal topic: the event and change ids now stored, for its receipt.
    pub(crate) receipts: Vec<(String, Vec<String>)>,
    /// Sites whose roster changed, with their new head revision.
    pub(crate) heads: Vec<(String, u64)>,
    /// The events' `ts_server`, for the lag to their commit.
    pub(crate) event_times: Vec<chrono::DateTime<chrono::Utc>>,
}

pub struct Sink {
    pool: Pool,
    settings: MysqlSettings,
}

impl Sink {
    pub fn new(s: &MysqlSettings) -> Sink {
        let pool = Pool::new(Self::opts(s, Some(&s.database)));
        Sink {
            pool,
            settings: s.clone(),
        }
    }

    fn opts(s: &MysqlSettings, db: Option<&str>) -> Opts {
        let constraints = PoolConstraints::new(1, s.pool_size.max(1)).unwrap_or_default();
        let mut b = OptsBuilder::default()
            .ip_or_hostname(s.host.clone())
            .tcp_port(s.port)
            .user(Some(s.user.clone()))
            .pass(s.password.clone())
            .db_name(db.map(str::to_owned))
            .pool_opts(PoolOpts::default().with_constraints(constraints))
            .prefer_socket(false);
        if s.tls {
            crate::tls::install_crypto_provider();
            let mut ssl = SslOpts::default();
            if let Some(ca) = &s.ca_file {
                ssl = ssl.with_root_certs(vec![ca.clone().into()]);
            }
            b = b.ssl_opts(ssl);
        }
        b.into()
    }

    /// Creates the database if needed and applies pending migrations, holding a MySQL
    /// advisory lock so several uplinks starting together migrate once.
    pub async fn migrate(&self) -> Result<u32, SinkError> {
        let s = &self.settings;
        {
            let mut c = mysql_async::Conn::new(Self::opts(s, None)).await?;
            c.query_drop(format!(
                "CREATE DATABASE IF NOT EXISTS `{}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
                s.database
            ))
            .await?;
            c.disconnect().await?;
        }
        let mut c = self.pool.get_conn().await?;
        // Values are read as `Option` inside: mysql_async panics on a NULL it cannot convert.
        let _: Option<Option<i64>> = c
            .query_first("SELECT GET_LOCK('attendance_migrate', 60)")
            .await?;
        c.query_drop(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INT PRIMARY KEY, applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))",
        )
        .await?;
        let current: Option<Option<u32>> = c
            .query_first("SELECT MAX(version) FROM schema_migrations")
            .await?;
        let current = current.flatten().unwrap_or(0);
        for &(version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            // Our own files: statements end with ";\n" and hold no semicolons in strings.
            for stmt in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
                let stmt: String = stmt
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n");
                if !stmt.trim().is_empty() {
                    c.query_drop(stmt).await?;
                }
            }
            c.exec_drop(
                "INSERT INTO schema_migrations (version) VALUES (?)",
                (version,),
            )
            .await?;
        }
        let _: Option<Option<i64>> = c
            .query_first("SELECT RELEASE_LOCK('attendance_migrate')")
            .await?;
        Ok(MIGRATIONS.last().map_or(0, |m| m.0))
    }

    /// Writes every message's events (duplicates ignored) and dead letters in one
    /// transaction. Only after this returns `Ok` may the messages be acknowledged.
    pub(crate) async fn write(&self, messages: &[Message]) -> Result<Written, SinkError> {
        let mut events = Vec::new();
        let mut changes = Vec::new();
        let mut dead = Vec::new();
        let mut receipts: Vec<(String, Vec<String>)> = Vec::new();
        let mut receipt =
            |topic: &str, ids: Vec<String>| match receipts.iter_mut().find(|(t, _)| t == topic) {
                Some((_, v)) => v.extend(ids),
                None => receipts.push((topic.to_owned(), ids)),
            };
        for m in messages {
            match decode(m) {
                Decoded::Events(e) => {
                    receipt(&m.topic, e.iter().map(|e| e.event_id.clone()).collect());
                    events.extend(e);
                }
                Decoded::Changes(c) => {
                    receipt(&m.topic, c.iter().map(|c| c.change_id.clone()).collect());
                    changes.extend(c);
                }
                Decoded::Dead(why) => dead.push((m, why)),
            }
        }
        let mut tx = self.pool.start_transaction(TxOpts::default()).await?;
        let mut heads: Vec<(String, u64)> = Vec::new();
        for c in &changes {
            if let Some(revision) = super::roster::write_change(&mut tx, c).await? {
                match heads.iter_mut().find(|(s, _)| *s == c.site) {
                    Some((_, r)) => *r = revision,
                    None => heads.push((c.site.clone(), revision)),
                }
            }
        }
        let mut inserted = 0;
        for chunk in events.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(chunk.len());
            let params: Vec<Value> = chunk.iter().flat_map(row).collect();
            tx.exec_drop(sql, Params::Positional(params)).await?;
            // With ON DUPLICATE KEY UPDATE (no change), affected rows count only new ones.
            inserted += tx.affected_rows() as usize;
        }
        for (m, why) in &dead {
            tx.exec_drop(
                "INSERT INTO dead_letter (topic, payload, error) VALUES (?, ?, ?)",
                (m.topic.as_str(), m.payload.as_slice(), why.as_str()),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Written {
            event_times: events
                .iter()
                .filter_map(|e| chrono::DateTime::parse_from_rfc3339(&e.ts_server).ok())
                .map(|t| t.to_utc())
                .collect(),
            events: events.len(),
            inserted,
            dead: dead.len(),
            receipts,
            heads,
        })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub async fn close(self) {
        let _ = self.pool.disconnect().await;
    }
}

fn insert_sql(rows: usize) -> String {
    let one = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    let values = vec![one; rows].join(",");
    format!(
        "INSERT INTO attendance (event_id, employee_id, type, device_id, site, source, distance,
                                 threshold, embedder, reason, detail, ts_server, ts_client, ts_client_raw)
         VALUES {values}
         ON DUPLICATE KEY UPDATE event_id = event_id"
    )
}

/// The `attendance` row an event becomes (pure).
pub(crate) fn row(e: &AttendanceEvent) -> [Value; 14] {
    let opt = |s: Option<&str>| s.map_or(Value::NULL, Value::from);
    [
        Value::from(e.event_id.as_str()),
        opt(e.employee_id.as_deref()),
        Value::from(e.kind.as_str()),
        Value::from(e.device_id.as_str()),
        Value::from(e.site.as_str()),
        Value::from(e.source.as_str()),
        e.distance.map_or(Value::NULL, Value::from),
        e.threshold.map_or(Value::NULL, Value::from),
        opt(e.embedder.as_deref()),
        opt(e.reason.map(|r| r.as_str())),
        opt(e.detail.map(|d| d.as_str())),
        opt(mysql_time(&e.ts_server).as_deref()),
        opt(e.ts_client.as_deref().and_then(mysql_time).as_deref()),
        opt(e.ts_client.as_deref()),
    ]
}

/// RFC 3339 (converted to UTC) or a naive ISO 8601 time as MySQL `DATETIME(3)` text.
pub(crate) fn mysql_time(s: &str) -> Option<String> {
    const OUT: &str = "%Y-%m-%d %H:%M:%S%.3f";
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc).format(OUT).to_string());
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .map(|t| t.format(OUT).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_for_mysql() {
        assert_eq!(
            mysql_time("2026-01-05T09:00:00.123+09:00").as_deref(),
            Some("2026-01-05 00:00:00.123")
        );
        assert_eq!(
            mysql_time("2026-01-05T09:00:00").as_deref(),
            Some("2026-01-05 09:00:00.000")
        );
        assert_eq!(mysql_time("soon"), None);
    }

    #[test]
    fn decode_sorts_good_from_dead() {
        let good = EventBatch {
            v: 1,
            events: vec![],
        }
        .to_cbor();
        let m = |topic: &str, payload: &[u8]| Message {
            topic: topic.into(),
            payload: payload.to_vec(),
        };
        assert!(
            matches!(decode(&m("attendance/hq/K1/events", &good)), Decoded::Events(e) if e.is_empty())
        );
        assert!(matches!(
            decode(&m("attendance/hq/K1/events", b"\x00garbage")),
            Decoded::Dead(_)
        ));
        assert!(matches!(decode(&m("other/topic", &good)), Decoded::Dead(_)));
    }

    #[test]
    fn roster_changes_decode_only_for_the_topics_site() {
        let batch = crate::roster::wire::ChangeBatch {
            v: 1,
            changes: vec![crate::roster::wire::tests::enrol("hq-K1-001", "홍길동")],
        };
        let bytes = crate::roster::wire::encode(&batch);
        let m = |topic: &str| Message {
            topic: topic.into(),
            payload: bytes.clone(),
        };
        assert!(matches!(
            decode(&m("attendance/hq/K1/roster_changes")),
            Decoded::Changes(c) if c == batch.changes
        ));
        // A terminal may not change another site's roster.
        assert!(matches!(
            decode(&m("attendance/branch/K1/roster_changes")),
            Decoded::Dead(why) if why.contains("site hq")
        ));
        // Nor send changes as events.
        assert!(matches!(
            decode(&m("attendance/hq/K1/events")),
            Decoded::Dead(_)
        ));
    }

    #[test]
    fn insert_sql_has_one_placeholder_group_per_row() {
        let sql = insert_sql(3);
        assert_eq!(sql.matches("(?,?,?,?,?,?,?,?,?,?,?,?,?,?)").count(), 3);
        assert_eq!(sql.matches('?').count(), 42);
    }
}
