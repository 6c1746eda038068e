//! Agent → collector → /metrics shows this host's CPU and memory, with the agent's health.

use faultline_tests::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_metrics_reach_metrics_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let collector = CollectorProcess::start(dir.path(), free_port(), "")
        .await
        .unwrap();
    let config = agent_config(dir.path(), &collector.url, "300ms", "").unwrap();
    let mut agent = start_agent(dir.path(), &config).unwrap();

    let labels = [
        ("agent", "a1"),
        ("site", "test-site"),
        ("room", "test-room"),
        ("cpu", "total"),
    ];
    let last = std::sync::Mutex::new(String::new());
    let arrived = wait_until(Duration::from_secs(20), || async {
        let text = collector.scrape().await;
        let ok = metric_value(&text, "faultline_host_cpu_usage_ratio", &labels).is_some()
            && metric_value(&text, "faultline_agent_up", &[("agent", "a1")]) == Some(1.0);
        *last.lock().unwrap() = text;
        ok
    })
    .await;
    let text = last.into_inner().unwrap();
    assert!(
        arrived,
        "no host CPU series; metrics:\n{text}\nagent log:\n{}",
        agent.log()
    );

    let cpu = metric_value(&text, "faultline_host_cpu_usage_ratio", &labels).unwrap();
    assert!((0.0..=1.0).contains(&cpu), "cpu ratio {cpu}");
    let memory = metric_value(
        &text,
        "faultline_host_memory_total_bytes",
        &[("agent", "a1")],
    )
    .unwrap();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(
        (memory - kib * 1024.0).abs() / (kib * 1024.0) < 0.05,
        "memory {memory} vs /proc/meminfo {kib} kB"
    );
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(
        text.contains(&format!("target=\"{}\"", hostname.trim())),
        "host target label missing"
    );
    for metric in [
        "faultline_host_load1",
        "faultline_host_swap_total_bytes",
        "faultline_host_filesystem_avail_bytes",
        "faultline_host_network_receive_bytes_total",
        "faultline_host_uptime_seconds",
        "faultline_agent_outbox_bytes",
        "faultline_agent_last_seen_timestamp_seconds",
        "faultline_collector_ingest_duration_seconds_bucket",
    ] {
        assert!(
            metric_value(&text, metric, &[]).is_some(),
            "{metric} missing:\n{text}"
        );
    }
    // Every host metric a built-in rule reads is one the real agent sends.
    let rules = include_str!("../../../incidents/rules/default.toml");
    let read: Vec<&str> = rules
        .lines()
        .filter_map(|l| {
            let (key, value) = l.split_once('=')?;
            let name = value.trim().strip_prefix('"')?.strip_suffix('"')?;
            (["metric", "divide_by"].contains(&key.trim()) && name.starts_with("faultline_host_"))
                .then_some(name)
        })
        .collect();
    assert!(!read.is_empty(), "the default rules read host metrics");
    for metric in read {
        assert!(
            metric_value(&text, metric, &[]).is_some(),
            "a default rule reads {metric}, which the agent does not send:\n{text}"
        );
    }
    assert!(
        metric_value(
            &text,
            "faultline_collector_batches_total",
            &[("outcome", "applied")]
        )
        .unwrap()
            >= 1.0
    );
    // The agent says when it sent each push: same host, same clock, so the offset is about 0.
    let offset = metric_value(
        &text,
        "faultline_agent_clock_offset_seconds",
        &[("agent", "a1")],
    )
    .unwrap_or_else(|| panic!("no clock offset:\n{text}"));
    assert!(offset.abs() < 2.0, "clock offset {offset} s on one host");
    assert!(agent.terminate(), "agent did not exit cleanly on SIGTERM");
    for log in [agent.log(), collector.daemon.log()] {
        assert!(!log.contains(TOKEN), "a token leaked into a log");
    }
}
