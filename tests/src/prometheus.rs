//! A real Prometheus (Debian's `prometheus`) for the tests: started on a free loopback port with
//! its TSDB in a temp dir, queried through its HTTP API, and bodies in its remote-write format
//! (snappy protobuf, built with the collector's own message types) for tests and the benchmark.

use crate::{Daemon, free_port, require_program, wait_until};
use faultline_collector::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
use prost::Message;
use std::path::Path;
use std::time::Duration;

/// A running Prometheus, killed when dropped.
pub struct Prometheus {
    /// The process.
    pub daemon: Daemon,
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Prometheus {
    /// Writes `config` (YAML) to `dir/<name>.yml` and starts Prometheus on it with its TSDB in
    /// `dir/<name>-tsdb` and the `extra` flags (e.g. `--web.enable-remote-write-receiver`) on a
    /// free port, waiting (at most 30 s) until it is ready.
    pub async fn start(
        dir: &Path,
        name: &str,
        config: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        Self::start_on(dir, name, config, free_port(), extra).await
    }

    /// [`Prometheus::start`] on `port` (again on the same TSDB after a stop, e.g.).
    pub async fn start_on(
        dir: &Path,
        name: &str,
        config: &str,
        port: u16,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let program = require_program("prometheus", "prometheus");
        let file = dir.join(format!("{name}.yml"));
        std::fs::write(&file, config)?;
        let mut args = vec![
            format!("--config.file={}", file.display()),
            format!(
                "--storage.tsdb.path={}",
                dir.join(format!("{name}-tsdb")).display()
            ),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut daemon = Daemon::spawn(&program, &args, &dir.join(format!("{name}.log")), &[])?;
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        let up = wait_until(Duration::from_secs(30), || async {
            reqwest::get(&ready)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        if !up {
            anyhow::bail!(
                "prometheus not ready (running: {}); log:\n{}",
                daemon.running(),
                daemon.log()
            );
        }
        Ok(Self { daemon, url })
    }

    /// The argument of `--web.enable-remote-write-receiver`'s endpoint: `<url>/api/v1/write`.
    pub fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.url)
    }

    /// The answer to an instant query (`{"error": …}` when the request failed).
    pub async fn query(&self, promql: &str) -> serde_json::Value {
        query(&format!("{}/api/v1/query", self.url), promql).await
    }
}

/// The answer of the query endpoint `url` to an instant query (`{"error": …}` on failure).
pub async fn query(url: &str, promql: &str) -> serde_json::Value {
    match reqwest::Client::new()
        .get(url)
        .query(&[("query", promql)])
        .send()
        .await
    {
        Ok(resp) => resp.json().await.unwrap_or_default(),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    }
}

/// One series of a [`write_body`]: its labels (with `__name__`) and its points as
/// `(value, timestamp ms)`.
pub type SeriesPoints<'a> = (&'a [(&'a str, &'a str)], &'a [(f64, i64)]);

/// A remote-write 1.0 body (snappy of a `WriteRequest`) of one series per [`SeriesPoints`].
pub fn write_body(series: &[SeriesPoints<'_>]) -> Vec<u8> {
    let request = WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, points)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(name, value)| Label {
                        name: name.to_string(),
                        value: value.to_string(),
                    })
                    .collect(),
                samples: points
                    .iter()
                    .map(|&(value, timestamp)| Sample { value, timestamp })
                    .collect(),
                histograms: Vec::new(),
            })
            .collect(),
        metadata: Vec::new(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap_or_default()
}
