//! Remote-write body → Faultline samples, the pure core of the receiver ([`super::receive`] is its
//! HTTP shell): block-snappy decompression under a size limit, protobuf decoding of the
//! [`WriteRequest`], then each series' labels mapped by [`RemoteWriteConfig`] (`__name__` → metric,
//! the target label → target, the rest kept) and each sample checked like an agent's. What
//! cannot become a sample is counted by reason ([`Dropped`]), never an error for the whole
//! request: a sender must not retry a body that will never be taken.

use super::config::RemoteWriteConfig;
use super::proto::{STALE_NAN_BITS, WriteRequest};
use faultline_wire::validate::RESERVED_LABELS;
use faultline_wire::{Limits, Sample, SampleKind};
use prost::Message;
use std::collections::BTreeMap;
use thiserror::Error;

/// Why a body is refused whole (400 or 413: a sender does not retry it).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a block-snappy stream.
    #[error("body is not valid snappy (block format): {0}")]
    Snappy(String),
    /// Decompresses past the limit.
    #[error("body decompresses to {claimed} bytes, over the limit of {limit}")]
    TooLarge {
        /// What the snappy header claims.
        claimed: usize,
        /// `ingest.max_decoded_bytes`.
        limit: usize,
    },
    /// Not a `prometheus.WriteRequest`.
    #[error("body is not a protobuf prometheus.WriteRequest: {0}")]
    Protobuf(String),
}

