//! Usage from a counter (ingest → **capacity** → incidents): a pool whose metric counts (octets
//! through an uplink's interface) is used at the counter's per-second rate. [`CounterRates`]
//! turns each member's successive counter readings into that rate, the way Prometheus' `rate()`
//! does for two points: the increase over the time between the samples, a decrease counted as a
//! reset (the counter started again from zero, so the increase is the new value).

use crate::Millis;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Last {
    /// The newest reading: sample time and value.
    at: Millis,
    value: f64,
    /// The rate between it and the reading before, once there were two.
    rate: Option<f64>,
}

/// The last counter reading of every (pool, member), to rate the next one against.
#[derive(Debug, Default)]
pub struct CounterRates {
    last: HashMap<(String, String), Last>,
}

impl CounterRates {
    /// Takes `member`'s counter reading for `pool` (`value` sampled at `at`) and returns its
    /// per-second rate: `None` until a second reading with a newer sample time came; the same
    /// rate again while the sample time has not moved (the watch reads more often than agents
    /// poll).
    pub fn rate(&mut self, pool: &str, member: &str, at: Millis, value: f64) -> Option<f64> {
        let key = (pool.to_string(), member.to_string());
        let Some(last) = self.last.get_mut(&key) else {
            self.last.insert(
                key,
                Last {
                    at,
                    value,
                    rate: None,
                },
            );
            return None;
        };
        if at <= last.at {
            return last.rate;
        }
        let increase = if value >= last.value {
            value - last.value
        } else {
            value
        };
        let rate = increase / ((at - last.at) as f64 / 1000.0);
        *last = Last {
            at,
            value,
            rate: Some(rate),
        };
        Some(rate)
    }

    /// Forgets the members of pools for which `keep` is false (pools gone from the inventory).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.last.retain(|(pool, _), _| keep(pool));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_the_sample_times_and_count_a_decrease_as_a_reset() {
        let mut rates = CounterRates::default();
        // (sample time ms, counter value, rate expected)
        let steps: &[(Millis, f64, Option<f64>)] = &[
            (10_000, 1_000.0, None),        // first reading: nothing to rate against
            (10_000, 1_000.0, None),        // same sample again
            (20_000, 6_000.0, Some(500.0)), // 5000 in 10 s
            (20_000, 6_000.0, Some(500.0)), // read again before the agent polled
            (15_000, 9_999.0, Some(500.0)), // an older sample changes nothing
            (30_000, 6_000.0, Some(0.0)),   // idle
            (40_000, 2_000.0, Some(200.0)), // reset: counted from zero
            (60_000, 12_000.0, Some(500.0)),
        ];
        for (i, (at, value, want)) in steps.iter().enumerate() {
            assert_eq!(rates.rate("up-1", "r1", *at, *value), *want, "step {i}");
        }
        // Another member and another pool are rated on their own.
        assert_eq!(rates.rate("up-1", "r2", 60_000, 5.0), None);
        assert_eq!(rates.rate("up-2", "r1", 60_000, 5.0), None);
        rates.retain(|pool| pool == "up-2");
        assert_eq!(
            rates.rate("up-1", "r1", 70_000, 13_000.0),
            None,
            "forgotten"
        );
        assert_eq!(rates.rate("up-2", "r1", 62_000, 9.0), Some(2.0));
    }
}
