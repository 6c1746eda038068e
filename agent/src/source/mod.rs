//! Sources: the first stage of the agent's flow (`source → batcher → outbox → transport`).
//!
//! Each source runs as its own task on its own schedule and sends every collection it makes into
//! the batcher's bounded channel, so one slow or dead source never delays another.

pub mod host;
pub mod modbus;
pub mod mqtt;
pub mod probe;

use faultline_wire::Sample;
use std::collections::BTreeMap;

/// What a source sends downstream: the samples of one collection.
pub type Collection = Vec<Sample>;

/// Labels every sample of this agent carries (site and room from config).
pub type BaseLabels = BTreeMap<String, String>;

/// A sample of `metric` on `target` at `ts_ms` with `labels`: the one constructor the sources'
/// health samples use.
pub fn sample(
    metric: &str,
    target: &str,
    value: f64,
    kind: faultline_wire::SampleKind,
    ts_ms: i64,
    labels: &[(&str, &str)],
) -> Sample {
    Sample {
        metric: metric.to_string(),
        target: target.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        value,
        ts_ms,
        kind,
    }
}

/// Default `scale` of a mapped value: unchanged.
pub(crate) fn default_scale() -> f64 {
    1.0
}

/// Default `kind` of a mapped value.
pub(crate) fn default_kind() -> faultline_wire::SampleKind {
    faultline_wire::SampleKind::Gauge
}