/// Decompresses and decodes one remote-write body, refusing to expand past `max_decoded` bytes.
pub fn decode(body: &[u8], max_decoded: usize) -> Result<WriteRequest, DecodeError> {
    let claimed =
        snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if claimed > max_decoded {
        return Err(DecodeError::TooLarge {
            claimed,
            limit: max_decoded,
        });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    WriteRequest::decode(raw.as_slice()).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// Counts of what could not become a sample, by reason (`faultline_remote_write_rejected_total`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Series without the target label (or with it empty).
    pub no_target: u64,
    /// Prometheus' staleness markers (a series ended): nothing to judge.
    pub stale_marker: u64,
    /// NaN or infinite values.
    pub non_finite: u64,
    /// Samples breaking a naming rule or limit (metric name, label name or length).
    pub invalid: u64,
    /// Native histogram samples (not supported).
    pub native_histogram: u64,
}

impl Dropped {
    /// `(reason label, count)` of each kind.
    pub fn by_reason(&self) -> [(&'static str, u64); 5] {
        [
            ("no_target", self.no_target),
            ("stale_marker", self.stale_marker),
            ("non_finite", self.non_finite),
            ("invalid", self.invalid),
            ("native_histogram", self.native_histogram),
        ]
    }

    /// All of them.
    pub fn total(&self) -> u64 {
        self.by_reason().iter().map(|(_, n)| n).sum()
    }
}

/// One request's samples as Faultline sees them.
#[derive(Debug, Default, PartialEq)]
pub struct Converted {
    /// The samples, in the request's order, as gauges with their original timestamps.
    pub samples: Vec<Sample>,
    /// Help text of the families the request's metadata describes.
    pub help: BTreeMap<String, String>,
    /// What was dropped.
    pub dropped: Dropped,
    /// The first invalid sample's problem (for a rate-limited log).
    pub first_invalid: Option<String>,
}

/// Maps a decoded request to samples: `__name__` is the metric, the label named by `config` (per
/// job) the target (with its port dropped when `strip_port`), the other labels are kept, with a
/// reserved name (`agent`, `target`) renamed `exported_<name>` as Prometheus does on a clash.
/// Every sample is a gauge (remote-write 1.0 carries no type with its samples).
pub fn convert(request: &WriteRequest, config: &RemoteWriteConfig, limits: &Limits) -> Converted {
    let mut out = Converted::default();
    for series in &request.timeseries {
        out.dropped.native_histogram += series.histograms.len() as u64;
        let label = |name: &str| {
            series
                .labels
                .iter()
                .find(|l| l.name == name)
                .map(|l| l.value.as_str())
        };
        let target_label = config.target_label_for(label("job"));
        let target = label(target_label)
            .map(|v| if config.strip_port { strip_port(v) } else { v })
            .filter(|v| !v.is_empty());
        let Some(target) = target else {
            out.dropped.no_target += series.samples.len() as u64;
            continue;
        };
        let metric = label("__name__").unwrap_or_default();
        let labels: BTreeMap<String, String> = series
            .labels
            .iter()
            .filter(|l| l.name != "__name__" && l.name != target_label)
            .map(|l| {
                let name = if RESERVED_LABELS.contains(&l.name.as_str()) {
                    format!("exported_{}", l.name)
                } else {
                    l.name.clone()
                };
                (name, l.value.clone())
            })
            .collect();
        for point in &series.samples {
            if point.value.to_bits() == STALE_NAN_BITS {
                out.dropped.stale_marker += 1;
                continue;
            }
            if !point.value.is_finite() {
                out.dropped.non_finite += 1;
                continue;
            }
            let sample = Sample {
                metric: metric.to_string(),
                target: target.to_string(),
                labels: labels.clone(),
                value: point.value,
                ts_ms: point.timestamp,
                kind: SampleKind::Gauge,
            };
            if let Err(e) = limits.check_sample(&sample) {
                out.dropped.invalid += 1;
                out.first_invalid
                    .get_or_insert_with(|| format!("series `{metric}` of `{target}`: {e}"));
                continue;
            }
            out.samples.push(sample);
        }
    }
    for meta in &request.metadata {
        if !meta.help.is_empty()
            && meta.help.len() <= limits.max_label_value_bytes
            && !meta.help.chars().any(char::is_control)
        {
            out.help
                .insert(meta.metric_family_name.clone(), meta.help.clone());
        }
    }
    out
}

/// `host:port` → `host` (also `[v6]:port` → `[v6]`); anything else as it is.
fn strip_port(value: &str) -> &str {
    match value.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty()
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']')) =>
        {
            host
        }
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::super::proto::{Histogram, Label, MetricMetadata, Sample as PromSample, TimeSeries};
    use super::*;

    /// Metric, target, value, timestamp and labels of a converted sample.
    type Seen<'a> = (&'a str, &'a str, f64, i64, Vec<(&'a str, &'a str)>);

    fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
        pairs
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    fn series(pairs: &[(&str, &str)], points: &[(f64, i64)]) -> TimeSeries {
        TimeSeries {
            labels: labels(pairs),
            samples: points
                .iter()
                .map(|&(value, timestamp)| PromSample { value, timestamp })
                .collect(),
            histograms: Vec::new(),
        }
    }

    fn body(request: &WriteRequest) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .unwrap()
    }

    #[test]
    fn bodies_that_are_not_snappy_protobuf_are_refused_naming_the_layer() {
        let not_snappy = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff".as_slice();
        assert!(matches!(
            decode(not_snappy, 1 << 20),
            Err(DecodeError::Snappy(_))
        ));
        // A valid snappy header claiming more than it holds.
        let truncated = &body(&WriteRequest {
            timeseries: vec![series(&[("__name__", "up")], &[(1.0, 5)])],
            metadata: Vec::new(),
        })[..4];
        assert!(matches!(
            decode(truncated, 1 << 20),
            Err(DecodeError::Snappy(_))
        ));
        // Snappy of something that is not a WriteRequest (field 1 as a varint).
        let garbage = snap::raw::Encoder::new()
            .compress_vec(b"\x08\x96\x01\x0a\xff")
            .unwrap();
        let err = decode(&garbage, 1 << 20).unwrap_err();
        assert!(matches!(err, DecodeError::Protobuf(_)), "{err:?}");
        assert!(err.to_string().contains("protobuf"), "{err}");
        // Over the decoded limit: refused before decompressing.
        let big = snap::raw::Encoder::new()
            .compress_vec(&[0u8; 4096])
            .unwrap();
        assert_eq!(
            decode(&big, 1000),
            Err(DecodeError::TooLarge {
                claimed: 4096,
                limit: 1000
            })
        );
    }

    #[test]
    fn an_empty_body_is_an_empty_request() {
        // Empty snappy stream: a zero length, no data.
        let empty = snap::raw::Encoder::new().compress_vec(b"").unwrap();
        let request = decode(&empty, 1 << 20).unwrap();
        assert_eq!(request, WriteRequest::default());
        let converted = convert(&request, &RemoteWriteConfig::default(), &Limits::default());
        assert_eq!(converted, Converted::default());
        // Zero bytes are not even a snappy header.
        assert!(matches!(decode(b"", 1 << 20), Err(DecodeError::Snappy(_))));
    }

    #[test]
    fn series_map_to_targets_and_keep_their_timestamps() {
        let mut config = RemoteWriteConfig::default();
        config.jobs.insert("blackbox".into(), "probe".into());
        let request = WriteRequest {
            timeseries: vec![
                series(
                    &[
                        ("__name__", "node_load1"),
                        ("instance", "node1:9100"),
                        ("job", "node"),
                    ],
                    &[(0.5, 1000), (0.75, 2000)],
                ),
                series(
                    &[
                        ("__name__", "probe_success"),
                        ("instance", "bb:9115"),
                        ("job", "blackbox"),
                        ("probe", "gw-1"),
                        ("target", "x"),
                    ],
                    &[(1.0, 3000)],
                ),
                series(
                    &[("__name__", "v6"), ("instance", "[::1]:9100")],
                    &[(2.0, 4000)],
                ),
            ],
            metadata: vec![MetricMetadata {
                r#type: 2,
                metric_family_name: "node_load1".into(),
                help: "1m load average.".into(),
                unit: String::new(),
            }],
        };
        let got = convert(&request, &config, &Limits::default());
        let seen: Vec<Seen<'_>> = got
            .samples
            .iter()
            .map(|s| {
                let labels = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                (
                    s.metric.as_str(),
                    s.target.as_str(),
                    s.value,
                    s.ts_ms,
                    labels,
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("node_load1", "node1", 0.5, 1000, vec![("job", "node")]),
                ("node_load1", "node1", 0.75, 2000, vec![("job", "node")]),
                (
                    "probe_success",
                    "gw-1",
                    1.0,
                    3000,
                    vec![
                        ("exported_target", "x"),
                        ("instance", "bb:9115"),
                        ("job", "blackbox")
                    ]
                ),
                ("v6", "[::1]", 2.0, 4000, vec![]),
            ]
        );
        assert_eq!(
            got.help.get("node_load1").map(String::as_str),
            Some("1m load average.")
        );
        assert_eq!(got.dropped, Dropped::default());
    }

    #[test]
    fn what_cannot_be_a_sample_is_counted_by_reason() {
        let stale = f64::from_bits(STALE_NAN_BITS);
        let mut with_histogram = series(&[("__name__", "h"), ("instance", "a")], &[]);
        with_histogram.histograms = vec![Histogram { timestamp: 1 }, Histogram { timestamp: 2 }];
        let request = WriteRequest {
            timeseries: vec![
                series(&[("__name__", "up"), ("job", "x")], &[(1.0, 1), (1.0, 2)]),
                series(&[("__name__", "up"), ("instance", "")], &[(1.0, 1)]),
                series(
                    &[("__name__", "up"), ("instance", "a")],
                    &[(stale, 1), (f64::NAN, 2), (f64::INFINITY, 3), (1.0, 4)],
                ),
                series(&[("__name__", "bad-name"), ("instance", "a")], &[(1.0, 1)]),
                series(&[("instance", "a")], &[(1.0, 1)]),
                with_histogram,
            ],
            metadata: Vec::new(),
        };
        let got = convert(&request, &RemoteWriteConfig::default(), &Limits::default());
        assert_eq!(got.samples.len(), 1);
        assert_eq!(got.samples[0].ts_ms, 4);
        assert_eq!(
            got.dropped,
            Dropped {
                no_target: 3,
                stale_marker: 1,
                non_finite: 2,
                invalid: 2,
                native_histogram: 2,
            }
        );
        assert_eq!(got.dropped.total(), 10);
        assert!(got.first_invalid.unwrap().contains("bad-name"));
    }

    #[test]
    fn ports_are_stripped_only_from_host_port() {
        for (value, want) in [
            ("node1:9100", "node1"),
            ("10.0.0.1:80", "10.0.0.1"),
            ("[fe80::1]:9100", "[fe80::1]"),
            ("fe80::1", "fe80::1"),
            ("node1", "node1"),
            ("node1:", "node1:"),
            (":9100", ":9100"),
            ("a:b", "a:b"),
        ] {
            assert_eq!(strip_port(value), want, "{value}");
        }
    }
}
