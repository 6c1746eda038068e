//! Network path probes on the machine's own stack: ICMP echo to 127.0.0.1 answers, a name that
//! does not resolve and a closed TCP port report loss with a counted error, an HTTP server that
//! answers 200 is up and one that answers 503 is down with its status.

use faultline_tests::receivers::Receiver;
use faultline_tests::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icmp_tcp_and_http_probes() {
    let dir = tempfile::tempdir().unwrap();
    let collector = CollectorProcess::start(dir.path(), free_port(), "")
        .await
        .unwrap();
    let good = Receiver::start().await.unwrap();
    let bad = Receiver::start().await.unwrap();
    bad.set_down(true);
    let probe = |id: &str, kind: &str, address: &str| {
        format!(
            "[[probes]]\nid = \"{id}\"\nkind = \"{kind}\"\naddress = \"{address}\"\ncount = 3\ninterval = \"300ms\"\ntimeout = \"300ms\"\n\n"
        )
    };
    let collector_port = collector.url.rsplit(':').next().unwrap().to_string();
    let extra = [
        probe("lo-icmp", "icmp", "127.0.0.1"),
        probe("unresolvable", "icmp", "no-such-host.invalid"),
        probe("lo-tcp-open", "tcp", &format!("127.0.0.1:{collector_port}")),
        probe(
            "lo-tcp-closed",
            "tcp",
            &format!("127.0.0.1:{}", free_port()),
        ),
        probe("web-ok", "http", &good.url("/ok")),
        probe("web-down", "http", &bad.url("/health")),
    ]
    .concat();
    let config = agent_config(dir.path(), &collector.url, "60s", &extra).unwrap();
    let mut agent = start_agent(dir.path(), &config).unwrap();

    let ids = [
        "lo-icmp",
        "unresolvable",
        "lo-tcp-open",
        "lo-tcp-closed",
        "web-ok",
        "web-down",
    ];
    let last = std::sync::Mutex::new(String::new());
    let arrived = wait_until(Duration::from_secs(20), || async {
        let text = collector.scrape().await;
        let ok = ids.iter().all(|id| {
            metric_value(&text, "faultline_probe_loss_ratio", &[("target", id)]).is_some()
        });
        *last.lock().unwrap() = text;
        ok
    })
    .await;
    let text = last.lock().unwrap().clone();
    assert!(
        arrived,
        "probe results missing; metrics:\n{text}\nagent log:\n{}",
        agent.log()
    );

    // (target, probe kind, up, loss)
    let cases = [
        ("lo-icmp", "icmp", 1.0, 0.0),
        ("unresolvable", "icmp", 0.0, 1.0),
        ("lo-tcp-open", "tcp", 1.0, 0.0),
        ("lo-tcp-closed", "tcp", 0.0, 1.0),
        ("web-ok", "http", 1.0, 0.0),
        ("web-down", "http", 0.0, 1.0),
    ];
    for (id, kind, up, loss) in cases {
        let labels = [("agent", "a1"), ("target", id), ("probe", kind)];
        assert_eq!(
            metric_value(&text, "faultline_probe_up", &labels),
            Some(up),
            "{id}\n{text}"
        );
        assert_eq!(
            metric_value(&text, "faultline_probe_loss_ratio", &labels),
            Some(loss),
            "{id}"
        );
        let latency = metric_value(
            &text,
            "faultline_probe_latency_seconds",
            &[("target", id), ("stat", "avg")],
        );
        if up == 1.0 {
            assert!(
                latency.is_some_and(|s| s > 0.0 && s < 0.3),
                "{id}: {latency:?}"
            );
        } else {
            assert_eq!(latency, None, "{id}");
        }
    }
    let status = |id| metric_value(&text, "faultline_probe_http_status", &[("target", id)]);
    assert_eq!(status("web-ok"), Some(200.0));
    assert_eq!(status("web-down"), Some(503.0));
    for (id, kind) in [
        ("unresolvable", "resolve"),
        ("lo-tcp-closed", "refused"),
        ("web-down", "status"),
    ] {
        let errors = metric_value(
            &text,
            "faultline_probe_errors_total",
            &[("target", id), ("kind", kind)],
        );
        assert!(errors.is_some_and(|n| n >= 3.0), "{id} {kind}: {errors:?}");
    }
    let log = agent.log();
    let failed = log_events(&log, "probe attempt failed");
    for id in ["unresolvable", "lo-tcp-closed", "web-down"] {
        let lines = failed.iter().filter(|e| e["fields"]["probe"] == id).count();
        assert_eq!(lines, 1, "{id}: one line per minute and kind:\n{log}");
    }
    assert!(agent.running());
}
