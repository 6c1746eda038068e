//! Issue 4's machine-room scenarios end to end, through the real agent and the real device
//! profiles: snmpsim serves recordings of real devices (a Geist environmental monitor, a Palo Alto
//! and a FortiGate firewall) whose values the test changes with `snmpset` (snmpsim's `writecache`
//! module), the real `faultline-agent` polls them, and the real `faultline-collector` turns the
//! samples into tickets with the built-in default rules (their `for` durations made seconds, see
//! [`fast_default_rules`]) and delivers the notifications to real receivers on loopback. The
//! cooling failure is played twice: seen by three sensors below the critical temperature, and
//! warming one sensor past it (the same ticket, raised to P1, paged again). The firewalls fail
//! over (Palo Alto) and lose a cluster member's sync (FortiGate), one paged ticket each. A last
//! scenario delivers one incident to every paging channel: PagerDuty Events v2, the WeCom,
//! DingTalk and Feishu group robots and e-mail over SMTP.

use faultline_tests::incidents::*;
use faultline_tests::receivers::{Receiver, SmtpSink};
use faultline_tests::snmp_peers::{self, Peer, Recording, Writable};
use faultline_tests::*;
use faultline_wire::now_ms;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// The room of the scenarios, with three temperature sensors and two firewalls in it.
const INVENTORY: &str = r#"
[[sites]]
id = "dc1"

[[rooms]]
id = "hall-a"
site = "dc1"

[[targets]]
id = "env-a1"
kind = "sensor"
room = "hall-a"
owner = "platform"

[[targets]]
id = "env-a2"
kind = "sensor"
room = "hall-a"
owner = "platform"

[[targets]]
id = "env-a3"
kind = "sensor"
room = "hall-a"
owner = "platform"

[[targets]]
id = "fw-a1"
kind = "device"
room = "hall-a"
owner = "platform"

[[targets]]
id = "fgt-a1"
kind = "device"
room = "hall-a"
owner = "platform"
"#;

/// A collector with incidents on: the inventory above, the fast default rules, `tail`.
async fn collector(dir: &Path, tail: &str) -> CollectorProcess {
    let setup = IncidentSetup {
        inventory: INVENTORY,
        tail,
        ..IncidentSetup::default()
    };
    setup
        .start_with_rules(dir, free_port(), &fast_default_rules())
        .await
        .unwrap()
}

/// Starts an agent polling `devices` (target id = community on `peer`) every 2 s, the host
/// source off (its own rules have no business in these scenarios).
fn agent_polling(
    dir: &Path,
    collector: &CollectorProcess,
    peer: &Peer,
    devices: &[&str],
) -> Daemon {
    // `agent_config` appends this right after its `[host]` table: the first line belongs to it.
    let mut extra = String::from("enabled = false\n");
    for id in devices {
        extra.push_str(&format!(
            "\n[[snmp.devices]]\nid = \"{id}\"\naddress = \"{}\"\ncommunity = \"{id}\"\ninterval = \"2s\"\ntimeout = \"900ms\"\nretries = 1\n",
            peer.address()
        ));
    }
    let config = agent_config(dir, &collector.url, "1h", &extra).unwrap();
    start_agent(dir, &config).unwrap()
}

/// Waits (at most 30 s) until `/metrics` shows `check` true, failing with the agent's log.
async fn wait_metrics(
    collector: &CollectorProcess,
    agent: &Daemon,
    what: &str,
    check: impl Fn(&str) -> bool,
) {
    let ok = wait_until(Duration::from_secs(30), || async {
        check(&collector.scrape().await)
    })
    .await;
    assert!(
        ok,
        "{what}:\n{}\nagent log:\n{}",
        collector.scrape().await,
        agent.log()
    );
}

