//! MQTT ingest: the collector's second entrance (`MQTT → ingest → series store / rules`), for
//! agents that push through a broker. Subscribes to every agent's batch topic with QoS 1 on a
//! persistent session (a shared subscription when `[mqtt] shared_group` is set, so several
//! collectors can split the agents) and hands each message to the same [`Ingest`] as an HTTP
//! push: authenticated by the agent's token, applied once by its sequence number. A message is
//! acknowledged to the broker only once it is applied (or refused for good), so a collector
//! that stops in between gets it again.

use crate::http::App;
use crate::ingest::Ingest;
use crate::telemetry::Rejection;
use faultline_daemon::log_limit::LogLimiter;
use faultline_daemon::mqtt::{BrokerConfig, failure_kind};
use rumqttc::{AsyncClient, Event, Packet, Publish, QoS};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// `[mqtt]`: receive agents' batches from a broker, besides HTTP.
///
/// ```toml
/// [mqtt]
/// shared_group = "collectors"     # optional: share the agents among several collectors
/// [mqtt.broker]
/// address = "mqtt.example.net:8883"
/// tls = true
/// username = "collector"
/// password_file = "/etc/faultline/mqtt.pass"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttIngestConfig {
    /// The broker (client id default: `faultline-collector`; give each collector its own).
    pub broker: BrokerConfig,
    /// Subscribe through the shared subscription `$share/<group>/…`, so a broker cluster
    /// delivers each agent's batch to one collector of the group.
    #[serde(default)]
    pub shared_group: Option<String>,
}

/// Largest MQTT packet accepted beyond the push body limit: the token line.
const TOKEN_ALLOWANCE: usize = 4096;
/// Delay before applying a message again after a transient refusal (store busy or failing).
const RETRY_APPLY: Duration = Duration::from_millis(500);

/// Runs until the process ends: keeps the subscription up and applies every batch message.
pub async fn run(config: MqttIngestConfig, app: Arc<App>) -> anyhow::Result<()> {
    let mut options = config.broker.options("faultline-collector")?;
    options.set_clean_session(false);
    options.set_manual_acks(true);
    let max = app.ingest.config().max_body_bytes + TOKEN_ALLOWANCE;
    options.set_max_packet_size(max, 4096);
    let filter = faultline_wire::mqtt::batch_filter(config.shared_group.as_deref());
    let (client, mut events) = AsyncClient::new(options, 10);
    let backoff = config.broker.backoff();
    let mut failures = 0u32;
    let mut logs: LogLimiter<&'static str> = LogLimiter::new(Duration::from_secs(60), 16);
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                failures = 0;
                tracing::info!(broker = %config.broker.address, %filter, session_present = ack.session_present, "MQTT ingest connected");
                client.subscribe(&filter, QoS::AtLeastOnce).await?;
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                apply(&app.ingest, &publish).await;
                client.ack(&publish).await?;
            }
            Ok(_) => {}
            Err(error) => {
                failures = failures.saturating_add(1);
                let delay = backoff.delay(failures, rand::random::<f64>());
                let kind = failure_kind(&error);
                if let Some(held_back) = logs.check(&kind, std::time::Instant::now()) {
                    tracing::warn!(broker = %config.broker.address, kind, %error, held_back, retry_in = ?delay, "MQTT ingest connection failed");
                }
                tokio::time::sleep_until(Instant::now() + delay).await;
            }
        }
    }
}

/// Applies one message through ingest; returns once it is applied or refused for good (retrying
/// transient refusals in place, so the broker is acknowledged only after that).
async fn apply(ingest: &Ingest, publish: &Publish) {
    let peer = format!("mqtt:{}", publish.topic);
    let telemetry = ingest.telemetry();
    let Some(topic_agent) = faultline_wire::mqtt::agent_of_topic(&publish.topic) else {
        telemetry.reject(&Rejection::Invalid("not a batch topic".into()), None, &peer);
        return;
    };
    let Some((token, body)) = faultline_wire::mqtt::decode_message(&publish.payload) else {
        telemetry.reject(&Rejection::Unauthorized, Some(topic_agent), &peer);
        return;
    };
    let bearer = [b"Bearer ".as_slice(), token].concat();
    let agent = match ingest.authenticate(Some(&bearer)) {
        Ok(agent) => agent,
        Err(rejection) => {
            telemetry.reject(&rejection, Some(topic_agent), &peer);
            return;
        }
    };
    if *agent.id != *topic_agent {
        let rejection = Rejection::Invalid(format!(
            "topic names agent `{topic_agent}`, the token another"
        ));
        telemetry.reject(&rejection, Some(&agent.id), &peer);
        return;
    }
    if body.len() > ingest.config().max_body_bytes {
        telemetry.reject(
            &Rejection::TooLarge(format!("{} bytes", body.len())),
            Some(&agent.id),
            &peer,
        );
        return;
    }
    loop {
        match ingest.push(&agent, body, None).await {
            Ok(ack) => {
                tracing::debug!(agent = %agent.id, seq = ack.seq, applied = ack.applied, duplicate = ack.duplicate, "MQTT batch applied");
                return;
            }
            Err(rejection @ (Rejection::Overloaded | Rejection::Unavailable(_))) => {
                telemetry.reject(&rejection, Some(&agent.id), &peer);
                tokio::time::sleep(RETRY_APPLY).await;
            }
            Err(rejection) => {
                telemetry.reject(&rejection, Some(&agent.id), &peer);
                return;
            }
        }
    }
}
