//! Capacity watch end to end: the real collector with an inventory pool, usage pushed over HTTP
//! as agent samples; `/metrics` shows the pool's usage ratio, crossing the expand line opens
//! exactly one planning ticket (REST API) that pages nobody (a real HTTP receiver on loopback
//! gets the page of an ordinary fault, not the planning ticket), a restart re-evaluates into a
//! comment on the same ticket, and `check-config` refuses a pool naming an unknown department or
//! target with file:line:field.

use faultline_tests::incidents::*;
use faultline_tests::receivers::Receiver;
use faultline_tests::*;
use faultline_wire::{Sample, SampleKind, now_ms};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// The watch reads the pools every 5 s: two rounds and the time to answer.
const ROUND_WAIT: Duration = Duration::from_secs(15);
const METRIC: &str = "faultline_snmp_host_storage_used_bytes";

const INVENTORY: &str = r#"
[[departments]]
id = "finance"

[[targets]]
id = "edge1"
kind = "device"
owner = "platform"

[[targets]]
id = "host-1"
kind = "host"
owner = "platform"

[[targets]]
id = "vm-1"
kind = "vm"
owner = "customer"
department = "finance"

[[targets]]
id = "vm-2"
kind = "vm"
owner = "customer"
department = "finance"

[[pools]]
id = "san-a"
kind = "storage"
capacity = 1000.0
unit = "GB"
members = ["vm-1", "vm-2", "host-1"]
metric = "faultline_snmp_host_storage_used_bytes"
shares = { finance = 0.5 }
"#;

/// The members' used storage (GB) now: vm-1, vm-2, host-1.
fn usage(vm1: f64, vm2: f64, host: f64) -> Vec<Sample> {
    let at = now_ms();
    [("vm-1", vm1), ("vm-2", vm2), ("host-1", host)]
        .into_iter()
        .map(|(target, value)| {
            let mut s = sample(METRIC, target, &[("storage_descr", "/data")], value, at);
            s.kind = SampleKind::Gauge;
            s
        })
        .collect()
}

async fn ratio(collector: &CollectorProcess) -> Option<f64> {
    metric_value(
        &collector.scrape().await,
        "faultline_capacity_usage_ratio",
        &[("pool", "san-a"), ("kind", "storage")],
    )
}

async fn wait_ratio(collector: &CollectorProcess, want: f64) {
    let reached = wait_until(ROUND_WAIT, || async {
        ratio(collector)
            .await
            .is_some_and(|r| (r - want).abs() < 1e-9)
    })
    .await;
    assert!(reached, "ratio {want}: {:?}", ratio(collector).await);
}

