//! Carrier trouble tickets end to end: a carrier fault on a declared circuit is reported to the
//! carrier's NOC by e-mail (a real SMTP sink) and to its portal (a templated ticket-sink request
//! to a real HTTP receiver), once; the carrier's answer recorded through the API stops its
//! response clock, and the restoration stops its restore clock, both on `/metrics` per carrier
//! and circuit.

use faultline_tests::incidents::*;
use faultline_tests::receivers::{Receiver, SmtpSink};
use faultline_tests::*;
use faultline_wire::{Sample, now_ms};
use serde_json::json;
use std::time::Duration;

const INVENTORY: &str = r#"
[[sites]]
id = "dc1"

[[rooms]]
id = "r1"
site = "dc1"

[[targets]]
id = "edge1"
kind = "device"
role = "router"
room = "r1"
owner = "platform"

[[targets]]
id = "edge1-wan"
kind = "interface"
room = "r1"
owner = "platform"
device = "edge1"
ifname = "Te0/0/0"
labels = { link_role = "carrier" }
depends_on = ["edge1"]

[[circuits]]
id = "ct-0042"
carrier = "China Telecom"
circuit_id = "SH-MSTP-0042"
a_end = "edge1-wan"
z_end = "China Telecom Pudong POP"
noc = [{ name = "CT NOC", email = "noc@ct.example" }]
"#;

fn wan(value: f64, ts_ms: i64) -> Sample {
    sample(
        "faultline_snmp_if_oper_status",
        "edge1",
        &[("ifname", "Te0/0/0")],
        value,
        ts_ms,
    )
}

