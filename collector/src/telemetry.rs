//! The collector's own metrics (pushes, samples, rejects by reason, refused samples by agent and
//! reason, ingest latency, series held), and the registry `/metrics` encodes: these plus the
//! scrape-time collectors of the series store, the agents' health and the collector's own build
//! and process metrics. Each `count_*`/`reject`/
//! `check_*` call logs and counts an event together; warnings that input can repeat are
//! rate-limited per agent and reason ([`LogLimiter`]).

use crate::agents::{AgentHealthCollector, AgentRegistry};
use crate::process::ProcessCollector;
use crate::series::{ApplyOutcome, SeriesCollector, SharedSeries};
use faultline_daemon::log_limit::LogLimiter;
use faultline_wire::{RejectReason, RejectedSample};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Labels = [(&'static str, &'static str); 1];
type AgentReasonLabels = [(&'static str, String); 2];

/// At most one warning per agent and kind of event in this time.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Keys the warning limiter tracks (agents × kinds of event; unauthenticated pushes share one).
const WARN_KEYS: usize = 4096;

/// Why a push was refused; each maps to one HTTP status and one `reason` label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No or unknown bearer token (401).
    Unauthorized,
    /// Body (compressed or decoded) over the limit (413).
    TooLarge(String),
    /// Body is not a valid compressed JSON batch (400).
    Malformed(String),
    /// Batch decoded but breaks a limit or naming rule, or names another agent (400).
    Invalid(String),
    /// Too many pushes at once (429, retry later).
    Overloaded,
    /// Durable state unavailable (503, retry later).
    Unavailable(String),
    /// A body format this endpoint does not take (415), e.g. remote-write 2.0.
    Unsupported(String),
}

impl Rejection {
    /// Every `reason` label value, so each series exists (at 0) from the start.
    pub const REASONS: [&'static str; 7] = [
        "unauthorized",
        "too_large",
        "malformed",
        "invalid",
        "overloaded",
        "unavailable",
        "unsupported",
    ];

    /// HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::Unauthorized => 401,
            Rejection::TooLarge(_) => 413,
            Rejection::Malformed(_) | Rejection::Invalid(_) => 400,
            Rejection::Overloaded => 429,
            Rejection::Unavailable(_) => 503,
            Rejection::Unsupported(_) => 415,
        }
    }

    /// Value of the `reason` label.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Unauthorized => "unauthorized",
            Rejection::TooLarge(_) => "too_large",
            Rejection::Malformed(_) => "malformed",
            Rejection::Invalid(_) => "invalid",
            Rejection::Overloaded => "overloaded",
            Rejection::Unavailable(_) => "unavailable",
            Rejection::Unsupported(_) => "unsupported",
        }
    }

    /// Human-readable detail for the response body and logs (never contains the token).
    pub fn detail(&self) -> &str {
        match self {
            Rejection::Unauthorized => "missing or unknown bearer token",
            Rejection::Overloaded => "too many concurrent pushes; retry later",
            Rejection::TooLarge(d)
            | Rejection::Malformed(d)
            | Rejection::Invalid(d)
            | Rejection::Unavailable(d)
            | Rejection::Unsupported(d) => d,
        }
    }
}

/// The collector's own instruments.
#[derive(Debug)]
pub struct Telemetry {
    batches: Family<Labels, Counter>,
    samples: Family<Labels, Counter>,
    rejected: Family<Labels, Counter>,
    rejected_samples: Family<AgentReasonLabels, Counter>,
    ingest_seconds: Histogram,
    series: Gauge,
    warnings: Mutex<LogLimiter<(&'static str, String)>>,
}

impl Telemetry {
    /// Creates the instruments and a registry holding them plus the scrape-time collectors.
    pub fn new(series: SharedSeries, agents: Arc<AgentRegistry>) -> (Arc<Self>, Registry) {
        let telemetry = Arc::new(Self {
            batches: Family::default(),
            samples: Family::default(),
            rejected: Family::default(),
            rejected_samples: Family::default(),
            ingest_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            series: Gauge::default(),
            warnings: Mutex::new(LogLimiter::new(WARN_EVERY, WARN_KEYS)),
        });
        // Known label values exist from the start, so rates and dashboards see zeros, not gaps.
        for reason in Rejection::REASONS {
            drop(telemetry.rejected.get_or_create(&[("reason", reason)]));
        }
        for outcome in ["applied", "duplicate"] {
            drop(telemetry.batches.get_or_create(&[("outcome", outcome)]));
        }
        for outcome in ["applied", "superseded", "kind_conflict", "rejected"] {
            drop(telemetry.samples.get_or_create(&[("outcome", outcome)]));
        }
        for agent in agents.ids() {
            for reason in RejectReason::ALL {
                drop(
                    telemetry
                        .rejected_samples
                        .get_or_create(&sample_labels(agent, reason)),
                );
            }
        }
        let mut registry = Registry::default();
        registry.register(
            "faultline_collector_batches",
            "Batches accepted, by outcome (applied, or duplicate of an applied one)",
            telemetry.batches.clone(),
        );
        registry.register(
            "faultline_collector_samples",
            "Samples in accepted batches, by outcome (applied, superseded by a newer value, kind_conflict, rejected)",
            telemetry.samples.clone(),
        );
        registry.register(
            "faultline_collector_rejected_pushes",
            "Pushes refused, by reason",
            telemetry.rejected.clone(),
        );
        registry.register(
            "faultline_collector_rejected_samples",
            "Samples refused in acknowledged batches (never applied or evaluated), by agent and reason",
            telemetry.rejected_samples.clone(),
        );
        registry.register_with_unit(
            "faultline_collector_ingest_duration",
            "Time from a push's arrival to its acknowledgement",
            prometheus_client::registry::Unit::Seconds,
            telemetry.ingest_seconds.clone(),
        );
        registry.register(
            "faultline_collector_series",
            "Series held in memory (fresh and not yet swept)",
            telemetry.series.clone(),
        );
        registry.register_collector(Box::new(SeriesCollector(series)));
        registry.register_collector(Box::new(AgentHealthCollector(agents)));
        registry.register_collector(Box::new(ProcessCollector::default()));
        (telemetry, registry)
    }

