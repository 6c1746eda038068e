//! The agent's own counters, shared by every stage and reported to the collector as agent health
//! in each batch. Each `count_*` call logs and counts an event together, so the two never diverge.

use faultline_daemon::reload::ReloadStats;
use faultline_wire::{ConfigReloads, InvalidBatch, Sample};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of events that are not visible in the outbox itself.
#[derive(Debug, Default)]
pub struct AgentStats {
    poll_errors: AtomicU64,
    dropped_samples: AtomicU64,
    /// Config reloads on SIGHUP ([`crate::reload`]).
    pub reload: ReloadStats,
}

impl AgentStats {
    /// A source poll failed.
    pub fn count_poll_error(&self, source: &str, error: &dyn std::fmt::Display) {
        self.poll_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(source, %error, "poll failed");
    }

    /// A sample broke the wire limits and was dropped before batching.
    pub fn count_invalid_sample(&self, sample: &Sample, error: &InvalidBatch) {
        self.dropped_samples.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(metric = %sample.metric, target = %sample.target, %error, "invalid sample dropped");
    }

    /// A batch could not be written to the outbox (disk full or failing) and is lost.
    pub fn count_lost_batch(&self, samples: u64, error: &dyn std::fmt::Display) {
        self.dropped_samples.fetch_add(samples, Ordering::Relaxed);
        tracing::error!(samples, %error, "cannot write batch to the outbox; samples lost");
    }

    /// Source polls that failed so far.
    pub fn poll_errors(&self) -> u64 {
        self.poll_errors.load(Ordering::Relaxed)
    }

    /// The config reloads so far, as reported in the agent's health.
    pub fn reloads(&self) -> ConfigReloads {
        ConfigReloads {
            ok: self.reload.ok(),
            failed: self.reload.failed(),
            last_success_ms: (self.reload.last_success_seconds() * 1000.0) as i64,
        }
    }

    /// Samples dropped outside the outbox so far.
    pub fn dropped_samples(&self) -> u64 {
        self.dropped_samples.load(Ordering::Relaxed)
    }
}
