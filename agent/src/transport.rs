//! The transport: last stage of the agent's flow (`source → batcher → outbox → transport`).
//!
//! Pushes the oldest outbox record to the collector over HTTP(S) with the agent's bearer token,
//! one request in flight, and acknowledges the record in the outbox only after the collector has
//! applied it. Retry policy follows Prometheus remote-write: connection errors, 5xx and 429 are
//! retried with capped exponential backoff and jitter (honouring `Retry-After`); any other 4xx
//! means the batch can never be accepted, so it is dropped and counted.

use crate::config::PushConfig;
use crate::help::HelpBook;
use crate::outbox::OutboxHandle;
use crate::stats::AgentStats;
use anyhow::Context;
use faultline_daemon::backoff::Backoff;
use faultline_daemon::process::ProcessProbe;
use faultline_daemon::reload::Live;
use faultline_wire::{AgentHealth, Batch, PUSH_PATH, Sample, codec};
use std::sync::Arc;
use std::time::Duration;

/// What to do after one push attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The collector applied (or had already applied) the batch.
    Acknowledged,
    /// Transient failure: try the same batch again later.
    Retry,
    /// Permanent rejection: the batch will never be accepted.
    Reject,
}

/// Classifies an HTTP status (`None` = no response: connect error or timeout).
pub fn classify(status: Option<u16>) -> Outcome {
    match status {
        Some(200..=299) => Outcome::Acknowledged,
        None | Some(429) | Some(500..=599) => Outcome::Retry,
        Some(_) => Outcome::Reject,
    }
}

/// The retry schedule of pushes: doubling from `push.min_backoff` up to `push.max_backoff`, each
/// delay spread ±50 % at random so agents coming back from one outage do not retry in step.
pub fn push_backoff(config: &PushConfig) -> Backoff {
    Backoff {
        initial: config.min_backoff,
        max: config.max_backoff,
        multiplier: 2.0,
        jitter: 0.5,
    }
}

/// The HTTP client side of the push protocol.
pub struct Pusher {
    client: reqwest::Client,
    url: String,
    token: String,
    agent: String,
    config: PushConfig,
}

impl Pusher {
    /// Builds the HTTP client (TLS trust and client identity from config) and reads the token.
    pub fn new(agent: &str, config: &PushConfig) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("faultline-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.ca_file {
            let pem =
                std::fs::read(ca).with_context(|| format!("push.ca_file {}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("push.ca_file {}: not a PEM certificate", ca.display()))?;
            builder = builder.tls_certs_only(certs);
        }
        if let (Some(cert), Some(key)) = (&config.client_cert_file, &config.client_key_file) {
            let mut pem = std::fs::read(cert)
                .with_context(|| format!("push.client_cert_file {}", cert.display()))?;
            pem.extend(
                std::fs::read(key)
                    .with_context(|| format!("push.client_key_file {}", key.display()))?,
            );
            let identity = reqwest::Identity::from_pem(&pem)
                .context("push.client_cert_file/client_key_file: not a PEM certificate and key")?;
            builder = builder.identity(identity);
        }
        let token =
            faultline_daemon::credential(config.token.as_ref(), config.token_file.as_deref())
                .context("push.token / push.token_file")?
                .expose()
                .to_string();
        Ok(Self {
            client: builder.build().context("building the HTTP client")?,
            url: format!("{}{PUSH_PATH}", config.url.trim_end_matches('/')),
            token,
            agent: agent.to_string(),
            config: config.clone(),
        })
    }

    /// One attempt: returns the outcome, an optional server-requested delay and a reason for logs.
    async fn attempt(&self, body: Vec<u8>) -> (Outcome, Option<Duration>, String) {
        let result = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, faultline_wire::CONTENT_TYPE)
            .header(
                reqwest::header::CONTENT_ENCODING,
                faultline_wire::CONTENT_ENCODING,
            )
            .header(
                faultline_wire::SENT_AT_HEADER,
                faultline_wire::now_ms().to_string(),
            )
            .body(body)
            .send()
            .await;
        match result {
            Err(e) => (
                classify(None),
                None,
                format!("request failed: {}", faultline_daemon::with_causes(&e)),
            ),
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = response.text().await.unwrap_or_default();
                let reason = format!(
                    "HTTP {status}: {}",
                    text.chars().take(300).collect::<String>()
                );
                (classify(Some(status)), retry_after, reason)
            }
        }
    }

    /// Runs forever: drains the outbox to the collector, each batch with the help of its
    /// families from `help` and the agent's health (outbox, counters, version, process).
    pub async fn run(self, outbox: OutboxHandle, stats: Arc<AgentStats>, help: Live<HelpBook>) {
        let mut failures = 0u32;
        let mut process = ProcessProbe::default();
        loop {
            let (record, batch) = next_batch(
                &outbox,
                &stats,
                &self.agent,
                &help.get(),
                &mut process,
                self.config.max_backoff,
            )
            .await;
            let (outcome, retry_after, reason) = self.attempt(codec::encode(&batch)).await;
            let update = match outcome {
                Outcome::Acknowledged => {
                    failures = 0;
                    tracing::debug!(
                        seq = record.seq,
                        samples = record.sample_count,
                        "batch acknowledged"
                    );
                    outbox.ack(record.seq).await
                }
                Outcome::Reject => {
                    failures = 0;
                    tracing::error!(seq = record.seq, samples = record.sample_count, %reason,
                        "collector rejected the batch permanently; dropped");
                    outbox.discard(record.seq).await
                }
                Outcome::Retry => {
                    failures = failures.saturating_add(1);
                    let delay = push_backoff(&self.config).delay(failures, rand::random::<f64>());
                    let delay = retry_after.map_or(delay, |r| r.min(self.config.max_backoff));
                    tracing::warn!(seq = record.seq, %reason, retry_in = ?delay, "push failed; will retry");
                    tokio::time::sleep(delay).await;
                    Ok(())
                }
            };
            if let Err(e) = update {
                tracing::error!(error = %e, "cannot update the outbox");
            }
        }
    }
}

