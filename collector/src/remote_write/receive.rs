//! The receiver's service between the HTTP edge ([`crate::http`], which authenticates, admits and
//! reads the body) and ingest: decodes a body ([`super::decode`]), hands the samples to
//! [`Ingest::push_samples`] and counts what was received and what was not taken, by reason.
//!
//! What senders expect: success (204) once the samples are applied and judged, also when some
//! were refused (too old, out of order, no target: counted, never retried); 400/413 for a body that
//! will never decode; 503 when the rules stage cannot take it now, so the sender retries.

use super::config::RemoteWriteConfig;
use super::decode::{self, DecodeError};
use crate::agents::AgentState;
use crate::ingest::Ingest;
use crate::telemetry::Rejection;
use faultline_daemon::log_limit::LogLimiter;
use faultline_wire::RejectReason;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Reason label of samples the series store kept out because a newer value was held (out of
/// order or duplicate).
const OUT_OF_ORDER: &str = "out_of_order";

/// The receiver: its mapping and its counters.
#[derive(Debug)]
pub struct Receiver {
    config: RemoteWriteConfig,
    received: Counter,
    rejected: Family<[(&'static str, &'static str); 1], Counter>,
    warnings: Mutex<LogLimiter<&'static str>>,
}

impl Receiver {
    /// A receiver mapping labels by `config`, its counters registered in `registry`.
    pub fn new(config: RemoteWriteConfig, registry: &mut Registry) -> Self {
        let receiver = Self {
            config,
            received: Counter::default(),
            rejected: Family::default(),
            warnings: Mutex::new(LogLimiter::new(Duration::from_secs(60), 64)),
        };
        let reasons = decode::Dropped::default()
            .by_reason()
            .map(|(reason, _)| reason)
            .into_iter()
            .chain([OUT_OF_ORDER])
            .chain(RejectReason::ALL.map(RejectReason::as_str));
        for reason in reasons {
            drop(receiver.rejected.get_or_create(&[("reason", reason)]));
        }
        registry.register(
            "faultline_remote_write_received_samples",
            "Samples in decoded remote-write requests (taken or not)",
            receiver.received.clone(),
        );
        registry.register(
            "faultline_remote_write_rejected",
            "Remote-write samples not taken, by reason (the request still succeeds; refused \
             requests count in faultline_collector_rejected_pushes_total)",
            receiver.rejected.clone(),
        );
        receiver
    }

    /// Decodes `body` (limits from ingest's config) and applies its samples as `source`'s.
    pub async fn receive(
        &self,
        ingest: &Ingest,
        source: &AgentState,
        body: &[u8],
    ) -> Result<(), Rejection> {
        let config = ingest.config();
        let request = decode::decode(body, config.max_decoded_bytes).map_err(|e| match e {
            DecodeError::TooLarge { .. } => Rejection::TooLarge(e.to_string()),
            DecodeError::Snappy(_) | DecodeError::Protobuf(_) => {
                Rejection::Malformed(e.to_string())
            }
        })?;
        let converted = decode::convert(&request, &self.config, &config.limits);
        let received = converted.samples.len() as u64 + converted.dropped.total();
        let applied = ingest
            .push_samples(source, converted.samples, &converted.help)
            .await?;
        self.received.inc_by(received);
        for (reason, count) in converted.dropped.by_reason() {
            self.count(reason, count);
        }
        self.count(OUT_OF_ORDER, applied.outcome.superseded);
        for refused in &applied.rejected {
            self.count(refused.reason.as_str(), 1);
        }
        if let Some(problem) = converted.first_invalid {
            let now = Instant::now();
            let held_back = self
                .warnings
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .check(&"invalid", now);
            if let Some(held_back) = held_back {
                tracing::warn!(agent = %source.id, %problem, held_back, "remote-write samples dropped");
            }
        }
        Ok(())
    }

    fn count(&self, reason: &'static str, n: u64) {
        if n > 0 {
            self.rejected.get_or_create(&[("reason", reason)]).inc_by(n);
        }
    }
}
