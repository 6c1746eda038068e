//! Durable tickets and timelines (rules → **incidents** → notifications): the [`Store`] traits
//! the collector's incident task writes through ([`TicketStore`] with [`RuleMemory`],
//! [`ReportLedger`] and [`CapacityHistory`]), and two implementations: the embedded SQLite one
//! ([`SqliteStore`]: one file, WAL, schema migrations versioned with `PRAGMA user_version`), the
//! default, and [`PgStore`] on a PostgreSQL server (its own migration list, versioned in a
//! `schema_version` table). Customer follow-ups live here too: when each department's first
//! target appeared, and the follow-up tasks, one row per key ([`crate::followup`]), moved from
//! pending to done but never deleted.
//!
//! The ticket body is kept as JSON next to the columns that are queried (fingerprint, state, tag,
//! severity, next timer deadline); the timeline is a separate append-only table, so nothing is ever
//! rewritten or deleted. A partial unique index allows one active monitoring ticket per
//! fingerprint, so a restarted collector can never duplicate one.
//!
//! The **feed** orders everything the collector announces downstream: every timeline entry and
//! every new follow-up task gets a [`FeedPosition`] in the same transaction that stores it, global
//! and increasing. A consumer that records the position it has handled (the notifier does, with
//! the notifications it persisted) resumes after a crash with [`TicketStore::feed_after`] and
//! loses nothing that was stored.

use crate::Millis;
use crate::followup::{FollowUpTask, TaskState};
use crate::inventory::tag_label;
use crate::ticket::{Channel, Ticket, TicketState, TimelineEntry};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use thiserror::Error;

/// A store failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The SQLite database failed.
    #[error("ticket store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL server refused a statement or the connection broke.
    #[error("ticket store: PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    /// The PostgreSQL server cannot be reached (down, wrong address, refused login).
    #[error("ticket store: PostgreSQL at {server} is unreachable: {source}")]
    Unreachable {
        /// `host:port` (or socket directory) of the server, never the password.
        server: String,
        /// Why.
        source: postgres::Error,
    },
    /// The PostgreSQL connection URL is not valid.
    #[error("ticket store: not a PostgreSQL connection URL: {0}")]
    Url(postgres::Error),
    /// The thread a PostgreSQL call runs on could not be started.
    #[error("ticket store: cannot start a PostgreSQL call: {0}")]
    Thread(std::io::Error),
    /// A stored body could not be (de)serialised.
    #[error("ticket store: ticket body: {0}")]
    Body(#[from] serde_json::Error),
    /// The database was written by a newer Faultline.
    #[error("ticket store: schema version {found} is newer than this build's {supported}")]
    NewerSchema {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// An active ticket already exists for the fingerprint.
    #[error("ticket store: {rule} on {target} already has active ticket #{id}")]
    DuplicateActive {
        /// Rule.
        rule: String,
        /// Target.
        target: String,
        /// The existing ticket.
        id: u64,
    },
    /// The ticket to update does not exist.
    #[error("ticket store: no ticket #{0}")]
    NotFound(u64),
    /// The follow-up task to complete does not exist or is not pending (or the change given is
    /// not its completion).
    #[error("ticket store: no pending follow-up {0}")]
    FollowUpNotPending(String),
    /// An update would drop timeline entries.
    #[error(
        "ticket store: ticket #{id} would lose timeline entries ({stored} stored, {given} given)"
    )]
    TimelineShrinks {
        /// Ticket id.
        id: u64,
        /// Entries stored.
        stored: usize,
        /// Entries in the update.
        given: usize,
    },
}

/// A place in the store's feed: increasing in the order entries and tasks were stored, never
/// reused (gaps are allowed, so a store with a shared sequence qualifies). 0 is before the first.
pub type FeedPosition = u64;

/// What the feed holds at one position.
#[derive(Debug, Clone, PartialEq)]
pub enum Fed {
    /// Timeline entry `index` of ticket `ticket`.
    Entry {
        /// Ticket id.
        ticket: u64,
        /// Position in the ticket's timeline.
        index: usize,
    },
    /// A follow-up task as it is stored now.
    FollowUp(FollowUpTask),
}

/// One item of the feed ([`TicketStore::feed_after`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    /// Where it is in the feed.
    pub position: FeedPosition,
    /// What it is.
    pub fed: Fed,
}

