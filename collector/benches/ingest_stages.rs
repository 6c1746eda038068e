//! Where ingest time goes: decompression, JSON parsing, validation (structure, then label limits
//! and the timestamp window per sample) and application to the series store, each timed on the
//! same realistic batch (1,000 targets × 10 metrics); and, first, what one series costs: resident
//! memory held by the store and bytes of `/metrics` text, which size the series limits. A bench
//! binary (`cargo bench -p faultline-collector --bench ingest_stages`); figures go to
//! BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use faultline_collector::series::{SeriesCollector, SeriesLimits, SeriesStore};
use faultline_wire::{AgentHealth, Batch, Limits, Sample, SampleKind, TimeWindow, codec};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// The collector binary's allocator (`src/main.rs`), so the stages cost what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Metric `metric` (0–9; 0–4 counters) of switch port `port` (48 ports a switch).
fn interface_sample(port: u32, metric: u32, ts: i64) -> Sample {
    Sample {
        metric: format!("faultline_snmp_if_metric_{metric}"),
        target: format!("switch-{:03}", port / 48),
        labels: [
            ("site".to_string(), "bj1".to_string()),
            ("room".to_string(), "room-a".to_string()),
            (
                "ifName".to_string(),
                format!("GigabitEthernet1/0/{}", port % 48),
            ),
        ]
        .into(),
        value: f64::from(port * metric) + 0.5,
        ts_ms: ts,
        kind: if metric < 5 {
            SampleKind::Counter
        } else {
            SampleKind::Gauge
        },
    }
}

fn batch(seq: u64, ts: i64) -> Batch {
    let mut samples = Vec::with_capacity(10_000);
    for t in 0..1000 {
        for m in 0..10 {
            samples.push(interface_sample(t, m, ts));
        }
    }
    Batch {
        agent: "a1".into(),
        epoch: 1,
        seq,
        health: AgentHealth::default(),
        samples,
        help: Default::default(),
    }
}

fn time<T>(rounds: u32, mut f: impl FnMut(u32) -> T) -> Duration {
    let start = Instant::now();
    for i in 0..rounds {
        black_box(f(i));
    }
    start.elapsed() / rounds
}

fn main() {
    // First, while the process has freed nothing its allocator could hand out again.
    series_cost();
    let rounds = 50;
    let b = batch(1, 1_700_000_000_000);
    let n = b.samples.len() as f64;
    let body = codec::encode(&b);
    let json = serde_json::to_vec(&b).unwrap();
    let limits = Limits::default();
    let window = TimeWindow {
        max_ahead_ms: 300_000,
        max_behind_ms: 7 * 86_400_000,
    };
    let now = 1_700_000_000_000;
    let agent: Arc<str> = Arc::from("a1");
    let mut store = SeriesStore::new(i64::MAX / 4, SeriesLimits::UNBOUNDED);
    let mut rejected = Vec::new();
    store.apply(&agent, &b.samples, now, &mut rejected);

    let decompress = time(rounds, |_| codec::decompress(&body, 64 << 20).unwrap());
    let parse = time(rounds, |_| codec::parse_json::<Batch>(&json).unwrap());
    let parsed: Vec<Batch> = (0..rounds)
        .map(|_| codec::parse_json(&json).unwrap())
        .collect();
    let validate = time(rounds, |i| {
        let batch = &parsed[i as usize];
        limits.check_batch(batch).unwrap();
        faultline_wire::judge_samples(&limits, &window, &batch.samples, now, &mut rejected);
        assert!(rejected.is_empty());
    });
    let mut batches = parsed.into_iter();
    let apply = time(rounds, |_| {
        store.apply(&agent, &batches.next().unwrap().samples, now, &mut rejected)
    });
    let total = decompress + parse + validate + apply;

    println!(
        "batch: {} samples, {} bytes zstd, {} bytes JSON ({:.1} B/sample on the wire)",
        n,
        body.len(),
        json.len(),
        body.len() as f64 / n
    );
    for (stage, took) in [
        ("zstd decompress", decompress),
        ("JSON parse", parse),
        ("validate", validate),
        ("apply to store", apply),
        ("total", total),
    ] {
        println!(
            "{stage:>16}: {:>8.2} ms/batch  {:>12.0} samples/s  {:>5.1}%",
            took.as_secs_f64() * 1e3,
            n / took.as_secs_f64(),
            100.0 * took.as_secs_f64() / total.as_secs_f64()
        );
    }
}

/// Resident bytes of the process (Linux `/proc/self/statm`), 0 where unavailable.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Memory and `/metrics` bytes per series: 200,000 fresh series shaped like the batch's (metric,
/// target, 3 labels), in batches of 10,000, the batches freed before measuring.
fn series_cost() {
    let count = 200_000u32;
    let now = faultline_wire::now_ms();
    let agent: Arc<str> = Arc::from("a1");
    let shared = Arc::new(RwLock::new(SeriesStore::new(
        i64::MAX / 4,
        SeriesLimits::UNBOUNDED,
    )));
    let before = rss_bytes();
    for chunk in 0..count / 10_000 {
        let samples: Vec<Sample> = (0..10_000)
            .map(|i| {
                let n = chunk * 10_000 + i;
                interface_sample(n / 10, n % 10, now)
            })
            .collect();
        let mut rejected = Vec::new();
        shared
            .write()
            .unwrap()
            .apply(&agent, &samples, now, &mut rejected);
    }
    let held = rss_bytes().saturating_sub(before);
    assert_eq!(shared.read().unwrap().len(), count as usize);
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(SeriesCollector(shared)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    println!(
        "series cost ({count} series, 3 labels): {:.0} B RSS/series held, {:.0} B/series of /metrics text",
        held as f64 / f64::from(count),
        text.len() as f64 / f64::from(count)
    );
}
