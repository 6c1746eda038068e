//! The real agent polls a real net-snmp `snmpd` and a dead address, receives a trap sent with
//! `snmptrap`, and the collector exports it all: interface series with the agent's site label and
//! the device's own room and rack labels,
//! device health for the live and the dead device, and the trap.

use faultline_tests::snmp_peers;
use faultline_tests::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_polls_snmpd_and_receives_traps() {
    let dir = tempfile::tempdir().unwrap();
    let snmpd_port = snmp_peers::free_udp_port();
    let _snmpd = snmp_peers::snmpd(dir.path(), snmpd_port);
    let dead_port = snmp_peers::free_udp_port();
    let trap_port = snmp_peers::free_udp_port();
    let collector = CollectorProcess::start(dir.path(), free_port(), "")
        .await
        .unwrap();
    let snmp = format!(
        r#"
[[snmp.devices]]
id = "switch-lab"
address = "127.0.0.1:{snmpd_port}"
version = "v2c"
profiles = ["if-mib", "ucd-snmp"]
interval = "1s"
timeout = "300ms"
retries = 1
labels = {{ room = "hall-b", rack = "A12" }}

[[snmp.devices]]
id = "ups-dead"
address = "127.0.0.1:{dead_port}"
profiles = ["ups-mib"]
interval = "1s"
timeout = "300ms"
retries = 0

[snmp.traps]
listen = "127.0.0.1:{trap_port}"
communities = ["public"]
"#
    );
    let config = agent_config(dir.path(), &collector.url, "5s", &snmp).unwrap();
    let agent = start_agent(dir.path(), &config).unwrap();

    // The device's own labels: its room wins over the agent's, the agent's site stays.
    let live = [
        ("target", "switch-lab"),
        ("site", "test-site"),
        ("room", "hall-b"),
        ("rack", "A12"),
    ];
    let ok = wait_until(Duration::from_secs(25), || async {
        let text = collector.scrape().await;
        metric_value(&text, "faultline_snmp_up", &live) == Some(1.0)
            && metric_value(&text, "faultline_snmp_up", &[("target", "ups-dead")]) == Some(0.0)
            && metric_value(&text, "faultline_snmp_if_oper_status", &live).is_some()
    })
    .await;
    let text = collector.scrape().await;
    assert!(
        ok,
        "SNMP series missing:\n{text}\nagent log:\n{}",
        agent.log()
    );
    // snmpd's loopback interface is up (1) and its byte counter is exported as a counter.
    assert!(
        metric_values(&text, "faultline_snmp_if_oper_status", &live).contains(&1.0),
        "{text}"
    );
    assert!(
        metric_value(&text, "faultline_snmp_if_received_bytes_total", &live).is_some(),
        "{text}"
    );
    assert!(metric_value(&text, "faultline_snmp_poll_duration_seconds", &live).is_some());

    // A linkDown trap from the net-snmp tool reaches the collector through the agent.
    let status = std::process::Command::new(require_program("snmptrap", "snmp"))
        .args([
            "-v2c",
            "-c",
            "public",
            &format!("127.0.0.1:{trap_port}"),
            "",
            "1.3.6.1.6.3.1.1.5.3",
        ])
        .args([
            "1.3.6.1.2.1.2.2.1.1.7",
            "i",
            "7",
            "1.3.6.1.2.1.2.2.1.8.7",
            "i",
            "2",
        ])
        .env("MIBS", "")
        .env("SNMP_PERSISTENT_DIR", dir.path().join("snmptrap"))
        .status()
        .unwrap();
    assert!(status.success());
    let trapped = wait_until(Duration::from_secs(15), || async {
        let text = collector.scrape().await;
        metric_values(&text, "faultline_snmp_traps_total", &[])
            .iter()
            .sum::<f64>()
            >= 1.0
    })
    .await;
    assert!(
        trapped,
        "trap not exported:\n{}\nagent log:\n{}",
        collector.scrape().await,
        agent.log()
    );
}
