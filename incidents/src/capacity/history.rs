//! Downsampled pool history (capacity watch → **history** → store): usage readings rolled up into
//! hourly buckets (min, mean, max, count), a year of them per pool, oldest first. The watch
//! records each reading; a bucket is finished when a reading of a later hour arrives, and only
//! finished buckets are stored (so a crash loses at most the current hour's rollup).

use crate::Millis;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// One hour in milliseconds.
pub const HOUR_MS: Millis = 3_600_000;
/// One day in milliseconds.
pub const DAY_MS: Millis = 24 * HOUR_MS;
/// How long hourly history is kept.
pub const RETENTION: Duration = Duration::from_secs(365 * 86_400);
/// Hourly buckets kept per pool (a year of them).
pub const RETENTION_HOURS: usize = 365 * 24;

/// The start of the hour `at` falls in.
pub fn hour_of(at: Millis) -> Millis {
    at.div_euclid(HOUR_MS) * HOUR_MS
}

/// One hour of a pool's usage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourBucket {
    /// Start of the hour (ms since the epoch, a multiple of [`HOUR_MS`]).
    pub hour_ms: Millis,
    /// Lowest reading.
    pub min: f64,
    /// Mean of the readings.
    pub mean: f64,
    /// Highest reading.
    pub max: f64,
    /// Readings rolled up.
    pub count: u64,
}

impl HourBucket {
    /// A bucket holding one reading `value` taken at `at`.
    pub fn first(at: Millis, value: f64) -> Self {
        Self {
            hour_ms: hour_of(at),
            min: value,
            mean: value,
            max: value,
            count: 1,
        }
    }

    /// Adds a reading (running mean, so no sum can overflow to infinity).
    pub fn add(&mut self, value: f64) {
        self.count = self.count.saturating_add(1);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        // Kept within [min, max] against rounding.
        self.mean = (self.mean + (value - self.mean) / self.count as f64).clamp(self.min, self.max);
    }

    /// The point a forecast fits for this hour: its middle and its mean.
    pub fn point(&self) -> (Millis, f64) {
        (self.hour_ms + HOUR_MS / 2, self.mean)
    }
}

/// Rolls readings `(time, value)` up into hourly buckets, oldest first; readings that are not
/// finite numbers are skipped.
pub fn rollup(points: &[(Millis, f64)]) -> Vec<HourBucket> {
    let mut hours: BTreeMap<Millis, HourBucket> = BTreeMap::new();
    for &(at, value) in points.iter().filter(|(_, v)| v.is_finite()) {
        hours
            .entry(hour_of(at))
            .and_modify(|b| b.add(value))
            .or_insert_with(|| HourBucket::first(at, value));
    }
    hours.into_values().collect()
}

/// A pool's hourly history: finished buckets (at most [`RETENTION_HOURS`], oldest first) and the
/// bucket of the current hour.
#[derive(Debug, Clone, Default)]
pub struct History {
    finished: VecDeque<HourBucket>,
    current: Option<HourBucket>,
}

impl History {
    /// History from stored buckets (any order; one per hour kept, the newest year).
    pub fn from_buckets(mut buckets: Vec<HourBucket>) -> Self {
        buckets.sort_by_key(|b| b.hour_ms);
        buckets.dedup_by_key(|b| b.hour_ms);
        let skip = buckets.len().saturating_sub(RETENTION_HOURS);
        // The loaded buffer is kept, with room for a day of new hours before trimming catches
        // up (a full deque would double).
        let mut finished = VecDeque::from(buckets);
        finished.drain(..skip);
        finished.reserve_exact(24);
        Self {
            finished,
            current: None,
        }
    }

    /// Records a reading taken at `at`; returns the bucket it finished (the previous hour's),
    /// which is what to store. A reading older than the current hour, or not a finite number, is
    /// ignored.
    pub fn record(&mut self, at: Millis, value: f64) -> Option<HourBucket> {
        if !value.is_finite() {
            return None;
        }
        let hour = hour_of(at);
        let last_finished = self.finished.back().map(|b| b.hour_ms);
        match &mut self.current {
            Some(current) if current.hour_ms == hour => {
                current.add(value);
                None
            }
            Some(current) if current.hour_ms > hour => None,
            _ if last_finished.is_some_and(|h| h >= hour) => None,
            current => {
                let done = current.replace(HourBucket::first(at, value));
                if let Some(done) = done {
                    self.finished.push_back(done);
                    if self.finished.len() > RETENTION_HOURS {
                        self.finished.pop_front();
                    }
                }
                done
            }
        }
    }

