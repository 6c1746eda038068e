//! Ingest: the first stage of the collector's flow (`ingest → series store → /metrics`, and
//! `ingest → rules`). Turns an authenticated push body into applied samples, exactly once per
//! batch: decode with bounded expansion, validate against the limits, skip batches already applied
//! (per-agent cursor), judge each sample's labels against the label limits and its timestamp
//! against the collector's clock ([`faultline_wire::judge_samples`]), re-target a device's port
//! samples to their inventory interface targets (with the target's labels and role, as the rules
//! see them), apply to the series store (which refuses new series past its limits), hand the
//! accepted samples to the remote-write sender's durable queue when configured
//! ([`crate::remote_write_out`]) and to the rules stage ([`Accepted`], bounded channel) and wait
//! until they are judged, make the cursor durable, then acknowledge, listing the refused samples.
//!
//! Judged before acknowledged: a collector killed anywhere before the cursor is durable has not
//! acknowledged the batch, so its agent sends it again and the rules judge it on the state they
//! stored (`faultline_incidents::eval::SeriesMemory`); a batch judged twice that way is not judged
//! twice in effect (the rules ignore samples not newer than what they judged). A refused sample
//! reaches neither the series store nor the rules; its batch is still acknowledged, so the agent
//! does not retry it. The agent's clock offset is measured here from its send-time header.

use crate::agents::{AgentRegistry, AgentState};
use crate::config::IngestConfig;
use crate::cursors::{Cursor, CursorStore};
use crate::remote_write_out::Forwarder;
use crate::series::{ApplyOutcome, SharedSeries};
use crate::telemetry::{Rejection, Telemetry};
use faultline_daemon::reload::Live;
use faultline_incidents::Inventory;
use faultline_wire::codec::{self, DecodeError};
use faultline_wire::{Batch, MAX_LISTED_REJECTIONS, PushAck, RejectedSample, Sample, TimeWindow};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

/// What ingest hands downstream (to the rules stage): the samples of one applied batch, in the
/// agent's order.
#[derive(Debug)]
pub struct Accepted {
    /// The agent that pushed them.
    pub agent: Arc<str>,
    /// The samples, as validated.
    pub samples: Arc<Vec<Sample>>,
    /// Answered once the rules have judged the samples and stored what a restart must recall
    /// (or with why they could not be): only then is the batch's cursor committed and the batch
    /// acknowledged, so no acknowledged sample escapes the rules.
    pub judged: oneshot::Sender<Result<(), String>>,
}

/// Everything a push needs; shared by all connections.
pub struct Ingest {
    agents: Arc<AgentRegistry>,
    series: SharedSeries,
    cursors: CursorStore,
    config: IngestConfig,
    window: TimeWindow,
    telemetry: Arc<Telemetry>,
    permits: Arc<Semaphore>,
    downstream: Option<mpsc::Sender<Accepted>>,
    /// Re-targets a device's port samples to their interface targets (and adds target labels)
    /// before the series store, as the rules see them.
    inventory: Option<Live<Inventory>>,
    /// Queues every accepted sample for the remote-write store, before acknowledging.
    forward: Option<Forwarder>,
}

