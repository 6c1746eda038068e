//! Order independence through the real binaries: a carrier circuit is lost, and the customer
//! systems behind it are seen down *before* the edge router's next poll shows the circuit down
//! (they are polled every second, the router every four — the unlucky order of issue 9). The real
//! agent polls snmpsim (the edge router, a recorded media converter whose port the test takes
//! down with `snmpset`) and two real net-snmp daemons (the departments' branch systems, killed
//! to make them unreachable); the real collector settles the early customer incidents until the
//! router has reported, then opens one carrier ticket with both systems as symptoms: one page, no
//! customer or platform ticket, each department told once that it started and once that it ended.

use faultline_tests::incidents::*;
use faultline_tests::receivers::SmtpSink;
use faultline_tests::snmp_peers::{self, Peer, Recording, Writable};
use faultline_tests::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// The room: our edge router, its carrier-facing port (`port1` of the recording, ifIndex 2) at the
/// end of a China Telecom circuit, and one branch system per department reached through it.
const INVENTORY: &str = r#"
[[sites]]
id = "dc1"

[[rooms]]
id = "r101"
site = "dc1"

[[departments]]
id = "finance"
name = "Finance Bureau"
contacts = [{ name = "Li Wei", email = "li.wei@finance.example" }]

[[departments]]
id = "health"
name = "Health Commission"
contacts = [{ name = "Wang Fang", email = "wang.fang@health.example" }]

[[targets]]
id = "edge-r1"
kind = "device"
role = "router"
room = "r101"
owner = "platform"

[[targets]]
id = "edge-r1-wan1"
kind = "interface"
role = "interface"
room = "r101"
owner = "platform"
device = "edge-r1"
ifname = "port1"
labels = { link_role = "carrier" }
depends_on = ["edge-r1"]

[[circuits]]
id = "ct-0042"
carrier = "China Telecom"
circuit_id = "GZ-MSTP-0042"
a_end = "edge-r1-wan1"
z_end = "China Telecom Tianhe POP"

[[targets]]
id = "branch-fin"
kind = "device"
role = "host"
owner = "customer"
department = "finance"
depends_on = ["edge-r1-wan1"]

[[targets]]
id = "branch-health"
kind = "device"
role = "host"
owner = "customer"
department = "health"
depends_on = ["edge-r1-wan1"]
"#;

const EDGE: &str = "network/switch/cts-media-converter.snmprec.bz2";
/// IF-MIB ifOperStatus of `port1` (ifIndex 2) in the recording.
const WAN_OPER_STATUS: &str = "1.3.6.1.2.1.2.2.1.8.2";
const BRANCHES: [&str; 2] = ["branch-fin", "branch-health"];

/// The agent config's device tables: the edge every 4 s with its detected profiles, the branch
/// systems every second (reachability only).
fn devices(edge: &Peer, branches: &[(&str, &Peer)]) -> String {
    let mut text = format!(
        "enabled = false\n\n[[snmp.devices]]\nid = \"edge-r1\"\naddress = \"{}\"\ncommunity = \"edge-r1\"\ninterval = \"4s\"\ntimeout = \"900ms\"\nretries = 0\n",
        edge.address()
    );
    for (id, peer) in branches {
        text.push_str(&format!(
            "\n[[snmp.devices]]\nid = \"{id}\"\naddress = \"{}\"\ncommunity = \"public\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nretries = 0\ndetect_profiles = false\n",
            peer.address()
        ));
    }
    text
}

