//! The capacity watch's memory (ingest → **capacity** → incidents): per pool, its hourly history,
//! the forecast line of the current hour (refitted once an hour, so evaluating every few seconds
//! costs a division) and the planning level last requested, so a need is requested once — again
//! only when it becomes more urgent, or after [`REMIND`] while it persists. Memory holds each
//! pool's forecast window of hours (30 days by default: ~29 KB a pool), the store the year. When usage falls back
//! below the plan line nothing is requested: the open planning ticket stays for a human to close.

use super::decide::{Level, PlanningNeed, PoolState, decide, fit, state};
use super::forecast::Fit;
use super::history::{DAY_MS, History, HourBucket, hour_of};
use super::pool::Pool;
use crate::{Millis, duration_ms};
use std::collections::{BTreeMap, HashMap};

/// A need still there this long after it was last requested is requested again (the stage
/// comments on the open ticket, or opens a new one if a human closed it).
pub const REMIND: Millis = DAY_MS;

#[derive(Debug, Default)]
struct Tracked {
    history: History,
    /// The forecast line and the hour it was fitted in.
    fit: Option<(Millis, Option<Fit>)>,
    /// The level last requested, and when.
    requested: Option<(Level, Millis)>,
}

/// What one evaluation of a pool found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// The pool's state now.
    pub state: PoolState,
    /// What it needs, if anything.
    pub need: Option<PlanningNeed>,
    /// Whether to request the need now (new, more urgent, or not requested for [`REMIND`]).
    pub request: bool,
}

/// Every pool's history and requests.
#[derive(Debug, Default)]
pub struct Watch {
    pools: HashMap<String, Tracked>,
}

impl Watch {
    /// A watch over the stored history (pool id → its hourly buckets).
    pub fn new(stored: BTreeMap<String, Vec<HourBucket>>) -> Self {
        Self {
            pools: stored
                .into_iter()
                .map(|(pool, buckets)| {
                    let tracked = Tracked {
                        history: History::from_buckets(buckets),
                        ..Tracked::default()
                    };
                    (pool, tracked)
                })
                .collect(),
        }
    }

    /// Records a usage reading of `pool` taken at `at`; returns the hour it finished, to store.
    pub fn record(&mut self, pool: &str, at: Millis, used: f64) -> Option<HourBucket> {
        self.tracked(pool).history.record(at, used)
    }

    /// Evaluates `pool` with usage `used` at `now`.
    pub fn evaluate(&mut self, pool: &Pool, used: f64, now: Millis) -> Evaluation {
        let tracked = self.tracked(&pool.id);
        let hour = hour_of(now);
        let line = match tracked.fit {
            Some((fitted, line)) if fitted == hour => line,
            _ => {
                let line = fit(pool, &tracked.history, now);
                tracked.fit = Some((hour, line));
                line
            }
        };
        let state = state(pool, used, line, now);
        let need = decide(pool, &state);
        let request = need.is_some_and(|need| {
            tracked
                .requested
                .is_none_or(|(level, at)| need.level > level || now.saturating_sub(at) >= REMIND)
        });
        Evaluation {
            state,
            need,
            request,
        }
    }

    /// Notes that `level` was requested for `pool` at `now` (the stage took it).
    pub fn requested(&mut self, pool: &str, level: Level, now: Millis) {
        self.tracked(pool).requested = Some((level, now));
    }

    /// Keeps in memory only what the forecasts need: each pool's hours within its forecast
    /// window before `now` (the store keeps the year); forgets pools gone from `pools`.
    pub fn trim(&mut self, now: Millis, pools: &BTreeMap<String, Pool>) {
        self.pools.retain(|id, tracked| {
            let Some(pool) = pools.get(id) else {
                return false;
            };
            tracked.history.trim(hour_of(
                now.saturating_sub(duration_ms(pool.forecast_window)),
            ));
            true
        });
    }

    /// A pool's history, if it has one.
    pub fn history(&self, pool: &str) -> Option<&History> {
        self.pools.get(pool).map(|t| &t.history)
    }

