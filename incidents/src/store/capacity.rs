//! The capacity history table of the ticket store (capacity watch → **store**): each pool's
//! finished hourly buckets ([`crate::capacity::history`]), written as hours finish and read once
//! at start, so forecasts survive a restart. Hours older than a year are deleted as new ones are
//! written (one indexed range delete per write), so the table stays bounded.

use super::{SqliteStore, StoreError};
use crate::Millis;
use crate::capacity::HourBucket;
use std::collections::BTreeMap;

/// Where the capacity watch keeps its hourly pool history (table `capacity_hourly`).
pub trait CapacityHistory {
    /// Every stored hourly bucket from `since` on, by pool, oldest first.
    fn capacity_history(
        &self,
        since: Millis,
    ) -> Result<BTreeMap<String, Vec<HourBucket>>, StoreError>;
    /// Stores finished hours `(pool, bucket)` (a stored hour is replaced) and deletes every hour
    /// before `cutoff`, in one transaction.
    fn save_capacity_hours(
        &mut self,
        hours: &[(&str, HourBucket)],
        cutoff: Millis,
    ) -> Result<(), StoreError>;
}

impl CapacityHistory for SqliteStore {
    fn capacity_history(
        &self,
        since: Millis,
    ) -> Result<BTreeMap<String, Vec<HourBucket>>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT pool, hour_ms, min, mean, max, count FROM capacity_hourly
             WHERE hour_ms >= ?1 ORDER BY pool, hour_ms",
        )?;
        let rows = stmt.query_map([since], |row| {
            Ok((
                row.get::<_, String>(0)?,
                HourBucket {
                    hour_ms: row.get(1)?,
                    min: row.get(2)?,
                    mean: row.get(3)?,
                    max: row.get(4)?,
                    count: u64::try_from(row.get::<_, i64>(5)?).unwrap_or(0),
                },
            ))
        })?;
        let mut out: BTreeMap<String, Vec<HourBucket>> = BTreeMap::new();
        for row in rows {
            let (pool, bucket) = row?;
            out.entry(pool).or_default().push(bucket);
        }
        Ok(out)
    }

    fn save_capacity_hours(
        &mut self,
        hours: &[(&str, HourBucket)],
        cutoff: Millis,
    ) -> Result<(), StoreError> {
        if hours.is_empty() {
            return Ok(());
        }
        let tx = self.write()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO capacity_hourly (pool, hour_ms, min, mean, max, count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (pool, hour_ms) DO UPDATE SET min = excluded.min,
                   mean = excluded.mean, max = excluded.max, count = excluded.count",
            )?;
            for (pool, b) in hours {
                let count = i64::try_from(b.count).unwrap_or(i64::MAX);
                put.execute((pool, b.hour_ms, b.min, b.mean, b.max, count))?;
            }
            tx.execute("DELETE FROM capacity_hourly WHERE hour_ms < ?1", [cutoff])?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::both_stores;
    use crate::capacity::history::HOUR_MS;
    use crate::store::test_db::Db;

    both_stores!(hours_survive_reopening_and_old_ones_are_deleted);

    fn hours_survive_reopening_and_old_ones_are_deleted(db: &Db) {
        let bucket = |h: i64, v: f64| HourBucket {
            hour_ms: h * HOUR_MS,
            min: v,
            mean: v + 1.0,
            max: v + 2.0,
            count: 4,
        };
        {
            let mut store = db.open();
            store
                .save_capacity_hours(&[("a", bucket(1, 1.0)), ("b", bucket(1, 5.0))], 0)
                .unwrap();
            store
                .save_capacity_hours(&[("a", bucket(2, 2.0)), ("a", bucket(1, 9.0))], 0)
                .unwrap();
        }
        let mut store = db.open();
        let got = store.capacity_history(0).unwrap();
        assert_eq!(
            got["a"],
            [bucket(1, 9.0), bucket(2, 2.0)],
            "replaced, ordered"
        );
        assert_eq!(got["b"], [bucket(1, 5.0)]);
        assert_eq!(store.capacity_history(2 * HOUR_MS).unwrap()["a"].len(), 1);
        store
            .save_capacity_hours(&[("a", bucket(3, 3.0))], 2 * HOUR_MS)
            .unwrap();
        let got = store.capacity_history(0).unwrap();
        assert_eq!(got["a"], [bucket(2, 2.0), bucket(3, 3.0)]);
        assert!(!got.contains_key("b"), "older than the cutoff");
    }
}
