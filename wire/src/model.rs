//! The data model of `DESIGN.md`: samples, agent health, batches and the collector's acknowledgement.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a sample's value behaves over time, which decides how it is exported and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleKind {
    /// A value that can go up and down (temperature, bytes used).
    Gauge,
    /// A raw, monotonically increasing device counter; rates are computed downstream.
    Counter,
    /// An enumerated state (oper status, HA role) encoded as a number.
    State,
}

/// One observation of one series at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// Metric name in Prometheus conventions (`faultline_host_memory_used_bytes`); counters carry
    /// no `_total` suffix, the exporter adds it.
    pub metric: String,
    /// Id of the watched thing (host, device, interface, sensor) as named in the inventory.
    pub target: String,
    /// Further labels (site, room, interface, cpu, …). `agent` and `target` are reserved.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The value; always finite on the wire.
    pub value: f64,
    /// Observation time, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// Gauge, counter or state.
    pub kind: SampleKind,
}

/// The agent's own health, carried by every batch so the collector can export it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentHealth {
    /// Bytes currently held in the agent's on-disk outbox.
    pub outbox_bytes: u64,
    /// Batches waiting in the outbox (including this one).
    pub outbox_batches: u64,
    /// Samples the agent ever dropped (outbox full, rejected batches, invalid values).
    pub dropped_samples: u64,
    /// Damaged outbox records found and skipped after a crash.
    pub torn_records: u64,
    /// Source polls that failed since the agent started.
    pub poll_errors: u64,
}

/// A group of samples pushed in one request, identified for exactly-once application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Agent id; must match the id the bearer token belongs to.
    pub agent: String,
    /// Random id of the agent's outbox incarnation: sequence numbers restart only with a new epoch.
    pub epoch: u64,
    /// Strictly increasing within an epoch; the collector applies each sequence number once.
    pub seq: u64,
    /// The agent's health at send time.
    pub health: AgentHealth,
    /// The samples; may be empty (a heartbeat).
    pub samples: Vec<Sample>,
}

/// The collector's answer to an accepted push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAck {
    /// Sequence number acknowledged.
    pub seq: u64,
    /// Samples applied by this request (0 for a duplicate).
    pub applied: u64,
    /// True when the batch had been applied before and was only acknowledged again.
    pub duplicate: bool,
}