    /// Forgets finished buckets older than `cutoff`.
    pub fn trim(&mut self, cutoff: Millis) {
        while self.finished.front().is_some_and(|b| b.hour_ms < cutoff) {
            self.finished.pop_front();
        }
    }

    /// The finished buckets and the current one, oldest first, from hour `since` on.
    pub fn since(&self, since: Millis) -> impl Iterator<Item = &HourBucket> {
        let start = self.finished.partition_point(|b| b.hour_ms < since);
        self.finished
            .range(start..)
            .chain(self.current.iter().filter(move |b| b.hour_ms >= since))
    }

    /// Finished buckets held.
    pub fn len(&self) -> usize {
        self.finished.len()
    }

    /// Whether no bucket is finished yet.
    pub fn is_empty(&self) -> bool {
        self.finished.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rollup_table() {
        let h = HOUR_MS;
        /// Hour, min, mean, max, count.
        type Row = (Millis, f64, f64, f64, u64);
        /// Readings, and the buckets they make.
        type Case<'a> = (&'a [(Millis, f64)], &'a [Row]);
        let cases: [Case<'_>; 4] = [
            (&[], &[]),
            (&[(5, 2.0)], &[(0, 2.0, 2.0, 2.0, 1)]),
            (
                &[(10, 1.0), (h - 1, 3.0), (h, 10.0), (h + 5, f64::NAN)],
                &[(0, 1.0, 2.0, 3.0, 2), (h, 10.0, 10.0, 10.0, 1)],
            ),
            // Out of order, and before the epoch.
            (
                &[(3 * h, 4.0), (-1, 7.0), (3 * h + 1, 2.0)],
                &[(-h, 7.0, 7.0, 7.0, 1), (3 * h, 2.0, 3.0, 4.0, 2)],
            ),
        ];
        for (points, want) in cases {
            let got: Vec<_> = rollup(points)
                .iter()
                .map(|b| (b.hour_ms, b.min, b.mean, b.max, b.count))
                .collect();
            assert_eq!(got, want, "{points:?}");
        }
    }

    #[test]
    fn history_finishes_an_hour_when_the_next_begins_and_ignores_the_past() {
        let h = HOUR_MS;
        let mut history = History::default();
        assert_eq!(history.record(10, 1.0), None);
        assert_eq!(history.record(20, 3.0), None);
        assert_eq!(history.record(5, f64::INFINITY), None);
        let done = history.record(h + 1, 5.0).unwrap();
        assert_eq!((done.hour_ms, done.mean, done.count), (0, 2.0, 2));
        assert_eq!(history.record(30, 100.0), None, "an hour already finished");
        assert_eq!(history.len(), 1);
        let hours: Vec<Millis> = history.since(0).map(|b| b.hour_ms).collect();
        assert_eq!(hours, [0, h], "finished then current");
        assert_eq!(history.since(h).count(), 1);
        history.trim(h);
        assert!(history.is_empty());
    }

    #[test]
    fn stored_history_is_ordered_deduplicated_and_bounded() {
        let buckets: Vec<HourBucket> = (0..RETENTION_HOURS as i64 + 10)
            .rev()
            .chain([5])
            .map(|i| HourBucket::first(i * HOUR_MS, i as f64))
            .collect();
        let history = History::from_buckets(buckets);
        assert_eq!(history.len(), RETENTION_HOURS);
        let hours: Vec<Millis> = history.since(0).map(|b| b.hour_ms).collect();
        assert_eq!(hours.first(), Some(&(10 * HOUR_MS)), "the oldest dropped");
        assert!(hours.windows(2).all(|w| w[0] < w[1]));
    }

    proptest! {
        #[test]
        fn rollup_keeps_min_mean_max_ordered_and_counts_every_point(
            points in prop::collection::vec((-10 * HOUR_MS..10 * HOUR_MS, -1e12f64..1e12), 0..200)
        ) {
            let buckets = rollup(&points);
            for b in &buckets {
                prop_assert!(b.min <= b.mean && b.mean <= b.max, "{b:?}");
                prop_assert_eq!(b.hour_ms, hour_of(b.hour_ms));
            }
            prop_assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), points.len() as u64);
        }
    }
}
