//! Faultline samples → remote-write request bodies, the pure core of the sender: one series per
//! sample, named and labelled as `/metrics` exports it (`__name__` with a counter's `_total`,
//! `agent`, `target`, the sample's labels, sorted by name as the protocol wants), with the
//! sample's own timestamp; at most `batch_size` samples per body, each body snappy-compressed.

use crate::remote_write::proto::{Label, Sample as PromSample, TimeSeries, WriteRequest};
use faultline_wire::{Sample, SampleKind};
use prost::Message;
use std::collections::BTreeMap;

/// The bodies for `samples` of `agent`, with the number of samples in each.
pub fn bodies(agent: &str, samples: &[Sample], batch_size: usize) -> Vec<(Vec<u8>, u32)> {
    samples
        .chunks(batch_size.max(1))
        .map(|chunk| {
            let request = WriteRequest {
                timeseries: chunk.iter().map(|s| series(agent, s)).collect(),
                metadata: Vec::new(),
            };
            let body = snap::raw::Encoder::new()
                .compress_vec(&request.encode_to_vec())
                .unwrap_or_default();
            (body, u32::try_from(chunk.len()).unwrap_or(u32::MAX))
        })
        .collect()
}

fn series(agent: &str, sample: &Sample) -> TimeSeries {
    let name = match sample.kind {
        SampleKind::Counter => format!("{}_total", sample.metric),
        _ => sample.metric.clone(),
    };
    let mut labels: BTreeMap<&str, &str> = sample
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    labels.insert("__name__", &name);
    labels.insert("agent", agent);
    labels.insert("target", &sample.target);
    TimeSeries {
        labels: labels
            .into_iter()
            .map(|(name, value)| Label {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect(),
        samples: vec![PromSample {
            value: sample.value,
            timestamp: sample.ts_ms,
        }],
        histograms: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::config::RemoteWriteConfig;
    use crate::remote_write::decode;

    fn sample(metric: &str, target: &str, kind: SampleKind, ts_ms: i64) -> Sample {
        Sample {
            metric: metric.into(),
            target: target.into(),
            labels: [("ifname".to_string(), "Te0/1".to_string())].into(),
            value: 2.5,
            ts_ms,
            kind,
        }
    }

    #[test]
    fn bodies_decode_back_to_the_samples_in_batches() {
        let samples: Vec<Sample> = (0..5)
            .map(|i| sample("if_in_errors", "sw1", SampleKind::Counter, 1000 + i))
            .collect();
        let out = bodies("a1", &samples, 2);
        assert_eq!(out.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [2, 2, 1]);
        let request = decode::decode(&out[0].0, 1 << 20).unwrap();
        let names: Vec<&str> = request.timeseries[0]
            .labels
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(names, ["__name__", "agent", "ifname", "target"], "sorted");
        assert_eq!(request.timeseries[0].labels[0].value, "if_in_errors_total");
        assert_eq!(
            request.timeseries[1].samples,
            [PromSample {
                value: 2.5,
                timestamp: 1001
            }]
        );
        // What the receiver makes of it (target label `target`): the same target and timestamps.
        let config = RemoteWriteConfig {
            target_label: "target".into(),
            ..RemoteWriteConfig::default()
        };
        let back = decode::convert(&request, &config, &faultline_wire::Limits::default());
        let got: Vec<(&str, i64)> = back
            .samples
            .iter()
            .map(|s| (s.target.as_str(), s.ts_ms))
            .collect();
        assert_eq!(got, [("sw1", 1000), ("sw1", 1001)]);
    }

    #[test]
    fn no_samples_no_bodies() {
        assert!(bodies("a1", &[], 10).is_empty());
    }
}
