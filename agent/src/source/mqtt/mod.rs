//! The MQTT sensor source (first stage of the agent's flow): subscribes to sensor topics on a
//! broker and turns each message into samples by the declarative mapping of its `[[mqtt]]`
//! entry. [`config`] is the file format, [`mapping`] the pure payload → sample core, [`state`]
//! the sensors' freshness and the counters; this module is the thin task around `rumqttc`.
//!
//! One task per broker connection. A refused login, a broken payload or a dead broker is a
//! counted error and a rate-limited log line naming the source, never the end of the task: the
//! connection is retried with the shared backoff.

pub mod config;
pub mod mapping;
pub mod state;

use super::Collection;
use config::MqttSourceConfig;
use faultline_daemon::log_limit::LogLimiter;
use faultline_daemon::mqtt::{BrokerError, failure_kind};
use faultline_wire::now_ms;
use mapping::TopicMap;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use state::SourceState;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Repeated log lines (same topic or failure kind) are written at most once per this interval.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// A `[[mqtt]]` entry that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A field of the entry is wrong; `field` is relative to the entry.
    #[error("field `{field}`: {message}")]
    Invalid {
        /// The field (`topics[0].target`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The broker settings or the files they name cannot be used.
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
}

/// Checks an entry and compiles its topic mappings (pure, no I/O).
pub fn compile(config: &MqttSourceConfig) -> Result<Vec<TopicMap>, SetupError> {
    let invalid = |field: String, message: String| SetupError::Invalid { field, message };
    if config.id.trim().is_empty() {
        return Err(invalid("id".into(), "must not be empty".into()));
    }
    config.broker.validate().map_err(|e| match e {
        BrokerError::Invalid { field, message } => invalid(format!("broker.{field}"), message),
        other => SetupError::Broker(other),
    })?;
    if config.stale_after < Duration::from_secs(1) {
        return Err(invalid("stale_after".into(), "must be at least 1s".into()));
    }
    if config.health_interval < Duration::from_millis(100) {
        return Err(invalid(
            "health_interval".into(),
            "must be at least 100ms".into(),
        ));
    }
    if config.topics.is_empty() {
        return Err(invalid(
            "topics".into(),
            "at least one topic is needed".into(),
        ));
    }
    config
        .topics
        .iter()
        .enumerate()
        .map(|(i, topic)| {
            TopicMap::compile(topic)
                .map_err(|(field, message)| invalid(format!("topics[{i}].{field}"), message))
        })
        .collect()
}

/// One broker connection of the MQTT sensor source, ready to run.
pub struct MqttSource {
    config: MqttSourceConfig,
    options: MqttOptions,
    state: SourceState,
}

impl MqttSource {
    /// Compiles the mapping and reads the password and TLS files; the client id defaults to
    /// `faultline-<agent>-<id>`.
    pub fn new(config: MqttSourceConfig, agent: &str) -> Result<Self, SetupError> {
        let maps = compile(&config)?;
        let options = config
            .broker
            .options(&format!("faultline-{agent}-{}", config.id))?;
        let stale_ms = i64::try_from(config.stale_after.as_millis()).unwrap_or(i64::MAX);
        Ok(Self {
            state: SourceState::new(&config.id, maps, stale_ms),
            options,
            config,
        })
    }

    /// Runs until `tx`'s receiver is gone: keeps the connection up (re-subscribing after every
    /// reconnect), sends each message's samples, and the health samples every `health_interval`.
    pub async fn run(self, tx: mpsc::Sender<Collection>) {
        let Self {
            config,
            options,
            mut state,
        } = self;
        let id = config.id.as_str();
        let filters = state.filters();
        let (client, mut events) = AsyncClient::new(options, filters.len() + 10);
        let backoff = config.broker.backoff();
        let mut failures = 0u32;
        let mut retry_at: Option<Instant> = None;
        let mut health = tokio::time::interval(config.health_interval);
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut payload_logs: LogLimiter<String> = LogLimiter::new(LOG_EVERY, 1000);
        let mut failure_logs: LogLimiter<&'static str> = LogLimiter::new(LOG_EVERY, 16);
        loop {
            let samples = tokio::select! {
                _ = health.tick() => state.health(now_ms()),
                () = tokio::time::sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {
                    retry_at = None;
                    continue;
                }
                event = events.poll(), if retry_at.is_none() => match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        failures = 0;
                        state.set_connected(true);
                        tracing::info!(source = id, broker = %config.broker.address, ?filters, "MQTT connected; subscribing");
                        for filter in &filters {
                            if let Err(e) = client.try_subscribe(filter, QoS::AtMostOnce) {
                                tracing::error!(source = id, filter, error = %e, "cannot subscribe");
                            }
                        }
                        continue;
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
                            state.count_error("subscribe_refused");
                            if let Some(held_back) = failure_logs.check(&"subscribe_refused", std::time::Instant::now()) {
                                tracing::warn!(source = id, held_back, "the broker refused a subscription (ACL?)");
                            }
                        }
                        continue;
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let got = state.on_message(&publish.topic, &publish.payload, now_ms());
                        for error in &got.errors {
                            if let Some(held_back) = payload_logs.check(&publish.topic, std::time::Instant::now()) {
                                tracing::warn!(source = id, topic = %publish.topic, %error, held_back, "MQTT payload not as the mapping expects");
                            }
                        }
                        got.samples
                    }
                    Ok(_) => continue,
                    Err(error) => {
                        state.set_connected(false);
                        let kind = failure_kind(&error);
                        state.count_error(kind);
                        failures = failures.saturating_add(1);
                        let delay = backoff.delay(failures, rand::random::<f64>());
                        if let Some(held_back) = failure_logs.check(&kind, std::time::Instant::now()) {
                            tracing::warn!(source = id, broker = %config.broker.address, kind, %error, held_back, retry_in = ?delay, "MQTT connection failed");
                        }
                        retry_at = Some(Instant::now() + delay);
                        continue;
                    }
                },
            };
            if samples.is_empty() {
                continue;
            }
            if tx.send(samples).await.is_err() {
                tracing::debug!(source = id, "sample channel closed; MQTT source ends");
                return;
            }
        }
    }
}
