//! The central MySQL attendance tables: schema migrations and idempotent batch writes.

use mysql_async::prelude::*;
use mysql_async::{
    Opts, OptsBuilder, Params, Pool, PoolConstraints, PoolOpts, SslOpts, TxOpts, Value,
};

use super::config::MysqlSettings;
use super::decode::{Decoded, Message};
use super::roster::{Outcome, write_change, write_revocation};
pub use crate::mysql::SinkError;
use crate::mysql::mysql_time;
use attendance_core::clock::ClockSync;
use attendance_wire::event::AttendanceEvent;
use attendance_wire::roster::wire::Change;

/// `(version, SQL)` in order; a released step is never edited, only followed.
pub(crate) const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("../../../migrations/mysql/0001_init.sql")),
    (2, include_str!("../../../migrations/mysql/0002_roster.sql")),
    (
        3,
        include_str!("../../../migrations/mysql/0003_senders.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/mysql/0004_learned.sql"),
    ),
    (5, include_str!("../../../migrations/mysql/0005_clock.sql")),
];

/// Rows per INSERT statement (16 parameters each, far under MySQL's 65535).
const ROWS_PER_INSERT: usize = 500;

/// Result of one write.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// Events offered.
    pub(crate) events: usize,
    /// Of which new (the rest were duplicates of already stored events).
    pub(crate) inserted: usize,
    /// Stored `unsynced` and now corrected by their door.
    pub(crate) corrected: usize,
    pub(crate) dead: usize,
    /// Roster changes about people another site owns, written as revocations at the
    /// sender's site: `(topic, employee_id, owner)`.
    pub(crate) foreign: Vec<(String, String, String)>,
    /// Per terminal topic: the event and change ids now stored, for its receipt.
    pub(crate) receipts: Vec<(String, Vec<String>)>,
    /// Sites whose roster changed, with their new head revision.
    pub(crate) heads: Vec<(String, u64)>,
    /// The events' `ts_server` (those taken on a synchronised clock), for the lag to
    /// their commit.
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
            attendance_core::tls::install_crypto_provider();
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

    /// Writes the messages (events, roster changes, dead letters) in one transaction;
    /// when MySQL refuses something a message holds, each message is written in its own
    /// and the refused ones go to `dead_letter`, so one bad message cannot hold the
    /// others back. Only after this returns `Ok` may the messages be acknowledged.
    pub(crate) async fn write(&self, batch: &[(Message, Decoded)]) -> Result<Written, SinkError> {
        let refused = match self.write_all(batch).await {
            Err(e) => match e.refusal() {
                Some(why) => why,
                None => return Err(e),
            },
            ok => return ok,
        };
        tracing::warn!(messages = batch.len(), why = %refused, "writing message by message");
        let mut total = Written::default();
        for item in batch {
            let w = match self.write_all(std::slice::from_ref(item)).await {
                Err(e) => match e.refusal() {
                    Some(why) => {
                        let dead = (item.0.clone(), Decoded::Dead(why));
                        self.write_all(std::slice::from_ref(&dead)).await?
                    }
                    None => return Err(e),
                },
                ok => ok?,
            };
            total.absorb(w);
        }
        Ok(total)
    }

    async fn write_all(&self, batch: &[(Message, Decoded)]) -> Result<Written, SinkError> {
        let mut events: Vec<(&str, &AttendanceEvent)> = Vec::new();
        let mut changes: Vec<(&str, &Change)> = Vec::new();
        let mut dead = Vec::new();
        let mut w = Written::default();
        for (m, d) in batch {
            match d {
                Decoded::Events {
                    terminal,
                    events: e,
                } => {
                    w.receipt(&m.topic, e.iter().map(|e| e.event_id.clone()));
                    events.extend(e.iter().map(|e| (terminal.as_str(), e)));
                }
                Decoded::Changes(c) => {
                    w.receipt(&m.topic, c.iter().map(|c| c.change_id.clone()));
                    changes.extend(c.iter().map(|c| (m.topic.as_str(), c)));
                }
                Decoded::Dead(why) => dead.push((m, why)),
            }
        }
        let mut tx = self.pool.start_transaction(TxOpts::default()).await?;
        for (topic, c) in changes {
            let revision = match write_change(&mut tx, c).await? {
                Outcome::Written(r) => Some(r),
                Outcome::Seen => None,
                Outcome::Foreign { owner } => {
                    w.foreign
                        .push((topic.to_owned(), c.employee_id.clone(), owner));
                    Some(write_revocation(&mut tx, c).await?)
                }
            };
            if let Some(revision) = revision {
                w.head(&c.site, revision);
            }
        }
        for chunk in events.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(chunk.len());
            let params: Vec<Value> = chunk.iter().flat_map(|(t, e)| row(e, t)).collect();
            tx.exec_drop(sql, Params::Positional(params)).await?;
            // With ON DUPLICATE KEY UPDATE (no change), affected rows count only new ones.
            w.inserted += tx.affected_rows() as usize;
        }
        for (terminal, e) in events
            .iter()
            .filter(|(_, e)| e.judged_clock() == Some(ClockSync::Corrected))
        {
            w.corrected += correct(&mut tx, e, terminal).await?;
        }
        for (m, why) in &dead {
            let (site, device) = attendance_wire::mqtt::parse_device_topic(&m.topic)
                .map_or((None, None), |(s, d, _)| (Some(s), Some(d)));
            tx.exec_drop(
                "INSERT INTO dead_letter (topic, site, device_id, payload, error) VALUES (?, ?, ?, ?, ?)",
                (
                    fit(&m.topic, 255),
                    site.map(|s| fit(s, 50)),
                    device.map(|d| fit(d, 50)),
                    m.payload.as_slice(),
                    fit(why, 2000),
                ),
            )
            .await?;
        }
        tx.commit().await?;
        w.events = events.len();
        w.dead = dead.len();
        // An unsynchronised time says nothing of the delay.
        w.event_times = events
            .iter()
            .filter(|(_, e)| e.judged_clock() != Some(ClockSync::Unsynced))
            .filter_map(|(_, e)| chrono::DateTime::parse_from_rfc3339(&e.ts_server).ok())
            .map(|t| t.to_utc())
            .collect();
        Ok(w)
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub async fn close(self) {
        let _ = self.pool.disconnect().await;
    }
}

