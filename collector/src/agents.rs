//! The agents allowed to push: token authentication, each agent's stream cursor and its latest
//! reported health (outbox, counters, version, process figures), exported at scrape time.
//!
//! Part of the ingest stage. Built once from config ([`AgentRegistry::build`] reads token files);
//! ingest authenticates each push here and serializes one agent's pushes on its cursor lock.

use crate::config::AgentEntry;
use crate::cursors::Cursor;
use crate::process::{ProcessRow, encode_process};
use anyhow::Context;
use faultline_wire::AgentHealth;
use faultline_wire::config_file::Secret;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;

/// Health last reported by an agent and when.
#[derive(Debug, Clone, Default)]
struct Reported {
    health: AgentHealth,
    last_seen_ms: Option<i64>,
    last_seq: u64,
    /// The agent's clock minus the collector's at its last push that said when it was sent.
    clock_offset_ms: Option<i64>,
}

/// One known agent.
#[derive(Debug)]
pub struct AgentState {
    /// The agent's id.
    pub id: Arc<str>,
    token: Vec<u8>,
    /// Last applied position of its stream; held for the whole apply-and-commit of a push so one
    /// agent's pushes are applied strictly one at a time.
    pub cursor: tokio::sync::Mutex<Option<Cursor>>,
    reported: Mutex<Reported>,
}

impl AgentState {
    /// Records the health carried by an accepted push of batch `seq`, and the agent's clock
    /// offset when the push carried its send time.
    pub fn report(&self, health: AgentHealth, now_ms: i64, seq: u64, clock_offset_ms: Option<i64>) {
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        reported.health = health;
        reported.last_seen_ms = Some(now_ms);
        reported.last_seq = reported.last_seq.max(seq);
        if clock_offset_ms.is_some() {
            reported.clock_offset_ms = clock_offset_ms;
        }
    }
}

/// All agents, looked up by token.
#[derive(Debug)]
pub struct AgentRegistry {
    agents: Vec<Arc<AgentState>>,
    stale_after_ms: i64,
}

impl AgentRegistry {
    /// Builds the registry from config, reading token files, with cursors restored from storage.
    pub fn build(
        entries: &[AgentEntry],
        mut cursors: HashMap<String, Cursor>,
        stale_after_ms: i64,
    ) -> anyhow::Result<Self> {
        let mut agents = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let token = read_token(
                &format!("agents[{i}]"),
                entry.token.as_ref(),
                entry.token_file.as_deref(),
            )?;
            agents.push(Arc::new(AgentState {
                id: Arc::from(entry.id.as_str()),
                token,
                cursor: tokio::sync::Mutex::new(cursors.remove(&entry.id)),
                reported: Mutex::new(Reported::default()),
            }));
        }
        Ok(Self {
            agents,
            stale_after_ms,
        })
    }

    /// The agent owning `token`; compares in constant time against every agent.
    pub fn authenticate(&self, token: &[u8]) -> Option<Arc<AgentState>> {
        let mut found = None;
        for agent in &self.agents {
            if bool::from(agent.token.as_slice().ct_eq(token)) {
                found = Some(agent.clone());
            }
        }
        found
    }

    /// The ids of all known agents.
    pub fn ids(&self) -> impl Iterator<Item = &Arc<str>> {
        self.agents.iter().map(|a| &a.id)
    }

    /// Number of known agents.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// True when no agent may push.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }
}

/// A bearer token from config: `token` itself, or the first line of `token_file`; `at` names the
/// config entry in errors (the token never appears in them).
pub fn read_token(
    at: &str,
    token: Option<&Secret>,
    token_file: Option<&Path>,
) -> anyhow::Result<Vec<u8>> {
    let secret = faultline_daemon::credential(token, token_file)
        .with_context(|| format!("{at}.token / {at}.token_file"))?;
    Ok(secret.expose().as_bytes().to_vec())
}

/// Exports every agent's health at scrape time.
#[derive(Debug)]
pub struct AgentHealthCollector(pub Arc<AgentRegistry>);