/// Where tickets live. Implementations make each call atomic.
pub trait TicketStore {
    /// The schema version of the open database (the number of its migrations applied).
    fn schema_version(&self) -> Result<i64, StoreError>;
    /// Stores a new ticket (its `id` is ignored) with its timeline and, when it was opened by a
    /// mail, that mail's Message-ID and attachments in the same transaction (so a mail is never
    /// turned into two tickets); returns it with its new id and the feed positions of its
    /// timeline entries, in order.
    fn create_with(
        &mut self,
        ticket: Ticket,
        mail: Option<&MailRecord<'_>>,
    ) -> Result<(Ticket, Vec<FeedPosition>), StoreError>;
    /// Saves a changed ticket, appending the timeline entries not stored yet, and the mail the
    /// change records, if any, in the same transaction; returns the feed positions of the
    /// appended entries, in order (the last `n` of `ticket.timeline`).
    fn update_with(
        &mut self,
        ticket: &Ticket,
        mail: Option<&MailRecord<'_>>,
    ) -> Result<Vec<FeedPosition>, StoreError>;
    /// [`create_with`](Self::create_with) without a mail.
    fn create(&mut self, ticket: Ticket) -> Result<(Ticket, Vec<FeedPosition>), StoreError> {
        self.create_with(ticket, None)
    }
    /// [`update_with`](Self::update_with) without a mail.
    fn update(&mut self, ticket: &Ticket) -> Result<Vec<FeedPosition>, StoreError> {
        self.update_with(ticket, None)
    }
    /// The ticket a mail (by Message-ID) was turned into or recorded on.
    fn mail_ticket(&self, message_id: &str) -> Result<Option<u64>, StoreError>;
    /// Attachment `number` of ticket `ticket`.
    fn attachment(&self, ticket: u64, number: u32) -> Result<Option<Attachment>, StoreError>;
    /// How many attachments ticket `ticket` keeps (the next one is numbered one more).
    fn attachment_count(&self, ticket: u64) -> Result<u32, StoreError>;
    /// One ticket with its timeline.
    fn get(&self, id: u64) -> Result<Option<Ticket>, StoreError>;
    /// The newest ticket of a fingerprint (to re-open, or to know it is active).
    fn latest(&self, rule: &str, target: &str) -> Result<Option<Ticket>, StoreError>;
    /// Tickets that are not closed (active and resolved), oldest first: what timers and
    /// attribution need after a restart.
    fn unclosed(&self) -> Result<Vec<Ticket>, StoreError>;
    /// Tickets in `state` (every state when `None`), newest first, at most `limit`: what the
    /// ticket API lists, closed tickets included.
    fn list(
        &self,
        state: Option<TicketState>,
        window: &ListWindow,
        limit: usize,
    ) -> Result<Vec<Ticket>, StoreError>;
    /// Records that a target of `department` appeared at `at_ms`, unless one appeared before;
    /// returns the first time recorded (new-customer follow-ups count from it).
    fn record_first_seen(&mut self, department: &str, at_ms: Millis) -> Result<Millis, StoreError>;
    /// When each department's first target appeared.
    fn first_seen(&self) -> Result<BTreeMap<String, Millis>, StoreError>;
    /// Stores a new follow-up task and returns its feed position; `None` (and nothing changes)
    /// when a task with its key exists, so a restart or a repeated plan never duplicates one.
    fn create_followup(&mut self, task: &FollowUpTask) -> Result<Option<FeedPosition>, StoreError>;
    /// Saves a pending task as done ([`FollowUpTask::complete`]); a done task is never changed.
    fn complete_followup(&mut self, task: &FollowUpTask) -> Result<(), StoreError>;
    /// One follow-up task by key.
    fn followup(&self, key: &str) -> Result<Option<FollowUpTask>, StoreError>;
    /// Follow-up tasks in `state` (every state when `None`), oldest due first, at most `limit`.
    fn followups(
        &self,
        state: Option<TaskState>,
        limit: usize,
    ) -> Result<Vec<FollowUpTask>, StoreError>;
    /// The feed after position `after`, oldest first, at most `limit` items: what a consumer
    /// that handled everything up to `after` has not seen yet (read in bounded batches).
    fn feed_after(&self, after: FeedPosition, limit: usize) -> Result<Vec<FeedItem>, StoreError>;
    /// The position of the newest feed item (0 when the feed is empty).
    fn feed_end(&self) -> Result<FeedPosition, StoreError>;
}