/// The mails the sink received for `address`.
fn mails_to(smtp: &SmtpSink, address: &str) -> Vec<String> {
    smtp.received()
        .iter()
        .filter(|m| {
            m["to"]
                .as_array()
                .is_some_and(|to| to.iter().any(|t| t == address))
        })
        .map(|m| m["data"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_fault_is_reported_to_the_noc_once_and_its_clocks_are_kept() {
    let portal = Receiver::start().await.unwrap();
    let smtp = SmtpSink::start(free_port()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tail = format!(
        r#"{mail}
[[notify.channels]]
name = "ct-portal"
kinds = ["carrier_report"]
[notify.channels.ticket_sink]
id_pointer = "/key"
[notify.channels.ticket_sink.create]
url = "{portal}"
body = '{{"circuit": {{{{ carrier.circuit_id | tojson }}}}, "started": {{{{ started_at | tojson }}}}, "our_ticket": "FL-{{{{ ticket_id }}}}", "evidence": {{{{ carrier.evidence | tojson }}}}}}'
[notify.channels.ticket_sink.update]
url = "{portal}"
body = '{{"note": {{{{ details | tojson }}}}}}'
"#,
        mail = email_channel(smtp.port, "desk@example.com"),
        portal = portal.url("/sink/issue"),
    );
    let setup = IncidentSetup {
        inventory: INVENTORY,
        tail: &tail,
        ..IncidentSetup::default()
    };
    let collector = setup.start(dir.path(), free_port()).await.unwrap();
    let t0 = now_ms() - 200 * S;
    push(&collector, 1, vec![up("edge1", 1.0, t0), wan(1.0, t0)]).await;
    // The carrier drops the line; our router keeps answering.
    let t1 = t0 + 30 * S;
    let down: Vec<Sample> = (0..4)
        .flat_map(|i| [up("edge1", 1.0, t1 + i * 20 * S), wan(2.0, t1 + i * 20 * S)])
        .collect();
    push(&collector, 2, down).await;

    let open = wait_tickets(&collector, "?tag=carrier", |t| {
        t.len() == 1 && changes(&t[0]).contains(&"carrier_reported".to_string())
    })
    .await;
    let id = open[0]["id"].as_u64().unwrap();
    let report = open[0]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["change"]["type"] == "carrier_reported")
        .unwrap()["change"]["report"]
        .clone();
    assert_eq!(report["circuit_id"], "SH-MSTP-0042", "{report:#}");
    assert_eq!(report["contacts"][0]["email"], "noc@ct.example");

    // The NOC's mail: the circuit, both ends, our ticket token, the evidence of our side.
    let ok = wait_until(Duration::from_secs(10), || async {
        !mails_to(&smtp, "noc@ct.example").is_empty()
    })
    .await;
    assert!(ok, "no mail to the NOC: {:#?}", smtp.received());
    let noc = mails_to(&smtp, "noc@ct.example");
    let mail = &noc[0];
    for wanted in [
        format!("[FL-{id}]"),
        "SH-MSTP-0042".to_string(),
        "China Telecom Pudong POP".to_string(),
        "edge1-wan".to_string(),
        "Our side edge1".to_string(),
    ] {
        assert!(mail.contains(&wanted), "{wanted} missing:\n{mail}");
    }
    // The portal got one templated create with the circuit and our ticket.
    portal
        .wait("the portal's create", |r| {
            !r.accepted("/sink/issue").is_empty()
        })
        .await;
    let created = portal.accepted("/sink/issue");
    assert_eq!(created.len(), 1, "{created:#?}");
    let body = created[0].json();
    assert_eq!(body["circuit"], "SH-MSTP-0042");
    assert_eq!(body["our_ticket"], format!("FL-{id}"));
    assert!(body["evidence"].as_array().is_some_and(|e| !e.is_empty()));

    // The carrier calls back with its ticket number.
    let (status, answer) = api(
        &collector,
        Some(ENGINEER),
        "POST",
        &format!("/tickets/{id}/carrier_response"),
        Some(json!({"reference": "CT-20261207-889", "note": "fibre cut at Pudong, crew sent"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    // Neither a reference nor a note: refused, naming the field.
    let (status, answer) = api(
        &collector,
        Some(ENGINEER),
        "POST",
        &format!("/tickets/{id}/carrier_response"),
        Some(json!({"note": " "})),
    )
    .await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("reference")));

    // The line comes back: the ticket resolves; the restore clock stops.
    let t2 = t1 + 100 * S;
    push(&collector, 3, vec![up("edge1", 1.0, t2), wan(1.0, t2)]).await;
    let resolved = wait_tickets(&collector, "?tag=carrier", |t| {
        t.len() == 1 && t[0]["state"] == "resolved"
    })
    .await;
    assert_eq!(
        changes(&resolved[0])
            .iter()
            .filter(|c| c.starts_with("carrier_"))
            .collect::<Vec<_>>(),
        ["carrier_reported", "carrier_responded"],
        "reported once"
    );
    let labels = [("carrier", "China Telecom"), ("circuit", "SH-MSTP-0042")];
    let text = collector.scrape().await;
    assert_eq!(
        metric_value(&text, "faultline_carrier_reports_total", &labels),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            "faultline_carrier_first_response_seconds_count",
            &labels
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric_value(&text, "faultline_carrier_restore_seconds_count", &labels),
        Some(1.0),
        "{text}"
    );
    // Restore = the ticket's resolution − the fault's start (the first down sample).
    let ticket = &resolved[0];
    assert_eq!(ticket["started_at_ms"], t1);
    let outage_ms = ticket["resolved_at_ms"].as_i64().unwrap() - t1;
    assert!(
        outage_ms >= 100 * S,
        "resolved after the line came back: {ticket:#}"
    );
    let restore = metric_value(&text, "faultline_carrier_restore_seconds_sum", &labels).unwrap();
    assert!(
        (restore - outage_ms as f64 / 1000.0).abs() < 0.01,
        "{restore} vs {outage_ms} ms"
    );
    // Let anything late arrive: still one mail to the NOC and one portal create.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mails_to(&smtp, "noc@ct.example").len(), 1);
    assert_eq!(portal.accepted("/sink/issue").len(), 1);
}
