//! The agent's own counters, shared by every stage and reported to the collector as agent health
//! in each batch. Each `count_*` call logs and counts an event together, so the two never diverge.

use faultline_wire::{InvalidBatch, Sample};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of events that are not visible in the outbox itself.
#[derive(Debug, Default)]
pub struct AgentStats {
    poll_errors: AtomicU64,
    dropped_samples: AtomicU64,
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

    /// Samples dropped outside the outbox so far.
    pub fn dropped_samples(&self) -> u64 {
        self.dropped_samples.load(Ordering::Relaxed)
    }
}