impl Ingest {
    /// Wires the stage; applied batches also go to `downstream` when given (a full channel slows
    /// pushes down rather than growing a queue).
    pub fn new(
        agents: Arc<AgentRegistry>,
        series: SharedSeries,
        cursors: CursorStore,
        config: IngestConfig,
        telemetry: Arc<Telemetry>,
        downstream: Option<mpsc::Sender<Accepted>>,
        inventory: Option<Live<Inventory>>,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(config.max_concurrent_pushes));
        Self {
            agents,
            series,
            cursors,
            window: config.time_window(),
            config,
            telemetry,
            permits,
            downstream,
            inventory,
            forward: None,
        }
    }

    /// Also forwards every accepted sample to a remote-write store ([`crate::remote_write_out`]).
    pub fn with_forward(mut self, forward: Option<Forwarder>) -> Self {
        self.forward = forward;
        self
    }

    /// The limits in force (the HTTP layer enforces the body size).
    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// The collector's own metrics.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Takes a processing slot, or refuses at once when all are busy (never queues without bound).
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, Rejection> {
        self.permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Rejection::Overloaded)
    }

    /// Finds the agent of an `Authorization: Bearer …` header value.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Arc<AgentState>, Rejection> {
        let token = authorization
            .and_then(|v| v.strip_prefix(b"Bearer "))
            .ok_or(Rejection::Unauthorized)?;
        self.agents
            .authenticate(token)
            .ok_or(Rejection::Unauthorized)
    }

    /// Decodes, validates and applies one push from `agent`; `sent_at_ms` is the agent's clock at
    /// sending ([`faultline_wire::SENT_AT_HEADER`]), when it said.
    pub async fn push(
        &self,
        agent: &AgentState,
        body: &[u8],
        sent_at_ms: Option<i64>,
    ) -> Result<PushAck, Rejection> {
        let started = Instant::now();
        let batch: Batch =
            codec::decode(body, self.config.max_decoded_bytes).map_err(|e| match e {
                DecodeError::TooLarge { .. } => Rejection::TooLarge(e.to_string()),
                DecodeError::Compression(_) | DecodeError::Json { .. } => {
                    Rejection::Malformed(e.to_string())
                }
            })?;
        if *batch.agent != *agent.id {
            return Err(Rejection::Invalid(format!(
                "agent: batch says `{}` but the token belongs to another agent",
                batch.agent.chars().take(64).collect::<String>()
            )));
        }
        self.config
            .limits
            .check_batch(&batch)
            .map_err(|e| Rejection::Invalid(e.to_string()))?;

        let mut cursor = agent.cursor.lock().await;
        let now = faultline_wire::now_ms();
        let clock_offset_ms = sent_at_ms.map(|sent| sent.saturating_sub(now));
        if let Some(offset) = clock_offset_ms {
            self.telemetry
                .check_clock_offset(&agent.id, offset, self.config.clock_offset_warn);
        }
        let seq = batch.seq;
        if cursor.is_some_and(|c| c.epoch == batch.epoch && seq <= c.seq) {
            agent.report(batch.health, now, seq, clock_offset_ms);
            self.telemetry
                .count_accepted(&agent.id, seq, None, started.elapsed());
            return Ok(PushAck {
                seq,
                applied: 0,
                duplicate: true,
                rejected_count: 0,
                rejected: Vec::new(),
            });
        }
        let next = Cursor {
            epoch: batch.epoch,
            seq,
        };
        let Applied {
            outcome,
            mut rejected,
        } = self
            .apply(&agent.id, seq, batch.samples, &batch.help, now)
            .await?;
        self.cursors
            .commit(&agent.id, next, now)
            .await
            .map_err(|e| Rejection::Unavailable(e.to_string()))?;
        *cursor = Some(next);
        if !rejected.is_empty() {
            self.telemetry
                .count_refused_samples(&agent.id, seq, &rejected);
        }
        agent.report(batch.health, now, seq, clock_offset_ms);
        self.telemetry
            .count_accepted(&agent.id, seq, Some(outcome), started.elapsed());
        let rejected_count = rejected.len() as u64;
        rejected.truncate(MAX_LISTED_REJECTIONS);
        Ok(PushAck {
            seq,
            applied: outcome.applied,
            duplicate: false,
            rejected_count,
            rejected,
        })
    }

    /// Applies samples from a source without batch sequence numbers (Prometheus remote write,
    /// [`crate::remote_write`]), attributed to `source`'s agent entry: judged, re-targeted,
    /// applied to the series store and judged by the rules like a batch, but with no cursor (a
    /// request the sender retries is applied again, which is harmless: the series store and the
    /// rules keep only what is newer). Out-of-order samples count as superseded.
    pub async fn push_samples(
        &self,
        source: &AgentState,
        samples: Vec<Sample>,
        help: &BTreeMap<String, String>,
    ) -> Result<Applied, Rejection> {
        let started = Instant::now();
        let now = faultline_wire::now_ms();
        let applied = self.apply(&source.id, 0, samples, help, now).await?;
        if !applied.rejected.is_empty() {
            self.telemetry
                .count_refused_samples(&source.id, 0, &applied.rejected);
        }
        self.telemetry
            .count_accepted(&source.id, 0, Some(applied.outcome), started.elapsed());
        Ok(applied)
    }

    /// The common path of every source: judges `samples` (label limits, time window), re-targets
    /// them through the inventory, applies them to the series store (with `help`), and hands the
    /// accepted ones to the rules, waiting until they are judged.
    async fn apply(
        &self,
        source: &Arc<str>,
        seq: u64,
        mut samples: Vec<Sample>,
        help: &BTreeMap<String, String>,
        now: i64,
    ) -> Result<Applied, Rejection> {
        let mut rejected = Vec::new();
        faultline_wire::judge_samples(
            &self.config.limits,
            &self.window,
            &samples,
            now,
            &mut rejected,
        );
        if let Some(inventory) = self.inventory.as_ref().map(Live::get) {
            for sample in &mut samples {
                if let Cow::Owned(resolved) = inventory.resolve(sample) {
                    *sample = resolved;
                }
            }
        }
        let outcome = {
            let mut series = self.series.write().unwrap_or_else(|p| p.into_inner());
            let outcome = series.apply(source, &samples, now, &mut rejected);
            series.describe(help);
            outcome
        };
        if !rejected.is_empty() {
            keep_accepted(&mut samples, &rejected);
        }
        if let Some(forward) = &self.forward {
            forward
                .append(source, &samples)
                .await
                .map_err(Rejection::Unavailable)?;
        }
        if let Some(downstream) = &self.downstream {
            judge(downstream, source, seq, samples).await?;
        }
        Ok(Applied { outcome, rejected })
    }
}

