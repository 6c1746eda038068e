//! The service desk end to end: a fault reported by phone about a system whose fault monitoring
//! already has a ticket for is offered for linking (with the ticket's evidence) and linked, not
//! opened twice; the reporter hears back by e-mail (a real SMTP sink).

use faultline_tests::incidents::*;
use faultline_tests::receivers::SmtpSink;
use faultline_tests::*;
use faultline_wire::now_ms;
use serde_json::json;
use std::time::Duration;

const INVENTORY: &str = r#"
[[sites]]
id = "dc1"

[[rooms]]
id = "r1"
site = "dc1"

[[departments]]
id = "finance"
contacts = [{ name = "Li Wei", email = "li.wei@finance.example" }]

[[targets]]
id = "host-1"
kind = "host"
room = "r1"
owner = "platform"

[[targets]]
id = "vm-1"
kind = "vm"
owner = "customer"
department = "finance"
depends_on = ["host-1"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_report_of_a_ticketed_fault_is_linked_not_opened_twice() {
    let smtp = SmtpSink::start(free_port()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tail = email_channel(smtp.port, "desk@example.com");
    let setup = IncidentSetup {
        inventory: INVENTORY,
        tail: &tail,
        ..IncidentSetup::default()
    };
    let collector = setup.start(dir.path(), free_port()).await.unwrap();
    // The hypervisor stops answering; monitoring opens its (platform) ticket.
    let t0 = now_ms() - 180 * S;
    push(&collector, 1, vec![up("host-1", 1.0, t0)]).await;
    let down = (1..=5)
        .map(|i| up("host-1", 0.0, t0 + i * 20 * S))
        .collect();
    push(&collector, 2, down).await;
    let open = wait_tickets(&collector, "?state=open", |t| t.len() == 1).await;
    let id = open[0]["id"].as_u64().unwrap();
    assert_eq!(open[0]["target"], "host-1");

    // Finance phones about vm-1, which runs on host-1: the desk is offered the ticket.
    let (status, answer) = api(
        &collector,
        Some(VIEWER),
        "GET",
        "/link_candidates?target=vm-1",
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let candidates = answer["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 1, "{answer:#}");
    assert_eq!(candidates[0]["ticket"]["id"], id);
    assert_eq!(candidates[0]["kind"], "upstream");
    assert!(
        candidates[0]["why"]
            .as_str()
            .unwrap()
            .contains("vm-1 depends on host-1"),
        "{answer:#}"
    );
    assert_eq!(candidates[0]["ticket"]["evidence"]["target"], "host-1");
    // An unknown department is refused, naming the field.
    let (status, answer) = api(
        &collector,
        Some(VIEWER),
        "GET",
        "/link_candidates?department=nobody",
        None,
    )
    .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("department"))
    );

    // The desk links the report; the reporter is told engineers are on it.
    let report = json!({
        "channel": "phone",
        "target": "vm-1",
        "summary": "payroll system unreachable",
        "reporter": {"name": "Wang Fang", "email": "wang.fang@finance.example"}
    });
    let (status, linked) = api(
        &collector,
        Some(ENGINEER),
        "POST",
        &format!("/tickets/{id}/link_report"),
        Some(report.clone()),
    )
    .await;
    assert_eq!(status, 200, "{linked}");
    assert!(changes(&linked).contains(&"report_linked".to_string()));
    assert_eq!(linked["customers"][0]["department"], "finance");
    // Refused: monitoring as the channel, a viewer, a resolved ticket's id that does not exist.
    let mut monitoring = report.clone();
    monitoring["channel"] = json!("monitoring");
    let (status, answer) = api(
        &collector,
        Some(ENGINEER),
        "POST",
        &format!("/tickets/{id}/link_report"),
        Some(monitoring),
    )
    .await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("channel")));
    let (status, _) = api(
        &collector,
        Some(VIEWER),
        "POST",
        &format!("/tickets/{id}/link_report"),
        Some(report.clone()),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        tickets(&collector, "").await.len(),
        1,
        "one ticket for one fault"
    );

    let ok = wait_until(Duration::from_secs(10), || async {
        smtp.received().iter().any(|m| {
            m["to"]
                .as_array()
                .is_some_and(|to| to.iter().any(|t| t == "wang.fang@finance.example"))
        })
    })
    .await;
    assert!(ok, "the reporter hears back: {:#?}", smtp.received());
}
