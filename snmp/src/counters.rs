//! Counter continuity across polls: 32-bit wraps, 64-bit discontinuities and device reboots.
//!
//! Part of the pure core: the device task ([`crate::poller`]) keeps one [`CounterTracker`] per
//! device, feeds it sysUpTime each poll and passes every counter reading through it before the
//! samples go to the batcher. Counters stay raw and monotonic between reboots, so the collector
//! computes rates without spikes; a reboot shows up as an ordinary counter reset.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

/// Identity of one counter series: a hash of its metric name and labels (no copies kept).
pub type SeriesKey = u64;

/// Hash of a label set: the part of a [`SeriesKey`] a table row's columns share, so it is
/// computed once per row.
pub fn label_hash(labels: &BTreeMap<String, String>) -> u64 {
    let mut hasher = DefaultHasher::new();
    labels.hash(&mut hasher);
    hasher.finish()
}

/// The [`SeriesKey`] of a series: its metric name and the [`label_hash`] of its labels.
pub fn series_key(metric: &str, label_hash: u64) -> SeriesKey {
    let mut hasher = DefaultHasher::new();
    metric.hash(&mut hasher);
    label_hash.hash(&mut hasher);
    hasher.finish()
}

const WRAP_32: u64 = 1 << 32;
/// A Counter32 that falls back from at least this value is taken as a wrap; from below it, as a
/// reset (a wrap from the lower half would need 2^31 increments in one interval, which the
/// slow 32-bit counters profiles use — errors, discards — never reach).
const WRAP_THRESHOLD_32: u64 = 1 << 31;

#[derive(Debug, Clone, Copy)]
struct Entry {
    last_raw: u64,
    offset: u64,
    seen: bool,
}

/// Per-device counter state.
#[derive(Debug, Default)]
pub struct CounterTracker {
    last_uptime: Option<u32>,
    series: HashMap<SeriesKey, Entry>,
    reboots: u64,
    wraps: u64,
}

impl CounterTracker {
    /// Records this poll's sysUpTime (hundredths of a second). Returns true when it went back —
    /// the device (or its SNMP agent) restarted — and forgets all wrap offsets, so counters are
    /// passed on raw and the collector sees a reset.
    pub fn observe_uptime(&mut self, ticks: u32) -> bool {
        let rebooted = self.last_uptime.is_some_and(|last| ticks < last);
        self.last_uptime = Some(ticks);
        if rebooted {
            self.series.clear();
            self.reboots += 1;
        }
        rebooted
    }

    /// Turns a raw reading of a `bits`-wide counter into the value to send: the raw value plus
    /// 2^32 for every Counter32 wrap seen since the last reboot. A Counter64 (or a low Counter32)
    /// going back is a discontinuity: the raw value is sent and the collector sees a reset.
    pub fn adjust(&mut self, key: SeriesKey, raw: u64, bits: u32) -> f64 {
        let entry = self.series.entry(key).or_insert(Entry {
            last_raw: raw,
            offset: 0,
            seen: false,
        });
        if raw < entry.last_raw {
            if bits == 32 && entry.last_raw >= WRAP_THRESHOLD_32 {
                entry.offset += WRAP_32;
                self.wraps += 1;
            } else {
                entry.offset = 0;
            }
        }
        entry.last_raw = raw;
        entry.seen = true;
        #[allow(clippy::cast_precision_loss)] // beyond 2^53 f64 rounds; rates stay right
        let value = (entry.offset + raw) as f64;
        value
    }

    /// Ends a poll: forgets series not seen in it (removed interfaces, sensors).
    pub fn finish_poll(&mut self) {
        self.series.retain(|_, e| std::mem::take(&mut e.seen));
    }

    /// Reboots detected since the tracker was created.
    pub fn reboots(&self) -> u64 {
        self.reboots
    }

    /// Counter32 wraps smoothed since the tracker was created.
    pub fn wraps(&self) -> u64 {
        self.wraps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> SeriesKey {
        series_key(name, label_hash(&BTreeMap::new()))
    }

    #[test]
    fn wrap_reset_and_reboot_table() {
        let max32 = u64::from(u32::MAX);
        // (uptime, raw, bits, expected value sent)
        let steps: [(u32, u64, u32, f64); 8] = [
            (100, max32 - 10, 32, (max32 - 10) as f64),
            (200, 5, 32, (WRAP_32 + 5) as f64),   // wrap
            (300, 50, 32, (WRAP_32 + 50) as f64), // keeps the offset
            (400, 40, 32, 40.0),                  // low value went back: reset, not a wrap
            (50, 7, 32, 7.0),                     // uptime went back: reboot
            (60, 1_000, 64, 1_000.0),             // same series now 64-bit
            (70, 900, 64, 900.0),                 // 64-bit going back: discontinuity
            (80, 901, 64, 901.0),
        ];
        let mut t = CounterTracker::default();
        for (i, (uptime, raw, bits, want)) in steps.into_iter().enumerate() {
            t.observe_uptime(uptime);
            assert_eq!(t.adjust(key("c"), raw, bits), want, "step {i}");
            t.finish_poll();
        }
        assert_eq!(t.reboots(), 1);
        assert_eq!(t.wraps(), 1);
    }

    #[test]
    fn unseen_series_are_forgotten() {
        let mut t = CounterTracker::default();
        t.adjust(key("a"), u64::from(u32::MAX), 32);
        t.finish_poll();
        t.finish_poll(); // "a" not seen in this poll
        assert_eq!(t.adjust(key("a"), 3, 32), 3.0, "no stale offset");
    }
}
