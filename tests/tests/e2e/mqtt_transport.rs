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

/// `[mqtt]` for a collector of shared group `collectors` with its own client id.
fn shared_member(broker: &str, client_id: &str) -> String {
    format!(
        "[mqtt]\nshared_group = \"collectors\"\n[mqtt.broker]\naddress = \"{broker}\"\n\
         client_id = \"{client_id}\"\nmin_backoff = \"100ms\"\nmax_backoff = \"300ms\"\n"
    )
}

/// Batches agent a1 has had applied by one collector, and the newest sequence it applied.
async fn applied_by(collector: &CollectorProcess) -> (f64, f64) {
    applied(&collector.scrape().await)
}

/// Two collectors share the agents' batch topic through `$share/collectors/…` on a real
/// mosquitto: the broker splits the batches between them and each batch is applied by exactly
/// one. Then one collector is killed with SIGKILL at a quiet moment (the agent paused with
/// SIGSTOP, so its applied count is known exactly) and stays down while the agent publishes
/// on: its share waits in its persistent session on the broker and is applied, once, when it
/// comes back. What this does not cover: a collector that never returns (its share waits for
/// it; moving it to the survivors needs the shared store of the active-active work).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_group_applies_each_batch_once_across_collectors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path(), Access::Anonymous).unwrap();
    let (dir1, dir2) = (dir.path().join("c1"), dir.path().join("c2"));
    std::fs::create_dir_all(&dir1).unwrap();
    std::fs::create_dir_all(&dir2).unwrap();
    let (port1, port2) = (free_port(), free_port());
    let mut one = CollectorProcess::start(&dir1, port1, &shared_member(&broker.address(), "c1"))
        .await
        .unwrap();
    let two = CollectorProcess::start(&dir2, port2, &shared_member(&broker.address(), "c2"))
        .await
        .unwrap();
    let mqtt = format!(
        "[push.mqtt]\naddress = \"{}\"\nmin_backoff = \"100ms\"\nmax_backoff = \"300ms\"\n",
        broker.address()
    );
    let config = agent_config(dir.path(), "", "200ms", &mqtt).unwrap();
    let agent = start_agent(dir.path(), &config).unwrap();

    // Both take a share, and together they applied every sequence number exactly once.
    let split = wait_until(Duration::from_secs(30), || async {
        let (a, b) = (applied_by(&one).await, applied_by(&two).await);
        a.0 >= 3.0 && b.0 >= 3.0
    })
    .await;
    assert!(
        split,
        "the broker did not split the batches: {:?} / {:?}; log 1:\n{}\nlog 2:\n{}\nagent:\n{}\nbroker:\n{}",
        applied_by(&one).await,
        applied_by(&two).await,
        one.daemon.log(),
        two.daemon.log(),
        agent.log(),
        broker.log()
    );

    // A quiet moment: the agent paused, everything it published applied.
    assert!(agent.signal("STOP"));
    let settled = std::sync::Mutex::new(((0.0, 0.0), (0.0, 0.0)));
    let quiet = wait_until(Duration::from_secs(20), || async {
        let (a, b) = (applied_by(&one).await, applied_by(&two).await);
        *settled.lock().unwrap() = (a, b);
        a.0 + b.0 == a.1.max(b.1)
    })
    .await;
    let (before_one, before_two) = *settled.lock().unwrap();
    assert!(
        quiet,
        "applied {before_one:?} + {before_two:?}: not every sequence exactly once"
    );

    // Collector 1 dies and stays down while the agent publishes on.
    one.daemon.kill9();
    assert!(agent.signal("CONT"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let one = one.restart(&dir1, port1).await.unwrap();
    let last = std::sync::Mutex::new(((0.0, 0.0), (0.0, 0.0)));
    let caught_up = wait_until(Duration::from_secs(40), || async {
        let (a, b) = (applied_by(&one).await, applied_by(&two).await);
        *last.lock().unwrap() = (a, b);
        let newest = a.1.max(b.1);
        newest >= before_one.1.max(before_two.1) + 20.0 && a.0 > 0.0 && {
            // Collector 1's counter restarted from zero: add what it applied before the kill.
            before_one.0 + a.0 + b.0 == newest
        }
    })
    .await;
    let (after_one, after_two) = *last.lock().unwrap();
    assert!(
        caught_up,
        "after the restart: collector 1 applied {} before + {after_one:?}, collector 2 \
         {after_two:?}; every sequence up to the newest must be applied exactly once.\n\
         log 1:\n{}\nlog 2:\n{}\nbroker:\n{}",
        before_one.0,
        one.daemon.log(),
        two.daemon.log(),
        broker.log()
    );
}
