//! Capacity evaluation cost of the pure [`Watch`] (ingest → **capacity** → incidents) for 10,000
//! pools, each with a full 30-day forecast window of hourly history (720 hours, a growing line
//! with noise), as the collector's capacity task runs it:
//!
//! - **hourly round**: the first round of an hour records one reading per pool and refits every
//!   pool's Theil–Sen line (at most 4,096 pairwise slopes each), then decides;
//! - **steady round**: every other round (each 5 s) records and decides with the hour's line.
//!
//! Every round also trims each pool's history to its forecast window, as the task does.
//!
//! Each round kind runs `ROUNDS` times; min / median / max wall-clock times are printed, with the
//! thread's CPU time (`/proc/thread-self/schedstat`) and memory (VmRSS / VmHWM). Figures go to
//! BENCHMARKS.md:
//!
//! ```sh
//! cargo bench -p faultline-incidents --bench capacity            # 10,000 pools
//! cargo bench -p faultline-incidents --bench capacity -- 1000    # another pool count
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use faultline_incidents::capacity::history::{DAY_MS, HOUR_MS, HourBucket};
use faultline_incidents::capacity::pool::PoolKind;
use faultline_incidents::capacity::{Pool, Watch};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;
/// 2026-12-01 00:00 UTC.
const NOW: i64 = 1_796_083_200_000;

fn pool(i: usize) -> Pool {
    Pool::new(
        &format!("pool-{i:05}"),
        PoolKind::Storage,
        1000.0e12,
        "storage_used_bytes",
        &[&format!("vm-{i:05}")],
    )
}

/// Pool `i`'s used bytes at `at`: growing 1 to 5 GB a day from 100 TB, ±0.5 GB of noise.
fn used(i: usize, at: i64) -> f64 {
    let days = (at - (NOW - 30 * DAY_MS)) as f64 / DAY_MS as f64;
    let noise = ((at / HOUR_MS) as usize * 7919 + i * 104_729) % 1000;
    100.0e12 + (1 + i % 5) as f64 * 1.0e9 * days + (noise as f64 - 500.0) * 1.0e6
}

fn history(i: usize) -> Vec<HourBucket> {
    (0..30 * 24)
        .map(|h| {
            let at = NOW - 30 * DAY_MS + h * HOUR_MS;
            HourBucket::first(at, used(i, at))
        })
        .collect()
}

/// CPU time of this thread.
fn cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// One round over every pool at `at`, as the collector's task runs it (record, evaluate, trim
/// to the forecast window); returns (wall, cpu, pools that need planning).
fn round(
    watch: &mut Watch,
    pools: &BTreeMap<String, Pool>,
    at: i64,
) -> (Duration, Duration, usize) {
    let (started, cpu0) = (Instant::now(), cpu());
    let mut needs = 0;
    for (i, pool) in pools.values().enumerate() {
        let value = used(i, at);
        black_box(watch.record(&pool.id, at, value));
        let e = watch.evaluate(pool, value, at);
        needs += usize::from(e.need.is_some());
    }
    watch.trim(at, pools);
    (started.elapsed(), cpu() - cpu0, needs)
}

fn report(name: &str, mut runs: Vec<(Duration, Duration)>) {
    runs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let cpus: Vec<f64> = runs.iter().map(|r| ms(r.1)).collect();
    println!(
        "{name}: wall min {:.1} ms / median {:.1} ms / max {:.1} ms; cpu {:.1}..{:.1} ms ({} runs)",
        ms(runs[0].0),
        ms(runs[runs.len() / 2].0),
        ms(runs[runs.len() - 1].0),
        cpus.iter().copied().fold(f64::INFINITY, f64::min),
        cpus.iter().copied().fold(0.0, f64::max),
        runs.len()
    );
}

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    println!("memory before: {}", memory());
    let pools: BTreeMap<String, Pool> = (0..count).map(pool).map(|p| (p.id.clone(), p)).collect();
    let stored: BTreeMap<String, Vec<HourBucket>> = pools
        .keys()
        .enumerate()
        .map(|(i, id)| (id.clone(), history(i)))
        .collect();
    let mut watch = Watch::new(stored);
    println!(
        "{count} pools, 720 hours each; memory with history: {}",
        memory()
    );
    let mut hourly = Vec::new();
    let mut steady = Vec::new();
    let mut needs = 0;
    for r in 0..ROUNDS as i64 {
        // A new hour: every line is refitted.
        let hour = NOW + r * HOUR_MS;
        let (wall, cpu, n) = round(&mut watch, &pools, hour);
        hourly.push((wall, cpu));
        needs = n;
        // A later round of the same hour.
        let (wall, cpu, _) = round(&mut watch, &pools, hour + 5_000);
        steady.push((wall, cpu));
    }
    report("hourly round (refit + decide)", hourly);
    report("steady round (decide)", steady);
    println!(
        "pools needing planning: {needs}; memory after: {}",
        memory()
    );
}
