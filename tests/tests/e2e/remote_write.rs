//! Prometheus remote write into the collector: a real node_exporter scraped by a real Prometheus
//! that remote-writes to the collector's `/api/v1/write` — the samples land on the inventory
//! target named by a per-job label mapping, and a rule on them opens the target owner's ticket;
//! and bodies that are not snappy/protobuf, a 2.0 body, a missing token, out-of-order and
//! duplicate samples get the answers Prometheus senders expect, counted by reason.

use faultline_tests::incidents::{IncidentSetup, wait_tickets};
use faultline_tests::prometheus::{Prometheus, write_body};
use faultline_tests::*;
use std::time::Duration;

const INVENTORY: &str = r#"
[[sites]]
id = "s1"

[[rooms]]
id = "r1"
site = "s1"

[[targets]]
id = "node-a"
kind = "host"
room = "r1"
owner = "platform"
"#;

/// Fires as soon as node_exporter's memory total arrives (it is always above 1 byte).
const RULES: &str = r#"
[[rules]]
name = "NodeMemorySeen"
metric = "node_memory_MemTotal_bytes"
condition = "above"
threshold = 1.0
severity = "P3"
summary = "{{ target }} reports {{ value }} bytes of memory"
"#;

/// Job `node` names its target with the `host` label (set in Prometheus' scrape config).
const REMOTE_WRITE: &str = "[remote_write]\njobs = { node = \"host\" }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_exporter_data_through_prometheus_open_the_owners_ticket() {
    let node_exporter = require_program("prometheus-node-exporter", "prometheus-node-exporter");
    let dir = tempfile::tempdir().unwrap();
    let setup = IncidentSetup {
        inventory: INVENTORY,
        tail: REMOTE_WRITE,
        ..IncidentSetup::default()
    };
    let collector = setup
        .start_with_rules(dir.path(), free_port(), RULES)
        .await
        .unwrap();
    let exporter_port = free_port();
    let _exporter = Daemon::spawn(
        &node_exporter,
        &[
            &format!("--web.listen-address=127.0.0.1:{exporter_port}"),
            "--collector.disable-defaults",
            "--collector.meminfo",
            "--collector.loadavg",
        ],
        &dir.path().join("node_exporter.log"),
        &[],
    )
    .unwrap();
    let config = format!(
        r#"global:
  scrape_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["127.0.0.1:{exporter_port}"]
        labels: {{ host: node-a }}
remote_write:
  - url: {url}/api/v1/write
    authorization: {{ credentials: {TOKEN} }}
    queue_config: {{ batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s }}
"#,
        url = collector.url
    );
    let prometheus = Prometheus::start(dir.path(), "prometheus", &config, &[])
        .await
        .unwrap();

    // The samples arrive on the mapped target, keeping their other labels.
    let arrived = wait_until(Duration::from_secs(40), || async {
        let text = collector.scrape().await;
        metric_value(
            &text,
            "node_memory_MemTotal_bytes",
            &[("target", "node-a"), ("job", "node"), ("agent", "a1")],
        )
        .is_some_and(|v| v > 1.0)
            && metric_value(&text, "node_load1", &[("target", "node-a")]).is_some()
    })
    .await;
    assert!(
        arrived,
        "no node_exporter samples at the collector:\n{}\nprometheus log:\n{}\ncollector log:\n{}",
        collector.scrape().await,
        prometheus.daemon.log(),
        collector.daemon.log()
    );
    let text = collector.scrape().await;
    let received =
        metric_value(&text, "faultline_remote_write_received_samples_total", &[]).unwrap_or(0.0);
    assert!(received > 0.0, "{text}");

    // The rule on them opens the target owner's ticket.
    let open = wait_tickets(&collector, "?state=open", |t| {
        t.iter()
            .any(|t| t["rule"] == "NodeMemorySeen" && t["target"] == "node-a")
    })
    .await;
    let ticket = open.iter().find(|t| t["rule"] == "NodeMemorySeen").unwrap();
    assert_eq!(ticket["tag"], "platform", "{ticket:#}");
    assert_eq!(open.len(), 1, "one fault, one ticket: {open:#?}");
}

/// `POST /api/v1/write` with `body` and the harness token (unless `token` is false).
async fn post(
    collector: &CollectorProcess,
    body: Vec<u8>,
    content_type: &str,
    token: bool,
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/v1/write", collector.url))
        .header("Content-Type", content_type)
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body);
    if token {
        request = request.bearer_auth(TOKEN);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

const PROTOBUF: &str = "application/x-protobuf";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_4xx_and_odd_samples_are_counted_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let collector = CollectorProcess::start(dir.path(), free_port(), REMOTE_WRITE)
        .await
        .unwrap();

    let (status, said) = post(&collector, b"not snappy at all".to_vec(), PROTOBUF, true).await;
    assert_eq!((status, said.contains("snappy")), (400, true), "{said}");
    let not_protobuf = snap::raw::Encoder::new()
        .compress_vec(b"\x08\x96\x01\x0a\xff")
        .unwrap();
    let (status, said) = post(&collector, not_protobuf, PROTOBUF, true).await;
    assert_eq!((status, said.contains("protobuf")), (400, true), "{said}");
    let v2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
    let (status, said) = post(&collector, write_body(&[]), v2, true).await;
    assert_eq!(
        (status, said.contains("remote-write 1.0")),
        (415, true),
        "{said}"
    );
    let (status, _) = post(&collector, write_body(&[]), PROTOBUF, false).await;
    assert_eq!(status, 401);
    let (status, said) = post(&collector, write_body(&[]), PROTOBUF, true).await;
    assert_eq!(status, 204, "an empty request is fine: {said}");

    // Newest first, then the same again (duplicates), then one older (out of order), and a
    // series without its target label: all succeed, the odd ones counted.
    let now = faultline_wire::now_ms();
    let labels: &[(&str, &str)] = &[("__name__", "temp_celsius"), ("instance", "t1:9100")];
    let fresh = write_body(&[(labels, &[(20.0, now - 2000), (21.0, now - 1000)])]);
    for _ in 0..2 {
        let (status, said) = post(&collector, fresh.clone(), PROTOBUF, true).await;
        assert_eq!(status, 204, "{said}");
    }
    let older = write_body(&[
        (labels, &[(19.0, now - 3000)]),
        (&[("__name__", "temp_celsius")], &[(5.0, now)]),
        (labels, &[(f64::NAN, now)]),
    ]);
    let (status, said) = post(&collector, older, PROTOBUF, true).await;
    assert_eq!(status, 204, "{said}");

    let text = collector.scrape().await;
    let rejected = |reason| {
        metric_value(
            &text,
            "faultline_remote_write_rejected_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(
        metric_value(&text, "temp_celsius", &[("target", "t1")]),
        Some(21.0),
        "{text}"
    );
    assert_eq!(
        metric_value(&text, "faultline_remote_write_received_samples_total", &[]),
        Some(7.0),
        "{text}"
    );
    // The second copy of the newest sample confirms it; the first copy's older sample is
    // superseded, as is the later older one.
    assert_eq!(rejected("out_of_order"), Some(2.0), "{text}");
    assert_eq!(rejected("no_target"), Some(1.0), "{text}");
    assert_eq!(rejected("non_finite"), Some(1.0), "{text}");
    for (reason, count) in [
        ("malformed", 2.0),
        ("unsupported", 1.0),
        ("unauthorized", 1.0),
    ] {
        assert_eq!(
            metric_value(
                &text,
                "faultline_collector_rejected_pushes_total",
                &[("reason", reason)]
            ),
            Some(count),
            "{reason}: {text}"
        );
    }
}
