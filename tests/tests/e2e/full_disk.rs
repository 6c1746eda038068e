//! The agent's outbox on a full disk, with the real agent and collector: the outbox lives on a
//! small tmpfs that another writer fills, frees and fills again while the collector is down; then
//! the collector comes back with the disk still full. Every batch the agent queued is applied by
//! the collector exactly once, dropped oldest first and counted, or still queued at the end — and
//! the samples dropped add up to `faultline_agent_dropped_samples_total` and to what the agent's
//! log says. Nothing is lost silently.
//!
//! Mounting needs root (CI runs as root); elsewhere the test says so and passes without running.

use faultline_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs of `size` mounted on `dir` for the guard's lifetime.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount -t tmpfs on {} failed although running as root (a container without \
             CAP_SYS_ADMIN?): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy, so a process still holding a file cannot keep the mount around.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Fills the filesystem of `path` until a write fails (no space left), leaving `leave` bytes free
/// by shrinking the filler again.
fn fill(path: &Path, leave: u64) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0xa5u8; 4096];
    let mut written = 0u64;
    while file.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    let _ = file.flush();
    file.set_len(written.saturating_sub(leave)).unwrap();
}

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
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("fsync = true\n", "fsync = true\nmax_bytes = 1048576\n"),
    )
    .unwrap();
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
    let last_applied = metric_value(
        &metrics,
        "faultline_agent_last_applied_sequence",
        &[("agent", "a1")],
    )
    .unwrap() as u64;
    assert!(agent.terminate(), "agent did not stop cleanly");
    let agent_log = agent.log();
    let second_log = collector.daemon.log();

    // Every queued batch: applied once, dropped (inside a logged range), or newer than the last
    // one the collector applied (still in the outbox for the next run).
    let queued: BTreeMap<u64, u64> = log_events(&agent_log, "batch queued")
        .iter()
        .map(|e| (field_u64(e, "seq"), field_u64(e, "samples")))
        .collect();
    let mut applied: BTreeMap<u64, (usize, u64)> = BTreeMap::new();
    for event in log_events(&first_log, "batch applied")
        .iter()
        .chain(log_events(&second_log, "batch applied").iter())
    {
        let entry = applied.entry(field_u64(event, "seq")).or_default();
        entry.0 += 1;
        entry.1 += field_u64(event, "applied");
    }
    let twice: Vec<_> = applied.iter().filter(|(_, (n, _))| *n > 1).collect();
    assert!(twice.is_empty(), "batches applied twice: {twice:?}");
    let drops = log_events(&agent_log, "outbox: dropped the oldest unsent samples");
    let ranges: Vec<(u64, u64)> = drops
        .iter()
        .map(|e| (field_u64(e, "first_seq"), field_u64(e, "last_seq")))
        .collect();
    let dropped_by_range = |seq: u64| ranges.iter().any(|(a, b)| (*a..=*b).contains(&seq));
    // A batch dropped for space while it was being sent, then applied, is taken off the count.
    let taken_back: BTreeMap<u64, u64> = log_events(
        &agent_log,
        "outbox: a batch dropped for space while being sent was applied; not counted as dropped",
    )
    .iter()
    .map(|e| (field_u64(e, "seq"), field_u64(e, "samples")))
    .collect();
    let mut dropped_samples = 0;
    for (&seq, &samples) in &queued {
        match (applied.get(&seq), dropped_by_range(seq)) {
            (Some((_, n)), false) => assert_eq!(*n, samples, "batch {seq} applied partly"),
            (None, true) => dropped_samples += samples,
            (None, false) => assert!(seq > last_applied, "batch {seq} lost silently"),
            (Some((_, n)), true) => {
                assert_eq!(*n, samples, "batch {seq} applied partly");
                assert_eq!(
                    taken_back.get(&seq),
                    Some(&samples),
                    "batch {seq} both applied and counted as dropped"
                );
            }
        }
    }
    // Batches the outbox could not take at all are counted too.
    let never_queued: u64 = log_events(
        &agent_log,
        "outbox: disk full and no older data left to drop; batch dropped",
    )
    .iter()
    .map(|e| field_u64(e, "dropped_samples"))
    .sum();
    let logged: u64 = drops
        .iter()
        .map(|e| field_u64(e, "dropped_samples"))
        .sum::<u64>()
        + never_queued
        - taken_back.values().sum::<u64>();
    assert!(
        dropped_samples > 0,
        "nothing was dropped: the disk never filled"
    );
    assert_eq!(logged, dropped_samples + never_queued, "the log's counts");
    assert_eq!(
        reported_dropped as u64, logged,
        "faultline_agent_dropped_samples_total vs the agent's log"
    );
    assert!(
        log_events(&agent_log, "batch larger than the whole outbox; dropped").is_empty()
            && log_events(&agent_log, "cannot write batch to the outbox; samples lost").is_empty(),
        "unexpected losses:\n{agent_log}"
    );
}