/// Everything the collector keeps in its ticket database, behind one object: tickets, feed and
/// follow-ups, the rules' memory, the reports sent and the capacity history.
pub trait Store: TicketStore + RuleMemory + ReportLedger + CapacityHistory + Send {}

impl<T: TicketStore + RuleMemory + ReportLedger + CapacityHistory + Send> Store for T {}

/// Which stretch of the ticket history a list reads: tickets older than a cursor (paging
/// backwards from the newest), opened within a time range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListWindow {
    /// Only tickets with a smaller id (the `next` cursor of the previous page).
    pub before: Option<u64>,
    /// Only tickets opened at or after this time.
    pub since_ms: Option<Millis>,
    /// Only tickets opened before this time.
    pub until_ms: Option<Millis>,
}

/// Schema migrations; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tickets (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    rule          TEXT    NOT NULL,
    target        TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    tag           TEXT    NOT NULL,
    severity      TEXT    NOT NULL,
    opened_at_ms  INTEGER NOT NULL,
    next_due_ms   INTEGER,
    body          TEXT    NOT NULL
);
CREATE UNIQUE INDEX tickets_one_active ON tickets (rule, target)
    WHERE state IN ('open', 'acknowledged');
CREATE INDEX tickets_fingerprint ON tickets (rule, target, id);
CREATE INDEX tickets_state ON tickets (state);
CREATE INDEX tickets_next_due ON tickets (next_due_ms) WHERE next_due_ms IS NOT NULL;
CREATE TABLE timeline (
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    seq       INTEGER NOT NULL,
    at_ms     INTEGER NOT NULL,
    who       TEXT    NOT NULL,
    change    TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, seq)
) WITHOUT ROWID;
"#,
    r#"