    /// Counts an accepted batch and its samples.
    pub fn count_accepted(
        &self,
        agent: &str,
        seq: u64,
        outcome: Option<ApplyOutcome>,
        took: Duration,
    ) {
        self.ingest_seconds.observe(took.as_secs_f64());
        match outcome {
            None => {
                self.batches
                    .get_or_create(&[("outcome", "duplicate")])
                    .inc();
                tracing::debug!(agent, seq, "duplicate batch acknowledged again");
            }
            Some(o) => {
                self.batches.get_or_create(&[("outcome", "applied")]).inc();
                self.samples
                    .get_or_create(&[("outcome", "applied")])
                    .inc_by(o.applied);
                self.samples
                    .get_or_create(&[("outcome", "superseded")])
                    .inc_by(o.superseded);
                if o.kind_conflicts > 0 {
                    self.samples
                        .get_or_create(&[("outcome", "kind_conflict")])
                        .inc_by(o.kind_conflicts);
                    tracing::warn!(
                        agent,
                        seq,
                        dropped = o.kind_conflicts,
                        "samples whose kind contradicts their metric family"
                    );
                }
                tracing::debug!(agent, seq, applied = o.applied, "batch applied");
            }
        }
    }

    /// Counts the samples refused in an acknowledged batch `seq` of `agent` (`rejected` in index
    /// order) by reason, and warns (rate-limited) naming the first.
    pub fn count_refused_samples(&self, agent: &str, seq: u64, rejected: &[RejectedSample]) {
        let mut by_reason = [0u64; RejectReason::ALL.len()];
        for r in rejected {
            if let Some(at) = RejectReason::ALL.iter().position(|&k| k == r.reason) {
                by_reason[at] += 1;
            }
        }
        for (reason, count) in RejectReason::ALL.into_iter().zip(by_reason) {
            if count > 0 {
                self.rejected_samples
                    .get_or_create(&sample_labels(agent, reason))
                    .inc_by(count);
            }
        }
        self.samples
            .get_or_create(&[("outcome", "rejected")])
            .inc_by(rejected.len() as u64);
        let Some(first) = rejected.first() else {
            return;
        };
        if let Some(held_back) = self.may_warn("samples refused", agent) {
            tracing::warn!(
                agent,
                seq,
                refused = rejected.len(),
                first_index = first.index,
                first_reason = first.reason.as_str(),
                held_back,
                "samples refused (batch acknowledged; see faultline_collector_rejected_samples_total)"
            );
        }
    }

    /// Warns (rate-limited) when `agent`'s clock is off the collector's by more than `limit`.
    pub fn check_clock_offset(&self, agent: &str, offset_ms: i64, limit: Duration) {
        let limit_ms = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
        if offset_ms.saturating_abs() <= limit_ms {
            return;
        }
        if let Some(held_back) = self.may_warn("clock offset", agent) {
            tracing::warn!(
                agent,
                offset_seconds = offset_ms as f64 / 1000.0,
                limit_seconds = limit.as_secs_f64(),
                held_back,
                "agent clock differs from the collector's (samples are stamped with the agent's clock)"
            );
        }
    }

    /// Counts and logs a refused push (the log line at most once a minute per reason and agent).
    pub fn reject(&self, rejection: &Rejection, agent: Option<&str>, peer: &str) {
        self.rejected
            .get_or_create(&[("reason", rejection.reason())])
            .inc();
        if let Some(held_back) = self.may_warn(rejection.reason(), agent.unwrap_or("-")) {
            tracing::warn!(
                reason = rejection.reason(),
                status = rejection.status(),
                agent = agent.unwrap_or("-"),
                peer,
                detail = rejection.detail(),
                held_back,
                "push rejected"
            );
        }
    }

    /// Whether a warning of `kind` about `agent` may be logged now, with how many were held back.
    fn may_warn(&self, kind: &'static str, agent: &str) -> Option<u64> {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(&(kind, agent.to_string()), Instant::now())
    }

    /// Records the number of series after a sweep.
    pub fn set_series(&self, count: usize) {
        self.series.set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

fn sample_labels(agent: &str, reason: RejectReason) -> AgentReasonLabels {
    [
        ("agent", agent.to_string()),
        ("reason", reason.as_str().to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_reason_is_listed() {
        let all = [
            Rejection::Unauthorized,
            Rejection::TooLarge(String::new()),
            Rejection::Malformed(String::new()),
            Rejection::Invalid(String::new()),
            Rejection::Overloaded,
            Rejection::Unavailable(String::new()),
            Rejection::Unsupported(String::new()),
        ];
        let reasons: Vec<_> = all.iter().map(Rejection::reason).collect();
        assert_eq!(reasons, Rejection::REASONS);
    }
}
