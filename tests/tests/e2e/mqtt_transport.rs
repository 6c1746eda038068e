//! MQTT as the agent → collector transport through a real mosquitto: batches arrive as over
//! HTTP, and a broker restart while the agent keeps collecting loses no batch (QoS 1, persistent
//! sessions on both sides, the outbox holding what the broker has not acknowledged).

use faultline_tests::mosquitto::{Access, Mosquitto};
use faultline_tests::*;
use std::time::Duration;

fn applied(text: &str) -> (f64, f64) {
    (
        metric_value(
            text,
            "faultline_collector_batches_total",
            &[("outcome", "applied")],
        )
        .unwrap_or(0.0),
        metric_value(
            text,
            "faultline_agent_last_applied_sequence",
            &[("agent", "a1")],
        )
        .unwrap_or(0.0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_loses_no_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start(dir.path(), Access::Anonymous).unwrap();
    let mqtt = format!(
        "address = \"{}\"\nmin_backoff = \"100ms\"\nmax_backoff = \"300ms\"\n",
        broker.address()
    );
    let collector = CollectorProcess::start(
        dir.path(),
        free_port(),
        &format!("[mqtt]\n[mqtt.broker]\n{mqtt}"),
    )
    .await
    .unwrap();
    // No collector URL: the agent pushes only through the broker.
    let config = agent_config(dir.path(), "", "200ms", &format!("[push.mqtt]\n{mqtt}")).unwrap();
    let mut agent = start_agent(dir.path(), &config).unwrap();

    let first = wait_until(Duration::from_secs(20), || async {
        applied(&collector.scrape().await).0 >= 3.0
    })
    .await;
    assert!(
        first,
        "no batches through MQTT; collector log:\n{}\nagent log:\n{}",
        collector.daemon.log(),
        agent.log()
    );
    let host = metric_value(
        &collector.scrape().await,
        "faultline_host_cpu_usage_ratio",
        &[("agent", "a1"), ("cpu", "total")],
    );
    assert!(host.is_some(), "host samples did not arrive through MQTT");

    // The broker goes away while the agent keeps collecting (a batch every ~200 ms).
    assert!(
        broker.stop(),
        "mosquitto did not stop cleanly:\n{}",
        broker.log()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = applied(&collector.scrape().await);
    broker.start_again().unwrap();

    // Every sequence number up to the last applied one was applied exactly once: no gap.
    let last = std::sync::Mutex::new((0.0, 0.0));
    let caught_up = wait_until(Duration::from_secs(30), || async {
        let now = applied(&collector.scrape().await);
        *last.lock().unwrap() = now;
        now.1 >= during.1 + 15.0 && now.0 == now.1
    })
    .await;
    let (count, seq) = *last.lock().unwrap();
    assert!(
        caught_up,
        "applied {count} batches, last sequence {seq} (before the restart: {during:?}); \
         agent log:\n{}\ncollector log:\n{}\nbroker log:\n{}",
        agent.log(),
        collector.daemon.log(),
        broker.log()
    );
    let log = agent.log();
    assert!(
        !log_events(
            &log,
            "MQTT transport connection failed; batches wait in the outbox"
        )
        .is_empty(),
        "the agent never saw the broker go away:\n{log}"
    );
    assert!(agent.running());
}
