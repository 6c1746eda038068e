//! The soak run (ignored by default; `scripts/soak.sh` runs it): a real agent and collector for
//! `FAULTLINE_SOAK_SECS` seconds (default 300) while, in turns, the collector is killed with
//! SIGKILL, the agent is killed with SIGKILL, the collector is down for a while (an outage), and
//! the agent's outbox disk (a 2 MiB tmpfs) fills up during an outage and frees again. At the end
//! the backlog drains and the delivery ledger prints sent / applied / applied twice / dropped /
//! lost; the run fails on anything applied twice or partly, lost without being counted, or a drop
//! count the agent reports that differs from what was dropped.
//!
//! Needs root (the tmpfs); the figures go into RELIABILITY.md.

use faultline_tests::disk::{Tmpfs, bound_outbox, fill, is_root};
use faultline_tests::ledger::Ledger;
use faultline_tests::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// One disturbance of the soak, applied in turn.
#[derive(Debug, Clone, Copy)]
enum Disturbance {
    KillCollector,
    KillAgent,
    Outage,
    FullDiskOutage,
}

const TURNS: [Disturbance; 4] = [
    Disturbance::KillCollector,
    Disturbance::KillAgent,
    Disturbance::Outage,
    Disturbance::FullDiskOutage,
];

/// Stops `collector` (SIGKILL or SIGTERM), keeps its log, waits `down`, starts it again.
async fn bounce(
    collector: CollectorProcess,
    logs: &mut Vec<String>,
    dir: &Path,
    port: u16,
    kill: bool,
    down: Duration,
    while_down: impl FnOnce(),
) -> CollectorProcess {
    let mut collector = collector;
    if kill {
        collector.daemon.kill9();
    } else {
        collector.daemon.terminate();
    }
    logs.push(collector.daemon.log());
    tokio::time::sleep(down).await;
    while_down();
    tokio::time::sleep(down).await;
    collector.restart(dir, port).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak run of minutes: scripts/soak.sh"]
async fn soak() {
    assert!(is_root(), "the soak mounts a tmpfs: run it as root");
    let secs: u64 = std::env::var("FAULTLINE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut collector = CollectorProcess::start(dir.path(), port, "").await.unwrap();
    let config = agent_config(dir.path(), &collector.url, "200ms", "").unwrap();
    bound_outbox(&config, 1 << 20);
    let outbox = dir.path().join("outbox");
    let _disk = Tmpfs::mount(&outbox, "2m");
    let filler = outbox.join("filler");
    let mut agent = start_agent(dir.path(), &config).unwrap();
    let mut logs = Vec::new();
    let (mut kills_collector, mut kills_agent, mut outages, mut full_disks) = (0, 0, 0, 0);
    let started = Instant::now();
    let mut turn = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        // Run undisturbed for a few seconds, at a point that differs from turn to turn.
        tokio::time::sleep(Duration::from_millis(2_000 + (turn as u64 * 733) % 3_000)).await;
        match TURNS[turn % TURNS.len()] {
            Disturbance::KillCollector => {
                kills_collector += 1;
                collector = bounce(
                    collector,
                    &mut logs,
                    dir.path(),
                    port,
                    true,
                    Duration::ZERO,
                    || (),
                )
                .await;
            }
            Disturbance::KillAgent => {
                kills_agent += 1;
                agent.kill9();
                agent = start_agent(dir.path(), &config).unwrap();
            }
            Disturbance::Outage => {
                outages += 1;
                let down = Duration::from_secs(5);
                collector =
                    bounce(collector, &mut logs, dir.path(), port, false, down, || ()).await;
            }
            Disturbance::FullDiskOutage => {
                full_disks += 1;
                let down = Duration::from_secs(5);
                fill(&filler, 4 * 1024);
                collector = bounce(collector, &mut logs, dir.path(), port, true, down, || {
                    let _ = std::fs::remove_file(&filler);
                })
                .await;
            }
        }
        turn += 1;
    }
    // Drain: everything the agent queued is applied (its outbox holds at most one batch).
    let drained = wait_until(Duration::from_secs(120), || async {
        let text = collector.scrape().await;
        metric_value(&text, "faultline_agent_outbox_batches", &[("agent", "a1")])
            .is_some_and(|w| w <= 1.0)
    })
    .await;
    assert!(
        drained,
        "backlog not drained:\n{}",
        collector.scrape().await
    );
    let metrics = collector.scrape().await;
    let reported_dropped = metric_value(
        &metrics,
        "faultline_agent_dropped_samples_total",
        &[("agent", "a1")],
    )
    .unwrap_or(0.0) as u64;
    agent.terminate();
    collector.daemon.terminate();
    logs.push(collector.daemon.log());
    let ledger = Ledger::reconcile(&agent.log(), &logs);
    println!(
        "soak {secs} s: {kills_collector} collector kills, {kills_agent} agent kills, {outages} \
         outages, {full_disks} full-disk outages\n\
         sent (queued) {} batches / {} samples; applied {} batches / {} samples; applied twice {}; \
         applied partly {}; dropped (counted) {} batches / {} samples, never queued {} samples; \
         lost silently {}; still queued {}; duplicates acknowledged again {}; agent reported \
         dropped {}",
        ledger.queued_batches,
        ledger.queued_samples,
        ledger.applied_batches,
        ledger.applied_samples,
        ledger.applied_twice.len(),
        ledger.applied_partly.len(),
        ledger.dropped_batches,
        ledger.dropped_samples,
        ledger.never_queued_samples,
        ledger.lost.len(),
        ledger.still_queued,
        ledger.duplicates_acknowledged,
        reported_dropped,
    );
    assert!(ledger.exact(), "{ledger:#?}");
    // The agent's drop count is durable (its outbox cursor): across its kills it adds up to what
    // was dropped, as the collector exports it.
    assert_eq!(
        reported_dropped,
        ledger.dropped_samples + ledger.never_queued_samples,
        "faultline_agent_dropped_samples_total vs the ledger: {ledger:#?}"
    );
}
