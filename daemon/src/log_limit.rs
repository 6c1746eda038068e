//! Rate limiting for log lines that outside input can repeat (bad packets, refused pushes, a
//! drifting agent clock): at most one line per key and interval, reporting how many were held
//! back in between. Pure (the caller passes the time in) and bounded in memory (at most
//! `max_keys` keys are tracked; past that the oldest is forgotten). Both daemons log through it.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Decides which repeated log lines are written.
#[derive(Debug)]
pub struct LogLimiter<K> {
    every: Duration,
    max_keys: usize,
    keys: HashMap<K, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    logged_at: Instant,
    held_back: u64,
}

impl<K: Eq + Hash + Clone> LogLimiter<K> {
    /// Allows one line per key every `every`, tracking at most `max_keys` keys (at least one).
    pub fn new(every: Duration, max_keys: usize) -> Self {
        Self {
            every,
            max_keys: max_keys.max(1),
            keys: HashMap::new(),
        }
    }

    /// Whether a line for `key` may be written at `now`: `Some(n)` with `n` lines held back for
    /// this key since the last one written (log `n` with it), or `None` to skip this one.
    pub fn check(&mut self, key: &K, now: Instant) -> Option<u64> {
        if let Some(window) = self.keys.get_mut(key) {
            if now.saturating_duration_since(window.logged_at) < self.every {
                window.held_back += 1;
                return None;
            }
            let held_back = window.held_back;
            *window = Window {
                logged_at: now,
                held_back: 0,
            };
            return Some(held_back);
        }
        if self.keys.len() >= self.max_keys {
            let oldest = self
                .keys
                .iter()
                .min_by_key(|(_, w)| w.logged_at)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.keys.remove(&oldest);
            }
        }
        self.keys.insert(
            key.clone(),
            Window {
                logged_at: now,
                held_back: 0,
            },
        );
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_key_and_interval_with_the_count_held_back() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut limiter = LogLimiter::new(Duration::from_secs(1), 8);
        // (time ms, key, expected verdict)
        let steps = [
            (0, "a", Some(0)),
            (1, "a", None),
            (2, "b", Some(0)),
            (500, "a", None),
            (999, "a", None),
            (1000, "a", Some(3)),
            (1001, "b", None),
            (1002, "b", Some(1)),
            (1500, "a", None),
            (5000, "a", Some(1)),
        ];
        for (ms, key, want) in steps {
            assert_eq!(limiter.check(&key, at(ms)), want, "at {ms} ms, key {key}");
        }
    }

    #[test]
    fn keys_are_bounded() {
        let start = Instant::now();
        let mut limiter = LogLimiter::new(Duration::from_secs(60), 4);
        for i in 0..10_000u32 {
            assert_eq!(
                limiter.check(&i, start + Duration::from_millis(u64::from(i))),
                Some(0)
            );
            assert!(limiter.keys.len() <= 4);
        }
        // The newest keys are still limited, the oldest forgotten.
        assert_eq!(limiter.check(&9_999, start + Duration::from_secs(11)), None);
        assert_eq!(limiter.check(&0, start + Duration::from_secs(11)), Some(0));
    }
}
