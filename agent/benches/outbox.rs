//! Outbox cost: bytes on disk per buffered sample and append throughput, for batches shaped like
//! the host source's (one collection ≈ 100 samples) and like SNMP interface tables (10,000), with
//! and without fsync. A bench binary (`cargo bench -p faultline-agent --bench outbox`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use faultline_agent::outbox::Outbox;
use faultline_wire::{Sample, SampleKind, codec};
use std::time::Instant;

fn samples(n: usize, round: usize) -> Vec<Sample> {
    (0..n)
        .map(|i| Sample {
            metric: format!("faultline_host_metric_{}", i % 25),
            target: "host-01".into(),
            labels: [
                ("site".to_string(), "bj1".to_string()),
                ("room".to_string(), "room-a".to_string()),
                ("interface".to_string(), format!("eth{}", i / 25)),
            ]
            .into(),
            value: (round * 31 + i) as f64 * 1.5,
            ts_ms: 1_700_000_000_000 + round as i64 * 15_000,
            kind: SampleKind::Gauge,
        })
        .collect()
}

fn main() {
    for (per_batch, batches) in [(100usize, 2000usize), (10_000, 40)] {
        for fsync in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut outbox = Outbox::open(dir.path(), 1 << 30, fsync).unwrap();
            let payloads: Vec<Vec<u8>> = (0..batches)
                .map(|r| codec::encode(&samples(per_batch, r)))
                .collect();
            let started = Instant::now();
            for p in &payloads {
                outbox.append(p, per_batch as u32).unwrap();
            }
            let took = started.elapsed().as_secs_f64();
            let depth = outbox.depth();
            let n = (per_batch * batches) as f64;
            println!(
                "{per_batch:>6} samples/batch fsync={fsync:<5}: {:>6.1} B/sample on disk, {:>9.0} batches/s, {:>11.0} samples/s, {:>6.1} MB/s",
                depth.bytes as f64 / n,
                batches as f64 / took,
                n / took,
                depth.bytes as f64 / took / 1e6
            );
        }
    }
}
