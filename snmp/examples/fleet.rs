//! Polls N devices once, all at the same time (one task each, as the agent does), and prints
//! wall time, this process's CPU seconds and peak RSS — the "1,000 devices" benchmark.
//!
//! `cargo run --release -p faultline-snmp --example fleet -- 127.0.0.1:16100 1000 64`
//! (the third argument is the agent-wide limit of polls in flight, [`PollLimit`]).

use faultline_snmp::{DeviceConfig, DevicePoller, PollLimit, ProfileCatalog};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let address = args
        .first()
        .ok_or("usage: fleet ADDRESS [DEVICES]")?
        .clone();
    let devices: usize = args.get(1).map_or(Ok(1000), |a| a.parse())?;
    let limit = PollLimit::new(args.get(2).map_or(Ok(64), |a| a.parse())?);
    let catalog = Arc::new(ProfileCatalog::builtin()?);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..devices {
        let mut config = DeviceConfig::v2c(&format!("dev{i}"), &address, "public");
        config.profiles = vec!["if-mib".into()];
        config.detect_profiles = false;
        config.timeout = Duration::from_secs(10);
        let catalog = catalog.clone();
        let limit = limit.clone();
        tasks.push(tokio::spawn(async move {
            let _slot = limit.acquire().await;
            let out = DevicePoller::new(config, catalog).poll().await;
            (out.samples.len(), out.request_errors.len())
        }));
    }
    let (mut samples, mut errors) = (0, 0);
    for task in tasks {
        let (s, e) = task.await?;
        samples += s;
        errors += e;
    }
    println!(
        "{devices} devices: {samples} samples, {errors} failed requests, wall {:.2} s, CPU {:.2} s, peak RSS {} MiB",
        started.elapsed().as_secs_f64(),
        cpu_seconds() - cpu_before,
        peak_rss_kib() / 1024
    );
    Ok(())
}

/// User + system CPU time of this process, from /proc/self/stat (clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size (VmHWM) in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
