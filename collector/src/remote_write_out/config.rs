//! `[remote_write_out]`: where the remote-write sender ([`super`]) forwards every accepted sample,
//! how it authenticates, how it batches, and its durable queue.
//!
//! ```toml
//! [remote_write_out]
//! url = "http://tsdb.example.internal:9090/api/v1/write"
//! bearer_token_file = "/etc/faultline/tsdb.token"     # or basic_auth, or neither
//! # basic_auth = { username = "faultline", password_file = "/etc/faultline/tsdb.pass" }
//! batch_size = 2000                # samples per request
//! queue_dir = "/var/lib/faultline/remote-write-out"
//! max_queue_bytes = 1073741824     # past it the oldest queued requests are dropped (counted)
//! ```

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The sender's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteOutConfig {
    /// The store's remote-write URL (Prometheus: `/api/v1/write`, VictoriaMetrics, Mimir: their
    /// `/api/v1/push`).
    pub url: String,
    /// A file holding a bearer token sent as `Authorization: Bearer …`.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// HTTP basic authentication.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Most samples in one request. Default 2000.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// The durable queue's directory (segment files and a cursor).
    pub queue_dir: PathBuf,
    /// Most bytes the queue holds on disk; past it the oldest requests are dropped, counted in
    /// `faultline_remote_write_out_dropped_samples_total`. Default 1 GiB.
    #[serde(default = "default_max_queue_bytes")]
    pub max_queue_bytes: u64,
    /// One request's time limit. Default 10 s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// First retry delay after a failure (5xx, 429, connection). Default 500 ms.
    #[serde(default = "default_min_backoff", with = "humantime_serde")]
    pub min_backoff: Duration,
    /// Longest retry delay. Default 30 s.
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
}

/// `basic_auth = { username, password_file }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// A file holding the password.
    pub password_file: PathBuf,
}

fn default_batch_size() -> usize {
    2000
}

fn default_max_queue_bytes() -> u64 {
    1 << 30
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_min_backoff() -> Duration {
    Duration::from_millis(500)
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}

impl RemoteWriteOutConfig {
    /// Checks values that parse but cannot work; the error names the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let field = |name: &str| format!("remote_write_out.{name}");
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err((
                field("url"),
                format!("`{}` is not an http(s) URL", self.url),
            ));
        }
        if self.bearer_token_file.is_some() && self.basic_auth.is_some() {
            return Err((
                field("basic_auth"),
                "bearer_token_file and basic_auth exclude each other".into(),
            ));
        }
        if self.batch_size == 0 {
            return Err((field("batch_size"), "must be at least 1".into()));
        }
        if self.min_backoff.is_zero() || self.min_backoff > self.max_backoff {
            return Err((
                field("min_backoff"),
                "must be above zero and at most max_backoff".into(),
            ));
        }
        Ok(())
    }
}
