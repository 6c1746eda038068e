//! `remote_write_bench`: the collector's remote-write receiver's samples/s beside Prometheus' own
//! receiver (`--web.enable-remote-write-receiver`), fed the very same snappy protobuf bodies.
//! Figures go to BENCHMARKS.md.
//!
//! Each run, all on 127.0.0.1, fresh state: the collector binary given (with `[remote_write]`,
//! no incidents) and Prometheus. The bodies are built once: `--series` series (`bench_metric`
//! with `instance`, `job`, `cpu` labels) in blocks of `--per-body` samples, `--rounds` rounds one
//! second apart ending a minute ago; one sender task per block posts its bodies in round order
//! (so each series arrives in time order, as Prometheus' shards send), all blocks at once.
//! Samples/s = all samples ÷ the time from the first post to the last answer. Every answer must
//! be 2xx.
//!
//! ```sh
//! cargo build --release -p faultline-collector -p faultline-tests --bins
//! target/release/remote_write_bench [--series 2000] [--per-body 500] [--rounds 100] [--runs 3]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use faultline_tests::prometheus::{Prometheus, SeriesPoints, write_body};
use faultline_tests::{CollectorProcess, TOKEN, free_port};
use std::sync::Arc;
use std::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{name} {v}: {e}")))
        .unwrap_or(default)
}

/// Bodies per block (one sender each), in round order.
fn bodies(series: usize, per_body: usize, rounds: usize) -> Vec<Vec<Vec<u8>>> {
    let end = faultline_wire::now_ms() / 1000 * 1000 - 60_000;
    let start = end - rounds as i64 * 1000;
    let names: Vec<[String; 2]> = (0..series)
        .map(|s| [format!("host-{}:9100", s % 50), s.to_string()])
        .collect();
    (0..series.div_ceil(per_body))
        .map(|block| {
            let ids = block * per_body..((block + 1) * per_body).min(series);
            (0..rounds)
                .map(|round| {
                    let ts = start + round as i64 * 1000;
                    let labels: Vec<[(&str, &str); 4]> = ids
                        .clone()
                        .map(|s| {
                            [
                                ("__name__", "bench_metric"),
                                ("cpu", names[s][1].as_str()),
                                ("instance", names[s][0].as_str()),
                                ("job", "node"),
                            ]
                        })
                        .collect();
                    let points = [(0.0, ts)];
                    let series: Vec<SeriesPoints<'_>> = labels
                        .iter()
                        .map(|l| (l.as_slice(), points.as_slice()))
                        .collect();
                    write_body(&series)
                })
                .collect()
        })
        .collect()
}

/// Posts every block's bodies (blocks in parallel) to `url`: samples/s.
async fn feed(url: &str, blocks: &Arc<Vec<Vec<Vec<u8>>>>, samples: usize) -> f64 {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut senders = Vec::new();
    for block in 0..blocks.len() {
        let (client, url, blocks) = (client.clone(), url.to_string(), blocks.clone());
        senders.push(tokio::spawn(async move {
            for body in &blocks[block] {
                let response = client
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .header("Content-Type", "application/x-protobuf")
                    .header("Content-Encoding", "snappy")
                    .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                assert!(
                    status.is_success(),
                    "{url}: {status} {}",
                    response.text().await.unwrap_or_default()
                );
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    samples as f64 / started.elapsed().as_secs_f64()
}

fn summary(name: &str, mut rates: Vec<f64>) {
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "{name}: min {:.0} / median {median:.0} / max {:.0} samples/s over {} runs",
        rates[0],
        rates[rates.len() - 1],
        rates.len()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (series, per_body, rounds, runs) = (
        arg("--series", 2000),
        arg("--per-body", 500),
        arg("--rounds", 100),
        arg("--runs", 3),
    );
    let samples = series * rounds;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let blocks = Arc::new(bodies(series, per_body, rounds));
        let dir = tempfile::tempdir().unwrap();
        let collector = CollectorProcess::start(dir.path(), free_port(), "[remote_write]\n")
            .await
            .unwrap();
        let prometheus = Prometheus::start(
            dir.path(),
            "prometheus",
            "global: {}\n",
            &["--web.enable-remote-write-receiver"],
        )
        .await
        .unwrap();
        let a = feed(&format!("{}/api/v1/write", collector.url), &blocks, samples).await;
        let b = feed(&prometheus.write_url(), &blocks, samples).await;
        println!("run {run}: {samples} samples: faultline {a:.0}/s, prometheus {b:.0}/s");
        ours.push(a);
        theirs.push(b);
    }
    summary("faultline-collector", ours);
    summary("prometheus", theirs);
}
