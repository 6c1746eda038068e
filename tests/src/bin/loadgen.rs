//! `faultline-loadgen`: measures the collector's ingest throughput end to end over HTTP on
//! loopback. Starts the given collector binary with `--agents` agents, pre-encodes batches of
//! realistic samples (interfaces of switches), pushes them from one connection per agent, each
//! agent's sequence in order, and prints samples/s. Figures go to BENCHMARKS.md.
//!
//! cargo build --release -p faultline-collector -p faultline-tests
//! target/release/loadgen target/release/faultline-collector [agents] [batches] [samples]
//!
//! With `LOADGEN_RULES=default` the collector runs its incident stage with the built-in rules, and
//! a fifth of the samples are ones they judge (ifOperStatus, ifInErrors): every push is then
//! acknowledged only after the rules judged it.
//!
//! With `LOADGEN_THEN=command`, the command runs (`sh -c`) after the pushes while the collector
//! still runs, with its URL in `FAULTLINE_URL` (scripts/bench-scrape.sh times `/metrics` so).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use faultline_tests::{Daemon, free_port, wait_until};
use faultline_wire::{AgentHealth, Batch, Sample, SampleKind, codec, now_ms};
use std::time::{Duration, Instant};

/// The metric and value of sample `i` of batch `seq`: with `judged`, two in ten are what the
/// built-in rules judge (an interface's status, up; its input error counter).
fn metric(i: usize, seq: u64, judged: bool) -> (String, f64) {
    let counter = (seq * 1000 + i as u64) as f64;
    match i % 10 {
        0 if judged => ("faultline_snmp_if_oper_status".into(), 1.0),
        1 if judged => ("faultline_snmp_if_in_errors".into(), counter),
        n => (format!("faultline_snmp_if_metric_{n}"), counter),
    }
}

fn batch(agent: &str, seq: u64, samples: usize, judged: bool) -> Vec<u8> {
    let ts = now_ms();
    let samples = (0..samples)
        .map(|i| (i, metric(i, seq, judged)))
        .map(|(i, (metric, value))| Sample {
            metric,
            target: format!("{agent}-switch-{:03}", i / 480),
            labels: [
                ("site".to_string(), "bj1".to_string()),
                (
                    "ifName".to_string(),
                    format!("GigabitEthernet1/0/{}", (i / 10) % 48),
                ),
            ]
            .into(),
            value,
            ts_ms: ts + seq as i64,
            kind: if i % 10 < 5 {
                SampleKind::Counter
            } else {
                SampleKind::Gauge
            },
        })
        .collect();
    codec::encode(&Batch {
        agent: agent.to_string(),
        epoch: 1,
        seq,
        health: AgentHealth::default(),
        samples,
        help: Default::default(),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let collector = args
        .get(1)
        .expect("usage: faultline-loadgen COLLECTOR [agents] [batches] [samples]");
    let agents: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let batches: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(50);
    let per_batch: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let judged = std::env::var("LOADGEN_RULES").is_ok_and(|v| v == "default");

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = format!(
        "[listen]\naddress = \"127.0.0.1:{port}\"\n[storage]\npath = \"{}\"\n[ingest]\nmax_concurrent_pushes = {}\n",
        dir.path().join("state.db").display(),
        agents * 2
    );
    if judged {
        config.push_str("[incidents]\n");
    }
    for a in 0..agents {
        config.push_str(&format!(
            "[[agents]]\nid = \"a{a}\"\ntoken = \"loadgen-token-{a:08}\"\n"
        ));
    }
    let config_path = dir.path().join("collector.toml");
    std::fs::write(&config_path, config).unwrap();
    let _collector = Daemon::spawn(
        std::path::Path::new(collector),
        &["run", "--config", &config_path.to_string_lossy()],
        &dir.path().join("collector.log"),
        &[("RUST_LOG", "warn")],
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let healthy = wait_until(Duration::from_secs(10), || async {
        faultline_tests::get_text(&format!("{url}/healthz")).await == "ok\n"
    })
    .await;
    assert!(healthy, "collector did not start");

    eprintln!("encoding {agents} × {batches} batches of {per_batch} samples …");
    let bodies: Vec<Vec<Vec<u8>>> = (0..agents)
        .map(|a| {
            (1..=batches)
                .map(|s| batch(&format!("a{a}"), s, per_batch, judged))
                .collect()
        })
        .collect();
    let bytes: usize = bodies.iter().flatten().map(Vec::len).sum();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for (a, agent_bodies) in bodies.into_iter().enumerate() {
        let url = format!("{url}{}", faultline_wire::PUSH_PATH);
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for body in agent_bodies {
                let resp = client
                    .post(&url)
                    .bearer_auth(format!("loadgen-token-{a:08}"))
                    .header("Content-Encoding", "zstd")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    resp.status(),
                    200,
                    "{}",
                    resp.text().await.unwrap_or_default()
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed().as_secs_f64();
    let samples = agents as f64 * batches as f64 * per_batch as f64;
    println!(
        "{samples} samples in {:.2} s over {agents} connections: {:.0} samples/s, {:.1} MB/s compressed, {:.1} B/sample",
        took,
        samples / took,
        bytes as f64 / took / 1e6,
        bytes as f64 / samples
    );
    if let Ok(command) = std::env::var("LOADGEN_THEN") {
        let status = std::process::Command::new("sh")
            .args(["-c", &command])
            .env("FAULTLINE_URL", &url)
            .status()
            .unwrap();
        assert!(status.success(), "LOADGEN_THEN failed: {status}");
    }
}
