//! Decoding cost of a pushed batch on the collector: zstd decompression and JSON parsing, with
//! the fast path (`parse_json`) next to path-tracking parsing (what a failing body costs), on
//! a 10,000-sample batch of switch-interface series. A bench binary:
//! `cargo bench -p faultline-wire --bench codec`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use faultline_wire::{AgentHealth, Batch, Sample, SampleKind, codec};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let samples = (0..10_000)
        .map(|i| Sample {
            metric: format!("faultline_snmp_if_metric_{}", i % 10),
            target: format!("switch-{:03}", i / 480),
            labels: [
                ("site".to_string(), "bj1".to_string()),
                ("room".to_string(), "room-a".to_string()),
                (
                    "ifName".to_string(),
                    format!("GigabitEthernet1/0/{}", (i / 10) % 48),
                ),
            ]
            .into(),
            value: i as f64 + 0.5,
            ts_ms: 1_700_000_000_000,
            kind: if i % 10 < 5 {
                SampleKind::Counter
            } else {
                SampleKind::Gauge
            },
        })
        .collect();
    let batch = Batch {
        agent: "a1".into(),
        epoch: 1,
        seq: 1,
        health: AgentHealth::default(),
        samples,
        help: Default::default(),
    };
    let body = codec::encode(&batch);
    let json = serde_json::to_vec(&batch).unwrap();
    let rounds = 40u32;
    let per_sample = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..rounds {
            f();
        }
        start.elapsed().as_secs_f64() / f64::from(rounds) / 10_000.0 * 1e9
    };
    let decompress = per_sample(&mut || {
        black_box(codec::decompress(&body, 64 << 20).unwrap());
    });
    let fast = per_sample(&mut || {
        black_box(codec::parse_json::<Batch>(&json).unwrap());
    });
    let tracked = per_sample(&mut || {
        let mut de = serde_json::Deserializer::from_slice(&json);
        black_box(serde_path_to_error::deserialize::<_, Batch>(&mut de).unwrap());
    });
    println!("zstd decompress          {decompress:>7.0} ns/sample");
    println!(
        "JSON parse (fast path)   {fast:>7.0} ns/sample  {:>9.0} samples/s",
        1e9 / fast
    );
    println!(
        "JSON parse (path-tracked){tracked:>7.0} ns/sample  {:>9.0} samples/s",
        1e9 / tracked
    );
}