impl Written {
    fn receipt(&mut self, topic: &str, ids: impl Iterator<Item = String>) {
        match self.receipts.iter_mut().find(|(t, _)| t == topic) {
            Some((_, v)) => v.extend(ids),
            None => self.receipts.push((topic.to_owned(), ids.collect())),
        }
    }

    /// `site`'s roster now reaches `revision` (revisions only grow).
    fn head(&mut self, site: &str, revision: u64) {
        match self.heads.iter_mut().find(|(s, _)| s == site) {
            Some((_, h)) => *h = (*h).max(revision),
            None => self.heads.push((site.to_owned(), revision)),
        }
    }

    /// Adds another write's result (message by message).
    fn absorb(&mut self, o: Written) {
        self.events += o.events;
        self.inserted += o.inserted;
        self.corrected += o.corrected;
        self.dead += o.dead;
        self.foreign.extend(o.foreign);
        for (topic, ids) in o.receipts {
            self.receipt(&topic, ids.into_iter());
        }
        for (site, r) in o.heads {
            self.head(&site, r);
        }
        self.event_times.extend(o.event_times);
    }
}

/// At most `max` characters of `s` (what a column of that size holds).
fn fit(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The correction of an event stored `unsynced`, by the door that sent it, once
/// (`attendance_core::clock`). Only events whose judged clock is `corrected` come here:
/// a "correction" to a time before 2025 is none. Returns 1 when applied. Any other
/// door's is ignored: a door corrects only its own events, as it could only have sent
/// its own.
async fn correct(
    tx: &mut mysql_async::Transaction<'_>,
    e: &AttendanceEvent,
    terminal: &str,
) -> Result<usize, SinkError> {
    tx.exec_drop(
        "UPDATE attendance SET ts_server = ?, clock = 'corrected'
         WHERE event_id = ? AND terminal = ? AND clock = 'unsynced'",
        (mysql_time(&e.ts_server), e.event_id.as_str(), terminal),
    )
    .await?;
    Ok(tx.affected_rows() as usize)
}

fn insert_sql(rows: usize) -> String {
    let one = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    let values = vec![one; rows].join(",");
    format!(
        "INSERT INTO attendance (event_id, employee_id, type, device_id, site, terminal, source,
                                 distance, threshold, embedder, reason, detail, ts_server,
                                 ts_client, ts_client_raw, clock)
         VALUES {values}
         ON DUPLICATE KEY UPDATE event_id = event_id"
    )
}

/// The `attendance` row an event sent by door `terminal` becomes (pure).
pub(crate) fn row(e: &AttendanceEvent, terminal: &str) -> [Value; 16] {
    let opt = |s: Option<&str>| s.map_or(Value::NULL, Value::from);
    [
        Value::from(e.event_id.as_str()),
        opt(e.employee_id.as_deref()),
        Value::from(e.kind.as_str()),
        Value::from(e.device_id.as_str()),
        Value::from(e.site.as_str()),
        Value::from(terminal),
        Value::from(e.source.as_str()),
        e.distance.map_or(Value::NULL, Value::from),
        e.threshold.map_or(Value::NULL, Value::from),
        opt(e.embedder.as_deref()),
        opt(e.reason.map(|r| r.as_str())),
        opt(e.detail.map(|d| d.as_str())),
        opt(mysql_time(&e.ts_server).as_deref()),
        opt(e.ts_client.as_deref().and_then(mysql_time).as_deref()),
        opt(e.ts_client.as_deref()),
        opt(e.judged_clock().map(ClockSync::as_str)),
    ]
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
        assert_eq!(
            mysql_time("0000-01-05T09:00:00"),
            None,
            "no DATETIME holds it"
        );
    }

    #[test]
    fn insert_sql_has_one_placeholder_group_per_row() {
        let sql = insert_sql(3);
        assert_eq!(sql.matches("(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)").count(), 3);
        assert_eq!(sql.matches('?').count(), 48);
        assert_eq!(
            row(&attendance_wire::testing::sample(), "K9")[5],
            Value::from("K9")
        );
    }
}
