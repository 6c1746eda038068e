//! The delivery ledger: reconciles what an agent queued in its outbox with what collectors
//! applied, from their JSON logs (the agent's `batch queued` and drop lines, the collector's
//! `batch applied` and `duplicate batch acknowledged again`), so a test or the soak run can say
//! how many samples were sent, applied, applied twice, dropped (and counted) or lost silently.
//!
//! A batch is identified by its sequence number within one outbox (one epoch: the tests keep
//! their outbox for the whole run).

use crate::log_events;
use std::collections::BTreeMap;

/// The figures of one reconciliation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Batches the agent logged as queued (durably in its outbox).
    pub queued_batches: u64,
    /// Samples in them.
    pub queued_samples: u64,
    /// Distinct batches some collector applied.
    pub applied_batches: u64,
    /// Samples applied (each batch counted once).
    pub applied_samples: u64,
    /// Batches applied more than once (must be none).
    pub applied_twice: Vec<u64>,
    /// Batches applied partly (fewer or more samples than queued; must be none).
    pub applied_partly: Vec<u64>,
    /// Queued batches the agent dropped (oldest first, for space) and never delivered.
    pub dropped_batches: u64,
    /// Their samples.
    pub dropped_samples: u64,
    /// Samples dropped before they could be queued at all (no space even after dropping).
    pub never_queued_samples: u64,
    /// What the agent's drop lines add up to (to compare with its exported counter).
    pub logged_dropped_samples: u64,
    /// Queued batches neither applied nor dropped and older than the newest applied one: lost
    /// silently (must be none).
    pub lost: Vec<u64>,
    /// Queued batches newer than the newest applied one: still in the outbox.
    pub still_queued: u64,
    /// Batches acknowledged again as duplicates (resent after a lost acknowledgement).
    pub duplicates_acknowledged: u64,
}

fn field_u64(event: &serde_json::Value, name: &str) -> u64 {
    event["fields"][name].as_u64().unwrap_or_default()
}

impl Ledger {
    /// Reconciles the agent's log (all its runs) with the logs of every collector run.
    pub fn reconcile(agent_log: &str, collector_logs: &[String]) -> Ledger {
        let queued: BTreeMap<u64, u64> = log_events(agent_log, "batch queued")
            .iter()
            .map(|e| (field_u64(e, "seq"), field_u64(e, "samples")))
            .collect();
        let mut applied: BTreeMap<u64, (usize, u64)> = BTreeMap::new();
        let mut duplicates_acknowledged = 0;
        for log in collector_logs {
            for event in log_events(log, "batch applied") {
                let entry = applied.entry(field_u64(&event, "seq")).or_default();
                entry.0 += 1;
                entry.1 += field_u64(&event, "applied");
            }
            duplicates_acknowledged +=
                log_events(log, "duplicate batch acknowledged again").len() as u64;
        }
        let drops = log_events(agent_log, "outbox: dropped the oldest unsent samples");
        let ranges: Vec<(u64, u64)> = drops
            .iter()
            .map(|e| (field_u64(e, "first_seq"), field_u64(e, "last_seq")))
            .collect();
        let dropped_by_range = |seq: u64| ranges.iter().any(|(a, b)| (*a..=*b).contains(&seq));
        // A batch dropped for space while it was being sent, then applied, is taken off the count.
        let taken_back: u64 = log_events(
            agent_log,
            "outbox: a batch dropped for space while being sent was applied; not counted as dropped",
        )
        .iter()
        .map(|e| field_u64(e, "samples"))
        .sum();
        let never_queued_samples: u64 = log_events(
            agent_log,
            "outbox: disk full and no older data left to drop; batch dropped",
        )
        .iter()
        .map(|e| field_u64(e, "dropped_samples"))
        .sum();
        let newest_applied = applied.keys().next_back().copied().unwrap_or(0);
        let mut ledger = Ledger {
            queued_batches: queued.len() as u64,
            queued_samples: queued.values().sum(),
            applied_batches: applied.len() as u64,
            never_queued_samples,
            logged_dropped_samples: drops
                .iter()
                .map(|e| field_u64(e, "dropped_samples"))
                .sum::<u64>()
                + never_queued_samples
                - taken_back,
            duplicates_acknowledged,
            ..Ledger::default()
        };
        for (&seq, &(times, samples)) in &applied {
            ledger.applied_samples += samples / times as u64;
            if times > 1 {
                ledger.applied_twice.push(seq);
            }
            if queued
                .get(&seq)
                .is_some_and(|&q| q != samples / times as u64)
            {
                ledger.applied_partly.push(seq);
            }
        }
        for (&seq, &samples) in &queued {
            match (applied.contains_key(&seq), dropped_by_range(seq)) {
                (true, _) => {}
                (false, true) => {
                    ledger.dropped_batches += 1;
                    ledger.dropped_samples += samples;
                }
                (false, false) if seq > newest_applied => ledger.still_queued += 1,
                (false, false) => ledger.lost.push(seq),
            }
        }
        ledger
    }

    /// True when nothing was applied twice or partly and nothing was lost silently.
    pub fn exact(&self) -> bool {
        self.applied_twice.is_empty() && self.applied_partly.is_empty() && self.lost.is_empty()
    }
}
