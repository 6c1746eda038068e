//! Remote-write sender: every sample the collector accepts reaches a real Prometheus (started
//! with `--web.enable-remote-write-receiver`) with its own timestamp — exactly the pushed set, no
//! more, no less — and a backlog queued while Prometheus is down (a 20 s outage here, not the
//! issue's 5 minutes: the durable queue does not care how long; Prometheus refuses samples older
//! than its head block window, so the test keeps the timestamps recent) arrives complete once it
//! is back.

use faultline_tests::incidents::{push, sample};
use faultline_tests::prometheus::Prometheus;
use faultline_tests::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const METRIC: &str = "rw_out_temperature";
const RECEIVER: &[&str] = &["--web.enable-remote-write-receiver"];
const NO_SCRAPES: &str = "global: {}\n";

/// `(target, timestamp ms, value)` of every sample.
type Points = BTreeSet<(String, i64, u64)>;

/// Samples of 4 targets, 5 per target, dated `start`, `start + 1 s`, …; value = timestamp
/// seconds (so a mix-up shows).
fn batch(start: i64) -> Vec<faultline_wire::Sample> {
    (0..5)
        .flat_map(|i| {
            (0..4).map(move |t| {
                let ts = start + i * 1000;
                sample(METRIC, &format!("t{t}"), &[], (ts / 1000) as f64, ts)
            })
        })
        .collect()
}

fn points(samples: &[faultline_wire::Sample]) -> Points {
    samples
        .iter()
        .map(|s| (s.target.clone(), s.ts_ms, s.value as u64))
        .collect()
}

/// Every stored point of [`METRIC`] in the last hour.
async fn stored(prometheus: &Prometheus) -> Points {
    let answer = prometheus.query(&format!("{METRIC}[1h]")).await;
    let mut out = Points::new();
    for series in answer["data"]["result"].as_array().into_iter().flatten() {
        let target = series["metric"]["target"].as_str().unwrap_or_default();
        for pair in series["values"].as_array().into_iter().flatten() {
            let ts = (pair[0].as_f64().unwrap_or_default() * 1000.0).round() as i64;
            let value = pair[1].as_str().and_then(|v| v.parse::<f64>().ok());
            out.insert((target.to_string(), ts, value.unwrap_or(-1.0) as u64));
        }
    }
    out
}

async fn wait_stored(prometheus: &Prometheus, want: &Points, collector: &CollectorProcess) {
    let arrived = wait_until(Duration::from_secs(60), || async {
        stored(prometheus).await == *want
    })
    .await;
    let got = stored(prometheus).await;
    assert!(
        arrived,
        "missing: {:?}\nextra: {:?}\ncollector log:\n{}\nprometheus log:\n{}",
        want.difference(&got).collect::<Vec<_>>(),
        got.difference(want).collect::<Vec<_>>(),
        collector.daemon.log(),
        prometheus.daemon.log()
    );
}

fn config(prometheus_port: u16, queue: &Path) -> String {
    format!(
        "[remote_write_out]\nurl = \"http://127.0.0.1:{prometheus_port}/api/v1/write\"\nqueue_dir = \"{}\"\nbatch_size = 7\nmin_backoff = \"100ms\"\nmax_backoff = \"1s\"\ntimeout = \"2s\"\n",
        queue.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_sample_reaches_prometheus_even_after_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    let prometheus = Prometheus::start_on(dir.path(), "store", NO_SCRAPES, prom_port, RECEIVER)
        .await
        .unwrap();
    let collector = CollectorProcess::start(
        dir.path(),
        free_port(),
        &config(prom_port, &dir.path().join("queue")),
    )
    .await
    .unwrap();

    // Three batches a minute old, in time order: the exact set arrives.
    let start = faultline_wire::now_ms() / 1000 * 1000 - 60_000;
    let mut pushed = Vec::new();
    for seq in 1..=3 {
        let samples = batch(start + (seq as i64 - 1) * 5000);
        pushed.extend(samples.clone());
        push(&collector, seq, samples).await;
    }
    wait_stored(&prometheus, &points(&pushed), &collector).await;

    // Prometheus goes away for 20 s; the collector keeps taking pushes and queues them.
    let mut prometheus = prometheus;
    assert!(
        prometheus.daemon.terminate(),
        "prometheus did not stop cleanly"
    );
    let outage = std::time::Instant::now();
    let mut seq = 3;
    while outage.elapsed() < Duration::from_secs(20) {
        seq += 1;
        let samples = batch(faultline_wire::now_ms() / 1000 * 1000 - 5000);
        pushed.extend(samples.clone());
        push(&collector, seq, samples).await;
        // 5 s apart: each batch spans 4 s, so no two batches share a timestamp.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let text = collector.scrape().await;
    let queued = metric_value(&text, "faultline_remote_write_out_queue_bytes", &[]).unwrap_or(0.0);
    assert!(queued > 0.0, "nothing queued during the outage:\n{text}");
    let failed = metric_value(
        &text,
        "faultline_remote_write_out_failures_total",
        &[("reason", "connection")],
    )
    .unwrap_or(0.0);
    assert!(failed > 0.0, "no connection failures counted:\n{text}");

    // Back on the same port and TSDB: the backlog arrives complete.
    let prometheus = Prometheus::start_on(dir.path(), "store", NO_SCRAPES, prom_port, RECEIVER)
        .await
        .unwrap();
    let want = points(&pushed);
    assert_eq!(want.len(), pushed.len(), "pushed points are distinct");
    wait_stored(&prometheus, &want, &collector).await;
    let text = collector.scrape().await;
    assert_eq!(
        metric_value(&text, "faultline_remote_write_out_samples_total", &[]),
        Some(pushed.len() as f64),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            "faultline_remote_write_out_dropped_samples_total",
            &[]
        ),
        Some(0.0),
        "{text}"
    );
}
