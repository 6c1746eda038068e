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
    /// The agent's version (`CARGO_PKG_VERSION`); empty from agents older than this field.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// The agent process's own resource use, where the platform tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessStats>,
    /// The agent's config reloads (SIGHUP); absent from agents older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigReloads>,
}

/// How a daemon's config reloads went since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigReloads {
    /// Reloads applied.
    pub ok: u64,
    /// Reloads refused (the running config was kept).
    pub failed: u64,
    /// When the running config was loaded (at start or by the last successful reload), ms since
    /// the Unix epoch.
    pub last_success_ms: i64,
}

/// A daemon's own resource use, the figures of Prometheus' standard `process_*` metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessStats {
    /// User and system CPU time spent, in milliseconds.
    pub cpu_ms: u64,
    /// Resident memory, in bytes.
    pub resident_bytes: u64,
    /// Virtual memory, in bytes.
    pub virtual_bytes: u64,
    /// Open file descriptors (0 when unknown).
    pub open_fds: u64,
    /// Most file descriptors the process may open (0 when unknown).
    pub max_fds: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: u64,
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
    /// Help text of the metric families in `samples`, as their source describes them (profile
    /// `help` fields, the host source's descriptions); families without one are left out. It
    /// travels with every batch so that the collector's exposition keeps it whatever restarts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub help: BTreeMap<String, String>,
}

/// The collector's answer to an accepted push.
///
/// `rejected_count` and `rejected` came later than the other fields: an older collector's ack
/// lacks them and decodes with zero rejections (serde default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAck {
    /// Sequence number acknowledged.
    pub seq: u64,
    /// Samples applied by this request (0 for a duplicate).
    pub applied: u64,
    /// True when the batch had been applied before and was only acknowledged again.
    pub duplicate: bool,
    /// Samples of this batch the collector refused (acknowledged, never applied or evaluated).
    #[serde(default)]
    pub rejected_count: u64,
    /// The refused samples, in batch order: the first [`MAX_LISTED_REJECTIONS`] of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedSample>,
}

/// Most refused samples one [`PushAck`] lists (the count covers all of them), so that a batch of
/// 100,000 bad samples does not produce a response of megabytes.
pub const MAX_LISTED_REJECTIONS: usize = 1000;

/// One sample the collector refused, by its position in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedSample {
    /// Index of the sample in [`Batch::samples`].
    pub index: u32,
    /// Why it was refused.
    pub reason: RejectReason,
}

/// Why the collector refused one sample of an otherwise accepted batch. The snake_case name is
/// also the `reason` label of `faultline_collector_rejected_samples_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Timestamp 0 or negative: no clock produces it.
    InvalidTimestamp,
    /// Timestamp further ahead of the collector's clock than `ingest.max_ahead`.
    TooFarAhead,
    /// Timestamp further behind the collector's clock than `ingest.max_behind`.
    TooOld,
    /// A new series while the agent already holds `ingest.max_series_per_agent`.
    SeriesLimitAgent,
    /// A new series while the collector already holds `ingest.max_series`.
    SeriesLimitTotal,
    /// More labels than `ingest.limits.max_labels_per_sample`.
    TooManyLabels,
    /// A label name longer than `ingest.limits.max_name_bytes` or a value longer than
    /// `ingest.limits.max_label_value_bytes`.
    LabelTooLong,
    /// A reason this build does not know (sent by a newer collector).
    #[serde(other)]
    Other,
}

impl RejectReason {
    /// Every reason a collector of this build gives, in label order.
    pub const ALL: [RejectReason; 7] = [
        RejectReason::InvalidTimestamp,
        RejectReason::TooFarAhead,
        RejectReason::TooOld,
        RejectReason::SeriesLimitAgent,
        RejectReason::SeriesLimitTotal,
        RejectReason::TooManyLabels,
        RejectReason::LabelTooLong,
    ];

    /// The snake_case name (wire value and metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidTimestamp => "invalid_timestamp",
            RejectReason::TooFarAhead => "too_far_ahead",
            RejectReason::TooOld => "too_old",
            RejectReason::SeriesLimitAgent => "series_limit_agent",
            RejectReason::SeriesLimitTotal => "series_limit_total",
            RejectReason::TooManyLabels => "too_many_labels",
            RejectReason::LabelTooLong => "label_too_long",
            RejectReason::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_names_match_the_wire() {
        for reason in RejectReason::ALL.into_iter().chain([RejectReason::Other]) {
            let json = serde_json::to_string(&reason).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
        let unknown: RejectReason = serde_json::from_str("\"from_the_future\"").unwrap();
        assert_eq!(unknown, RejectReason::Other);
    }

    #[test]
    fn an_old_collectors_ack_decodes_without_rejections() {
        let ack: PushAck = serde_json::from_str(r#"{"seq":3,"applied":2,"duplicate":false}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ack.rejected_count, 0);
        assert!(ack.rejected.is_empty());
        let text = serde_json::to_string(&ack).unwrap_or_default();
        assert!(!text.contains("\"rejected\""), "{text}");
    }
}
