//! Rule evaluation throughput of the pure [`Evaluator`] (ingest → **rules** → incidents): 1,000
//! rules, each selecting one metric with a label matcher and a threshold with hysteresis, over
//! 1,000 metrics × `SERIES_PER_METRIC` series, fed round after round in time order (every series
//! once per round, one timestamp per round, 15 s apart). About 0.1 % of the samples of a round are
//! above the threshold, so each round fires and resolves ~1,000 incidents (summaries rendered).
//!
//! Round 0 creates every series' state (cold); later rounds update known series (steady state).
//! Rates are per CPU-second of the evaluating thread (`/proc/thread-self/schedstat`), so a machine
//! busy with other work still gives the per-core figure; wall-clock rates are printed too. Memory: VmRSS / VmHWM from `/proc/self/status`, before and after the evaluator holds its state.
//! A bench binary; figures go to BENCHMARKS.md:
//!
//! ```sh
//! cargo bench -p faultline-incidents --bench rules            # 100k then 1M series
//! cargo bench -p faultline-incidents --bench rules -- 1000    # only 1,000 series per metric (1M)
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use faultline_incidents::{Evaluator, RuleEvent, RuleSet};
use faultline_wire::config_file::ConfigSource;
use faultline_wire::{Sample, SampleKind};
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

/// Rules, and metrics (each rule selects its own metric).
const RULES: usize = 1000;
/// Steady-state rounds after the cold one.
const STEADY_ROUNDS: usize = 3;
const THRESHOLD: f64 = 90.0;

fn rule_file() -> String {
    let mut text = String::new();
    for m in 0..RULES {
        text.push_str(&format!(
            "[[rules]]\nname = \"Bench{m:04}\"\nmetric = \"bench_metric_{m:04}\"\nmatch = ['site=\"dc1\"']\ncondition = \"above\"\nthreshold = {THRESHOLD:.1}\nclear = 80.0\nseverity = \"P3\"\nsummary = \"{{{{ target }}}} {{{{ labels.ifName }}}} at {{{{ value }}}}\"\n\n"
        ));
    }
    text
}

/// `RULES` metrics × `per_metric` series: 20 interfaces per device, every series in site dc1 (so
/// every sample passes its rule's matcher and is judged: the costly case).
fn samples(per_metric: usize) -> Vec<Sample> {
    let mut out = Vec::with_capacity(RULES * per_metric);
    for m in 0..RULES {
        for s in 0..per_metric {
            out.push(Sample {
                metric: format!("bench_metric_{m:04}"),
                target: format!("dev-{:04}", s / 20),
                labels: [
                    ("site".to_string(), "dc1".to_string()),
                    ("ifName".to_string(), format!("Gi1/0/{}", s % 20)),
                ]
                .into(),
                value: 0.0,
                ts_ms: 0,
                kind: SampleKind::Gauge,
            });
        }
    }
    out
}

/// Sets round `round`'s timestamp and values: interface 0 of every device is above the threshold
/// for the rules `m` with `(m + round) % 50 == 0` (0.1 % of the samples), so each round ~1 in 1,000
/// series crosses up and the previous round's clear.
fn prepare_round(samples: &mut [Sample], per_metric: usize, round: usize) {
    let ts = 1_800_000_000_000 + round as i64 * 15_000;
    for (i, sample) in samples.iter_mut().enumerate() {
        let (m, s) = (i / per_metric, i % per_metric);
        sample.ts_ms = ts;
        sample.value = if s.is_multiple_of(20) && (m + round).is_multiple_of(50) {
            95.0
        } else {
            50.0 + (i % 7) as f64
        };
    }
}

/// CPU time this thread has run, and time it waited for a CPU (ns), from
/// `/proc/thread-self/schedstat`: on a shared machine the CPU-time rate is the per-core figure.
fn schedstat() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut fields = text
        .split_whitespace()
        .map(|f| f.parse::<f64>().unwrap_or(f64::NAN));
    (
        fields.next().unwrap_or(f64::NAN),
        fields.next().unwrap_or(f64::NAN),
    )
}

/// (VmRSS, VmHWM) in MiB.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn run(per_metric: usize) {
    let rules = RuleSet::from_sources(&[ConfigSource::from_text(
        Path::new("bench.toml"),
        rule_file(),
    )])
    .unwrap();
    assert_eq!(rules.rules().len(), RULES);
    let mut samples = samples(per_metric);
    let n = samples.len() as f64;
    let (rss_samples, _) = memory_mib();
    let mut eval = Evaluator::new(rules);
    println!(
        "{RULES} rules × {} series ({per_metric} per metric); samples built, RSS {rss_samples:.0} MiB",
        samples.len()
    );
    let (mut steady_wall, mut steady_cpu) = (0.0, 0.0);
    for round in 0..=STEADY_ROUNDS {
        prepare_round(&mut samples, per_metric, round);
        let (mut fired, mut resolved) = (0usize, 0usize);
        let (cpu0, waited0) = schedstat();
        let started = Instant::now();
        for sample in &samples {
            for event in eval.observe("a1", black_box(sample)) {
                match event {
                    RuleEvent::Firing(_) => fired += 1,
                    RuleEvent::Resolved(_) => resolved += 1,
                }
            }
        }
        let took = started.elapsed().as_secs_f64();
        let (cpu1, waited1) = schedstat();
        let cpu = (cpu1 - cpu0) / 1e9;
        let (rss, hwm) = memory_mib();
        if round > 0 {
            steady_wall += took;
            steady_cpu += cpu;
        }
        println!(
            "  round {round} ({}): wall {took:.3} s, CPU {cpu:.3} s (waited for a CPU {:.3} s)  {:.2} M samples/CPU-s  fired {fired} resolved {resolved}  RSS {rss:.0} MiB (evaluator state ≈ {:.0} MiB, {:.0} B/series)  peak {hwm:.0} MiB",
            if round == 0 { "cold" } else { "steady" },
            (waited1 - waited0) / 1e9,
            n / cpu / 1e6,
            rss - rss_samples,
            (rss - rss_samples) * 1024.0 * 1024.0 / n,
        );
    }
    assert_eq!(eval.out_of_order(), 0);
    let per_cpu = n * STEADY_ROUNDS as f64 / steady_cpu;
    let per_wall = n * STEADY_ROUNDS as f64 / steady_wall;
    println!(
        "  steady state: {:.2} M samples/CPU-s ({:.0} ns/sample) = {:.2} G rule×samples/CPU-s with {RULES} rules; wall clock {:.2} M samples/s",
        per_cpu / 1e6,
        1e9 / per_cpu,
        per_cpu * RULES as f64 / 1e9,
        per_wall / 1e6,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a bare number selects one size.
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100, 1000]
    } else {
        sizes
    };
    for per_metric in sizes {
        run(per_metric);
    }
}
