//! The PostgreSQL ticket store (rules → **incidents** → notifications): [`PgStore`] implements
//! the same [`Store`](super::Store) traits as the embedded SQLite store, on a PostgreSQL server
//! the operator already runs (`[store] kind = "postgres"`).
//!
//! Schema: its own migration list ([`schema::MIGRATIONS`]), versioned in a `schema_version`
//! table and applied under an advisory lock, each in its own transaction, so two collectors
//! starting together migrate once. A database written by a newer Faultline is refused.
//!
//! Connection: one session, opened at [`PgStore::connect`] and opened again at the next call after
//! it broke (the server restarted or went away): while the server is down each call fails with
//! [`StoreError::Unreachable`] and the caller's retry paths apply; nothing is queued here.
//!
//! Threads: the `postgres` client blocks on a runtime of its own, which tokio refuses to start
//! inside another runtime ("cannot start a runtime from within a runtime") — and the incident
//! stage's thread runs one. So every call runs on a short scoped thread of its own, with the
//! session borrowed for its duration: callable from anywhere, the caller blocked as with SQLite.
//!
//! Feed order: positions come from an identity sequence, drawn when a row is inserted, not when
//! it commits; two transactions writing the feed at once could commit out of position order, and
//! a consumer that read the later position first would skip the earlier one. Every feed write
//! therefore takes one transaction-scoped advisory lock ([`FEED_LOCK`]) first: feed writers are
//! serialised until commit, so positions are visible in increasing order (gaps, from rolled-back
//! transactions, are allowed). This also holds when several collectors share the database.

pub(super) mod schema;
mod tickets;

use super::{CapacityHistory, ReportLedger, RuleMemory, StoreError};
use crate::Millis;
use crate::capacity::HourBucket;
use crate::eval::{MemoryChange, SeriesMemory};
use postgres::config::Host;
use postgres::{Client, Config, NoTls};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The advisory lock key every feed write holds until its transaction ends (`"faultfd"`).
const FEED_LOCK: i64 = 0x0066_6175_6c74_6664;
/// The advisory lock key migrations hold (`"faultmg"`).
const MIGRATION_LOCK: i64 = 0x0066_6175_6c74_6d67;
/// How long connecting may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL ticket store.
pub struct PgStore {
    /// `host:port`, for messages.
    server: String,
    link: Mutex<Link>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// The session and how to open it again.
struct Link {
    config: Config,
    /// `host:port` for messages (never the password).
    server: String,
    client: Option<Client>,
}

impl Link {
    /// The open session, opened again when it broke.
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        let client = match self.client.take() {
            Some(client) if !client.is_closed() => client,
            _ => self
                .config
                .connect(NoTls)
                .map_err(|source| StoreError::Unreachable {
                    server: self.server.clone(),
                    source,
                })?,
        };
        Ok(self.client.insert(client))
    }
}

/// `host:port` of the first server a config names (a Unix socket by its directory).
fn server_of(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(dir)) => dir.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

