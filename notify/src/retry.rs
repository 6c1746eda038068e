//! Retry scheduling for the delivery loop, as pure functions (… → incidents → **notifications**).
//!
//! A failed attempt is either transient (the receiver is down, overloaded or slow: retry later
//! with the shared capped exponential backoff and jitter of `faultline_daemon::backoff`) or
//! permanent (the receiver rejected the request: retrying cannot help). [`next_attempt`] turns an attempt count and a random number into the
//! time of the next attempt, so every schedule is a table test.

use crate::path::field;
use faultline_daemon::backoff::Backoff;
use faultline_incidents::Millis;
use faultline_wire::config_file::{ConfigError, ConfigSource};
use serde::Deserialize;
use std::time::Duration;

/// How deliveries are retried and paced (`[notify.retry]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Delay before the first retry (default `5s`).
    #[serde(with = "humantime_serde")]
    pub initial: Duration,
    /// Longest delay between two attempts (default `10m`).
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    /// Each further failure multiplies the delay by this (default `2.0`, at least `1.0`).
    pub multiplier: f64,
    /// Random spread of each delay, as a fraction of it: `0.2` means ±20 % (default `0.2`,
    /// between `0` and `1`). Spreads the retries of many notifications after an outage.
    pub jitter: f64,
    /// Give up after this many failed attempts; `0` (the default) never gives up, so a receiver
    /// outage of any length loses nothing. Rejections (HTTP 4xx other than 408/425/429, SMTP 5xx)
    /// are never retried.
    pub max_attempts: u32,
    /// Time limit of one delivery attempt (default `10s`).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How often the delivery loop looks for due work when nothing new was enqueued (default `1s`).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Most deliveries attempted at once (default `32`).
    pub batch: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(600),
            multiplier: 2.0,
            jitter: 0.2,
            max_attempts: 0,
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            batch: 32,
        }
    }
}

impl RetryPolicy {
    /// Checks the policy after parsing; `prefix` is where it sits in the file (`notify.retry`).
    pub fn validate(&self, source: &ConfigSource, prefix: &str) -> Result<(), ConfigError> {
        let checks = [
            (
                "initial",
                !self.initial.is_zero(),
                "must be longer than zero",
            ),
            (
                "max",
                self.max >= self.initial,
                "must be at least `initial`",
            ),
            (
                "multiplier",
                self.multiplier.is_finite() && self.multiplier >= 1.0,
                "must be at least 1.0",
            ),
            (
                "jitter",
                (0.0..=1.0).contains(&self.jitter),
                "must be between 0 and 1",
            ),
            (
                "timeout",
                !self.timeout.is_zero(),
                "must be longer than zero",
            ),
            (
                "poll_interval",
                !self.poll_interval.is_zero(),
                "must be longer than zero",
            ),
            ("batch", self.batch > 0, "must be at least 1"),
        ];
        match checks.into_iter().find(|(_, ok, _)| !ok) {
            Some((name, _, message)) => Err(source.error(&field(prefix, name), message)),
            None => Ok(()),
        }
    }
}

/// Whether a failed attempt is worth repeating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The receiver was unreachable, overloaded or slow: retry.
    Transient,
    /// The receiver rejected the notification: retrying cannot help.
    Permanent,
}

/// Classifies an HTTP status that is not a success.
pub fn classify_status(status: u16) -> Failure {
    match status {
        408 | 425 | 429 => Failure::Transient,
        400..=499 => Failure::Permanent,
        _ => Failure::Transient,
    }
}

impl RetryPolicy {
    /// The policy's delays as the shared backoff schedule.
    pub fn schedule(&self) -> Backoff {
        Backoff {
            initial: self.initial,
            max: self.max,
            multiplier: self.multiplier,
            jitter: self.jitter,
        }
    }
}

/// When to try again after a failed attempt, or `None` to give up: permanent failures give up at
/// once, transient ones after `max_attempts` attempts (never when it is 0). `attempts` counts the
/// attempt that just failed.
pub fn next_attempt(
    policy: &RetryPolicy,
    attempts: u32,
    failure: Failure,
    now: Millis,
    random: f64,
) -> Option<Millis> {
    let exhausted = policy.max_attempts != 0 && attempts >= policy.max_attempts;
    if failure == Failure::Permanent || exhausted {
        return None;
    }
    let delay = policy.schedule().delay(attempts, random).as_millis();
    let delay = i64::try_from(delay).unwrap_or(i64::MAX);
    Some(now.saturating_add(delay))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.5,
            max_attempts: 5,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn next_attempt_table() {
        let forever = RetryPolicy {
            max_attempts: 0,
            ..policy()
        };
        // (policy, attempts, failure, expected)
        let cases = [
            (policy(), 1, Failure::Transient, Some(10_000 + 1_000)),
            (policy(), 4, Failure::Transient, Some(10_000 + 8_000)),
            (policy(), 5, Failure::Transient, None),
            (policy(), 1, Failure::Permanent, None),
            (
                forever.clone(),
                500,
                Failure::Transient,
                Some(10_000 + 60_000),
            ),
            (forever, 1, Failure::Permanent, None),
        ];
        for (p, attempts, failure, want) in cases {
            assert_eq!(
                next_attempt(&p, attempts, failure, 10_000, 0.5),
                want,
                "{attempts} {failure:?}"
            );
        }
    }

    #[test]
    fn status_classes() {
        let cases = [
            (400, Failure::Permanent),
            (401, Failure::Permanent),
            (404, Failure::Permanent),
            (408, Failure::Transient),
            (429, Failure::Transient),
            (500, Failure::Transient),
            (503, Failure::Transient),
        ];
        for (status, want) in cases {
            assert_eq!(classify_status(status), want, "{status}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            ("", None),
            ("initial = \"0s\"\n", Some(("notify.retry.initial", 2))),
            (
                "initial = \"1m\"\nmax = \"30s\"\n",
                Some(("notify.retry.max", 3)),
            ),
            ("multiplier = 0.5\n", Some(("notify.retry.multiplier", 2))),
            ("jitter = 1.5\n", Some(("notify.retry.jitter", 2))),
            ("batch = 0\n", Some(("notify.retry.batch", 2))),
        ];
        #[derive(Deserialize)]
        struct File {
            notify: Inner,
        }
        #[derive(Deserialize)]
        struct Inner {
            #[serde(default)]
            retry: RetryPolicy,
        }
        for (body, want) in cases {
            let text = format!("[notify.retry]\n{body}");
            let source = ConfigSource::from_text(Path::new("c.toml"), text.clone());
            let file: File = source.parse().unwrap();
            let got = file.notify.retry.validate(&source, "notify.retry").err();
            assert_eq!(
                got.as_ref()
                    .map(|e| (e.field.as_str(), e.position.map_or(0, |p| p.0))),
                want,
                "{text}"
            );
        }
    }
}
