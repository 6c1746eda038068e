//! The trap listener's per-sender bookkeeping: how many notifications each (sender, trap OID)
//! pair sent, the value of its `faultline_snmp_traps` counter series. Bounded, because senders
//! and trap OIDs come from the network: past `max` pairs the least recently seen quarter is
//! forgotten (counted in [`TrapCounts::evicted`]); a forgotten pair that sends again starts over
//! at 1, which Prometheus reads as a counter reset.
//!
//! Pure; used by [`crate::trap::notification_samples`] in the listener task.

use crate::Oid;
use std::collections::HashMap;

/// Notification counts per (target, trap OID), at most `max` of them.
#[derive(Debug)]
pub struct TrapCounts {
    max: usize,
    tick: u64,
    /// (count, tick of the last notification) per pair.
    counts: HashMap<(String, Oid), (u64, u64)>,
    evicted: u64,
}

impl TrapCounts {
    /// Keeps at most `max` pairs (at least one).
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            tick: 0,
            counts: HashMap::new(),
            evicted: 0,
        }
    }

    /// Counts one notification of `trap_oid` from `target`; returns the pair's count so far.
    pub fn count(&mut self, target: &str, trap_oid: &Oid) -> u64 {
        self.tick += 1;
        let key = (target.to_string(), trap_oid.clone());
        if !self.counts.contains_key(&key) && self.counts.len() >= self.max {
            self.evict();
        }
        let entry = self.counts.entry(key).or_insert((0, 0));
        entry.0 += 1;
        entry.1 = self.tick;
        entry.0
    }

    /// Pairs held.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// True when no pair is held.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Pairs forgotten so far to stay within the bound.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Forgets the least recently seen quarter of the pairs (at least one): one O(n) pass every
    /// n/4 new pairs, so a flood of fresh pairs costs O(1) per notification.
    fn evict(&mut self) {
        let n = (self.counts.len() / 4).max(1);
        let mut ticks: Vec<u64> = self.counts.values().map(|&(_, tick)| tick).collect();
        let (_, cutoff, _) = ticks.select_nth_unstable(n - 1);
        let cutoff = *cutoff;
        let before = self.counts.len();
        self.counts.retain(|_, &mut (_, tick)| tick > cutoff);
        self.evicted += (before - self.counts.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(last: u32) -> Oid {
        Oid::new(vec![1, 3, 6, 1, 4, 1, 9999, last])
    }

    #[test]
    fn counts_per_sender_and_trap() {
        let mut counts = TrapCounts::new(10);
        let steps = [
            ("sw1", 1, 1),
            ("sw1", 1, 2),
            ("sw2", 1, 1),
            ("sw1", 2, 1),
            ("sw1", 1, 3),
        ];
        for (target, trap, want) in steps {
            assert_eq!(counts.count(target, &oid(trap)), want, "{target} {trap}");
        }
        assert_eq!((counts.len(), counts.evicted()), (3, 0));
    }

    #[test]
    fn a_flood_of_fresh_pairs_stays_bounded_and_keeps_the_busy_ones() {
        let mut counts = TrapCounts::new(100);
        for i in 0..100_000u32 {
            // The real device keeps sending in between the flood.
            counts.count("ups-1", &oid(0));
            counts.count(&format!("10.0.{}.{}", i / 256 % 256, i % 256), &oid(i));
            assert!(counts.len() <= 100);
        }
        assert_eq!(
            counts.count("ups-1", &oid(0)),
            100_001,
            "busy pair never evicted"
        );
        assert!(counts.evicted() >= 100_000 - 100, "{}", counts.evicted());
    }

    #[test]
    fn a_forgotten_pair_starts_over() {
        let mut counts = TrapCounts::new(1);
        assert_eq!(counts.count("a", &oid(1)), 1);
        assert_eq!(counts.count("a", &oid(1)), 2);
        assert_eq!(counts.count("b", &oid(1)), 1);
        assert_eq!(counts.count("a", &oid(1)), 1);
        assert_eq!(counts.evicted(), 2);
        assert!(!counts.is_empty());
    }
}