impl PgStore {
    /// Connects to the server at `url` (`postgres://user[:password]@host:port/database`, or the
    /// `key=value` form) and brings the schema up to date.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let store = Self::open(url)?;
        store.run(schema::migrate)?;
        Ok(store)
    }

    /// Connects without migrating, for reading next to a running collector; a schema newer than
    /// this build knows is refused.
    pub fn connect_read_only(url: &str) -> Result<Self, StoreError> {
        let store = Self::open(url)?;
        store.run(|client| schema::check(client).map(|_| ()))?;
        Ok(store)
    }

    /// `host:port` of the server `url` names, for messages (never the password).
    pub fn server_of(url: &str) -> Result<String, StoreError> {
        Ok(server_of(&url.parse().map_err(StoreError::Url)?))
    }

    fn open(url: &str) -> Result<Self, StoreError> {
        let mut config: Config = url.parse().map_err(StoreError::Url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("faultline");
        let server = server_of(&config);
        Ok(Self {
            server: server.clone(),
            link: Mutex::new(Link {
                config,
                server,
                client: None,
            }),
        })
    }

    /// Runs `f` on the session, on a thread of its own (see the module header).
    fn run<R: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, StoreError> + Send,
    ) -> Result<R, StoreError> {
        let mut guard = self.link.lock().unwrap_or_else(PoisonError::into_inner);
        let link: &mut Link = &mut guard;
        std::thread::scope(|scope| {
            let call = std::thread::Builder::new()
                .name("postgres".into())
                .spawn_scoped(scope, move || f(link.client()?))
                .map_err(StoreError::Thread)?;
            call.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

fn to_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl RuleMemory for PgStore {
    fn rule_memory(&self) -> Result<Vec<SeriesMemory>, StoreError> {
        self.run(|client| {
            client
                .query("SELECT body FROM rule_memory", &[])?
                .iter()
                .map(|row| Ok(serde_json::from_str(row.try_get(0)?)?))
                .collect()
        })
    }

    fn save_rule_memory(&mut self, changes: &[MemoryChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.run(|client| {
            let mut tx = client.transaction()?;
            let keep = tx.prepare(
                "INSERT INTO rule_memory (rule, series, body) VALUES ($1, $2, $3)
                 ON CONFLICT (rule, series) DO UPDATE SET body = excluded.body",
            )?;
            let forget = tx.prepare("DELETE FROM rule_memory WHERE rule = $1 AND series = $2")?;
            for change in changes {
                match change {
                    MemoryChange::Keep(memory) => {
                        let body = serde_json::to_string(memory)?;
                        tx.execute(&keep, &[&memory.rule, &memory.series, &body])?;
                    }
                    MemoryChange::Forget { rule, series } => {
                        tx.execute(&forget, &[rule, series])?;
                    }
                }
            }
            Ok(tx.commit()?)
        })
    }
}

impl ReportLedger for PgStore {
    fn report_sent(&self, schedule: &str) -> Result<Option<String>, StoreError> {
        self.run(|client| {
            let row = client.query_opt(
                "SELECT period FROM reports_sent WHERE schedule = $1",
                &[&schedule],
            )?;
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        })
    }

    fn record_report_sent(
        &mut self,
        schedule: &str,
        period: &str,
        at_ms: Millis,
    ) -> Result<(), StoreError> {
        self.run(|client| {
            client.execute(
                "INSERT INTO reports_sent (schedule, period, sent_at_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (schedule) DO UPDATE SET period = $2, sent_at_ms = $3",
                &[&schedule, &period, &at_ms],
            )?;
            Ok(())
        })
    }
}

impl CapacityHistory for PgStore {
    fn capacity_history(
        &self,
        since: Millis,
    ) -> Result<BTreeMap<String, Vec<HourBucket>>, StoreError> {
        self.run(|client| {
            let rows = client.query(
                "SELECT pool, hour_ms, min, mean, max, count FROM capacity_hourly
                 WHERE hour_ms >= $1 ORDER BY pool, hour_ms",
                &[&since],
            )?;
            let mut out: BTreeMap<String, Vec<HourBucket>> = BTreeMap::new();
            for row in rows {
                out.entry(row.try_get(0)?).or_default().push(HourBucket {
                    hour_ms: row.try_get(1)?,
                    min: row.try_get(2)?,
                    mean: row.try_get(3)?,
                    max: row.try_get(4)?,
                    count: u64::try_from(row.try_get::<_, i64>(5)?).unwrap_or(0),
                });
            }
            Ok(out)
        })
    }

    fn save_capacity_hours(
        &mut self,
        hours: &[(&str, HourBucket)],
        cutoff: Millis,
    ) -> Result<(), StoreError> {
        if hours.is_empty() {
            return Ok(());
        }
        self.run(|client| {
            let mut tx = client.transaction()?;
            let put = tx.prepare(
                "INSERT INTO capacity_hourly (pool, hour_ms, min, mean, max, count)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (pool, hour_ms) DO UPDATE SET min = excluded.min,
                   mean = excluded.mean, max = excluded.max, count = excluded.count",
            )?;
            for (pool, b) in hours {
                let count = to_count(b.count);
                tx.execute(&put, &[pool, &b.hour_ms, &b.min, &b.mean, &b.max, &count])?;
            }
            tx.execute("DELETE FROM capacity_hourly WHERE hour_ms < $1", &[&cutoff])?;
            Ok(tx.commit()?)
        })
    }
}
