//! Customer follow-ups end to end: the first sample of a customer department's target, pushed to
//! the real collector binary, starts the department's follow-up clock; with follow-ups due after
//! 2 s and 4 s the tasks appear in the REST API at those times, are delivered once to a real
//! webhook receiver on loopback, are recorded as done through the API (the pending gauge on
//! `/metrics` drops), and a kill -9 and restart neither duplicates a task nor sends one again.

use faultline_tests::incidents::{
    ENGINEER, IncidentSetup, S, VIEWER, api, push, up, webhook_channel,
};
use faultline_tests::receivers::Receiver;
use faultline_tests::{CollectorProcess, free_port, metric_value, wait_until};
use faultline_wire::now_ms;
use serde_json::{Value, json};
use std::time::Duration;

const INVENTORY: &str = r#"
[[departments]]
id = "finance"
contacts = [{ name = "Li Wei", email = "li.wei@example.com" }]

[[targets]]
id = "vm-1"
kind = "vm"
owner = "customer"
department = "finance"

[[targets]]
id = "host-1"
kind = "host"
owner = "platform"
"#;

const FIRST: &str = "followup:finance:new:2s";
const SECOND: &str = "followup:finance:new:4s";

/// The follow-up tasks `GET /api/v1/followups<query>` lists (as the viewer).
async fn followups(collector: &CollectorProcess, query: &str) -> Vec<Value> {
    let (status, body) = api(
        collector,
        Some(VIEWER),
        "GET",
        &format!("/followups{query}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["followups"].as_array().cloned().unwrap_or_default()
}

fn keys(tasks: &[Value]) -> Vec<&str> {
    tasks.iter().filter_map(|t| t["key"].as_str()).collect()
}

/// Waits (at most 10 s) until the pending tasks are exactly `want`; returns them and when.
async fn wait_pending(collector: &CollectorProcess, want: &[&str]) -> (Vec<Value>, i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let tasks = followups(collector, "?state=pending").await;
        if keys(&tasks) == want {
            return (tasks, now_ms());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pending follow-ups never became {want:?}; last: {tasks:#?}\nlog:\n{}",
            collector.daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn pending_gauge(collector: &CollectorProcess) -> Option<f64> {
    let text = collector.scrape().await;
    metric_value(
        &text,
        "faultline_followups_pending",
        &[("kind", "new_customer")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_come_due_are_delivered_once_done_by_api_and_survive_a_restart() {
    let receiver = Receiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tail = format!(
        "[incidents.followups]\nnew_customer_after = [\"2s\", \"4s\"]\n\n{}",
        webhook_channel(&receiver.url("/hook"))
    );
    let setup = IncidentSetup {
        inventory: INVENTORY,
        tail: &tail,
        ..IncidentSetup::default()
    };
    let mut collector = setup.start(dir.path(), port).await.unwrap();
    assert!(followups(&collector, "").await.is_empty());

    // The department's first target appears (a platform host starts no clock).
    let before = now_ms();
    push(
        &collector,
        1,
        vec![up("vm-1", 1.0, before), up("host-1", 1.0, before)],
    )
    .await;
    let after = now_ms();

    // Due 2 s after the first sample reached the incident stage (just after the push was
    // acknowledged), created at the stage's next 1 s tick.
    let (tasks, seen_at) = wait_pending(&collector, &[FIRST]).await;
    let first = &tasks[0];
    let due = first["due_at_ms"].as_i64().unwrap();
    assert!(
        (before + 2 * S..after + 3 * S).contains(&due),
        "due {due}, sample pushed between {before} and {after}"
    );
    assert!(seen_at >= due, "listed before it was due");
    let created = first["created_at_ms"].as_i64().unwrap();
    assert!(
        (due..due + 1_500).contains(&created),
        "created {created}, due {due}"
    );
    assert_eq!(
        (
            &first["department"],
            &first["kind"],
            &first["after"],
            &first["state"]
        ),
        (
            &json!("finance"),
            &json!("new_customer"),
            &json!("2s"),
            &json!("pending")
        )
    );
    assert_eq!(first["contacts"][0]["name"], "Li Wei");
    // The second one 2 s later.
    let (tasks, seen_at) = wait_pending(&collector, &[FIRST, SECOND]).await;
    let due_second = tasks[1]["due_at_ms"].as_i64().unwrap();
    assert_eq!(due_second - due, 2 * S);
    assert!(seen_at >= due_second);

    // Each is delivered once to the webhook, with department, kind and due time.
    receiver
        .wait("both follow-ups delivered", |r| {
            r.accepted("/hook").len() >= 2
        })
        .await;
    let delivered = receiver.accepted("/hook");
    assert_eq!(delivered.len(), 2);
    for (seen, (key, after, due_at)) in delivered
        .iter()
        .zip([(FIRST, "2s", due), (SECOND, "4s", due_second)])
    {
        // The task key holds colons, so the kind is read from the body, not the key's fields.
        assert_eq!(
            seen.header("idempotency-key"),
            format!("hook:{key}:follow_up:0")
        );
        let n = &seen.json()["notification"];
        assert_eq!(
            (&n["kind"], &n["dedup_key"]),
            (&json!("follow_up"), &json!(key))
        );
        assert_eq!(
            (
                &n["followup"]["department"],
                &n["followup"]["kind"],
                &n["followup"]["after"]
            ),
            (&json!("finance"), &json!("new_customer"), &json!(after))
        );
        assert_eq!(n["followup"]["due_at_ms"], due_at);
        assert_eq!(n["contacts"][0]["email"], "li.wei@example.com");
    }
    assert_eq!(pending_gauge(&collector).await, Some(2.0));

    // Done through the API: engineers only, a note required, once.
    let path = format!("/followups/{FIRST}/done");
    let note = json!({ "note": "called Li Wei: all fine" });
    let (status, _) = api(&collector, Some(VIEWER), "POST", &path, Some(note.clone())).await;
    assert_eq!(status, 403);
    let (status, body) = api(&collector, Some(ENGINEER), "POST", &path, Some(json!({}))).await;
    assert_eq!((status, &body["field"]), (400, &json!("note")), "{body}");
    let (status, done) = api(
        &collector,
        Some(ENGINEER),
        "POST",
        &path,
        Some(note.clone()),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (&done["state"], &done["done"]["by"], &done["done"]["note"]),
        (
            &json!("done"),
            &json!("alice"),
            &json!("called Li Wei: all fine")
        )
    );
    let (status, body) = api(
        &collector,
        Some(ENGINEER),
        "POST",
        &path,
        Some(note.clone()),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = api(
        &collector,
        Some(ENGINEER),
        "POST",
        "/followups/followup:nobody:new:2s/done",
        Some(note),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        wait_until(Duration::from_secs(5), || async {
            pending_gauge(&collector).await == Some(1.0)
        })
        .await,
        "pending gauge did not drop:\n{}",
        collector.scrape().await
    );
    let text = collector.scrape().await;
    assert_eq!(
        metric_value(
            &text,
            "faultline_followups_done_total",
            &[("kind", "new_customer")]
        ),
        Some(1.0)
    );
    assert_eq!(keys(&followups(&collector, "?state=done").await), [FIRST]);

    // kill -9 and restart: the same two tasks, nothing created or sent again.
    collector.daemon.kill9();
    let config = collector.config.clone();
    let collector = CollectorProcess::start_with(dir.path(), port, &config)
        .await
        .unwrap();
    push(&collector, 2, vec![up("vm-1", 1.0, now_ms())]).await;
    assert_eq!(
        pending_gauge(&collector).await,
        Some(1.0),
        "restored at start"
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let all = followups(&collector, "").await;
    assert_eq!(keys(&all), [FIRST, SECOND], "no duplicate: {all:#?}");
    assert_eq!(all[0]["done"]["by"], "alice", "who and when are kept");
    assert_eq!(
        keys(&followups(&collector, "?state=pending").await),
        [SECOND]
    );
    assert_eq!(
        receiver.accepted("/hook").len(),
        2,
        "sent again: {:#?}",
        receiver.seen()
    );
}