/// Per department: the subjects of the customer e-mails it received.
fn customer_mail(mails: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut by_department: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for mail in mails {
        let data = mail["data"].as_str().unwrap_or_default();
        let subject = data
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_string();
        for to in mail["to"].as_array().into_iter().flatten() {
            let to = to.as_str().unwrap_or_default();
            for department in ["finance", "health"] {
                if to.ends_with(&format!("@{department}.example")) {
                    by_department
                        .entry(department.to_string())
                        .or_default()
                        .push(subject.clone());
                }
            }
        }
    }
    by_department
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_seen_down_before_the_circuit_are_one_carrier_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let edge = snmp_peers::snmpsim_with_writable(
        dir.path(),
        &[Recording {
            source: EDGE,
            community: "edge-r1",
            drop_prefixes: &[],
        }],
        &[Writable {
            community: "edge-r1",
            oid: WAN_OPER_STATUS,
            value: "1",
        }],
    );
    edge.wait_answering("edge-r1", Duration::from_secs(30));
    let branch_dirs = BRANCHES.map(|b| dir.path().join(b));
    let branch_ports = BRANCHES.map(|_| snmp_peers::free_udp_port());
    let start_branch = |i: usize| -> Peer {
        std::fs::create_dir_all(&branch_dirs[i]).unwrap();
        snmp_peers::snmpd(&branch_dirs[i], branch_ports[i])
    };
    let mut branches: Vec<Option<Peer>> = (0..2).map(|i| Some(start_branch(i))).collect();

    let smtp = SmtpSink::start(free_port()).unwrap();
    // A generous settle margin: on a loaded machine the router's next poll can come later than
    // its interval plus the default 5 s, and the test is about order, not about that bound.
    let tail = format!(
        "{}\n[incidents.settle]\nmargin = \"30s\"\n",
        email_channel(smtp.port, "noc@example.com")
    );
    let setup = IncidentSetup {
        inventory: INVENTORY,
        tail: &tail,
        ..IncidentSetup::default()
    };
    let collector = setup
        .start_with_rules(dir.path(), free_port(), &fast_default_rules())
        .await
        .unwrap();
    let named: Vec<(&str, &Peer)> = BRANCHES
        .iter()
        .zip(branches.iter().flatten())
        .map(|(id, p)| (*id, p))
        .collect();
    let config = agent_config(dir.path(), &collector.url, "1h", &devices(&edge, &named)).unwrap();
    let agent = start_agent(dir.path(), &config).unwrap();

    // Everything answers: the carrier port is up, both branch systems reachable.
    let healthy = wait_until(Duration::from_secs(30), || async {
        let text = collector.scrape().await;
        let up = |target| metric_value(&text, "faultline_snmp_up", &[("target", target)]);
        metric_value(
            &text,
            "faultline_snmp_if_oper_status",
            &[("target", "edge-r1-wan1")],
        ) == Some(1.0)
            && BRANCHES.iter().all(|b| up(*b) == Some(1.0))
    })
    .await;
    assert!(
        healthy,
        "{}\nagent:\n{}",
        collector.scrape().await,
        agent.log()
    );
    // One more edge poll, so the port's poll interval is known.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        tickets(&collector, "").await.is_empty(),
        "nothing fails yet"
    );

    // The circuit fails: the branch systems stop answering at once, and their incidents are
    // already judged (and held, settling) when the router's port goes down; its next poll, up to
    // four seconds later, is the first to show it.
    branches.iter_mut().for_each(|b| drop(b.take()));
    let settling = wait_until(Duration::from_secs(30), || async {
        metric_value(
            &collector.scrape().await,
            "faultline_incident_settling",
            &[],
        )
        .is_some_and(|n| n >= 1.0)
    })
    .await;
    assert!(
        settling,
        "the branch incidents never settled:\n{}",
        collector.scrape().await
    );
    edge.set("edge-r1", WAN_OPER_STATUS, "i", "2");

    let open = wait_tickets(&collector, "?state=open", |t| {
        t.iter().any(|t| {
            t["rule"] == "CarrierLinkLoss" && t["symptoms"].as_array().is_some_and(|s| s.len() == 2)
        })
    })
    .await;
    assert_eq!(open.len(), 1, "one ticket: {open:#?}");
    let ticket = &open[0];
    assert_eq!(
        (&ticket["target"], &ticket["tag"]),
        (&"edge-r1-wan1".into(), &"carrier".into())
    );
    let mut symptoms: Vec<&str> = ticket["symptoms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["target"].as_str())
        .collect();
    symptoms.sort_unstable();
    assert_eq!(symptoms, BRANCHES, "{ticket:#}");
    // Let anything late arrive before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = tickets(&collector, "").await;
    assert_eq!(
        all.len(),
        1,
        "no customer or platform ticket, none merged: {all:#?}"
    );
    assert!(
        !changes(&all[0])
            .iter()
            .any(|c| c == "merged" || c == "resolved"),
        "{:?}",
        changes(&all[0])
    );

    // The carrier repairs the circuit: the port comes up, the branch systems answer again.
    edge.set("edge-r1", WAN_OPER_STATUS, "i", "1");
    for (i, slot) in branches.iter_mut().enumerate() {
        *slot = Some(start_branch(i));
    }
    let resolved = wait_tickets(&collector, "", |t| {
        t.len() == 1 && t[0]["state"] != "open" && t[0]["state"] != "acknowledged"
    })
    .await;
    assert_eq!(resolved[0]["id"], ticket["id"]);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let pages = page_events(&collector);
    assert_eq!(pages.len(), 1, "one page for one fault: {pages:#?}");
    let mails = smtp.stop();
    let told = customer_mail(&mails);
    for department in ["finance", "health"] {
        let subjects = told.get(department).cloned().unwrap_or_default();
        assert_eq!(
            subjects.len(),
            2,
            "{department}: one message at the start, one at the end: {subjects:?}\n{mails:#?}"
        );
        assert!(
            !subjects[0].contains("Resolved") && subjects[1].contains("Resolved"),
            "{department}: {subjects:?}"
        );
    }
    drop(agent);
}
