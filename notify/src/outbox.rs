//! The persisted outbox of notifications (… → incidents → **notifications** → outbox).
//!
//! One row per (channel, dedup key, kind, occurrence): enqueueing the same event again changes
//! nothing, so the collector may re-enqueue after a crash without sending twice. A row stays
//! `pending` until a delivery attempt succeeds (`delivered`), finds nothing to send (`skipped`) or
//! fails for good (`failed`); attempts, the last error and the delivery time are recorded. Rows of
//! one (channel, dedup key) are delivered in order — a resolve never overtakes its trigger — and
//! the ticket sink's remote ticket id is stored in the same transaction as the create's delivery.
//! Nothing is deleted.
//!
//! Transactional outbox: the source of the notifications (the ticket store's feed) is read by
//! position, and [`Outbox::enqueue_through`] records the position handled in the same transaction
//! as the notifications it produced. After a crash the source resumes right after
//! [`Outbox::resume`]: nothing persisted by the source is lost and nothing handled is handled
//! again.
//!
//! The tables are prefixed `notify_` and versioned in their own `notify_schema_version` table, so
//! the outbox can live in the collector's SQLite file next to its other tables (WAL mode).

use crate::model::{Kind, Notification};
use faultline_incidents::Millis;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// Migrations, applied in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE notify_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel         TEXT    NOT NULL,
    dedup_key       TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    occurrence      INTEGER NOT NULL,
    notification    TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_attempt_ms INTEGER,
    last_error      TEXT,
    delivered_at_ms INTEGER,
    UNIQUE (channel, dedup_key, kind, occurrence)
);
CREATE INDEX notify_outbox_due ON notify_outbox (state, next_attempt_ms);
CREATE INDEX notify_outbox_key ON notify_outbox (channel, dedup_key, state, id);
CREATE TABLE notify_remote_tickets (
    channel       TEXT    NOT NULL,
    dedup_key     TEXT    NOT NULL,
    remote_id     TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (channel, dedup_key)
);
"#,
    r#"
CREATE TABLE notify_cursor (
    id       INTEGER PRIMARY KEY CHECK (id = 0),
    position INTEGER NOT NULL
);
"#,
];

/// An outbox failure, naming the channel and dedup key when one is involved.
#[derive(Debug, Error)]
pub enum OutboxError {
    /// The database cannot be opened or migrated.
    #[error("notification outbox {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer Faultline.
    #[error("notification outbox schema is version {found}; this build knows up to {known}")]
    TooNew {
        /// Version found.
        found: i64,
        /// Newest version known here.
        known: i64,
    },
    /// A statement about one delivery failed.
    #[error("notification outbox: channel {channel}, dedup key {dedup_key}: {source}")]
    Delivery {
        /// Channel.
        channel: String,
        /// Dedup key.
        dedup_key: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A statement not about one delivery failed.
    #[error("notification outbox: {what}: {source}")]
    Query {
        /// What was being done.
        what: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered yet; will be attempted at its next attempt time.
    Pending,
    /// Delivered.
    Delivered,
    /// Nothing to send (no recipients).
    Skipped,
    /// Failed for good: rejected by the receiver, or out of attempts.
    Failed,
}

impl DeliveryState {
    /// Name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Failed => "failed",
        }
    }

    fn parse(name: &str) -> DeliveryState {
        match name {
            "delivered" => DeliveryState::Delivered,
            "skipped" => DeliveryState::Skipped,
            "failed" => DeliveryState::Failed,
            _ => DeliveryState::Pending,
        }
    }
}

/// A delivery due for an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDelivery {
    /// Row id.
    pub id: i64,
    /// Channel name.
    pub channel: String,
    /// What to deliver.
    pub notification: Notification,
    /// Attempts made so far.
    pub attempts: u32,
    /// The ticket sink's remote ticket for this channel and dedup key, once created.
    pub remote_id: Option<String>,
}

/// The record of one delivery, for the ticket's view and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Channel name.
    pub channel: String,
    /// Dedup key.
    pub dedup_key: String,
    /// Kind (`None` if the stored name is unknown to this build).
    pub kind: Option<Kind>,
    /// Occurrence (timeline position).
    pub occurrence: u64,
    /// State.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// Last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at_ms: Millis,
    /// When it was delivered.
    pub delivered_at_ms: Option<Millis>,
}

