//! Where ingest time goes: decompression, JSON parsing, validation and application to the series
//! store, each timed on the same realistic batch (1,000 targets × 10 metrics). A bench binary
//! (`cargo bench -p faultline-collector --bench ingest_stages`); figures go to BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use faultline_collector::series::SeriesStore;
use faultline_wire::{AgentHealth, Batch, Limits, Sample, SampleKind, codec};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The collector binary's allocator (`src/main.rs`), so the stages cost what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn batch(seq: u64, ts: i64) -> Batch {
    let mut samples = Vec::with_capacity(10_000);
    for t in 0..1000 {
        for m in 0..10 {
            samples.push(Sample {
                metric: format!("faultline_snmp_if_metric_{m}"),
                target: format!("switch-{:03}", t / 48),
                labels: [
                    ("site".to_string(), "bj1".to_string()),
                    ("room".to_string(), "room-a".to_string()),
                    (
                        "ifName".to_string(),
                        format!("GigabitEthernet1/0/{}", t % 48),
                    ),
                ]
                .into(),
                value: (t * m) as f64 + 0.5,
                ts_ms: ts,
                kind: if m < 5 {
                    SampleKind::Counter
                } else {
                    SampleKind::Gauge
                },
            });
        }
    }
    Batch {
        agent: "a1".into(),
        epoch: 1,
        seq,
        health: AgentHealth::default(),
        samples,
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
    let rounds = 50;
    let b = batch(1, 1_700_000_000_000);
    let n = b.samples.len() as f64;
    let body = codec::encode(&b);
    let json = serde_json::to_vec(&b).unwrap();
    let limits = Limits::default();
    let agent: Arc<str> = Arc::from("a1");
    let mut store = SeriesStore::new(i64::MAX / 4);
    store.apply(&agent, &b.samples);

    let decompress = time(rounds, |_| codec::decompress(&body, 64 << 20).unwrap());
    let parse = time(rounds, |_| codec::parse_json::<Batch>(&json).unwrap());
    let parsed: Vec<Batch> = (0..rounds)
        .map(|_| codec::parse_json(&json).unwrap())
        .collect();
    let validate = time(rounds, |i| limits.check_batch(&parsed[i as usize]).unwrap());
    let mut batches = parsed.into_iter();
    let apply = time(rounds, |_| {
        store.apply(&agent, &batches.next().unwrap().samples)
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
