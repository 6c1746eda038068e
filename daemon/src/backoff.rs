//! Capped exponential backoff with jitter: the one retry-delay formula of Faultline. The agent's
//! push transport and the collector's notifier both schedule their retries with it.
//!
//! Pure: the random number is passed in, so every schedule is a table test.

use std::time::Duration;

/// A retry schedule: `initial × multiplier^(failures−1)`, capped at `max`, then spread at random
/// over `± jitter` of itself (never past `max`) so many clients do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay after the first failure, before jitter.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Growth per further failure (at least 1.0).
    pub multiplier: f64,
    /// Random spread as a fraction of the delay, 0 to 1 (`0.2` = ±20 %).
    pub jitter: f64,
}

impl Backoff {
    /// The delay after the `failures`-th consecutive failure (1 = the first), before jitter.
    pub fn base(&self, failures: u32) -> Duration {
        let exponent = i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The delay after the `failures`-th failure with jitter: `random` (in `[0, 1]`) spreads it
    /// over `base × (1 ± jitter)`; the result never exceeds `max`.
    pub fn delay(&self, failures: u32, random: f64) -> Duration {
        let base = self.base(failures).as_secs_f64();
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (2.0 * random.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((base * factor).max(0.0)).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Backoff {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.5,
        }
    }

    #[test]
    fn base_grows_and_caps() {
        let cases = [
            (0, 1.0),
            (1, 1.0),
            (2, 2.0),
            (3, 4.0),
            (6, 32.0),
            (7, 60.0),
            (1000, 60.0),
            (u32::MAX, 60.0),
        ];
        for (failures, want) in cases {
            assert_eq!(schedule().base(failures).as_secs_f64(), want, "{failures}");
        }
        let slow = Backoff {
            multiplier: 1.5,
            ..schedule()
        };
        assert_eq!(slow.base(3).as_secs_f64(), 2.25);
    }

    #[test]
    fn jitter_spreads_within_bounds_and_never_passes_max() {
        // (failures, random, expected seconds)
        let cases = [
            (1, 0.0, 0.5),
            (1, 0.5, 1.0),
            (1, 0.999_999, 1.499_999),
            (3, 0.0, 2.0),
            (3, 1.0, 6.0),
            (7, 1.0, 60.0),
            (7, 0.0, 30.0),
            (3, -4.0, 2.0),
            (3, 9.0, 6.0),
        ];
        for (failures, random, want) in cases {
            let got = schedule().delay(failures, random).as_secs_f64();
            assert!((got - want).abs() < 1e-3, "{failures} {random}: {got}");
        }
        let steady = Backoff {
            jitter: 0.0,
            ..schedule()
        };
        assert_eq!(steady.delay(2, 0.9), Duration::from_secs(2));
    }
}