/// Counts of one channel's deliveries by state, for scrape-time gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Waiting for delivery.
    pub pending: u64,
    /// Failed for good.
    pub failed: u64,
}

/// The outbox, on one SQLite connection.
pub struct Outbox {
    conn: Connection,
}

fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn query(what: &'static str) -> impl FnOnce(rusqlite::Error) -> OutboxError {
    move |source| OutboxError::Query { what, source }
}

impl Outbox {
    /// Opens (creating if needed) the outbox in the SQLite file at `path` — the collector's own
    /// database file is fine — in WAL mode, and brings its tables to the current version.
    pub fn open(path: &Path) -> Result<Self, OutboxError> {
        let open_error = |source| OutboxError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_error)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(open_error)?;
        conn.execute_batch("PRAGMA synchronous = FULL;")
            .map_err(open_error)?;
        migrate(&mut conn).map_err(|e| match e {
            OutboxError::Query { source, .. } => open_error(source),
            other => other,
        })?;
        Ok(Self { conn })
    }

    /// The schema version of the outbox tables.
    pub fn schema_version(&self) -> Result<i64, OutboxError> {
        current_version(&self.conn)
    }

    /// Enqueues `notification` for each of `channels`, in one transaction; an event already in the
    /// outbox for a channel is left as it is. Returns how many rows are new.
    pub fn enqueue(
        &mut self,
        channels: &[&str],
        notification: &Notification,
        now: Millis,
    ) -> Result<usize, OutboxError> {
        self.write(&[(channels, notification)], None, now)
    }

    /// Enqueues each notification for its channels and records that the source has handled
    /// everything up to `position`, in one transaction: a crash keeps both or neither. Rows
    /// already in the outbox are left as they are; the recorded position never moves back.
    /// Returns how many rows are new.
    pub fn enqueue_through(
        &mut self,
        routed: &[(&[&str], &Notification)],
        position: u64,
        now: Millis,
    ) -> Result<usize, OutboxError> {
        self.write(routed, Some(position), now)
    }

    /// Where the source resumes: the position the last [`Outbox::enqueue_through`] recorded.
    /// When none is recorded yet (a new outbox, or one from before positions were kept) `end`,
    /// the source's current end, is recorded and returned: its history is not notified again.
    pub fn resume(&mut self, end: u64) -> Result<u64, OutboxError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO notify_cursor (id, position) VALUES (0, ?1)",
                [to_sql(end)],
            )
            .map_err(query("record the first position"))?;
        self.conn
            .query_row("SELECT position FROM notify_cursor", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(i64::unsigned_abs)
            .map_err(query("read the position"))
    }

    /// Enqueues each notification for its channels and, when given, records `position` as
    /// handled, in one transaction. Returns how many rows are new.
    pub(crate) fn write(
        &mut self,
        routed: &[(&[&str], &Notification)],
        position: Option<u64>,
        now: Millis,
    ) -> Result<usize, OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(query("begin enqueue"))?;
        let mut added = 0;
        for (channels, notification) in routed {
            let json = serde_json::to_string(notification).map_err(|e| OutboxError::Query {
                what: "encode notification",
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
            for channel in *channels {
                added += tx
                    .execute(
                        "INSERT OR IGNORE INTO notify_outbox
                            (channel, dedup_key, kind, occurrence, notification, created_at_ms,
                             next_attempt_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                        params![
                            channel,
                            notification.dedup_key,
                            notification.kind.as_str(),
                            to_sql(notification.occurrence),
                            json,
                            now
                        ],
                    )
                    .map_err(|source| OutboxError::Delivery {
                        channel: channel.to_string(),
                        dedup_key: notification.dedup_key.clone(),
                        source,
                    })?;
            }
        }
        if let Some(position) = position {
            tx.execute(
                "INSERT INTO notify_cursor (id, position) VALUES (0, ?1)
                 ON CONFLICT (id) DO UPDATE SET position = MAX(position, excluded.position)",
                [to_sql(position)],
            )
            .map_err(query("record the position"))?;
        }
        tx.commit().map_err(query("commit enqueue"))?;
        Ok(added)
    }

    /// Up to `limit` deliveries due at `now`: for each (channel, dedup key) only the oldest
    /// pending one, so events of one ticket reach a channel in order. A stored notification that
    /// cannot be read is marked failed.
    pub fn due(&mut self, now: Millis, limit: usize) -> Result<Vec<PendingDelivery>, OutboxError> {
        let rows: Vec<(i64, String, String, String, u32, Option<String>)> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT o.id, o.channel, o.dedup_key, o.notification, o.attempts, r.remote_id
                     FROM notify_outbox o
                     LEFT JOIN notify_remote_tickets r
                       ON r.channel = o.channel AND r.dedup_key = o.dedup_key
                     WHERE o.state = 'pending' AND o.next_attempt_ms <= ?1
                       AND NOT EXISTS (
                         SELECT 1 FROM notify_outbox p
                         WHERE p.channel = o.channel AND p.dedup_key = o.dedup_key
                           AND p.state = 'pending' AND p.id < o.id)
                     ORDER BY o.next_attempt_ms, o.id
                     LIMIT ?2",
                )
                .map_err(query("select due"))?;
            stmt.query_map(
                params![now, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .and_then(|rows| rows.collect())
            .map_err(query("select due"))?
        };
        let mut due = Vec::with_capacity(rows.len());
        for (id, channel, dedup_key, json, attempts, remote_id) in rows {
            match serde_json::from_str::<Notification>(&json) {
                Ok(notification) => due.push(PendingDelivery {
                    id,
                    channel,
                    notification,
                    attempts,
                    remote_id,
                }),
                Err(e) => {
                    tracing::error!(%channel, %dedup_key, error = %e, "stored notification unreadable");
                    self.record_failure(
                        id,
                        &channel,
                        &dedup_key,
                        now,
                        &format!("stored notification unreadable: {e}"),
                        None,
                    )?;
                }
            }
        }
        Ok(due)
    }

    /// The earliest next attempt among pending deliveries.
    pub fn next_due_ms(&self) -> Result<Option<Millis>, OutboxError> {
        self.conn
            .query_row(
                "SELECT MIN(next_attempt_ms) FROM notify_outbox WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .map_err(query("next due"))
    }

    /// Records a delivery — and the remote ticket it created, if any — in one transaction.
    pub fn record_delivered(
        &mut self,
        delivery: &PendingDelivery,
        now: Millis,
        remote_id: Option<&str>,
    ) -> Result<(), OutboxError> {
        let err = |source| OutboxError::Delivery {
            channel: delivery.channel.clone(),
            dedup_key: delivery.notification.dedup_key.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute(
            "UPDATE notify_outbox
             SET state = 'delivered', attempts = attempts + 1, last_attempt_ms = ?2,
                 delivered_at_ms = ?2, last_error = NULL
             WHERE id = ?1",
            params![delivery.id, now],
        )
        .map_err(err)?;
        if let Some(remote_id) = remote_id {
            tx.execute(
                "INSERT OR IGNORE INTO notify_remote_tickets
                    (channel, dedup_key, remote_id, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    delivery.channel,
                    delivery.notification.dedup_key,
                    remote_id,
                    now
                ],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Records that there was nothing to send.
    pub fn record_skipped(
        &mut self,
        delivery: &PendingDelivery,
        now: Millis,
        reason: &str,
    ) -> Result<(), OutboxError> {
        self.conn
            .execute(
                "UPDATE notify_outbox
                 SET state = 'skipped', last_attempt_ms = ?2, last_error = ?3
                 WHERE id = ?1",
                params![delivery.id, now, reason],
            )
            .map(drop)
            .map_err(|source| OutboxError::Delivery {
                channel: delivery.channel.clone(),
                dedup_key: delivery.notification.dedup_key.clone(),
                source,
            })
    }

    /// Records a failed attempt: retried at `next_attempt`, or failed for good when `None`.
    pub fn record_failure(
        &mut self,
        id: i64,
        channel: &str,
        dedup_key: &str,
        now: Millis,
        error: &str,
        next_attempt: Option<Millis>,
    ) -> Result<(), OutboxError> {
        let state = match next_attempt {
            Some(_) => DeliveryState::Pending,
            None => DeliveryState::Failed,
        };
        self.conn
            .execute(
                "UPDATE notify_outbox
                 SET state = ?2, attempts = attempts + 1, last_attempt_ms = ?3, last_error = ?4,
                     next_attempt_ms = COALESCE(?5, next_attempt_ms)
                 WHERE id = ?1",
                params![id, state.as_str(), now, error, next_attempt],
            )
            .map(drop)
            .map_err(|source| OutboxError::Delivery {
                channel: channel.to_string(),
                dedup_key: dedup_key.to_string(),
                source,
            })
    }

    /// The ticket sink's remote ticket id for a channel and dedup key.
    pub fn remote_id(&self, channel: &str, dedup_key: &str) -> Result<Option<String>, OutboxError> {
        self.conn
            .query_row(
                "SELECT remote_id FROM notify_remote_tickets WHERE channel = ?1 AND dedup_key = ?2",
                params![channel, dedup_key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|source| OutboxError::Delivery {
                channel: channel.to_string(),
                dedup_key: dedup_key.to_string(),
                source,
            })
    }

    /// Every delivery of one dedup key (all channels), oldest first.
    pub fn deliveries(&self, dedup_key: &str) -> Result<Vec<DeliveryRecord>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT channel, dedup_key, kind, occurrence, state, attempts, last_error,
                        created_at_ms, delivered_at_ms
                 FROM notify_outbox WHERE dedup_key = ?1 ORDER BY id",
            )
            .map_err(query("select deliveries"))?;
        stmt.query_map([dedup_key], |r| {
            let kind: String = r.get(2)?;
            let state: String = r.get(4)?;
            Ok(DeliveryRecord {
                channel: r.get(0)?,
                dedup_key: r.get(1)?,
                kind: Kind::parse(&kind),
                occurrence: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                state: DeliveryState::parse(&state),
                attempts: r.get(5)?,
                last_error: r.get(6)?,
                created_at_ms: r.get(7)?,
                delivered_at_ms: r.get(8)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(query("select deliveries"))
    }

    /// Pending and failed deliveries per channel, for the collector's gauges.
    pub fn backlog(&self) -> Result<Vec<(String, Backlog)>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT channel,
                        SUM(state = 'pending'),
                        SUM(state = 'failed')
                 FROM notify_outbox GROUP BY channel ORDER BY channel",
            )
            .map_err(query("select backlog"))?;
        stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                Backlog {
                    pending: r.get::<_, i64>(1)?.unsigned_abs(),
                    failed: r.get::<_, i64>(2)?.unsigned_abs(),
                },
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(query("select backlog"))
    }
}

fn current_version(conn: &Connection) -> Result<i64, OutboxError> {
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM notify_schema_version",
        [],
        |r| r.get(0),
    )
    .map_err(query("read schema version"))
}

/// Brings the tables to the newest version, one transaction per migration; safe when several
/// processes open the file at once (the version is re-read under the write lock).
fn migrate(conn: &mut Connection) -> Result<(), OutboxError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS notify_schema_version (version INTEGER NOT NULL)",
    )
    .map_err(query("create version table"))?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(query("begin migration"))?;
        let version = current_version(&tx)?;
        if version > known {
            return Err(OutboxError::TooNew {
                found: version,
                known,
            });
        }
        let Some(sql) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            return Ok(());
        };
        tx.execute_batch(sql).map_err(query("migrate"))?;
        tx.execute(
            "INSERT INTO notify_schema_version (version) VALUES (?1)",
            [version + 1],
        )
        .map_err(query("record schema version"))?;
        tx.commit().map_err(query("commit migration"))?;
        tracing::info!(version = version + 1, "notification outbox schema migrated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::sample;

    fn outbox() -> (tempfile::TempDir, Outbox) {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("collector.db")).unwrap();
        (dir, outbox)
    }

    fn n(kind: Kind, occurrence: u64) -> Notification {
        let mut n = sample();
        n.kind = kind;
        n.occurrence = occurrence;
        n
    }

    #[test]
    fn enqueue_is_idempotent_per_channel_key_kind_and_occurrence() {
        let (_dir, mut o) = outbox();
        let cases = [
            (vec!["a", "b"], n(Kind::Trigger, 0), 2),
            (vec!["a", "b"], n(Kind::Trigger, 0), 0),
            (vec!["a", "c"], n(Kind::Trigger, 0), 1),
            (vec!["a"], n(Kind::Trigger, 5), 1),
            (vec!["a"], n(Kind::Progress, 5), 1),
        ];
        for (channels, notification, added) in cases {
            assert_eq!(o.enqueue(&channels, &notification, 10).unwrap(), added);
        }
        assert_eq!(o.deliveries("faultline-ticket-1").unwrap().len(), 5);
    }

    #[test]
    fn one_ticket_is_delivered_in_order_per_channel() {
        let (_dir, mut o) = outbox();
        o.enqueue(&["a", "b"], &n(Kind::Trigger, 0), 0).unwrap();
        o.enqueue(&["a"], &n(Kind::Resolve, 3), 0).unwrap();
        let mut other = n(Kind::Trigger, 0);
        other.dedup_key = "faultline-ticket-2".into();
        o.enqueue(&["a"], &other, 0).unwrap();

        let due = o.due(100, 10).unwrap();
        let keys: Vec<(&str, &str, Kind)> = due
            .iter()
            .map(|d| {
                (
                    d.channel.as_str(),
                    d.notification.dedup_key.as_str(),
                    d.notification.kind,
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("a", "faultline-ticket-1", Kind::Trigger),
                ("b", "faultline-ticket-1", Kind::Trigger),
                ("a", "faultline-ticket-2", Kind::Trigger),
            ],
            "the resolve waits for its trigger"
        );
        // The trigger fails and is retried later: the resolve still waits behind it.
        let trigger = &due[0];
        o.record_failure(trigger.id, "a", "k", 100, "HTTP 503", Some(500))
            .unwrap();
        let later: Vec<Kind> = o
            .due(200, 10)
            .unwrap()
            .iter()
            .map(|d| d.notification.kind)
            .collect();
        assert_eq!(later, [Kind::Trigger, Kind::Trigger]);
        assert_eq!(o.next_due_ms().unwrap(), Some(0));
        let due = o.due(500, 10).unwrap();
        let retried = due
            .iter()
            .find(|d| d.channel == "a" && d.attempts == 1)
            .unwrap();
        o.record_delivered(retried, 500, Some("OPS-1")).unwrap();
        let after: Vec<(String, Kind, Option<String>)> = o
            .due(500, 10)
            .unwrap()
            .into_iter()
            .filter(|d| d.notification.dedup_key == "faultline-ticket-1")
            .map(|d| (d.channel, d.notification.kind, d.remote_id))
            .collect();
        assert_eq!(
            after,
            [
                ("b".into(), Kind::Trigger, None),
                ("a".into(), Kind::Resolve, Some("OPS-1".into()))
            ]
        );
        let records = o.deliveries("faultline-ticket-1").unwrap();
        let first = &records[0];
        assert_eq!(
            (
                first.state,
                first.attempts,
                first.delivered_at_ms,
                first.last_error.as_deref()
            ),
            (DeliveryState::Delivered, 2, Some(500), None)
        );
        assert_eq!(
            o.remote_id("a", "faultline-ticket-1").unwrap().as_deref(),
            Some("OPS-1")
        );
        assert_eq!(o.remote_id("b", "faultline-ticket-1").unwrap(), None);
    }

    #[test]
    fn failed_for_good_unblocks_the_queue_and_counts_in_the_backlog() {
        let (_dir, mut o) = outbox();
        o.enqueue(&["a"], &n(Kind::Trigger, 0), 0).unwrap();
        o.enqueue(&["a"], &n(Kind::Resolve, 1), 0).unwrap();
        let due = o.due(0, 10).unwrap();
        o.record_failure(due[0].id, "a", "k", 0, "HTTP 400", None)
            .unwrap();
        let due = o.due(0, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].notification.kind, Kind::Resolve);
        assert_eq!(
            o.backlog().unwrap(),
            [(
                "a".to_string(),
                Backlog {
                    pending: 1,
                    failed: 1
                }
            )]
        );
        o.record_skipped(&due[0], 1, "no recipients").unwrap();
        assert!(o.due(10, 10).unwrap().is_empty());
        assert_eq!(o.next_due_ms().unwrap(), None);
    }

    #[test]
    fn reopening_keeps_everything_and_migrations_run_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        {
            let mut o = Outbox::open(&path).unwrap();
            o.enqueue(&["a"], &n(Kind::Trigger, 0), 0).unwrap();
        }
        // Another user of the same file sets user_version; the outbox does not care.
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 42; CREATE TABLE cursors (x INTEGER);")
            .unwrap();
        let mut o = Outbox::open(&path).unwrap();
        assert_eq!(o.schema_version().unwrap(), 2);
        assert_eq!(o.due(0, 10).unwrap().len(), 1);
        let rows: i64 = o
            .conn
            .query_row("SELECT COUNT(*) FROM notify_schema_version", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(rows, 2);
        let mode: String = o
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        o.conn
            .execute(
                "INSERT INTO notify_schema_version (version) VALUES (99)",
                [],
            )
            .unwrap();
        drop(o);
        let err = Outbox::open(&path).err().unwrap();
        assert!(
            matches!(
                err,
                OutboxError::TooNew {
                    found: 99,
                    known: 2
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn the_handled_position_is_recorded_with_the_notifications_and_never_moves_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickets.db");
        let mut o = Outbox::open(&path).unwrap();
        // A new outbox starts at the source's end: its history is not notified.
        assert_eq!(o.resume(40).unwrap(), 40);
        assert_eq!(o.resume(90).unwrap(), 40, "recorded once");
        let trigger = n(Kind::Trigger, 0);
        let resolve = n(Kind::Resolve, 1);
        let both: [(&[&str], &Notification); 2] = [(&["a", "b"], &trigger), (&["a"], &resolve)];
        assert_eq!(o.enqueue_through(&both, 41, 0).unwrap(), 3);
        // Entries without notifications still move the position.
        assert_eq!(o.enqueue_through(&[], 42, 0).unwrap(), 0);
        assert_eq!(o.enqueue_through(&both, 43, 0).unwrap(), 0, "idempotent");
        assert_eq!(o.enqueue_through(&[], 7, 0).unwrap(), 0);
        assert_eq!(o.resume(0).unwrap(), 43, "never back");
        // A failed transaction records neither the rows nor the position.
        o.conn
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON notify_outbox
                 BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
        let other = n(Kind::Trigger, 9);
        assert!(o.enqueue_through(&[(&["a"], &other)], 44, 0).is_err());
        drop(o);
        let mut o = Outbox::open(&path).unwrap();
        assert_eq!(o.resume(0).unwrap(), 43);
        assert_eq!(o.deliveries("faultline-ticket-1").unwrap().len(), 3);
    }

    #[test]
    fn unreadable_rows_fail_instead_of_blocking() {
        let (_dir, mut o) = outbox();
        o.enqueue(&["a"], &n(Kind::Trigger, 0), 0).unwrap();
        o.enqueue(&["a"], &n(Kind::Resolve, 1), 0).unwrap();
        o.conn
            .execute(
                "UPDATE notify_outbox SET notification = '{' WHERE kind = 'trigger'",
                [],
            )
            .unwrap();
        assert!(
            o.due(0, 10).unwrap().is_empty(),
            "first pass marks the bad row"
        );
        let due = o.due(0, 10).unwrap();
        assert_eq!(due.len(), 1);
        let records = o.deliveries("faultline-ticket-1").unwrap();
        assert_eq!(records[0].state, DeliveryState::Failed);
        assert!(
            records[0]
                .last_error
                .as_deref()
                .unwrap()
                .contains("unreadable")
        );
    }
}
