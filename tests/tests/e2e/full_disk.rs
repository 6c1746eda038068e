//! The agent's outbox on a full disk, with the real agent and collector: the outbox lives on a
//! small tmpfs that another writer fills, frees and fills again while the collector is down; then
//! the collector comes back with the disk still full. Every batch the agent queued is applied by
//! the collector exactly once, dropped oldest first and counted, or still queued at the end — and
//! the samples dropped add up to `faultline_agent_dropped_samples_total` and to what the agent's
//! log says. Nothing is lost silently.
//!
//! Mounting needs root (CI runs as root); elsewhere the test says so and passes without running.

use faultline_tests::disk::{Tmpfs, bound_outbox, fill, is_root};
use faultline_tests::ledger::Ledger;
use faultline_tests::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// What a failure message needs: the disk's files and the agent's warnings and errors.
fn summary(log: &str, dir: &Path) -> String {
    let files: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| {
                    let len = e.metadata().map_or(0, |m| m.len());
                    format!("{} {len}", e.file_name().to_string_lossy())
                })
                .collect()
        })
        .unwrap_or_default();
    let queued = log_events(log, "batch queued");
    let problems: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\""))
        .collect();
    format!(
        "files {files:?}; {} batches queued, last {:?}; warnings and errors:\n{}",
        queued.len(),
        queued.last(),
        problems.join("\n")
    )
}

fn field_u64(event: &serde_json::Value, name: &str) -> u64 {
    event["fields"][name].as_u64().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_during_an_outage_loses_nothing_silently() {
    if !is_root() {
        eprintln!(
            "SKIPPED full_disk_during_an_outage_loses_nothing_silently: mounting a tmpfs needs root"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut collector = CollectorProcess::start(dir.path(), port, "").await.unwrap();
    let config = agent_config(dir.path(), &collector.url, "200ms", "").unwrap();
    // 1 MiB bound → 128 KiB segments on a 1 MiB disk that others fill too.
    bound_outbox(&config, 1 << 20);
    let outbox = dir.path().join("outbox");
    let _disk = Tmpfs::mount(&outbox, "1m");
    let filler = outbox.join("filler");
    let mut agent = start_agent(dir.path(), &config).unwrap();
    let applied = |log: &str| log_events(log, "batch applied").len();
    assert!(
        wait_until(Duration::from_secs(20), || async {
            applied(&collector.daemon.log()) >= 3
        })
        .await,
        "nothing applied:\n{}",
        agent.log()
    );

    // Outage. Someone fills the disk, leaving the outbox 32 KiB (the agent queues ~2 KiB/s): it
    // must drop its oldest.
    assert!(collector.daemon.terminate(), "collector did not stop");
    let first_log = collector.daemon.log();
    fill(&filler, 32 * 1024);
    let disk_full_drops = |log: &str| {
        log_events(log, "outbox: dropped the oldest unsent samples")
            .iter()
            .filter(|e| e["fields"]["reason"] == "disk full")
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(60), || async {
            disk_full_drops(&agent.log()) >= 1
        })
        .await,
        "the outbox never hit the full disk: {}",
        summary(&agent.log(), &outbox)
    );
    // The disk frees up, the backlog grows into the space, then the disk fills completely.
    std::fs::remove_file(&filler).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    fill(&filler, 0);
    let queued_before_return = log_events(&agent.log(), "batch queued").len();

    // The collector returns while the disk is full: acknowledgements must still free segments,
    // and new batches must be stored and delivered.
    let collector = collector.restart(dir.path(), port).await.unwrap();
    let caught_up = wait_until(Duration::from_secs(60), || async {
        let log = agent.log();
        let queued = log_events(&log, "batch queued");
        let newest = queued.last().map_or(0, |e| field_u64(e, "seq"));
        let applied: BTreeSet<u64> = log_events(&collector.daemon.log(), "batch applied")
            .iter()
            .map(|e| field_u64(e, "seq"))
            .collect();
        queued.len() >= queued_before_return + 10 && applied.contains(&newest)
    })
    .await;
    assert!(
        caught_up,
        "no delivery on the full disk:\n{}\nagent:\n{}",
        collector.scrape().await,
        agent.log()
    );
    // Free the disk so nothing is dropped after the last report, then stop the agent.
    std::fs::remove_file(&filler).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let metrics = collector.scrape().await;
    let reported_dropped = metric_value(
        &metrics,
        "faultline_agent_dropped_samples_total",
        &[("agent", "a1")],
    )
    .unwrap_or_else(|| panic!("no dropped-samples metric:\n{metrics}"));
    assert!(agent.terminate(), "agent did not stop cleanly");
    let agent_log = agent.log();
    let second_log = collector.daemon.log();

    // Every queued batch: applied once, dropped (inside a logged range), or newer than the last
    // one the collector applied (still in the outbox for the next run).
    let ledger = Ledger::reconcile(&agent_log, &[first_log, second_log]);
    assert!(ledger.exact(), "{ledger:#?}");
    assert!(
        ledger.dropped_samples > 0,
        "nothing was dropped: the disk never filled"
    );
    assert_eq!(
        ledger.logged_dropped_samples,
        ledger.dropped_samples + ledger.never_queued_samples,
        "the log's counts"
    );
    assert_eq!(
        reported_dropped as u64, ledger.logged_dropped_samples,
        "faultline_agent_dropped_samples_total vs the agent's log"
    );
    assert!(
        log_events(&agent_log, "batch larger than the whole outbox; dropped").is_empty()
            && log_events(&agent_log, "cannot write batch to the outbox; samples lost").is_empty(),
        "unexpected losses:\n{agent_log}"
    );
}