    fn tracked(&mut self, pool: &str) -> &mut Tracked {
        self.pools.entry(pool.to_string()).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::history::HOUR_MS;
    use crate::capacity::pool::PoolKind;

    fn pool(capacity: f64) -> Pool {
        Pool::new(
            "san-a",
            PoolKind::Storage,
            capacity,
            "storage_used_bytes",
            &["vm-1"],
        )
    }

    /// A year of synthetic hourly history growing by a known slope (with a daily cycle, noise and
    /// a few wild hours) gives back the slope within 1 % and the days to full within 1 day.
    #[test]
    fn a_year_of_synthetic_history_forecasts_within_tolerance() {
        const SLOPE_PER_DAY: f64 = 2.0e9; // 2 GB a day
        const BASE: f64 = 100.0e12; // 100 TB a year ago
        let capacity = 1000.0e12;
        let start = 1_764_547_200_000; // 2025-12-01 00:00 UTC
        let hours = 365 * 24;
        let mut watch = Watch::default();
        let mut stored = Vec::new();
        let mut seed = 7u64;
        for h in 0..=hours {
            let at = start + h * HOUR_MS;
            let trend = BASE + SLOPE_PER_DAY * (h as f64 / 24.0);
            let daily = 0.5e9 * ((h % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
            // xorshift: deterministic noise of ±0.3 GB.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let noise = (seed % 600) as f64 * 1e6 - 0.3e9;
            let wild = if h % 500 == 0 { 50.0e12 } else { 0.0 };
            // Four readings an hour.
            for q in 0..4 {
                if let Some(done) =
                    watch.record("san-a", at + q * 15 * 60_000, trend + daily + noise + wild)
                {
                    stored.push(done);
                }
            }
        }
        assert_eq!(stored.len(), hours as usize, "every finished hour to store");
        // The stored history, reloaded (a restart), forecasts the same.
        let mut watch = Watch::new([("san-a".to_string(), stored)].into());
        let now = start + hours * HOUR_MS;
        let used = BASE + SLOPE_PER_DAY * 365.0;
        let got = watch.evaluate(&pool(capacity), used, now);
        let line = got.state.fit.unwrap();
        let slope_error = (line.slope_per_day() - SLOPE_PER_DAY).abs() / SLOPE_PER_DAY;
        assert!(slope_error < 0.01, "slope {} per day", line.slope_per_day());
        let want_days = (capacity - used) / SLOPE_PER_DAY;
        let days = got.state.days_to_full.unwrap();
        assert!(
            (days - want_days).abs() < 1.0 + 0.01 * want_days,
            "{days} days to full, want {want_days}"
        );
        assert_eq!(got.need, None, "{days} days: beyond 90");
    }

    #[test]
    fn a_need_is_requested_once_again_when_more_urgent_or_after_a_day() {
        let pool = pool(100.0);
        let mut watch = Watch::default();
        let at = |h: i64| 10 * DAY_MS + h * HOUR_MS;
        let eval = |w: &mut Watch, used: f64, now: Millis| {
            let e = w.evaluate(&pool, used, now);
            (e.need.map(|n| n.level), e.request)
        };
        assert_eq!(eval(&mut watch, 50.0, at(0)), (None, false));
        assert_eq!(eval(&mut watch, 75.0, at(1)), (Some(Level::Plan), true));
        watch.requested("san-a", Level::Plan, at(1));
        assert_eq!(eval(&mut watch, 76.0, at(2)), (Some(Level::Plan), false));
        assert_eq!(eval(&mut watch, 90.0, at(3)), (Some(Level::Expand), true));
        watch.requested("san-a", Level::Expand, at(3));
        // Back and forth across the expand line: no new request.
        assert_eq!(eval(&mut watch, 84.0, at(4)), (Some(Level::Plan), false));
        assert_eq!(eval(&mut watch, 86.0, at(5)), (Some(Level::Expand), false));
        // Below the plan line: nothing to request; the ticket stays for a human.
        assert_eq!(eval(&mut watch, 10.0, at(6)), (None, false));
        // A day after the last request, a need still there is requested again.
        assert_eq!(eval(&mut watch, 80.0, at(26)), (Some(Level::Plan), false));
        assert_eq!(eval(&mut watch, 80.0, at(27)), (Some(Level::Plan), true));
    }

    #[test]
    fn trim_keeps_the_forecast_window_of_the_pools_still_there() {
        let mut watch = Watch::default();
        let mut a = pool(100.0);
        a.forecast_window = std::time::Duration::from_secs(2 * 3600);
        for h in 0..5 {
            watch.record("san-a", h * HOUR_MS, 1.0);
            watch.record("gone", h * HOUR_MS, 1.0);
        }
        watch.trim(5 * HOUR_MS, &[("san-a".to_string(), a)].into());
        // The window is hours 3 and 4: hour 3 finished, hour 4 current.
        assert_eq!(watch.history("san-a").map(History::len), Some(1));
        assert_eq!(watch.history("san-a").unwrap().since(0).count(), 2);
        assert!(watch.history("gone").is_none());
    }
}