/// What applying one set of samples did.
#[derive(Debug, Default)]
pub struct Applied {
    /// The series store's counts.
    pub outcome: ApplyOutcome,
    /// The samples refused, in index order.
    pub rejected: Vec<RejectedSample>,
}

/// Hands batch `seq` of `agent` to the rules stage and waits until it is judged; a batch the
/// rules could not judge is not acknowledged (503: the agent sends it again).
async fn judge(
    downstream: &mpsc::Sender<Accepted>,
    agent: &Arc<str>,
    seq: u64,
    samples: Vec<Sample>,
) -> Result<(), Rejection> {
    let (judged, verdict) = oneshot::channel();
    let accepted = Accepted {
        agent: Arc::clone(agent),
        samples: Arc::new(samples),
        judged,
    };
    let stopped = || Rejection::Unavailable("the rules stage has stopped".to_string());
    downstream.send(accepted).await.map_err(|_| stopped())?;
    match verdict.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => {
            tracing::warn!(%agent, seq, error = %why, "batch not acknowledged: the rules could not store what they judged");
            Err(Rejection::Unavailable(why))
        }
        Err(_) => Err(stopped()),
    }
}

/// Removes the `rejected` samples (given in index order) from `samples`, keeping the order.
fn keep_accepted(samples: &mut Vec<Sample>, rejected: &[RejectedSample]) {
    let mut refused = rejected.iter().map(|r| r.index as usize).peekable();
    let mut index = 0;
    samples.retain(|_| {
        let keep = refused.peek() != Some(&index);
        if !keep {
            refused.next();
        }
        index += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_wire::{RejectReason, SampleKind};

    #[test]
    fn refused_samples_are_removed_in_order() {
        let samples = |n: usize| -> Vec<Sample> {
            (0..n)
                .map(|i| Sample {
                    metric: "m".into(),
                    target: format!("t{i}"),
                    labels: Default::default(),
                    value: 0.0,
                    ts_ms: 1,
                    kind: SampleKind::Gauge,
                })
                .collect()
        };
        let cases: [(&[u32], &[&str]); 4] = [
            (&[], &["t0", "t1", "t2", "t3"]),
            (&[0], &["t1", "t2", "t3"]),
            (&[1, 3], &["t0", "t2"]),
            (&[0, 1, 2, 3], &[]),
        ];
        for (refused, want) in cases {
            let rejected: Vec<RejectedSample> = refused
                .iter()
                .map(|&index| RejectedSample {
                    index,
                    reason: RejectReason::TooOld,
                })
                .collect();
            let mut kept = samples(4);
            keep_accepted(&mut kept, &rejected);
            let targets: Vec<&str> = kept.iter().map(|s| s.target.as_str()).collect();
            assert_eq!(targets, want, "refused {refused:?}");
        }
    }
}
