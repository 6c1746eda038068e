//! Issue 10 items 4 and 5 through the real collector: samples dated outside the acceptance window
//! are refused one by one (listed in the acknowledgement, counted by agent and reason) and never
//! freeze their series; the agent's clock offset is exported and warned about; a flood of fresh
//! label sets stops at the series limit while the series already held keep updating, so memory
//! and the `/metrics` response stay bounded.

use faultline_tests::incidents::push_acked;
use faultline_tests::*;
use faultline_wire::{RejectReason, Sample, SampleKind, now_ms};
use std::collections::BTreeMap;

const METRIC: &str = "faultline_test_temperature_celsius";

fn sample(target: &str, labels: BTreeMap<String, String>, value: f64, ts_ms: i64) -> Sample {
    Sample {
        metric: METRIC.into(),
        target: target.into(),
        labels,
        value,
        ts_ms,
        kind: SampleKind::Gauge,
    }
}

fn plain(value: f64, ts_ms: i64) -> Sample {
    sample("dev-1", BTreeMap::new(), value, ts_ms)
}

fn refused(text: &str, reason: &str) -> Option<f64> {
    metric_value(
        text,
        "faultline_collector_rejected_samples_total",
        &[("agent", "a1"), ("reason", reason)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_timestamps_are_refused_per_sample_and_never_freeze_a_series() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[ingest]\nmax_ahead = \"1m\"\nmax_behind = \"1h\"\nclock_offset_warn = \"30s\"\n";
    let collector = CollectorProcess::start(dir.path(), free_port(), extra)
        .await
        .unwrap();
    let now = now_ms();

    // One batch: a good sample, one dated a year ahead, one at 0, one a day behind, one negative.
    let ack = push_acked(
        &collector,
        1,
        vec![
            plain(20.0, now),
            plain(99.0, now + 365 * 86_400_000),
            plain(98.0, 0),
            plain(97.0, now - 86_400_000),
            plain(96.0, -1),
        ],
        None,
    )
    .await;
    let listed: Vec<(u32, RejectReason)> =
        ack.rejected.iter().map(|r| (r.index, r.reason)).collect();
    assert_eq!(
        listed,
        [
            (1, RejectReason::TooFarAhead),
            (2, RejectReason::InvalidTimestamp),
            (3, RejectReason::TooOld),
            (4, RejectReason::InvalidTimestamp),
        ],
        "{ack:?}"
    );
    assert_eq!((ack.applied, ack.rejected_count), (1, 4), "{ack:?}");

    // The series is not frozen: later samples dated now replace the good one...
    push_acked(&collector, 2, vec![plain(21.0, now + 1_000)], None).await;
    // ...and even a sample inside the window but ahead (30 s) gives way to the next sane one.
    push_acked(&collector, 3, vec![plain(22.0, now + 30_000)], None).await;
    let ack = push_acked(&collector, 4, vec![plain(23.0, now + 2_000)], None).await;
    assert_eq!((ack.applied, ack.rejected_count), (1, 0), "{ack:?}");
    let text = collector.scrape().await;
    assert_eq!(
        metric_value(&text, METRIC, &[("target", "dev-1")]),
        Some(23.0),
        "{text}"
    );
    for (reason, want) in [
        ("too_far_ahead", 1.0),
        ("invalid_timestamp", 2.0),
        ("too_old", 1.0),
        ("series_limit_agent", 0.0),
        ("series_limit_total", 0.0),
    ] {
        assert_eq!(refused(&text, reason), Some(want), "{reason}:\n{text}");
    }

    // Clock offset: an agent 2 minutes ahead is exported and warned about, once per minute.
    for seq in 5..8 {
        push_acked(
            &collector,
            seq,
            vec![plain(24.0, now_ms())],
            Some(now_ms() + 120_000),
        )
        .await;
    }
    let text = collector.scrape().await;
    let offset = metric_value(
        &text,
        "faultline_agent_clock_offset_seconds",
        &[("agent", "a1")],
    )
    .unwrap_or_else(|| panic!("no clock offset:\n{text}"));
    assert!((115.0..=121.0).contains(&offset), "offset {offset}");
    let log = collector.daemon.log();
    let warnings = log
        .lines()
        .filter(|l| l.contains("agent clock differs"))
        .count();
    assert_eq!(warnings, 1, "rate-limited clock warning:\n{log}");
    // A push saying it was sent now brings the offset back near zero.
    push_acked(&collector, 8, vec![plain(25.0, now_ms())], Some(now_ms())).await;
    let text = collector.scrape().await;
    let offset = metric_value(
        &text,
        "faultline_agent_clock_offset_seconds",
        &[("agent", "a1")],
    )
    .unwrap_or(f64::NAN);
    assert!(offset.abs() < 5.0, "offset {offset}");
}

/// RSS of a process in bytes, from `/proc/PID/status`.
fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_fresh_label_sets_stops_at_the_series_limit() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[ingest]\nmax_series = 1500\nmax_series_per_agent = 1000\n";
    let collector = CollectorProcess::start(dir.path(), free_port(), extra)
        .await
        .unwrap();
    let labels = |n: u32| -> BTreeMap<String, String> {
        [
            ("session".to_string(), format!("flood-{n:08}")),
            ("user".to_string(), format!("user-{}", n % 977)),
            (
                "client".to_string(),
                format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255),
            ),
        ]
        .into()
    };
    let rss_before = rss_bytes(collector.daemon.pid());

    // 200,000 samples, each starting a series of its own, in 40 batches.
    let (batches, per_batch) = (40u32, 5_000u32);
    let mut applied = 0;
    let mut rejected = 0;
    for b in 0..batches {
        let now = now_ms();
        let samples = (0..per_batch)
            .map(|i| sample("app-1", labels(b * per_batch + i), 1.0, now))
            .collect();
        let ack = push_acked(&collector, u64::from(b) + 1, samples, None).await;
        assert!(ack.rejected.len() <= faultline_wire::MAX_LISTED_REJECTIONS);
        assert!(
            ack.rejected
                .iter()
                .all(|r| r.reason == RejectReason::SeriesLimitAgent),
            "{:?}",
            &ack.rejected[..3.min(ack.rejected.len())]
        );
        applied += ack.applied;
        rejected += ack.rejected_count;
    }
    let total = u64::from(batches * per_batch);
    assert_eq!((applied, rejected), (1000, total - 1000));

    // The series held keep updating.
    let now = now_ms();
    let again: Vec<Sample> = (0..1000)
        .map(|n| sample("app-1", labels(n), 2.0, now))
        .collect();
    let ack = push_acked(&collector, u64::from(batches) + 1, again, None).await;
    assert_eq!((ack.applied, ack.rejected_count), (1000, 0), "{ack:?}");

    let text = collector.scrape().await;
    assert_eq!(
        refused(&text, "series_limit_agent"),
        Some((total - 1000) as f64)
    );
    assert_eq!(
        metric_values(&text, METRIC, &[("target", "app-1")]),
        vec![2.0; 1000],
        "exactly the first 1000 series, updated"
    );
    assert!(
        text.len() < 512 * 1024,
        "/metrics is {} bytes for 1000 series",
        text.len()
    );
    let grown = rss_bytes(collector.daemon.pid()).saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024 * 1024,
        "collector grew by {} MiB",
        grown / (1024 * 1024)
    );
}
