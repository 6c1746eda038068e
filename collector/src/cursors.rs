//! Durable per-agent cursors: the last (epoch, sequence) applied for each agent, in SQLite.
//!
//! Part of the ingest stage: a batch is acknowledged only after its cursor is committed here, and a
//! batch at or below the cursor is acknowledged without being applied again — also after a
//! collector restart. Commits from concurrent pushes are grouped into one transaction (group
//! commit) on a dedicated thread, so durability costs one fsync per group, not per batch.

use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

/// Versioned schema migrations; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &["CREATE TABLE agent_cursor (
        agent TEXT PRIMARY KEY,
        epoch INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );"];

/// Commits waiting for the writer thread before pushes see back-pressure.
const QUEUE_DEPTH: usize = 1024;

/// A storage failure; ingest answers 503 so the agent retries.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("state database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The error.
        source: rusqlite::Error,
    },
    /// A file or thread could not be created.
    #[error("state database {path}: {source}")]
    Io {
        /// The database file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A group commit failed; every push in the group gets this.
    #[error("state database {path}: commit failed: {message}")]
    Write {
        /// The database file.
        path: PathBuf,
        /// SQLite's message.
        message: String,
    },
    /// The database was written by a newer Faultline; opening it could lose what that wrote.
    #[error(
        "state database {path}: schema version {found} is newer than this build's {supported}; run the newer collector or restore a backup"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// The writer thread is gone (collector shutting down).
    #[error("state database writer stopped")]
    Stopped,
}

/// Position of one agent's stream: everything at or below `seq` in `epoch` has been applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The agent outbox's incarnation.
    pub epoch: u64,
    /// Last applied sequence number.
    pub seq: u64,
}

struct Commit {
    agent: String,
    cursor: Cursor,
    now_ms: i64,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Handle to the cursor table; cheap to clone.
#[derive(Clone)]
pub struct CursorStore {
    queue: mpsc::Sender<Commit>,
}

fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens the database (running pending migrations), returns the stored cursors and starts the
/// writer thread.
pub fn open(path: &Path) -> Result<(CursorStore, HashMap<String, Cursor>), StoreError> {
    let err = sqlite_error(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let mut conn = Connection::open(path).map_err(&err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(&err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(&err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(&err)?;
    migrate(&mut conn, path)?;

    let mut cursors = HashMap::new();
    {
        let mut stmt = conn
            .prepare("SELECT agent, epoch, seq FROM agent_cursor")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    Cursor {
                        epoch: row.get::<_, i64>(1)? as u64,
                        seq: row.get::<_, i64>(2)? as u64,
                    },
                ))
            })
            .map_err(&err)?;
        for row in rows {
            let (agent, cursor) = row.map_err(&err)?;
            cursors.insert(agent, cursor);
        }
    }

    let (queue, mut inbox) = mpsc::channel::<Commit>(QUEUE_DEPTH);
    let thread_path = path.to_path_buf();
    std::thread::Builder::new()
        .name("cursor-writer".into())
        .spawn(move || {
            while let Some(first) = inbox.blocking_recv() {
                let mut group = vec![first];
                while let Ok(more) = inbox.try_recv() {
                    group.push(more);
                }
                let result = write_group(&mut conn, &group);
                for commit in group {
                    let reply = match &result {
                        Ok(()) => Ok(()),
                        Err(e) => Err(StoreError::Write {
                            path: thread_path.clone(),
                            message: e.to_string(),
                        }),
                    };
                    let _ = commit.done.send(reply);
                }
            }
        })
        .map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok((CursorStore { queue }, cursors))
}

/// Runs pending migrations; refuses a database from a newer schema (like the ticket store).
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let err = sqlite_error(path);
    let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(&err)?;
    if found > supported {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported,
        });
    }
    let done = usize::try_from(found).unwrap_or(0);
    for (i, sql) in (1i64..).zip(MIGRATIONS.iter()).skip(done) {
        let tx = conn.transaction().map_err(&err)?;
        tx.execute_batch(sql).map_err(&err)?;
        tx.pragma_update(None, "user_version", i).map_err(&err)?;
        tx.commit().map_err(&err)?;
    }
    Ok(())
}

fn write_group(conn: &mut Connection, group: &[Commit]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO agent_cursor (agent, epoch, seq, updated_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(agent) DO UPDATE SET epoch = ?2, seq = ?3, updated_ms = ?4",
        )?;
        for c in group {
            stmt.execute(params![
                c.agent,
                c.cursor.epoch as i64,
                c.cursor.seq as i64,
                c.now_ms
            ])?;
        }
    }
    tx.commit()
}

impl CursorStore {
    /// Durably records that `agent` has applied everything up to `cursor`.
    pub async fn commit(&self, agent: &str, cursor: Cursor, now_ms: i64) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Commit {
                agent: agent.to_string(),
                cursor,
                now_ms,
                done,
            })
            .await
            .map_err(|_| StoreError::Stopped)?;
        wait.await.map_err(|_| StoreError::Stopped)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cursors_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let (store, cursors) = open(&path).unwrap();
            assert!(cursors.is_empty());
            let mut joins = Vec::new();
            for i in 0..50u64 {
                let store = store.clone();
                joins.push(tokio::spawn(async move {
                    store
                        .commit(&format!("a{}", i % 5), Cursor { epoch: 9, seq: i }, 1)
                        .await
                }));
            }
            for j in joins {
                j.await.unwrap().unwrap();
            }
            store
                .commit("a0", Cursor { epoch: 9, seq: 100 }, 2)
                .await
                .unwrap();
        }
        let (_store, cursors) = open(&path).unwrap();
        assert_eq!(cursors.len(), 5);
        assert_eq!(cursors["a0"], Cursor { epoch: 9, seq: 100 });
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 9)
            .unwrap();
        let err = open(&path).err().unwrap();
        assert!(
            matches!(
                err,
                StoreError::NewerSchema {
                    found: 9,
                    supported: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("state.db"), "{err}");
    }
}