CREATE TABLE departments_seen (
    department    TEXT    PRIMARY KEY,
    first_seen_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE followups (
    key        TEXT    PRIMARY KEY,
    department TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    due_at_ms  INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    body       TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX followups_state ON followups (state, due_at_ms);
"#,
    // The feed; what was stored before it is fed in time order (no consumer replays it: one
    // without a recorded position starts at the end).
    r#"
CREATE TABLE feed (
    position  INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER,
    seq       INTEGER,
    followup  TEXT REFERENCES followups (key),
    FOREIGN KEY (ticket_id, seq) REFERENCES timeline (ticket_id, seq),
    CHECK ((ticket_id IS NULL) = (seq IS NULL) AND (ticket_id IS NULL) <> (followup IS NULL))
);
INSERT INTO feed (ticket_id, seq, followup)
    SELECT ticket_id, seq, followup FROM (
        SELECT ticket_id, seq, NULL AS followup, at_ms AS at FROM timeline
        UNION ALL
        SELECT NULL, NULL, key, due_at_ms FROM followups)
    ORDER BY at, ticket_id, seq, followup;
"#,
    // What the rule evaluator must remember across a restart ([`memory`]).
    r#"
CREATE TABLE rule_memory (
    rule   TEXT NOT NULL,
    series TEXT NOT NULL,
    body   TEXT NOT NULL,
    PRIMARY KEY (rule, series)
) WITHOUT ROWID;
"#,
    // The period each scheduled management report last sent ([`reports`]).
    r#"
CREATE TABLE reports_sent (
    schedule   TEXT    PRIMARY KEY,
    period     TEXT    NOT NULL,
    sent_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    // The capacity watch's hourly pool history ([`capacity`]), a year of it.
    r#"
CREATE TABLE capacity_hourly (
    pool    TEXT    NOT NULL,
    hour_ms INTEGER NOT NULL,
    min     REAL    NOT NULL,
    mean    REAL    NOT NULL,
    max     REAL    NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (pool, hour_ms)
) WITHOUT ROWID;
CREATE INDEX capacity_hourly_age ON capacity_hourly (hour_ms);
"#,
    // The repair mailbox ([`mail`]): one active ticket per fingerprint holds for monitoring
    // tickets only (a department may mail or phone about several faults at once); the mails
    // turned into tickets or timeline entries, by Message-ID, and their kept attachments.
    r#"
ALTER TABLE tickets ADD COLUMN channel TEXT NOT NULL DEFAULT 'monitoring';
UPDATE tickets SET channel = json_extract(body, '$.channel')
    WHERE json_extract(body, '$.channel') IS NOT NULL;
DROP INDEX tickets_one_active;
CREATE UNIQUE INDEX tickets_one_active ON tickets (rule, target)
    WHERE state IN ('open', 'acknowledged') AND channel = 'monitoring';
CREATE TABLE mail_seen (
    message_id TEXT    PRIMARY KEY,
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    at_ms      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE attachments (
    ticket_id    INTEGER NOT NULL REFERENCES tickets (id),
    number       INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    bytes        BLOB    NOT NULL,
    PRIMARY KEY (ticket_id, number)
) WITHOUT ROWID;
"#,
];

/// The embedded SQLite ticket store.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
}

fn to_sql_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn from_sql_id(id: i64) -> u64 {
    u64::try_from(id).unwrap_or(0)
}

/// The position of the feed row just inserted through `conn`.
fn inserted_position(conn: &Connection) -> FeedPosition {
    from_sql_id(conn.last_insert_rowid())
}

fn enum_text<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    Ok(serde_json::to_value(value)?
        .as_str()
        .unwrap_or_default()
        .to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrate(&mut conn)?;
        Ok(Self { conn })
    }

    /// A write transaction that takes the write lock at once: the notification outbox writes
    /// the same file from another connection, and a deferred transaction that read first could
    /// not wait for its lock (SQLite refuses to upgrade a stale read at once, busy timeout or not).
    fn write(&mut self) -> Result<Transaction<'_>, StoreError> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    fn load(&self, id: i64, body: &str) -> Result<Ticket, StoreError> {
        let mut value: serde_json::Value = serde_json::from_str(body)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("id".into(), from_sql_id(id).into());
            map.insert("timeline".into(), serde_json::Value::Array(Vec::new()));
        }
        let mut ticket: Ticket = serde_json::from_value(value)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT at_ms, who, change FROM timeline WHERE ticket_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([id], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (at_ms, who, change) = row?;
            ticket.timeline.push(TimelineEntry {
                at_ms,
                who,
                change: serde_json::from_str(&change)?,
            });
        }
        Ok(ticket)
    }

    fn query_tickets(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<Ticket>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(params, |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.iter().map(|(id, body)| self.load(*id, body)).collect()
    }

    fn query_followups(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<FollowUpTask>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let bodies = stmt
            .query_map(params, |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(bodies
            .iter()
            .map(|body| serde_json::from_str(body))
            .collect::<Result<_, _>>()?)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > supported {
        return Err(StoreError::NewerSchema { found, supported });
    }
    for (version, sql) in (1..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

/// The ticket body as stored: everything but the id and the timeline.
fn body(ticket: &Ticket) -> Result<String, StoreError> {
    let mut value = serde_json::to_value(ticket)?;
    if let Some(map) = value.as_object_mut() {
        map.remove("timeline");
        map.remove("id");
    }
    Ok(serde_json::to_string(&value)?)
}

/// Appends `entries` as timeline entries `from..` of ticket `id`, each fed; returns their feed
/// positions.
fn append_timeline(
    tx: &Transaction<'_>,
    id: i64,
    from: usize,
    entries: &[TimelineEntry],
) -> Result<Vec<FeedPosition>, StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO timeline (ticket_id, seq, at_ms, who, change) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut feed = tx.prepare_cached("INSERT INTO feed (ticket_id, seq) VALUES (?1, ?2)")?;
    let mut positions = Vec::with_capacity(entries.len());
    for (seq, entry) in (from..).zip(entries) {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        insert.execute(params![
            id,
            seq,
            entry.at_ms,
            entry.who,
            serde_json::to_string(&entry.change)?
        ])?;
        feed.execute(params![id, seq])?;
        positions.push(inserted_position(tx));
    }
    Ok(positions)
}

impl TicketStore for SqliteStore {
    fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?)
    }

    fn create_with(
        &mut self,
        mut ticket: Ticket,
        mail: Option<&MailRecord<'_>>,
    ) -> Result<(Ticket, Vec<FeedPosition>), StoreError> {
        if ticket.state.is_active()
            && ticket.channel == Channel::Monitoring
            && let Some(existing) = self.latest(&ticket.rule, &ticket.target)?
            && existing.state.is_active()
        {
            return Err(StoreError::DuplicateActive {
                rule: ticket.rule,
                target: ticket.target,
                id: existing.id,
            });
        }
        let tx = self.write()?;
        tx.execute(
            "INSERT INTO tickets (rule, target, state, tag, severity, opened_at_ms, next_due_ms, body, channel)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                ticket.rule,
                ticket.target,
                ticket.state.as_str(),
                tag_label(ticket.tag),
                enum_text(&ticket.severity)?,
                ticket.opened_at_ms,
                ticket.next_due_ms(),
                body(&ticket)?,
                ticket.channel.as_str(),
            ],
        )?;
        let id = tx.last_insert_rowid();
        let positions = append_timeline(&tx, id, 0, &ticket.timeline)?;
        if let Some(mail) = mail {
            mail::record(&tx, id, mail)?;
        }
        tx.commit()?;
        ticket.id = from_sql_id(id);
        Ok((ticket, positions))
    }

    fn update_with(
        &mut self,
        ticket: &Ticket,
        mail: Option<&MailRecord<'_>>,
    ) -> Result<Vec<FeedPosition>, StoreError> {
        let id = to_sql_id(ticket.id);
        let tx = self.write()?;
        let stored: Option<i64> = tx
            .query_row("SELECT COUNT(t.seq) FROM tickets k LEFT JOIN timeline t ON t.ticket_id = k.id WHERE k.id = ?1 GROUP BY k.id", [id], |row| row.get(0))
            .optional()?;
        let stored = usize::try_from(stored.ok_or(StoreError::NotFound(ticket.id))?).unwrap_or(0);
        if stored > ticket.timeline.len() {
            return Err(StoreError::TimelineShrinks {
                id: ticket.id,
                stored,
                given: ticket.timeline.len(),
            });
        }
        tx.execute(
            "UPDATE tickets SET state = ?2, tag = ?3, severity = ?4, next_due_ms = ?5, body = ?6 WHERE id = ?1",
            params![
                id,
                ticket.state.as_str(),
                tag_label(ticket.tag),
                enum_text(&ticket.severity)?,
                ticket.next_due_ms(),
                body(ticket)?,
            ],
        )?;
        let positions = append_timeline(&tx, id, stored, &ticket.timeline[stored..])?;
        if let Some(mail) = mail {
            mail::record(&tx, id, mail)?;
        }
        tx.commit()?;
        Ok(positions)
    }

    fn mail_ticket(&self, message_id: &str) -> Result<Option<u64>, StoreError> {
        self.mail_ticket_of(message_id)
    }

    fn attachment(&self, ticket: u64, number: u32) -> Result<Option<Attachment>, StoreError> {
        self.attachment_of(ticket, number)
    }

    fn attachment_count(&self, ticket: u64) -> Result<u32, StoreError> {
        self.attachments_of(ticket)
    }

    fn get(&self, id: u64) -> Result<Option<Ticket>, StoreError> {
        Ok(self
            .query_tickets(
                "SELECT id, body FROM tickets WHERE id = ?1",
                [to_sql_id(id)],
            )?
            .pop())
    }

    fn latest(&self, rule: &str, target: &str) -> Result<Option<Ticket>, StoreError> {
        Ok(self
            .query_tickets(
                "SELECT id, body FROM tickets WHERE rule = ?1 AND target = ?2 ORDER BY id DESC LIMIT 1",
                [rule, target],
            )?
            .pop())
    }

    fn unclosed(&self) -> Result<Vec<Ticket>, StoreError> {
        self.query_tickets(
            "SELECT id, body FROM tickets WHERE state != ?1 ORDER BY id",
            [TicketState::Closed.as_str()],
        )
    }

    fn list(
        &self,
        state: Option<TicketState>,
        window: &ListWindow,
        limit: usize,
    ) -> Result<Vec<Ticket>, StoreError> {
        self.query_tickets(
            "SELECT id, body FROM tickets
             WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR id < ?2)
               AND (?3 IS NULL OR opened_at_ms >= ?3) AND (?4 IS NULL OR opened_at_ms < ?4)
             ORDER BY id DESC LIMIT ?5",
            params![
                state.map(TicketState::as_str),
                window.before.map(to_sql_id),
                window.since_ms,
                window.until_ms,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
        )
    }

    fn record_first_seen(&mut self, department: &str, at_ms: Millis) -> Result<Millis, StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO departments_seen (department, first_seen_ms) VALUES (?1, ?2)",
            params![department, at_ms],
        )?;
        Ok(self.conn.query_row(
            "SELECT first_seen_ms FROM departments_seen WHERE department = ?1",
            [department],
            |row| row.get(0),
        )?)
    }

    fn first_seen(&self) -> Result<BTreeMap<String, Millis>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT department, first_seen_ms FROM departments_seen")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn create_followup(&mut self, task: &FollowUpTask) -> Result<Option<FeedPosition>, StoreError> {
        let tx = self.write()?;
        let added = tx.execute(
            "INSERT OR IGNORE INTO followups (key, department, kind, due_at_ms, state, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                task.key,
                task.followup.department,
                task.followup.kind.label(),
                task.followup.due_at_ms,
                task.state.as_str(),
                serde_json::to_string(task)?,
            ],
        )?;
        if added == 0 {
            return Ok(None);
        }
        tx.execute("INSERT INTO feed (followup) VALUES (?1)", [&task.key])?;
        let position = inserted_position(&tx);
        tx.commit()?;
        Ok(Some(position))
    }

    fn complete_followup(&mut self, task: &FollowUpTask) -> Result<(), StoreError> {
        if task.state != TaskState::Done {
            return Err(StoreError::FollowUpNotPending(task.key.clone()));
        }
        let changed = self.conn.execute(
            "UPDATE followups SET state = ?2, body = ?3 WHERE key = ?1 AND state = ?4",
            params![
                task.key,
                task.state.as_str(),
                serde_json::to_string(task)?,
                TaskState::Pending.as_str(),
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::FollowUpNotPending(task.key.clone()));
        }
        Ok(())
    }

    fn followup(&self, key: &str) -> Result<Option<FollowUpTask>, StoreError> {
        Ok(self
            .query_followups("SELECT body FROM followups WHERE key = ?1", [key])?
            .pop())
    }

    fn followups(
        &self,
        state: Option<TaskState>,
        limit: usize,
    ) -> Result<Vec<FollowUpTask>, StoreError> {
        self.query_followups(
            "SELECT body FROM followups WHERE ?1 IS NULL OR state = ?1
             ORDER BY due_at_ms, key LIMIT ?2",
            params![
                state.map(TaskState::as_str),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
        )
    }

    fn feed_after(&self, after: FeedPosition, limit: usize) -> Result<Vec<FeedItem>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT f.position, f.ticket_id, f.seq, u.body
             FROM feed f LEFT JOIN followups u ON u.key = f.followup
             WHERE f.position > ?1 ORDER BY f.position LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(
                params![to_sql_id(after), i64::try_from(limit).unwrap_or(i64::MAX)],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Option<i64>>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                        row.get::<_, Option<String>>(3)?,
                    ))
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        let mut items = Vec::with_capacity(rows.len());
        for (position, ticket, seq, followup) in rows {
            let fed = match (ticket, seq, followup) {
                (Some(ticket), Some(seq), _) => Fed::Entry {
                    ticket: from_sql_id(ticket),
                    index: usize::try_from(seq).unwrap_or(usize::MAX),
                },
                (_, _, Some(body)) => Fed::FollowUp(serde_json::from_str(&body)?),
                // The schema's CHECK and foreign keys rule this out.
                _ => continue,
            };
            items.push(FeedItem {
                position: from_sql_id(position),
                fed,
            });
        }
        Ok(items)
    }

    fn feed_end(&self) -> Result<FeedPosition, StoreError> {
        let end: i64 =
            self.conn
                .query_row("SELECT COALESCE(MAX(position), 0) FROM feed", [], |row| {
                    row.get(0)
                })?;
        Ok(from_sql_id(end))
    }
}

mod capacity;
mod mail;
mod memory;
mod pg;
#[cfg(any(test, feature = "pg-test-server"))]
pub mod pg_server;
mod reports;
#[cfg(any(test, feature = "pg-test-server"))]
pub mod test_db;

pub use capacity::CapacityHistory;
pub use mail::{Attachment, MailRecord};
pub use memory::RuleMemory;
pub use pg::PgStore;
pub use reports::ReportLedger;

#[cfg(test)]
mod tests;
