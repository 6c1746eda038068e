//! The exposition passes `promtool check metrics`, and a real Prometheus scraping the collector
//! answers a PromQL query for this host's CPU.

use faultline_tests::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_and_a_real_prometheus_accept_the_exposition() {
    let promtool = require_program("promtool", "prometheus");
    let prometheus = require_program("prometheus", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let collector = CollectorProcess::start(dir.path(), free_port(), "")
        .await
        .unwrap();
    let config = agent_config(dir.path(), &collector.url, "300ms", "").unwrap();
    let _agent = start_agent(dir.path(), &config).unwrap();
    let cpu = [("cpu", "total"), ("agent", "a1")];
    let ready = wait_until(Duration::from_secs(20), || async {
        metric_value(
            &collector.scrape().await,
            "faultline_host_cpu_usage_ratio",
            &cpu,
        )
        .is_some()
    })
    .await;
    assert!(ready, "no CPU series");

    // promtool reads the classic text format, which is what a plain GET returns.
    let text = collector.scrape().await;
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );

    // OpenMetrics when asked for it.
    let om = reqwest::Client::new()
        .get(format!("{}/metrics", collector.url))
        .header("Accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(om.ends_with("# EOF\n"), "not OpenMetrics");

    // A real Prometheus scrapes the collector every second.
    let prom_port = free_port();
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: faultline\n    static_configs:\n      - targets: ['{}']\n",
            collector.url.trim_start_matches("http://")
        ),
    )
    .unwrap();
    let _prom = Daemon::spawn(
        &prometheus,
        &[
            &format!("--config.file={}", prom_config.display()),
            &format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            &format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &dir.path().join("prometheus.log"),
        &[],
    )
    .unwrap();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let query = format!("http://127.0.0.1:{prom_port}/api/v1/query");
    let last = std::sync::Mutex::new(serde_json::Value::Null);
    let found = wait_until(Duration::from_secs(40), || async {
        let resp = reqwest::Client::new()
            .get(&query)
            .query(&[("query", "faultline_host_cpu_usage_ratio{cpu=\"total\"}")])
            .send()
            .await;
        let Ok(resp) = resp else { return false };
        let answer: serde_json::Value = resp.json().await.unwrap_or_default();
        let ok = answer["data"]["result"].as_array().is_some_and(|r| {
            r.iter().any(|s| {
                s["metric"]["target"] == hostname.as_str() && s["metric"]["job"] == "faultline"
            })
        });
        *last.lock().unwrap() = answer;
        ok
    })
    .await;
    let last = last.into_inner().unwrap();
    assert!(found, "Prometheus has no CPU series for {hostname}: {last}");
    // Prometheus saw the scrape as healthy.
    let up = reqwest::Client::new()
        .get(&query)
        .query(&[("query", "up{job=\"faultline\"}")])
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");

    // Every dashboard query is valid PromQL for this Prometheus, and every series the overview
    // names is one the collector really exports (the SNMP test checks the network dashboard).
    let exported = collector.scrape().await;
    let missing = missing_dashboard_series("faultline-overview.json", &exported);
    assert!(
        missing.is_empty(),
        "dashboard series not exported: {missing:?}"
    );
    let queries = dashboard_queries();
    assert!(
        queries.len() >= 20,
        "too few dashboard queries: {}",
        queries.len()
    );
    for (file, expr) in queries {
        let promql = expr
            .replace("$__rate_interval", "1m")
            .replace("$site", ".*")
            .replace("$room", ".*");
        let answer: serde_json::Value = reqwest::Client::new()
            .get(&query)
            .query(&[("query", promql.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["status"], "success", "{file}: `{promql}`: {answer}");
    }
}
