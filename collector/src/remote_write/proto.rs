//! The Prometheus remote-write 1.0 messages (`prometheus/prompb/{remote,types}.proto`), written
//! out with prost derives (no protoc): only the fields the receiver reads and the sender writes.
//! Unknown fields (exemplars, native histograms' inner fields) are skipped by prost when decoding.
//! Shared by both directions: the receiver ([`super::decode`]) and the sender
//! ([`crate::remote_write_out`]).

/// `prometheus.WriteRequest`: one remote-write body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series, each with its samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Metric metadata (type, help), sent by Prometheus in requests of their own.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`: one series' labels (with `__name__`) and samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Labels, sorted by name in what Prometheus sends.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histogram samples: counted and dropped by the receiver (only their number is read).
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// The value (NaN with bits [`STALE_NAN_BITS`] marks a stale series).
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Histogram`: a native histogram sample; its fields are not read.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Histogram {
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// `MetricType` enum: 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gauge histogram,
    /// 5 summary, 6 info, 7 state set.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// The family's name.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// Its help text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// Its unit.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// The bit pattern of Prometheus' staleness marker (a NaN a series ends with).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
