//! The rule memory table of the ticket store: what the evaluator must recall after a restart
//! ([`crate::eval::SeriesMemory`]), written at the evaluator's edges, in one transaction per
//! message the incident stage handles, before the judged samples are acknowledged.

use super::{SqliteStore, StoreError};
use crate::eval::{MemoryChange, SeriesMemory};

/// Where the rule evaluator's memory is kept (table `rule_memory`).
pub trait RuleMemory {
    /// Every stored series memory, to recall into a new evaluator.
    fn rule_memory(&self) -> Result<Vec<SeriesMemory>, StoreError>;
    /// Applies `changes` ([`crate::Evaluator::take_memory`]) in one transaction.
    fn save_rule_memory(&mut self, changes: &[MemoryChange]) -> Result<(), StoreError>;
}

impl RuleMemory for SqliteStore {
    fn rule_memory(&self) -> Result<Vec<SeriesMemory>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT body FROM rule_memory")?;
        let bodies = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(bodies
            .iter()
            .map(|body| serde_json::from_str(body))
            .collect::<Result<_, _>>()?)
    }

    fn save_rule_memory(&mut self, changes: &[MemoryChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let tx = self.write()?;
        {
            let mut keep = tx.prepare_cached(
                "INSERT INTO rule_memory (rule, series, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (rule, series) DO UPDATE SET body = excluded.body",
            )?;
            let mut forget =
                tx.prepare_cached("DELETE FROM rule_memory WHERE rule = ?1 AND series = ?2")?;
            for change in changes {
                match change {
                    MemoryChange::Keep(memory) => {
                        let body = serde_json::to_string(memory)?;
                        keep.execute((&memory.rule, &memory.series, body))?;
                    }
                    MemoryChange::Forget { rule, series } => {
                        forget.execute((rule, series))?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::both_stores;
    use crate::store::test_db::Db;
    use std::collections::BTreeMap;

    both_stores!(memory_is_kept_replaced_and_forgotten_across_reopen);

    fn memory(rule: &str, series: &str, last_value: f64) -> SeriesMemory {
        SeriesMemory {
            rule: rule.into(),
            series: series.into(),
            target: "dev".into(),
            labels: BTreeMap::from([("agent".to_string(), "a1".to_string())]),
            last_ts: 1_000,
            last_raw: last_value,
            last_value: Some(last_value),
            holding_since: None,
            firing: false,
        }
    }

    fn memory_is_kept_replaced_and_forgotten_across_reopen(db: &Db) {
        {
            let mut store = db.open();
            store
                .save_rule_memory(&[
                    MemoryChange::Keep(memory("LinkDown", "dev\u{1f}if=1", 1.0)),
                    MemoryChange::Keep(memory("LinkDown", "dev\u{1f}if=2", 1.0)),
                ])
                .unwrap();
            store
                .save_rule_memory(&[
                    MemoryChange::Keep(memory("LinkDown", "dev\u{1f}if=1", 2.0)),
                    MemoryChange::Forget {
                        rule: "LinkDown".into(),
                        series: "dev\u{1f}if=2".into(),
                    },
                ])
                .unwrap();
        }
        let store = db.open();
        assert_eq!(
            store.rule_memory().unwrap(),
            [memory("LinkDown", "dev\u{1f}if=1", 2.0)]
        );
    }
}