impl Collector for AgentHealthCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = faultline_wire::now_ms();
        let registry = &self.0;
        let snapshot: Vec<(&str, Reported)> = registry
            .agents
            .iter()
            .map(|a| {
                (
                    &*a.id,
                    a.reported.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                )
            })
            .collect();
        type Field = fn(&Reported, i64, i64) -> Option<f64>;
        let gauges: [(&str, &str, Field); 6] = [
            (
                "faultline_agent_up",
                "1 if the agent pushed within series.stale_after",
                |r, now, stale| {
                    Some(f64::from(u8::from(
                        r.last_seen_ms.is_some_and(|t| now - t <= stale),
                    )))
                },
            ),
            (
                "faultline_agent_last_seen_timestamp_seconds",
                "When the agent's last accepted push arrived",
                |r, _, _| r.last_seen_ms.map(|t| t as f64 / 1000.0),
            ),
            (
                "faultline_agent_outbox_bytes",
                "Bytes in the agent's on-disk outbox",
                |r, _, _| r.last_seen_ms.map(|_| r.health.outbox_bytes as f64),
            ),
            (
                "faultline_agent_last_applied_sequence",
                "Sequence number of the newest batch applied from the agent",
                |r, _, _| r.last_seen_ms.map(|_| r.last_seq as f64),
            ),
            (
                "faultline_agent_outbox_batches",
                "Batches waiting in the agent's outbox",
                |r, _, _| r.last_seen_ms.map(|_| r.health.outbox_batches as f64),
            ),
            (
                "faultline_agent_clock_offset_seconds",
                "The agent's clock minus the collector's, measured at its last push (includes the network delay)",
                |r, _, _| r.clock_offset_ms.map(|ms| ms as f64 / 1000.0),
            ),
        ];
        for (name, help, field) in gauges {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (id, reported) in &snapshot {
                if let Some(value) = field(reported, now, registry.stale_after_ms) {
                    metric
                        .encode_family(&[("agent", *id)])?
                        .encode_gauge(&value)?;
                }
            }
        }
        type Count = fn(&AgentHealth) -> u64;
        let counters: [(&str, &str, Count); 3] = [
            (
                "faultline_agent_dropped_samples",
                "Samples the agent dropped (outbox full, rejected, invalid)",
                |h| h.dropped_samples,
            ),
            (
                "faultline_agent_torn_records",
                "Damaged outbox records the agent skipped after a crash",
                |h| h.torn_records,
            ),
            (
                "faultline_agent_poll_errors",
                "Source polls that failed on the agent",
                |h| h.poll_errors,
            ),
        ];
        for (name, help, field) in counters {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (id, reported) in &snapshot {
                if reported.last_seen_ms.is_some() {
                    metric
                        .encode_family(&[("agent", *id)])?
                        .encode_counter::<NoLabelSet, u64, f64>(&field(&reported.health), None)?;
                }
            }
        }
        // The agent serves no HTTP: its config reloads, build and process figures travel in its
        // health.
        let mut reloads = encoder.encode_descriptor(
            "faultline_agent_config_reload",
            "The agent's config reloads on SIGHUP, by result (failed: it kept its running config)",
            None,
            MetricType::Counter,
        )?;
        let reported_reloads = || {
            snapshot
                .iter()
                .filter_map(|(id, r)| Some((*id, r.health.config?)))
        };
        for (id, config) in reported_reloads() {
            for (result, count) in [("ok", config.ok), ("failed", config.failed)] {
                reloads
                    .encode_family(&[("agent", id), ("result", result)])?
                    .encode_counter::<NoLabelSet, u64, f64>(&count, None)?;
            }
        }
        let mut last_reload = encoder.encode_descriptor(
            "faultline_agent_config_last_reload_success_timestamp_seconds",
            "When the agent's running config was loaded (at start or by its last successful reload)",
            None,
            MetricType::Gauge,
        )?;
        for (id, config) in reported_reloads() {
            last_reload
                .encode_family(&[("agent", id)])?
                .encode_gauge(&(config.last_success_ms as f64 / 1000.0))?;
        }
        let mut build = encoder.encode_descriptor(
            "faultline_agent_build_info",
            "Always 1; the agent's version in the label (as reported in its last push)",
            None,
            MetricType::Gauge,
        )?;
        for (id, reported) in &snapshot {
            if reported.last_seen_ms.is_some() && !reported.health.version.is_empty() {
                build
                    .encode_family(&[
                        ("agent", *id),
                        ("version", reported.health.version.as_str()),
                    ])?
                    .encode_gauge(&1i64)?;
            }
        }
        let processes: Vec<ProcessRow<[(&str, &str); 1]>> = snapshot
            .iter()
            .filter_map(|(id, r)| Some((Some([("agent", *id)]), r.health.process?)))
            .collect();
        encode_process(&mut encoder, "faultline_agent_process_", &processes)
    }
}