/// Targets of a ticket's symptoms.
fn symptom_targets(ticket: &Value) -> BTreeSet<String> {
    ticket["symptoms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["target"].as_str().map(str::to_string))
        .collect()
}

const GEIST: &str = "iot/geist-temperature-sensor.snmprec";
/// GEIST-V4-MIB internalTemp, tempSensorTemp of remote probes 2 and 3 (tenths of °C), and
/// internalHumidity (%): drifting `numeric` values in the recording, fixed and settable here.
const INTERNAL_TEMP: &str = "1.3.6.1.4.1.21239.5.1.2.1.5.1";
const REMOTE_TEMP_2: &str = "1.3.6.1.4.1.21239.5.1.4.1.5.2";
const REMOTE_TEMP_3: &str = "1.3.6.1.4.1.21239.5.1.4.1.5.3";
const HUMIDITY: &str = "1.3.6.1.4.1.21239.5.1.2.1.6.1";
const SENSORS: [&str; 3] = ["env-a1", "env-a2", "env-a3"];

/// Hall A running: snmpsim serving `recordings` (each device's target id is its community) with
/// the `writable` values, a collector delivering to a webhook on `receiver` and an agent polling
/// every device; returned once `/metrics` shows `ready` (what `what` names) and no ticket yet.
struct Room {
    peer: Peer,
    receiver: Receiver,
    collector: CollectorProcess,
    agent: Daemon,
}

async fn room(
    dir: &Path,
    recordings: &[Recording],
    writable: &[Writable],
    what: &str,
    ready: impl Fn(&str) -> bool,
) -> Room {
    let peer = snmp_peers::snmpsim_with_writable(dir, recordings, writable);
    for rec in recordings {
        peer.wait_answering(rec.community, Duration::from_secs(30));
    }
    let receiver = Receiver::start().await.unwrap();
    let collector = collector(dir, &webhook_channel(&receiver.url("/hook"))).await;
    let devices: Vec<&str> = recordings.iter().map(|r| r.community).collect();
    let agent = agent_polling(dir, &collector, &peer, &devices);
    wait_metrics(&collector, &agent, what, ready).await;
    assert!(
        tickets(&collector, "").await.is_empty(),
        "nothing fails yet"
    );
    Room {
        peer,
        receiver,
        collector,
        agent,
    }
}

/// Hall A with its three Geist sensors at 22 °C (writable), the Geist profile's normal
/// temperatures already on `/metrics`.
async fn cooling_room(dir: &Path) -> Room {
    let recordings = SENSORS.map(|community| Recording {
        source: GEIST,
        community,
        drop_prefixes: &[],
    });
    let writable: Vec<Writable> = SENSORS
        .iter()
        .flat_map(|&community| {
            [
                (INTERNAL_TEMP, "220"),
                (REMOTE_TEMP_2, "215"),
                (REMOTE_TEMP_3, "210"),
                (HUMIDITY, "45"),
            ]
            .map(|(oid, value)| Writable {
                community,
                oid,
                value,
            })
        })
        .collect();
    // The Geist profile's series reach the collector: every probe at its normal temperature.
    let temperature = |text: &str, target: &str, probe: &str| {
        metric_value(
            text,
            "faultline_snmp_env_temperature_celsius",
            &[("target", target), ("probe", probe), ("site", "test-site")],
        )
    };
    room(dir, &recordings, &writable, "normal temperatures", |text| {
        SENSORS
            .iter()
            .all(|s| temperature(text, s, "internal") == Some(22.0))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooling_failure_seen_by_three_sensors_is_one_platform_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let Room {
        peer,
        receiver,
        collector,
        agent: _agent,
    } = cooling_room(dir.path()).await;

    // Cooling fails: the sensor nearest the failed unit warms first, then the other two.
    peer.set("env-a1", INTERNAL_TEMP, "i", "330");
    let open = wait_tickets(&collector, "?state=open", |t| t.len() == 1).await;
    let id = open[0]["id"].as_u64().unwrap();
    assert_eq!(open[0]["target"], "env-a1", "{:#?}", open[0]);
    peer.set("env-a2", REMOTE_TEMP_2, "i", "325");
    peer.set("env-a3", INTERNAL_TEMP, "i", "318");
    let open = wait_tickets(&collector, "?state=open", |t| {
        t.len() == 1 && symptom_targets(&t[0]).len() == 2
    })
    .await;
    let ticket = &open[0];
    assert_eq!(ticket["id"].as_u64(), Some(id));
    assert_eq!(ticket["rule"], "RoomTemperatureHigh", "{ticket:#}");
    assert_eq!(ticket["tag"], "platform");
    assert_eq!(ticket["severity"], "P2");
    assert_eq!(
        symptom_targets(ticket),
        BTreeSet::from(["env-a2".to_string(), "env-a3".to_string()])
    );
    assert!(
        ticket["symptoms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["rule"] == "RoomTemperatureHigh"),
        "{ticket:#}"
    );
    assert_eq!(
        changes(ticket),
        ["opened", "symptom_linked", "symptom_linked"]
    );
    // Reason and evidence: the value the real probe reported, its name from the recording.
    let reason = ticket["reason"].as_str().unwrap();
    assert!(
        reason.contains("env-a1") && reason.contains("33"),
        "{reason}"
    );
    assert_eq!(ticket["evidence"]["rule"], "RoomTemperatureHigh");
    assert_eq!(ticket["evidence"]["value"], 33.0, "{ticket:#}");
    let summary = ticket["summary"].as_str().unwrap();
    assert!(
        summary.contains("33") && summary.contains("Watchdog Rack 01"),
        "{summary}"
    );
    let all = tickets(&collector, "").await;
    assert_eq!(all.len(), 1, "one ticket in all: {all:#?}");
    receiver
        .wait("trigger delivered", |r| {
            r.accepted_kinds("/hook") == ["trigger"]
        })
        .await;
    let pages = page_events(&collector);
    assert_eq!(pages.len(), 1, "one page: {pages:#?}");
    let text = collector.scrape().await;
    let open_metric = [("tag", "platform"), ("severity", "P2")];
    assert_eq!(
        metric_value(&text, "faultline_incident_open", &open_metric),
        Some(1.0),
        "{text}"
    );

    // Cooling restored: the root and both symptoms clear, the resolution is delivered. The
    // sensors are one fault, so the ticket resolves with the last of them; when env-a1 is polled
    // before another, its own condition clears first and the ticket records that.
    peer.set("env-a1", INTERNAL_TEMP, "i", "240");
    peer.set("env-a2", REMOTE_TEMP_2, "i", "235");
    peer.set("env-a3", INTERNAL_TEMP, "i", "230");
    let resolved = wait_tickets(&collector, "?state=resolved", |t| {
        t.len() == 1
            && t[0]["symptoms"]
                .as_array()
                .is_some_and(|s| s.iter().all(|s| s["cleared_at_ms"].is_i64()))
    })
    .await;
    let mut timeline = changes(&resolved[0]);
    assert_eq!(timeline.last().map(String::as_str), Some("resolved"));
    timeline.retain(|c| c != "condition_cleared");
    timeline.sort();
    assert_eq!(
        timeline,
        [
            "opened",
            "resolved",
            "symptom_cleared",
            "symptom_cleared",
            "symptom_linked",
            "symptom_linked"
        ]
    );
    receiver
        .wait("resolve delivered", |r| {
            r.accepted_kinds("/hook") == ["trigger", "resolve"]
        })
        .await;
    assert_eq!(tickets(&collector, "").await.len(), 1);
    assert_eq!(page_events(&collector).len(), 1, "no second page");
}

/// The `symptom_linked` timeline entries of a ticket: (target, rule, reason, evidence).
fn links(ticket: &Value) -> Vec<(String, String, String, Value)> {
    ticket["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["change"])
        .filter(|c| c["type"] == "symptom_linked")
        .map(|c| {
            let text = |key: &str| c[key].as_str().unwrap_or_default().to_string();
            (
                text("target"),
                text("rule"),
                text("reason"),
                c["evidence"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooling_failure_past_the_critical_temperature_raises_the_one_ticket_to_p1() {
    let dir = tempfile::tempdir().unwrap();
    let Room {
        peer,
        receiver,
        collector,
        agent: _agent,
    } = cooling_room(dir.path()).await;

    // Cooling fails: hall A passes the high temperature at two sensors, one ticket (P2).
    peer.set("env-a1", INTERNAL_TEMP, "i", "330");
    let open = wait_tickets(&collector, "?state=open", |t| t.len() == 1).await;
    let id = open[0]["id"].as_u64().unwrap();
    assert_eq!(
        (&open[0]["rule"], &open[0]["target"], &open[0]["severity"]),
        (
            &"RoomTemperatureHigh".into(),
            &"env-a1".into(),
            &"P2".into()
        ),
        "{:#}",
        open[0]
    );
    peer.set("env-a2", REMOTE_TEMP_2, "i", "325");
    wait_tickets(&collector, "?state=open", |t| {
        t.len() == 1 && symptom_targets(&t[0]).len() == 1
    })
    .await;

    // It gets worse: env-a1 reaches 38.5 °C. The critical rule joins the same ticket and
    // raises it to P1, which pages again.
    peer.set("env-a1", INTERNAL_TEMP, "i", "385");
    let open = wait_tickets(&collector, "?state=open", |t| {
        t.len() == 1 && t[0]["severity"] == "P1"
    })
    .await;
    let ticket = &open[0];
    assert_eq!(ticket["id"].as_u64(), Some(id), "{ticket:#}");
    assert_eq!(
        changes(ticket),
        [
            "opened",
            "symptom_linked",
            "symptom_linked",
            "severity_raised"
        ]
    );
    let raised = &ticket["timeline"][3]["change"];
    assert_eq!(
        (
            &raised["from"],
            &raised["to"],
            &raised["rule"],
            &raised["target"]
        ),
        (
            &"P2".into(),
            &"P1".into(),
            &"RoomTemperatureCritical".into(),
            &"env-a1".into()
        ),
        "{ticket:#}"
    );
    // Why each joined, with the evidence, on the timeline the API serves.
    let links = links(ticket);
    let (target, rule, reason, evidence) = &links[0];
    assert_eq!(
        (target.as_str(), rule.as_str()),
        ("env-a2", "RoomTemperatureHigh")
    );
    assert!(
        reason.starts_with("RoomTemperatureHigh already seen in room hall-a by env-a1 since ")
            && reason.ends_with(&format!("same fault as #{id}, tagged platform")),
        "{reason}"
    );
    assert_eq!(evidence["value"], 32.5, "{evidence:#}");
    assert_eq!(evidence["related"]["target"], "env-a1", "{evidence:#}");
    let (target, rule, reason, evidence) = &links[1];
    assert_eq!(
        (target.as_str(), rule.as_str()),
        ("env-a1", "RoomTemperatureCritical")
    );
    assert!(
        reason.starts_with("env-a1 RoomTemperatureCritical while it has RoomTemperatureHigh since"),
        "{reason}"
    );
    assert_eq!(
        (&evidence["rule"], &evidence["value"]),
        (&"RoomTemperatureCritical".into(), &38.5.into()),
        "{evidence:#}"
    );
    assert_eq!(tickets(&collector, "").await.len(), 1, "one ticket in all");
    receiver
        .wait("opening and raise delivered", |r| {
            r.accepted_kinds("/hook") == ["trigger", "trigger"]
        })
        .await;
    let hook: Vec<Value> = receiver
        .accepted("/hook")
        .iter()
        .map(|s| s.json()["notification"].clone())
        .collect();
    assert_eq!(hook[0]["dedup_key"], hook[1]["dedup_key"], "{hook:#?}");
    assert_eq!(hook[1]["severity"], "P1", "{hook:#?}");
    assert!(
        hook[1]["details"]
            .as_str()
            .is_some_and(|d| d.contains("from P2 to P1")),
        "{hook:#?}"
    );
    let pages = page_events(&collector);
    let paged: Vec<&Value> = pages.iter().map(|p| &p["fields"]["change"]).collect();
    assert_eq!(paged, ["opened", "severity_raised"], "{pages:#?}");
    let text = collector.scrape().await;
    for (severity, open) in [("P1", 1.0), ("P2", 0.0)] {
        assert_eq!(
            metric_value(
                &text,
                "faultline_incident_open",
                &[("tag", "platform"), ("severity", severity)]
            ),
            Some(open),
            "{text}"
        );
    }

    // The critical condition clears while the high one holds: still one open P1 ticket.
    peer.set("env-a1", INTERNAL_TEMP, "i", "310");
    let open = wait_tickets(&collector, "?state=open", |t| {
        t.len() == 1 && changes(&t[0]).contains(&"symptom_cleared".to_string())
    })
    .await;
    assert_eq!(open[0]["severity"], "P1", "never lowered by itself");

    // Cooling restored: the ticket resolves, the resolution is delivered, no further page.
    peer.set("env-a1", INTERNAL_TEMP, "i", "240");
    peer.set("env-a2", REMOTE_TEMP_2, "i", "235");
    wait_tickets(&collector, "?state=resolved", |t| {
        t.len() == 1
            && t[0]["symptoms"]
                .as_array()
                .is_some_and(|s| s.iter().all(|s| s["cleared_at_ms"].is_i64()))
    })
    .await;
    receiver
        .wait("resolve delivered", |r| {
            r.accepted_kinds("/hook") == ["trigger", "trigger", "resolve"]
        })
        .await;
    assert_eq!(tickets(&collector, "").await.len(), 1);
    assert_eq!(
        page_events(&collector).len(),
        2,
        "open and raise, nothing more"
    );
}

/// Waits for the one open ticket a firewall fault on `target` must make, by `rule` and tagged
/// platform, its trigger delivered to the webhook and its opening paged once; returns it.
async fn one_paged_ticket(room: &Room, target: &str, rule: &str) -> Value {
    let open = wait_tickets(&room.collector, "?state=open", |t| t.len() == 1).await;
    let ticket = open[0].clone();
    assert_eq!(
        (&ticket["rule"], &ticket["target"], &ticket["tag"]),
        (&rule.into(), &target.into(), &"platform".into()),
        "{ticket:#}"
    );
    assert_eq!(changes(&ticket), ["opened"], "{ticket:#}");
    assert!(
        ticket["reason"].as_str().unwrap().contains(target),
        "{ticket:#}"
    );
    room.receiver
        .wait("trigger delivered", |r| {
            r.accepted_kinds("/hook") == ["trigger"]
        })
        .await;
    // Ticket events are logged as they go to the notifier, so after the delivery at the latest.
    let pages = page_events(&room.collector);
    assert_eq!(pages.len(), 1, "{pages:#?}");
    assert_eq!(pages[0]["fields"]["change"], "opened");
    let trigger = room.receiver.accepted("/hook")[0].json()["notification"].clone();
    assert_eq!(
        (
            &trigger["ticket_id"],
            &trigger["target"],
            &trigger["rule"],
            &trigger["summary"]
        ),
        (
            &ticket["id"],
            &ticket["target"],
            &ticket["rule"],
            &ticket["summary"]
        ),
        "{trigger:#}"
    );
    ticket
}

/// Once the fault of `ticket` is undone: waits for it to resolve and the resolution to be
/// delivered; one ticket and one page in all.
async fn resolved_and_delivered(room: &Room, ticket: &Value) {
    let resolved = wait_tickets(&room.collector, "?state=resolved", |t| t.len() == 1).await;
    assert_eq!(resolved[0]["id"], ticket["id"]);
    assert_eq!(changes(&resolved[0]), ["opened", "resolved"]);
    room.receiver
        .wait("resolve delivered", |r| {
            r.accepted_kinds("/hook") == ["trigger", "resolve"]
        })
        .await;
    let resolve = room.receiver.accepted("/hook")[1].json()["notification"].clone();
    assert_eq!(resolve["ticket_id"], ticket["id"], "{resolve:#}");
    assert_eq!(
        tickets(&room.collector, "").await.len(),
        1,
        "one ticket in all"
    );
    assert_eq!(page_events(&room.collector).len(), 1, "one page");
}

const PANOS: &str = "network/firewall/paloalto-pa-5000.snmprec.bz2";
/// PAN-COMMON-MIB panSysHAState and panSysHAPeerState (text: active, passive, …).
const HA_STATE: &str = "1.3.6.1.4.1.25461.2.1.2.1.11.0";
const HA_PEER_STATE: &str = "1.3.6.1.4.1.25461.2.1.2.1.12.0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firewall_ha_failover_pages_one_platform_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let recordings = [Recording {
        source: PANOS,
        community: "fw-a1",
        drop_prefixes: &[],
    }];
    let writable = [
        Writable {
            community: "fw-a1",
            oid: HA_STATE,
            value: "active",
        },
        Writable {
            community: "fw-a1",
            oid: HA_PEER_STATE,
            value: "passive",
        },
    ];
    // The Palo Alto profile (detected from sysObjectID) reports the unit active.
    let fw = [("target", "fw-a1")];
    let room = room(
        dir.path(),
        &recordings,
        &writable,
        "HA state active",
        |text| {
            metric_value(text, "faultline_snmp_firewall_ha_state", &fw) == Some(1.0)
                && metric_value(text, "faultline_snmp_firewall_ha_peer_state", &fw) == Some(2.0)
        },
    )
    .await;

    // Fail-over: this unit gives up the active role to its peer.
    room.peer.set("fw-a1", HA_STATE, "s", "passive");
    room.peer.set("fw-a1", HA_PEER_STATE, "s", "active");
    let ticket = one_paged_ticket(&room, "fw-a1", "FirewallHaFailover").await;
    assert_eq!(ticket["evidence"]["value"], 2.0, "{ticket:#}");

    // Fail-back: active again, the ticket resolves and the resolution is delivered.
    room.peer.set("fw-a1", HA_STATE, "s", "active");
    room.peer.set("fw-a1", HA_PEER_STATE, "s", "passive");
    resolved_and_delivered(&room, &ticket).await;
}

/// A FortiGate 3000D of an active-passive cluster; the 454k-line recording without its per-policy
/// statistics and routes (as the SNMP crate's real-peer tests serve it).
const FORTIGATE: Recording = Recording {
    source: "network/firewall/fortinet-xcu.snmprec.bz2",
    community: "fgt-a1",
    drop_prefixes: &[
        "1.3.6.1.4.1.12356.101.11",
        "1.3.6.1.2.1.4.21",
        "1.3.6.1.4.1.12356.101.14",
    ],
};
/// fgHaStatsSyncStatus of cluster member 2 (unsynchronized 0, synchronized 1), and the serials
/// the recording gives members 1 and 2 (fgHaStatsSerial).
const MEMBER_2_SYNC: &str = "1.3.6.1.4.1.12356.101.13.2.1.1.12.2";
const MEMBER_1_SERIAL: &str = "FGT3KD3Z16800461";
const MEMBER_2_SERIAL: &str = "FGT3KD3Z16800708";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fortigate_member_out_of_sync_pages_one_platform_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let writable = [Writable {
        community: "fgt-a1",
        oid: MEMBER_2_SYNC,
        value: "1",
    }];
    // The FortiGate profile (detected from sysObjectID) reports both members synchronized, each
    // by the serial the recording gives it.
    let sync = |text: &str, serial: &str| {
        metric_value(
            text,
            "faultline_snmp_firewall_ha_member_sync_state",
            &[("target", "fgt-a1"), ("serial", serial)],
        )
    };
    let room = room(
        dir.path(),
        &[FORTIGATE],
        &writable,
        "both members synchronized",
        |text| sync(text, MEMBER_1_SERIAL) == Some(1.0) && sync(text, MEMBER_2_SERIAL) == Some(1.0),
    )
    .await;

    // Member 2 falls out of sync: after the rule's `for` (2m, made 2s), one ticket names it.
    room.peer.set("fgt-a1", MEMBER_2_SYNC, "i", "0");
    let ticket = one_paged_ticket(&room, "fgt-a1", "FirewallHaOutOfSync").await;
    assert_eq!(
        ticket["summary"],
        format!("Firewall fgt-a1 cluster member {MEMBER_2_SERIAL} is out of sync"),
        "{ticket:#}"
    );
    assert_eq!(
        (&ticket["severity"], &ticket["evidence"]["value"]),
        (&"P2".into(), &0.0.into()),
        "{ticket:#}"
    );
    let text = room.collector.scrape().await;
    assert_eq!(sync(&text, MEMBER_1_SERIAL), Some(1.0), "{text}");
    assert_eq!(sync(&text, MEMBER_2_SERIAL), Some(0.0), "{text}");

    // Synchronized again: the ticket resolves and the resolution is delivered.
    room.peer.set("fgt-a1", MEMBER_2_SYNC, "i", "1");
    resolved_and_delivered(&room, &ticket).await;
}

/// A customer VM on a platform host, its department reachable by e-mail.
const CUSTOMER_INVENTORY: &str = r#"
[[sites]]
id = "dc1"

[[rooms]]
id = "hall-a"
site = "dc1"

[[departments]]
id = "hr"
contacts = [{ name = "Zhang Min", email = "zhang.min@example.com" }]

[[targets]]
id = "host-2"
kind = "host"
room = "hall-a"
owner = "platform"

[[targets]]
id = "vm-3"
kind = "vm"
owner = "customer"
department = "hr"
depends_on = ["host-2"]
"#;

/// `/data` of vm-3 at `avail` bytes free out of 100 GB, at `ts`.
fn data_fs(avail: f64, ts: i64) -> Vec<faultline_wire::Sample> {
    let fs = [("mountpoint", "/data"), ("fstype", "ext4")];
    vec![
        sample(
            "faultline_host_filesystem_size_bytes",
            "vm-3",
            &fs,
            100e9,
            ts,
        ),
        sample(
            "faultline_host_filesystem_avail_bytes",
            "vm-3",
            &fs,
            avail,
            ts,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_incident_reaches_pagerduty_robots_and_email() {
    let receiver = Receiver::start().await.unwrap();
    let smtp = SmtpSink::start(free_port()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tail = format!(
        r#"[incidents.escalation]
default = "ops"

[notify.retry]
initial = "300ms"
max = "1s"
timeout = "5s"
poll_interval = "200ms"

[[notify.channels]]
name = "pd"
[notify.channels.pagerduty]
routing_key = "R0UT1NGKEY0123456789abcdef012345"
url = "{pagerduty}"

[[notify.channels]]
name = "wecom"
[notify.channels.wecom]
url = "{wecom}?key=wecom-key"

[[notify.channels]]
name = "dingtalk"
[notify.channels.dingtalk]
url = "{dingtalk}?access_token=dingtalk-token"
secret = "SECdingtalk-secret"

[[notify.channels]]
name = "feishu"
[notify.channels.feishu]
url = "{feishu}"
secret = "feishu-secret"

[[notify.channels]]
name = "mail"
[notify.channels.email]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "Faultline <faultline@example.com>"
mailbox = ["tickets@example.com"]
"#,
        pagerduty = receiver.url("/pagerduty"),
        wecom = receiver.url("/robot/wecom"),
        dingtalk = receiver.url("/robot/dingtalk"),
        feishu = receiver.url("/robot/feishu"),
        smtp_port = smtp.port,
    );
    let setup = IncidentSetup {
        inventory: CUSTOMER_INVENTORY,
        oncall: ONCALL,
        tail: &tail,
        ..IncidentSetup::default()
    };
    let collector = setup.start(dir.path(), free_port()).await.unwrap();

    // vm-3's /data has been 3 % free for 6 minutes (the agent's backlog): DiskFull, customer's.
    let t0 = now_ms() - 6 * 60 * S;
    let mut samples = Vec::new();
    for i in 0..=6 {
        samples.extend(data_fs(3e9, t0 + i * 60 * S));
    }
    push(&collector, 1, samples).await;
    let open = wait_tickets(&collector, "?state=open", |t| t.len() == 1).await;
    let ticket = &open[0];
    assert_eq!(
        (&ticket["rule"], &ticket["target"], &ticket["tag"]),
        (&"DiskFull".into(), &"vm-3".into(), &"customer".into())
    );
    let http = [
        "/pagerduty",
        "/robot/wecom",
        "/robot/dingtalk",
        "/robot/feishu",
    ];
    receiver
        .wait("triggers delivered", |r| {
            http.iter().all(|path| r.accepted(path).len() == 1)
        })
        .await;

    // The customer frees space: the ticket resolves, every channel gets the resolution.
    push(&collector, 2, data_fs(30e9, now_ms())).await;
    wait_tickets(&collector, "?state=resolved", |t| t.len() == 1).await;
    receiver
        .wait("resolutions delivered", |r| {
            http.iter().all(|path| r.accepted(path).len() == 2)
        })
        .await;
    let settled = wait_until(Duration::from_secs(10), || async {
        let text = collector.scrape().await;
        metric_value(
            &text,
            "faultline_notifications_sent_total",
            &[("channel", "mail")],
        ) == Some(2.0)
    })
    .await;
    assert!(settled, "{}", collector.scrape().await);
    // Nothing more arrives: one delivery per channel and event.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.seen().len(), 8, "{:#?}", receiver.seen());

    // PagerDuty Events v2: trigger, then resolve with the same dedup_key.
    let pd: Vec<Value> = receiver
        .accepted("/pagerduty")
        .iter()
        .map(|s| s.json())
        .collect();
    assert_eq!(pd[0]["event_action"], "trigger", "{pd:#?}");
    assert_eq!(pd[1]["event_action"], "resolve", "{pd:#?}");
    assert_eq!(pd[0]["routing_key"], "R0UT1NGKEY0123456789abcdef012345");
    let dedup = pd[0]["dedup_key"].as_str().unwrap();
    assert!(!dedup.is_empty());
    assert_eq!(pd[1]["dedup_key"], dedup);
    assert_eq!(pd[0]["payload"]["source"], "vm-3");
    assert_eq!(pd[0]["payload"]["severity"], "error", "P2");
    assert_eq!(pd[0]["payload"]["class"], "DiskFull");
    assert_eq!(pd[0]["payload"]["custom_details"]["tag"], "customer");

    // Group robots: markdown bodies naming the event, the target and who is responsible.
    let wecom: Vec<Value> = receiver
        .accepted("/robot/wecom")
        .iter()
        .map(|s| s.json())
        .collect();
    assert_eq!(wecom[0]["msgtype"], "markdown");
    let content = |body: &Value, pointer: &str| {
        body.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    for (body, title) in wecom.iter().zip(["[Opened]", "[Resolved]"]) {
        let text = content(body, "/markdown/content");
        assert!(
            text.contains(title) && text.contains("vm-3") && text.contains("customer"),
            "{text}"
        );
    }
    let dingtalk = receiver.accepted("/robot/dingtalk");
    let trigger = dingtalk[0].json();
    assert_eq!(trigger["msgtype"], "markdown");
    assert!(
        content(&trigger, "/markdown/text").contains("[Opened]"),
        "{trigger:#}"
    );
    assert!(
        dingtalk[0].uri.contains("access_token=dingtalk-token")
            && dingtalk[0].uri.contains("timestamp=")
            && dingtalk[0].uri.contains("sign="),
        "signed: {}",
        dingtalk[0].uri
    );
    assert_eq!(
        trigger["at"]["atMobiles"][0], "+8613800000001",
        "the on-call engineer is mentioned: {trigger:#}"
    );
    assert!(content(&dingtalk[1].json(), "/markdown/text").contains("[Resolved]"));
    let feishu: Vec<Value> = receiver
        .accepted("/robot/feishu")
        .iter()
        .map(|s| s.json())
        .collect();
    assert_eq!(feishu[0]["msg_type"], "interactive");
    assert!(feishu[0]["sign"].is_string() && feishu[0]["timestamp"].is_string());
    let card = content(&feishu[0], "/card/elements/0/content");
    assert!(card.contains("[Opened]") && card.contains("vm-3"), "{card}");

    // E-mail over SMTP: the engineers' message to the ticket mailbox and the paged engineer
    // (the trigger pages), and the customer's own message to its contact, in plain words.
    let mails = smtp.stop();
    assert_eq!(mails.len(), 4, "{mails:#?}");
    let engineers = vec!["ana@example.com", "tickets@example.com"];
    let customer = vec!["zhang.min@example.com"];
    let expected = [
        ("Opened", engineers, false),
        (
            "Service disruption affecting your systems",
            customer.clone(),
            true,
        ),
        ("Resolved", vec!["tickets@example.com"], false),
        ("Resolved: service disruption", customer, true),
    ];
    for (mail, (title, recipients, for_customer)) in mails.iter().zip(expected) {
        let to: BTreeSet<&str> = mail["to"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(to, recipients.into_iter().collect(), "{mail:#}");
        let data = mail["data"].as_str().unwrap();
        let subject = data
            .lines()
            .find(|l| l.starts_with("Subject:"))
            .unwrap_or_default();
        assert!(subject.contains(title), "{data}");
        if for_customer {
            assert!(data.contains("vm-3"), "what is affected: {data}");
            assert!(
                !data.contains("Responsibility") && !data.contains("customer-owned"),
                "no internal reasoning for customers: {data}"
            );
        } else {
            assert!(subject.contains("customer"), "{data}");
            assert!(!data.contains("zhang.min@example.com"), "{data}");
        }
    }
    assert_eq!(page_events(&collector).len(), 1, "one page");
}
