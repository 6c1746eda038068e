//! Remote-write sender: every sample ingest accepts (agent batches, MQTT, remote write) is
//! forwarded with its original timestamp to a Prometheus-compatible store (Prometheus with
//! `--web.enable-remote-write-receiver`, VictoriaMetrics, Mimir).
//!
//! Flow: `ingest → [`Forwarder`] → durable queue → [`send`] → store`. Ingest appends the
//! accepted samples, encoded as ready request bodies ([`encode`]), to an on-disk queue (the
//! agent's outbox design, `faultline_daemon::outbox`) before it acknowledges them, so a store
//! outage — or a collector restart during one — delays but loses nothing. The queue is bounded
//! (`max_queue_bytes`): past it the oldest bodies are dropped, counted in
//! `faultline_remote_write_out_dropped_samples_total`.

pub mod config;
pub mod encode;
pub mod send;

pub use config::RemoteWriteOutConfig;

use anyhow::Context;
use faultline_daemon::backoff::Backoff;
use faultline_daemon::outbox::{Outbox, OutboxHandle};
use faultline_wire::Sample;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use reqwest::header::HeaderValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Failure reasons, each counted from the start.
const FAILURE_REASONS: [&str; 5] = [
    "connection",
    "throttled",
    "server_error",
    "unexpected_status",
    "rejected",
];

/// The sender's instruments.
#[derive(Debug, Default)]
pub struct Metrics {
    sent: Counter,
    queue_bytes: Gauge,
    failures: Family<[(&'static str, &'static str); 1], Counter>,
    dropped: Counter,
    /// The queue's dropped-samples count last seen, so `dropped` follows it.
    dropped_seen: AtomicU64,
}

impl Metrics {
    fn register(self: &Arc<Self>, registry: &mut Registry) {
        for reason in FAILURE_REASONS {
            drop(self.failures.get_or_create(&[("reason", reason)]));
        }
        registry.register(
            "faultline_remote_write_out_samples",
            "Samples the remote-write store took",
            self.sent.clone(),
        );
        registry.register(
            "faultline_remote_write_out_queue_bytes",
            "Bytes waiting in the remote-write queue on disk",
            self.queue_bytes.clone(),
        );
        registry.register(
            "faultline_remote_write_out_failures",
            "Remote-write requests that failed, by reason (rejected: 4xx, dropped; the others are retried)",
            self.failures.clone(),
        );
        registry.register(
            "faultline_remote_write_out_dropped_samples",
            "Samples never delivered: queue full (oldest dropped), refused by the store (4xx) or unreadable",
            self.dropped.clone(),
        );
    }

    fn failure(&self, reason: &'static str) {
        self.failures.get_or_create(&[("reason", reason)]).inc();
    }

    /// Takes the queue's size and dropped count into the instruments.
    async fn observe(&self, outbox: &OutboxHandle) {
        if let Ok((_, depth, counters)) = outbox.status().await {
            self.queue_bytes
                .set(i64::try_from(depth.bytes).unwrap_or(i64::MAX));
            let before = self
                .dropped_seen
                .swap(counters.dropped_samples, Ordering::Relaxed);
            self.dropped
                .inc_by(counters.dropped_samples.saturating_sub(before));
        }
    }
}

/// Ingest's side of the sender: queues accepted samples durably.
#[derive(Clone)]
pub struct Forwarder {
    outbox: OutboxHandle,
    batch_size: usize,
    metrics: Arc<Metrics>,
}

impl Forwarder {
    /// Queues `samples` of `agent` (already accepted) as request bodies; returns once they are on
    /// disk. Err: the queue cannot be written (the caller does not acknowledge, so the source
    /// sends them again).
    pub async fn append(&self, agent: &str, samples: &[Sample]) -> Result<(), String> {
        for (body, count) in encode::bodies(agent, samples, self.batch_size) {
            self.outbox
                .append(body, count)
                .await
                .map_err(|e| format!("remote-write queue: {e}"))?;
        }
        if !samples.is_empty() {
            self.metrics.observe(&self.outbox).await;
        }
        Ok(())
    }
}

/// Opens the queue in `config.queue_dir` (recovering what a previous run left) and starts the
/// sender task; returns ingest's [`Forwarder`] and the task.
pub fn start(
    config: &RemoteWriteOutConfig,
    registry: &mut Registry,
) -> anyhow::Result<(Forwarder, tokio::task::JoinHandle<()>)> {
    let outbox = Outbox::open(&config.queue_dir, config.max_queue_bytes, true)
        .with_context(|| format!("remote_write_out.queue_dir {}", config.queue_dir.display()))?;
    let outbox = OutboxHandle::new(outbox);
    let authorization = authorization(config)?;
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .build()
        .context("remote_write_out: HTTP client")?;
    let target = send::Target {
        url: config.url.clone(),
        client,
        headers: send::headers(authorization),
        backoff: Backoff {
            initial: config.min_backoff,
            max: config.max_backoff,
            multiplier: 2.0,
            jitter: 0.2,
        },
    };
    let metrics = Arc::new(Metrics::default());
    metrics.register(registry);
    let task = tokio::spawn(send::run(outbox.clone(), target, metrics.clone()));
    Ok((
        Forwarder {
            outbox,
            batch_size: config.batch_size,
            metrics,
        },
        task,
    ))
}

/// The `Authorization` header value from the configured credential file, if any.
fn authorization(config: &RemoteWriteOutConfig) -> anyhow::Result<Option<HeaderValue>> {
    use base64::Engine;
    let value = if let Some(file) = &config.bearer_token_file {
        let token = faultline_daemon::read_secret_file(file)
            .context("remote_write_out.bearer_token_file")?;
        format!("Bearer {}", token.trim())
    } else if let Some(basic) = &config.basic_auth {
        let password = faultline_daemon::read_secret_file(&basic.password_file)
            .context("remote_write_out.basic_auth.password_file")?;
        let pair = format!("{}:{}", basic.username, password.trim());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    } else {
        return Ok(None);
    };
    HeaderValue::from_str(&value)
        .map(Some)
        .context("remote_write_out: the credential is not a valid header value")
}
