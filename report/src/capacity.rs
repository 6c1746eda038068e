//! The capacity pools' state for a report (store → **report**): each declared pool's usage
//! ratio and time-to-full as of the report's end, from the hourly history the capacity watch
//! keeps ([`faultline_incidents::capacity`]), fitted the same way the watch fits it.

use crate::figures::CapacityRow;
use faultline_incidents::capacity::decide::{fit, state};
use faultline_incidents::capacity::history::History;
use faultline_incidents::capacity::{HourBucket, Pool};
use faultline_incidents::{Inventory, Millis};
use std::collections::BTreeMap;

/// How far back a report reads the history: the longest forecast window of `inventory`'s pools
/// before `as_of` (an hour more, for the hour `as_of` is in).
pub fn history_since(inventory: &Inventory, as_of: Millis) -> Millis {
    let longest = inventory
        .pools()
        .values()
        .map(|p| p.forecast_window)
        .max()
        .unwrap_or_default();
    let ms = i64::try_from(longest.as_millis()).unwrap_or(i64::MAX);
    as_of.saturating_sub(ms).saturating_sub(3_600_000)
}

/// The state of every pool of `inventory` with history before `as_of`: the latest hour's mean
/// usage over the capacity, and the forecast's days to full (pools with no history yet are left
/// out: there is nothing to say about them).
pub fn rows(
    inventory: &Inventory,
    mut history: BTreeMap<String, Vec<HourBucket>>,
    as_of: Millis,
) -> Vec<CapacityRow> {
    inventory
        .pools()
        .values()
        .filter_map(|pool: &Pool| {
            let mut buckets = history.remove(&pool.id)?;
            buckets.retain(|b| b.hour_ms < as_of);
            let used = buckets.last()?.mean;
            let history = History::from_buckets(buckets);
            let now = state(pool, used, fit(pool, &history, as_of), as_of);
            Some(CapacityRow {
                pool: pool.id.clone(),
                ratio: now.ratio,
                days_to_full: now.days_to_full,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_wire::config_file::ConfigSource;
    use std::path::Path;

    const HOUR: Millis = 3_600_000;

    #[test]
    fn a_growing_pool_has_its_ratio_and_forecast_and_an_idle_one_none() {
        let text = "[[targets]]\nid = \"vm-1\"\nkind = \"vm\"\nowner = \"platform\"\n".to_string()
            + &["san-a", "san-b", "san-c"]
                .map(|id| {
                    format!(
                        "\n[[pools]]\nid = \"{id}\"\nkind = \"storage\"\ncapacity = 1000.0\nmembers = [\"vm-1\"]\nmetric = \"used_bytes\"\n"
                    )
                })
                .concat();
        let source = ConfigSource::from_text(Path::new("inventory.toml"), text);
        let inventory = Inventory::load(&source).unwrap();
        // san-a grows 1 per hour from 100 over 10 days: 340 used at the end, 660 to go = 27.5 days.
        let grow: Vec<HourBucket> = (0..240)
            .map(|h| HourBucket {
                hour_ms: h * HOUR,
                min: 100.0 + h as f64,
                mean: 100.0 + h as f64,
                max: 100.0 + h as f64,
                count: 1,
            })
            .collect();
        // san-b stays at 500: half full, no forecast.
        let flat: Vec<HourBucket> = (0..240)
            .map(|h| HourBucket {
                hour_ms: h * HOUR,
                min: 500.0,
                mean: 500.0,
                max: 500.0,
                count: 1,
            })
            .collect();
        let history = BTreeMap::from([("san-a".to_string(), grow), ("san-b".to_string(), flat)]);
        let as_of = 240 * HOUR;
        let got = rows(&inventory, history, as_of);
        assert_eq!(got.len(), 2, "san-c has no history: {got:?}");
        assert_eq!(got[0].pool, "san-a");
        assert!((got[0].ratio - 0.339).abs() < 1e-9, "{got:?}");
        let days = got[0].days_to_full.unwrap();
        assert!((days - 27.5).abs() < 0.1, "{days}");
        assert_eq!((got[1].ratio, got[1].days_to_full), (0.5, None));
    }
}