/// The oldest outbox record, and it as a [`Batch`] for any transport: the help of its families
/// from `help` and the agent's health (outbox, counters, version, `process`); waits while the
/// outbox is empty. An undecodable record is dropped (logged); a failing outbox is retried every
/// `retry`.
pub async fn next_batch(
    outbox: &OutboxHandle,
    stats: &AgentStats,
    agent: &str,
    help: &HelpBook,
    process: &mut ProcessProbe,
    retry: Duration,
) -> (crate::outbox::Record, Batch) {
    loop {
        let record = match outbox.oldest().await {
            Ok(Some(record)) => record,
            Ok(None) => {
                outbox.wait_for_more().await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox; retrying");
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        let samples: Vec<Sample> = match codec::decode(&record.payload, usize::MAX >> 1) {
            Ok(samples) => samples,
            Err(e) => {
                tracing::error!(seq = record.seq, error = %e, "outbox record undecodable; dropped");
                if let Err(e) = outbox.discard(record.seq).await {
                    tracing::error!(error = %e, "cannot update the outbox");
                }
                continue;
            }
        };
        let (epoch, health) = match outbox.status().await {
            Ok((epoch, depth, counters)) => (
                epoch,
                AgentHealth {
                    outbox_bytes: depth.bytes,
                    outbox_batches: depth.records,
                    dropped_samples: counters.dropped_samples + stats.dropped_samples(),
                    torn_records: counters.torn_records,
                    poll_errors: stats.poll_errors(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    process: process.read(),
                    config: Some(stats.reloads()),
                },
            ),
            Err(e) => {
                tracing::error!(error = %e, "cannot read outbox status");
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        let batch = Batch {
            agent: agent.to_string(),
            epoch,
            seq: record.seq,
            health,
            help: help.for_samples(&samples),
            samples,
        };
        return (record, batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_remote_write() {
        let cases = [
            (Some(200), Outcome::Acknowledged),
            (Some(204), Outcome::Acknowledged),
            (None, Outcome::Retry),
            (Some(429), Outcome::Retry),
            (Some(500), Outcome::Retry),
            (Some(503), Outcome::Retry),
            (Some(400), Outcome::Reject),
            (Some(401), Outcome::Reject),
            (Some(413), Outcome::Reject),
            (Some(404), Outcome::Reject),
        ];
        for (status, want) in cases {
            assert_eq!(classify(status), want, "{status:?}");
        }
    }

    #[test]
    fn push_backoff_doubles_from_min_to_max_with_spread() {
        let mut config = crate::config::PushConfig {
            url: "http://127.0.0.1:1".into(),
            token: None,
            token_file: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            timeout: Duration::from_secs(1),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            mqtt: None,
        };
        let ms =
            |c: &PushConfig, failures, random| push_backoff(c).delay(failures, random).as_millis();
        // (failures, random, ms): ±50 % around 100 ms × 2^(failures−1), never above 5 s.
        let cases = [
            (1, 0.5, 100),
            (1, 0.0, 50),
            (1, 1.0, 150),
            (4, 0.5, 800),
            (20, 1.0, 5000),
            (20, 0.0, 2500),
        ];
        for (failures, random, want) in cases {
            assert_eq!(ms(&config, failures, random), want, "{failures} {random}");
        }
        config.max_backoff = config.min_backoff;
        assert_eq!(ms(&config, 9, 1.0), 100);
    }
}
