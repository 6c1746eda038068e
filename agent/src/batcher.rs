//! The batcher: second stage of the agent's flow (`source → batcher → outbox → transport`).
//!
//! Gathers the collections of all sources into batches (closed by size or by age), gives every
//! sample the agent's placement labels (site, room) unless its source set them, drops samples
//! that break the wire limits (counted, logged with their source metric), and appends each batch
//! durably to the outbox.

use crate::config::BatchConfig;
use crate::outbox::OutboxHandle;
use crate::source::{BaseLabels, Collection};
use crate::stats::AgentStats;
use faultline_wire::{Limits, Sample, codec};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Runs until every source has gone away, then flushes what it holds.
pub async fn run(
    mut input: mpsc::Receiver<Collection>,
    outbox: OutboxHandle,
    config: BatchConfig,
    base: BaseLabels,
    stats: Arc<AgentStats>,
) {
    let limits = Limits::default();
    let mut pending: Vec<Sample> = Vec::with_capacity(config.max_samples.min(100_000));
    let mut deadline: Option<Instant> = None;
    loop {
        let received = match deadline {
            Some(at) => tokio::select! {
                got = input.recv() => Some(got),
                _ = tokio::time::sleep_until(at) => None,
            },
            None => Some(input.recv().await),
        };
        match received {
            Some(Some(collection)) => {
                for mut sample in collection {
                    for (name, value) in &base {
                        if !sample.labels.contains_key(name) {
                            sample.labels.insert(name.clone(), value.clone());
                        }
                    }
                    if let Err(e) = limits.check_sample(&sample) {
                        stats.count_invalid_sample(&sample, &e);
                        continue;
                    }
                    pending.push(sample);
                    if pending.len() >= config.max_samples {
                        flush(&outbox, &mut pending, &stats).await;
                        deadline = None;
                    }
                }
                if !pending.is_empty() && deadline.is_none() {
                    deadline = Some(Instant::now() + config.flush_interval);
                }
            }
            Some(None) => {
                flush(&outbox, &mut pending, &stats).await;
                return;
            }
            None => {
                flush(&outbox, &mut pending, &stats).await;
                deadline = None;
            }
        }
    }
}

async fn flush(outbox: &OutboxHandle, pending: &mut Vec<Sample>, stats: &AgentStats) {
    if pending.is_empty() {
        return;
    }
    let samples = std::mem::take(pending);
    let count = u32::try_from(samples.len()).unwrap_or(u32::MAX);
    let payload = codec::encode(&samples);
    match outbox.append(payload, count).await {
        Ok(Some(seq)) => tracing::debug!(seq, samples = count, "batch queued"),
        // Dropped: the outbox counted and logged it.
        Ok(None) => {}
        Err(e) => {
            stats.count_lost_batch(u64::from(count), &e);
        }
    }
}
