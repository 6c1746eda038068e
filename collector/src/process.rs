//! The daemons' own build and process metrics, encoded at scrape time: the collector's
//! `faultline_build_info` and standard `process_*` series ([`ProcessCollector`]), and the same
//! figures for each agent as reported in its health ([`encode_process`] with the
//! `faultline_agent_process_` prefix, used by the agents' health collector). Outside the data
//! flow: `/metrics` reads it, nothing else.

use faultline_daemon::process::ProcessProbe;
use faultline_wire::ProcessStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use std::sync::Mutex;

type Figure = fn(&ProcessStats) -> f64;

/// (name after the prefix, help, type, figure) of the standard process metrics.
const FIGURES: [(&str, &str, MetricType, Figure); 6] = [
    (
        "cpu_seconds",
        "Total user and system CPU time spent in seconds",
        MetricType::Counter,
        |p| p.cpu_ms as f64 / 1000.0,
    ),
    (
        "resident_memory_bytes",
        "Resident memory size in bytes",
        MetricType::Gauge,
        |p| p.resident_bytes as f64,
    ),
    (
        "virtual_memory_bytes",
        "Virtual memory size in bytes",
        MetricType::Gauge,
        |p| p.virtual_bytes as f64,
    ),
    (
        "open_fds",
        "Number of open file descriptors",
        MetricType::Gauge,
        |p| p.open_fds as f64,
    ),
    (
        "max_fds",
        "Maximum number of open file descriptors",
        MetricType::Gauge,
        |p| p.max_fds as f64,
    ),
    (
        "start_time_seconds",
        "Start time of the process since unix epoch in seconds",
        MetricType::Gauge,
        |p| p.start_time_seconds as f64,
    ),
];

/// One process's figures and the labels that name it (`None`: the exporting process itself).
pub type ProcessRow<L> = (Option<L>, ProcessStats);

/// Encodes the process figures of `rows` (labels, figures) as families named `prefix` + the
/// standard names (`process_` gives Prometheus' own `process_cpu_seconds_total`, …); a row
/// without labels is the exporting process's own. Nothing is encoded when `rows` is empty.
pub fn encode_process<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    prefix: &str,
    rows: &[ProcessRow<L>],
) -> Result<(), std::fmt::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    for (name, help, metric_type, figure) in FIGURES {
        let name = format!("{prefix}{name}");
        let mut metric = encoder.encode_descriptor(&name, help, None, metric_type)?;
        for (labels, stats) in rows {
            let value = figure(stats);
            match labels {
                Some(labels) => {
                    encode_value(&mut metric.encode_family(labels)?, metric_type, value)?
                }
                None => encode_value(&mut metric, metric_type, value)?,
            }
        }
    }
    Ok(())
}

fn encode_value(
    series: &mut MetricEncoder,
    metric_type: MetricType,
    value: f64,
) -> Result<(), std::fmt::Error> {
    match metric_type {
        MetricType::Counter => series.encode_counter::<NoLabelSet, f64, f64>(&value, None),
        _ => series.encode_gauge(&value),
    }
}

/// This collector's `faultline_build_info` and `process_*` series, read at each scrape.
#[derive(Debug, Default)]
pub struct ProcessCollector(Mutex<ProcessProbe>);

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encoder
            .encode_descriptor(
                "faultline_build_info",
                "Always 1; the collector's version in the label",
                None,
                MetricType::Gauge,
            )?
            .encode_family(&[("version", env!("CARGO_PKG_VERSION"))])?
            .encode_gauge(&1i64)?;
        let stats = self.0.lock().unwrap_or_else(|p| p.into_inner()).read();
        let rows: Vec<ProcessRow<NoLabelSet>> = stats.into_iter().map(|s| (None, s)).collect();
        encode_process(&mut encoder, "process_", &rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn standard_names_and_build_info() {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ProcessCollector::default()));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("faultline_build_info{version=\""), "{text}");
        if cfg!(target_os = "linux") {
            for name in [
                "process_cpu_seconds_total ",
                "process_resident_memory_bytes ",
                "process_virtual_memory_bytes ",
                "process_open_fds ",
                "process_max_fds ",
                "process_start_time_seconds ",
            ] {
                assert!(text.contains(&format!("\n{name}")), "{name}: {text}");
            }
        }
    }
}
