//! What the scheduled management report needs from the ticket store (store → **report**): a
//! read-only connection for the `report` command, and the last period each report schedule sent
//! (table `reports_sent`), so a report is mailed once per period across restarts.

use super::{MIGRATIONS, SqliteStore, StoreError};
use crate::Millis;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::Path;
use std::time::Duration;

impl SqliteStore {
    /// Opens an existing store file for reading only: no migration, nothing written, so it is safe
    /// next to a running collector. A file written by a newer Faultline is refused.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if found > supported {
            return Err(StoreError::NewerSchema { found, supported });
        }
        Ok(Self { conn })
    }
}

/// Which period each scheduled report last sent (table `reports_sent`).
pub trait ReportLedger {
    /// The period the report schedule `schedule` (`monthly`, `weekly`) last sent, if any.
    fn report_sent(&self, schedule: &str) -> Result<Option<String>, StoreError>;
    /// Records that `schedule` sent the report of `period` at `at_ms`.
    fn record_report_sent(
        &mut self,
        schedule: &str,
        period: &str,
        at_ms: Millis,
    ) -> Result<(), StoreError>;
}

impl ReportLedger for SqliteStore {
    fn report_sent(&self, schedule: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT period FROM reports_sent WHERE schedule = ?1",
                [schedule],
                |row| row.get(0),
            )
            .optional()?)
    }

    fn record_report_sent(
        &mut self,
        schedule: &str,
        period: &str,
        at_ms: Millis,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO reports_sent (schedule, period, sent_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (schedule) DO UPDATE SET period = ?2, sent_at_ms = ?3",
            params![schedule, period, at_ms],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::both_stores;
    use crate::store::test_db::Db;
    use crate::store::{ListWindow, TicketStore};

    both_stores!(last_sent_period_survives_reopening);

    fn last_sent_period_survives_reopening(db: &Db) {
        {
            let mut store = db.open();
            assert_eq!(store.report_sent("monthly").unwrap(), None);
            store.record_report_sent("monthly", "2026-10", 1).unwrap();
            store.record_report_sent("monthly", "2026-11", 2).unwrap();
            store.record_report_sent("weekly", "2026-W49", 3).unwrap();
        }
        let store = db.open();
        assert_eq!(
            store.report_sent("monthly").unwrap().as_deref(),
            Some("2026-11")
        );
        assert_eq!(
            store.report_sent("weekly").unwrap().as_deref(),
            Some("2026-W49")
        );
    }

    #[test]
    fn a_read_only_sqlite_store_reads_an_existing_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickets.db");
        SqliteStore::open(&path)
            .unwrap()
            .record_report_sent("monthly", "2026-11", 2)
            .unwrap();
        let store = SqliteStore::open_read_only(&path).unwrap();
        assert_eq!(
            store.report_sent("monthly").unwrap().as_deref(),
            Some("2026-11")
        );
        assert!(
            store
                .list(None, &ListWindow::default(), 10)
                .unwrap()
                .is_empty()
        );
        assert!(SqliteStore::open_read_only(&dir.path().join("missing.db")).is_err());
    }
}
