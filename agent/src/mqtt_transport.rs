//! The MQTT transport: last stage of the agent's flow (`source → batcher → outbox → transport`)
//! for gateways behind NAT or on unreliable links, used instead of HTTP when `[push.mqtt]` is set.
//!
//! Publishes the oldest outbox record to `faultline/v1/agents/<id>/batches` with QoS 1 on a
//! persistent session (`clean_session = false`), one message in flight, and acknowledges the
//! record in the outbox only when the broker has acknowledged that very message (PUBACK with
//! its packet id): the broker then holds it for the collector's persistent subscription. A
//! broker restart or a dropped connection re-sends the message (or, when the broker lost the
//! session, publishes the record again); the collector applies each batch once by its sequence
//! number, as with HTTP.

use crate::config::PushConfig;
use crate::help::HelpBook;
use crate::outbox::OutboxHandle;
use crate::stats::AgentStats;
use crate::transport::next_batch;
use anyhow::Context;
use faultline_daemon::log_limit::LogLimiter;
use faultline_daemon::mqtt::{BrokerConfig, failure_kind};
use faultline_daemon::process::ProcessProbe;
use faultline_daemon::reload::Live;
use faultline_wire::codec;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Largest MQTT packet sent or received: a full batch with the token.
const MAX_PACKET_BYTES: usize = 64 * 1024 * 1024;

/// The MQTT client side of the push protocol.
pub struct MqttPusher {
    options: MqttOptions,
    broker: BrokerConfig,
    agent: String,
    token: String,
    retry: Duration,
}

/// The message in flight: its outbox record and, once sent, its MQTT packet id.
struct InFlight {
    seq: u64,
    pkid: Option<u16>,
}

impl MqttPusher {
    /// Builds the client options (persistent session, credentials, TLS) and reads the token.
    pub fn new(agent: &str, push: &PushConfig, broker: &BrokerConfig) -> anyhow::Result<Self> {
        let mut options = broker
            .options(&format!("faultline-agent-{agent}"))
            .context("push.mqtt")?;
        options.set_clean_session(false);
        options.set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
        let token = faultline_daemon::credential(push.token.as_ref(), push.token_file.as_deref())
            .context("push.token / push.token_file")?
            .expose()
            .to_string();
        Ok(Self {
            options,
            broker: broker.clone(),
            agent: agent.to_string(),
            token,
            retry: push.max_backoff,
        })
    }

    /// Runs forever: drains the outbox to the broker, each batch with the help of its families
    /// from `help` and the agent's health.
    pub async fn run(self, outbox: OutboxHandle, stats: Arc<AgentStats>, help: Live<HelpBook>) {
        let mut process = ProcessProbe::default();
        let topic = faultline_wire::mqtt::batch_topic(&self.agent);
        let (client, mut events) = AsyncClient::new(self.options.clone(), 10);
        let backoff = self.broker.backoff();
        let mut failures = 0u32;
        let mut retry_at: Option<Instant> = None;
        let mut connected = false;
        let mut in_flight: Option<InFlight> = None;
        let mut logs: LogLimiter<&'static str> = LogLimiter::new(Duration::from_secs(60), 16);
        loop {
            let book = help.get();
            tokio::select! {
                () = tokio::time::sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {
                    retry_at = None;
                }
                event = events.poll(), if retry_at.is_none() => match event {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        connected = true;
                        failures = 0;
                        if !ack.session_present {
                            // The broker has no session: the message in flight is gone with it.
                            in_flight = None;
                        }
                        tracing::info!(broker = %self.broker.address, session_present = ack.session_present, %topic, "MQTT transport connected");
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        if let Some(flight) = in_flight.as_mut().filter(|f| f.pkid.is_none()) {
                            flight.pkid = Some(pkid);
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        if let Some(flight) = in_flight.take_if(|f| f.pkid == Some(ack.pkid)) {
                            tracing::debug!(seq = flight.seq, "batch acknowledged by the broker");
                            if let Err(e) = outbox.ack(flight.seq).await {
                                tracing::error!(error = %e, "cannot update the outbox");
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        connected = false;
                        failures = failures.saturating_add(1);
                        let delay = backoff.delay(failures, rand::random::<f64>());
                        let kind = failure_kind(&error);
                        if let Some(held_back) = logs.check(&kind, std::time::Instant::now()) {
                            tracing::warn!(broker = %self.broker.address, kind, %error, held_back, retry_in = ?delay, "MQTT transport connection failed; batches wait in the outbox");
                        }
                        retry_at = Some(Instant::now() + delay);
                    }
                },
                (record, batch) = next_batch(&outbox, &stats, &self.agent, &book, &mut process, self.retry), if connected && in_flight.is_none() => {
                    let payload = faultline_wire::mqtt::encode_message(&self.token, &codec::encode(&batch));
                    match client.try_publish(&topic, QoS::AtLeastOnce, false, payload) {
                        Ok(()) => in_flight = Some(InFlight { seq: record.seq, pkid: None }),
                        Err(e) => tracing::error!(seq = record.seq, error = %e, "cannot queue the batch for MQTT"),
                    }
                }
            }
        }
    }
}
