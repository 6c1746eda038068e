//! Counter-aware rates for `rate_above` / `rate_below` rules (ingest → **rules** → incidents).
//!
//! Agents send device counters raw, so the evaluator turns two consecutive samples into a per-second
//! rate here. A decrease is either a wrap of a 32- or 64-bit counter or a reset (device reboot,
//! counter cleared). The two look alike on the wire, so a decrease is taken as a wrap only when the
//! wrapped delta is small against the counter's range (less than a quarter of it: the old value sat
//! near the top, the new one near the bottom); anything else is a reset, and the interval is skipped
//! rather than guessed, so neither ever shows up as a spike.

use crate::Millis;

/// Share of a counter's range within which a decrease is read as a wrap.
const WRAP_WINDOW: f64 = 0.25;

/// The increase from `prev` to `next`, or `None` for a reset.
pub fn counter_delta(prev: f64, next: f64) -> Option<f64> {
    if next >= prev {
        return Some(next - prev);
    }
    for range in [2f64.powi(32), 2f64.powi(64)] {
        if prev < range && next < range {
            let wrapped = range - prev + next;
            return (wrapped < range * WRAP_WINDOW).then_some(wrapped);
        }
    }
    None
}

/// Per-second rate between two samples `(ts, value)`, or `None` for a reset or a non-increasing
/// timestamp.
pub fn counter_rate(prev: (Millis, f64), next: (Millis, f64)) -> Option<f64> {
    let dt_ms = next.0 - prev.0;
    if dt_ms <= 0 {
        return None;
    }
    counter_delta(prev.1, next.1).map(|delta| delta * 1000.0 / dt_ms as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_table() {
        let max32 = 2f64.powi(32);
        let max64 = 2f64.powi(64);
        let cases: &[(&str, f64, f64, Option<f64>)] = &[
            ("steady increase", 100.0, 160.0, Some(60.0)),
            ("unchanged", 5.0, 5.0, Some(0.0)),
            ("32-bit wrap", max32 - 10.0, 5.0, Some(15.0)),
            ("64-bit wrap", max64 - 8192.0, 4096.0, Some(12288.0)),
            ("reset to zero from mid-range", 1_000_000.0, 0.0, None),
            ("reset from low value", 500.0, 20.0, None),
            ("64-bit counter reset", 5e12, 100.0, None),
            ("32-bit reset from upper half", 3e9, 2e9, None),
        ];
        for (name, prev, next, want) in cases {
            assert_eq!(counter_delta(*prev, *next), *want, "{name}");
        }
    }

    #[test]
    fn rate_table() {
        assert_eq!(counter_rate((0, 0.0), (10_000, 50.0)), Some(5.0));
        assert_eq!(counter_rate((10_000, 50.0), (10_000, 60.0)), None);
        assert_eq!(
            counter_rate((0, 2f64.powi(32) - 100.0), (1_000, 100.0)),
            Some(200.0)
        );
        assert_eq!(counter_rate((0, 9_000.0), (1_000, 3.0)), None);
    }
}