async fn planning(collector: &CollectorProcess) -> Vec<Value> {
    tickets(collector, "")
        .await
        .into_iter()
        .filter(|t| t["rule"] == "CapacityPlanning")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_the_expand_line_opens_one_planning_ticket_that_pages_nobody() {
    let receiver = Receiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tail = format!(
        "[incidents.escalation]\ndefault = \"ops\"\n\n{}",
        webhook_channel(&receiver.url("/hook"))
    );
    let setup = IncidentSetup {
        inventory: INVENTORY,
        oncall: ONCALL,
        tail: &tail,
        ..IncidentSetup::default()
    };
    let collector = setup.start(dir.path(), port).await.unwrap();

    // Half full: exported, nothing to plan.
    push(&collector, 1, usage(300.0, 100.0, 100.0)).await;
    wait_ratio(&collector, 0.5).await;
    let text = collector.scrape().await;
    let used = metric_value(
        &text,
        "faultline_capacity_used",
        &[("pool", "san-a"), ("kind", "storage")],
    );
    assert_eq!(used, Some(500.0));
    assert!(
        !text.contains("faultline_capacity_days_to_full{"),
        "no forecast without a day of history"
    );
    assert!(planning(&collector).await.is_empty());

    // Past the expand line (85 %): one planning ticket.
    push(&collector, 2, usage(600.0, 200.0, 100.0)).await;
    wait_ratio(&collector, 0.9).await;
    let opened = wait_tickets(&collector, "?state=open", |t| {
        t.iter().any(|t| t["rule"] == "CapacityPlanning")
    })
    .await;
    let ticket = opened
        .iter()
        .find(|t| t["rule"] == "CapacityPlanning")
        .unwrap()
        .clone();
    assert_eq!(ticket["target"], "pool:san-a");
    assert_eq!(ticket["severity"], "P4");
    assert_eq!(ticket["tag"], "platform");
    assert_eq!(ticket["channel"], "monitoring");
    assert_eq!(ticket["pages"], false);
    assert_eq!(
        ticket["summary"],
        "Capacity expand: storage pool san-a at 90.0 % (not growing)"
    );
    let description = ticket["description"].as_str().unwrap();
    for part in [
        "- vm-1 (finance): 600 GB, 60.0 % of the pool",
        "- vm-2 (finance): 200 GB",
        "- host-1 (platform): 100 GB",
        "Department finance: 80.0 % of the pool, share 50.0 %",
    ] {
        assert!(description.contains(part), "{part}: {description}");
    }
    // Another round at the same level changes nothing.
    push(&collector, 3, usage(610.0, 200.0, 100.0)).await;
    wait_ratio(&collector, 0.91).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let all = planning(&collector).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(changes(&all[0]), ["opened"]);
    let log = collector.daemon.log();
    let events: Vec<Value> = log_events(&log, "ticket event")
        .into_iter()
        .filter(|e| e["fields"]["rule"] == "CapacityPlanning")
        .collect();
    assert_eq!(events.len(), 1, "{log}");
    assert_eq!(events[0]["fields"]["pages"], false);

    // An ordinary fault still pages through the same receiver: only its trigger arrives.
    let t0 = now_ms() - 90 * S;
    let down = (0..4).map(|i| up("edge1", 0.0, t0 + i * 30 * S)).collect();
    push(&collector, 4, down).await;
    receiver
        .wait("edge1's trigger delivered", |r| {
            r.accepted_kinds("/hook") == ["trigger"]
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let delivered = receiver.accepted("/hook");
    assert_eq!(delivered.len(), 1, "only edge1's page");
    assert!(
        !delivered[0].json().to_string().contains("pool:san-a"),
        "{}",
        delivered[0].json()
    );
    let pages = page_events(&collector);
    assert!(
        pages.iter().all(|e| e["fields"]["target"] == "edge1"),
        "{pages:?}"
    );

    // Restarted, the watch asks again: the stage comments on the open ticket, opens none.
    let mut collector = collector;
    collector.daemon.terminate();
    let collector = collector.restart(dir.path(), port).await.unwrap();
    push(&collector, 5, usage(700.0, 200.0, 100.0)).await;
    let commented = wait_until(ROUND_WAIT, || async {
        planning(&collector)
            .await
            .first()
            .is_some_and(|t| changes(t) == ["opened", "commented"])
    })
    .await;
    let all = planning(&collector).await;
    assert!(commented, "{all:?}");
    assert_eq!(all.len(), 1);
    let text = all[0]["timeline"][1]["change"]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Capacity expand: storage pool san-a at 100.0 %"),
        "{text}"
    );
}

/// `check-config` of a collector whose inventory is `inventory`: (passed, stderr).
fn check(dir: &Path, inventory: &str) -> (bool, String) {
    let inventory_file = dir.join("inventory.toml");
    std::fs::write(&inventory_file, inventory).unwrap();
    let config = format!(
        "[listen]\naddress = \"127.0.0.1:1\"\n[storage]\npath = \"{}/x.db\"\n[incidents]\ninventory_file = \"{}\"\n",
        dir.display(),
        inventory_file.display()
    );
    check_config("faultline-collector", &dir.join("collector.toml"), &config)
}

#[test]
fn a_pool_naming_an_unknown_department_or_target_is_refused_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let (passed, err) = check(dir.path(), INVENTORY);
    assert!(passed, "{err}");
    let cases = [
        (
            "shares = { finance = 0.5 }",
            "shares = { finance = 0.5, audit = 0.1 }",
            "inventory.toml:34:",
            "field `pools[0].shares.audit`: unknown department `audit`",
        ),
        (
            "\"vm-2\", \"host-1\"]",
            "\"vm-2\", \"host-9\"]",
            "inventory.toml:32:",
            "field `pools[0].members[2]`: unknown target `host-9`",
        ),
    ];
    for (from, to, place, message) in cases {
        let (passed, err) = check(dir.path(), &INVENTORY.replace(from, to));
        assert!(!passed, "{to}");
        assert!(err.contains(place) && err.contains(message), "{to}: {err}");
    }
}
