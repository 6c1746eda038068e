//! The contract between the Faultline agent and collector.
//!
//! Everything that crosses the wire lives here: the [`Sample`] and [`Batch`] data model from
//! `DESIGN.md`, its encoding ([`codec`]), the limits both sides enforce ([`validate`]) and the
//! config-file loader both daemons share ([`config_file`]). Sits between the agent's transport stage
//! and the collector's ingest stage; it does no I/O of its own.
#![deny(missing_docs)]

pub mod codec;
pub mod config_file;
pub mod model;
pub mod mqtt;
pub mod validate;

pub use model::{
    AgentHealth, Batch, ConfigReloads, MAX_LISTED_REJECTIONS, ProcessStats, PushAck, RejectReason,
    RejectedSample, Sample, SampleKind,
};
pub use validate::{InvalidBatch, Limits, TimeWindow, judge_samples};

/// Milliseconds since the Unix epoch: the timestamp unit of every sample. The daemons read the
/// clock here and pass the value into their pure code.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// HTTP path of the collector's push endpoint.
pub const PUSH_PATH: &str = "/api/v1/push";
/// `Content-Type` of a pushed batch (before compression).
pub const CONTENT_TYPE: &str = "application/json";
/// `Content-Encoding` of a pushed batch.
pub const CONTENT_ENCODING: &str = "zstd";
/// Request header carrying the agent's clock (ms since the Unix epoch) when it sent this attempt;
/// the collector compares it with its own clock to export the agent's clock offset. A header, not
/// a batch field, so that it is fresh at every retry and an older collector simply ignores it.
pub const SENT_AT_HEADER: &str = "x-faultline-sent-at-ms";
