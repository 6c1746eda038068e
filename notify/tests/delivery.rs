//! Delivery against real receivers on 127.0.0.1: an outage of every HTTP receiver, a notifier
//! restart in the middle of it, and afterwards every notification delivered exactly once, with
//! the payload shape each receiver expects.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use faultline_incidents::inventory::{Contact, Owner};
use faultline_incidents::ticket::{Customer, SYSTEM, TicketPolicy};
use faultline_incidents::{Command, NewTicket, Severity, Ticket};
use faultline_notify::{
    DeliveryState, Kind, Link, Notification, Notifier, NotifyConfig, Outbox, from_ticket,
};
use faultline_tests::receivers::{Receiver, Seen};
use faultline_wire::config_file::ConfigSource;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const HOUR: i64 = 3_600_000;

#[derive(Deserialize)]
struct File {
    notify: NotifyConfig,
}

fn config(text: &str) -> NotifyConfig {
    let source = ConfigSource::from_text(Path::new("collector.toml"), text.to_string());
    let file: File = source.parse().unwrap_or_else(|e| panic!("{e}"));
    file.notify
        .validate(&source, "notify")
        .unwrap_or_else(|e| panic!("{e}"));
    file.notify
}

fn channels(r: &Receiver) -> String {
    format!(
        r#"
[notify.retry]
initial = "1s"
max = "1m"

[[notify.channels]]
name = "hook"
[notify.channels.webhook]
url = "{hook}"
headers = {{ Authorization = "Bearer hook-token" }}

[[notify.channels]]
name = "am"
[notify.channels.alertmanager]
url = "{am}"

[[notify.channels]]
name = "pd"
[notify.channels.pagerduty]
url = "{pd}"
routing_key = "R0UTING"

[[notify.channels]]
name = "wecom"
[notify.channels.wecom]
url = "{wecom}?key=WECOMKEY"

[[notify.channels]]
name = "dingtalk"
[notify.channels.dingtalk]
url = "{dingtalk}?access_token=DINGTOKEN"
secret = "SECding"

[[notify.channels]]
name = "feishu"
[notify.channels.feishu]
url = "{feishu}"
secret = "feishu-secret"

[[notify.channels]]
name = "jira"
[notify.channels.ticket_sink]
id_pointer = "/key"
headers = {{ Authorization = "Basic amlyYQ==" }}
[notify.channels.ticket_sink.create]
url = "{sink}"
body = '{{"summary": {{{{ summary | tojson }}}}, "labels": ["{{{{ tag }}}}", "{{{{ severity }}}}"]}}'
[notify.channels.ticket_sink.update]
method = "PUT"
url = "{sink}/{{{{ remote_id }}}}"
body = '{{"comment": {{{{ details | tojson }}}}, "event": "{{{{ kind }}}}"}}'
[notify.channels.ticket_sink.resolve]
url = "{sink}/{{{{ remote_id }}}}/resolve"
body = '{{"resolution": "Done"}}'
"#,
        hook = r.url("/hook"),
        am = r.url("/am"),
        pd = r.url("/pagerduty"),
        wecom = r.url("/robot/wecom"),
        dingtalk = r.url("/robot/dingtalk"),
        feishu = r.url("/robot/feishu"),
        sink = r.url("/sink/issue"),
    )
}

/// A real ticket through open → acknowledge → resolve, and its notifications.
fn ticket_notifications() -> Vec<Notification> {
    let policy = TicketPolicy::default();
    let new = NewTicket {
        rule: "UplinkDown".into(),
        target: "uplink-ct-1".into(),
        summary: "China Telecom uplink 1 down".into(),
        description: "carrier edge unreachable, our interface up".into(),
        severity: Severity::P1,
        tag: Some(Owner::Carrier),
        reason: "evidence beyond the carrier boundary".into(),
        evidence: None,
        customers: vec![Customer {
            department: "finance".into(),
            vip: true,
            contacts: vec![Contact {
                name: "Li".into(),
                email: Some("li@finance.example".into()),
                phone: None,
            }],
            ..Customer::default()
        }],
        started_at_ms: 1_795_850_000_000,
        opened_by: SYSTEM.into(),
        channel: faultline_incidents::Channel::Monitoring,
        pages: true,
        reporter: None,
    };
    let (t, _) = Ticket::open(42, new, &policy, 1_795_850_010_000);
    let (t, _) = t
        .apply(
            Command::Acknowledge { by: "ana".into() },
            &policy,
            1_795_850_060_000,
        )
        .unwrap();
    let (t, _) = t
        .apply(Command::ConditionCleared, &policy, 1_795_850_600_000)
        .unwrap();
    let links = [Link {
        title: "Ticket #42".into(),
        url: "https://faultline.example/tickets/42".into(),
    }];
    from_ticket::notifications(&t, 0, &links)
}

fn by_path(r: &Receiver, path: &str) -> Vec<Seen> {
    r.accepted(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_and_restart_lose_nothing_and_send_nothing_twice() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let receiver = Receiver::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("collector.db");
        let text = channels(&receiver);
        let notes = ticket_notifications();
        assert_eq!(
            notes.iter().map(|n| n.kind).collect::<Vec<_>>(),
            [Kind::Trigger, Kind::Acknowledge, Kind::Resolve]
        );

        // Receivers down: every attempt fails and is rescheduled.
        receiver.set_down(true);
        let notifier = Notifier::new(config(&text), Outbox::open(&db).unwrap()).unwrap();
        let mut enqueued = 0;
        for n in &notes {
            enqueued += notifier.enqueue(n).unwrap();
        }
        // hook 3, am 2, pd 3, wecom 3, dingtalk 3, feishu 3, jira 3
        assert_eq!(enqueued, 20);
        let now = faultline_notify::now_ms();
        let round = notifier.deliver_due(now).await.unwrap();
        assert_eq!(
            (round.attempted, round.failed),
            (7, 7),
            "one head per channel"
        );
        let round = notifier.deliver_due(now).await.unwrap();
        assert_eq!(round.attempted, 0, "backoff: nothing is due again at once");
        let round = notifier.deliver_due(now + HOUR).await.unwrap();
        assert_eq!(round.failed, 7);
        assert!(receiver.accepted("/").is_empty());
        let counters: BTreeMap<String, _> = notifier.counters().into_iter().collect();
        assert_eq!((counters["pd"].sent, counters["pd"].failed), (0, 2));
        let backlog: BTreeMap<String, _> = notifier.backlog().unwrap().into_iter().collect();
        assert_eq!(backlog["hook"].pending, 3);

        // The collector dies and comes back: it enqueues the same events again.
        drop(notifier);
        let notifier = Notifier::new(config(&text), Outbox::open(&db).unwrap()).unwrap();
        for n in &notes {
            assert_eq!(notifier.enqueue(n).unwrap(), 0, "already in the outbox");
        }

        // Receivers back, flaky for the first few requests.
        receiver.set_down(false);
        receiver.fail_next(3);
        let mut at = now + 2 * HOUR;
        for _ in 0..20 {
            let round = notifier.deliver_due(at).await.unwrap();
            if round.attempted == 0
                && notifier
                    .backlog()
                    .unwrap()
                    .iter()
                    .all(|(_, b)| b.pending == 0)
            {
                break;
            }
            at += HOUR;
        }

        // Exactly once per (channel, event).
        let expected = [
            ("/hook", 3),
            ("/am", 2),
            ("/pagerduty", 3),
            ("/robot/wecom", 3),
            ("/robot/dingtalk", 3),
            ("/robot/feishu", 3),
            ("/sink/issue", 3),
        ];
        for (path, count) in expected {
            let seen = by_path(&receiver, path);
            assert_eq!(seen.len(), count, "{path}: {seen:#?}");
            let mut keys: Vec<&str> = seen
                .iter()
                .map(|s| s.headers["idempotency-key"].as_str())
                .collect();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), count, "{path}: an event delivered twice");
        }
        let records = notifier
            .backlog()
            .unwrap()
            .into_iter()
            .map(|(_, b)| (b.pending, b.failed))
            .collect::<Vec<_>>();
        assert!(records.iter().all(|r| *r == (0, 0)), "{records:?}");
        let outbox = Outbox::open(&db).unwrap();
        let deliveries = outbox.deliveries("faultline-ticket-42").unwrap();
        assert_eq!(deliveries.len(), 20);
        assert!(
            deliveries
                .iter()
                .all(|d| d.state == DeliveryState::Delivered
                    && d.delivered_at_ms.is_some()
                    && (d.kind != Some(Kind::Trigger) || d.attempts >= 3))
        );
        let counters: BTreeMap<String, _> = notifier.counters().into_iter().collect();
        assert_eq!(counters["pd"].sent, 3);
        assert_eq!(counters["am"].given_up, 0);

        // Generic webhook: the notification as JSON, with its headers.
        let hook = by_path(&receiver, "/hook");
        assert_eq!(hook[0].headers["authorization"], "Bearer hook-token");
        assert_eq!(hook[0].json()["notification"]["kind"], "trigger");
        assert_eq!(hook[0].json()["notification"]["tag"], "carrier");
        assert_eq!(hook[2].json()["notification"]["kind"], "resolve");

        // Alertmanager: firing then resolved, one fingerprint.
        let am = by_path(&receiver, "/am");
        let (firing, resolved) = (am[0].json(), am[1].json());
        assert_eq!(firing["version"], "4");
        assert_eq!(
            (firing["status"].as_str(), resolved["status"].as_str()),
            (Some("firing"), Some("resolved"))
        );
        assert_eq!(
            firing["alerts"][0]["fingerprint"],
            resolved["alerts"][0]["fingerprint"]
        );
        assert_eq!(firing["alerts"][0]["labels"]["tag"], "carrier");
        assert_eq!(firing["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(resolved["alerts"][0]["endsAt"], "2026-11-28T07:23:20.000Z");

        // PagerDuty: trigger → acknowledge → resolve under one dedup_key.
        let pd: Vec<serde_json::Value> = by_path(&receiver, "/pagerduty")
            .iter()
            .map(Seen::json)
            .collect();
        let actions: Vec<&str> = pd
            .iter()
            .map(|e| e["event_action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["trigger", "acknowledge", "resolve"]);
        assert!(
            pd.iter()
                .all(|e| e["dedup_key"] == "faultline-ticket-42" && e["routing_key"] == "R0UTING")
        );
        assert_eq!(pd[0]["payload"]["severity"], "critical");
        assert_eq!(pd[0]["payload"]["source"], "uplink-ct-1");
        assert_eq!(pd[0]["payload"]["summary"], "China Telecom uplink 1 down");

        // Robots: markdown, signed where a secret is set.
        let wecom = by_path(&receiver, "/robot/wecom");
        assert_eq!(wecom[0].json()["msgtype"], "markdown");
        assert!(
            wecom[0].json()["markdown"]["content"]
                .as_str()
                .unwrap()
                .contains("China Telecom uplink 1 down")
        );
        assert!(wecom[0].uri.contains("key=WECOMKEY"));
        let ding = by_path(&receiver, "/robot/dingtalk");
        assert!(ding.iter().all(
            |s| s.uri.contains("access_token=DINGTOKEN&timestamp=") && s.uri.contains("&sign=")
        ));
        assert!(
            ding[1].json()["markdown"]["title"]
                .as_str()
                .unwrap()
                .contains("Acknowledged")
        );
        let feishu = by_path(&receiver, "/robot/feishu");
        let card = feishu[2].json();
        assert_eq!(card["msg_type"], "interactive");
        assert!(card["sign"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(
            card["card"]["header"]["title"]["content"]
                .as_str()
                .unwrap()
                .contains("Resolved")
        );

        // Ticket sink: one create, then update and resolve on the same remote ticket.
        let sink = by_path(&receiver, "/sink/issue");
        let calls: Vec<(&str, &str)> = sink.iter().map(|s| (s.method.as_str(), s.path())).collect();
        assert_eq!(
            calls,
            [
                ("POST", "/sink/issue"),
                ("PUT", "/sink/issue/OPS-1"),
                ("POST", "/sink/issue/OPS-1/resolve")
            ]
        );
        assert_eq!(
            sink[0].json()["labels"],
            serde_json::json!(["carrier", "P1"])
        );
        assert_eq!(sink[1].json()["event"], "acknowledge");
        assert_eq!(sink[0].headers["authorization"], "Basic amlyYQ==");
        assert_eq!(
            outbox
                .remote_id("jira", "faultline-ticket-42")
                .unwrap()
                .as_deref(),
            Some("OPS-1")
        );
        let creates = receiver
            .seen()
            .iter()
            .filter(|s| s.method == "POST" && s.path() == "/sink/issue")
            .count();
        assert!(
            creates >= 2,
            "the create itself was retried through the outage"
        );
    })
    .await
    .expect("test took longer than 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_without_id_is_never_repeated() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let receiver = Receiver::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"
[[notify.channels]]
name = "sn"
[notify.channels.ticket_sink]
id_pointer = "/result/sys_id"
[notify.channels.ticket_sink.create]
url = "{noid}"
body = '{{"short_description": {{{{ summary | tojson }}}}}}'
[notify.channels.ticket_sink.update]
url = "{noid}/{{{{ remote_id }}}}"
body = '{{"work_notes": {{{{ details | tojson }}}}}}'
"#,
            noid = receiver.url("/sink/noid")
        );
        let notifier =
            Notifier::new(config(&text), Outbox::open(&dir.path().join("db")).unwrap()).unwrap();
        for n in ticket_notifications() {
            notifier.enqueue(&n).unwrap();
        }
        let now = faultline_notify::now_ms();
        for i in 0..5 {
            notifier.deliver_due(now + i * HOUR).await.unwrap();
        }
        assert_eq!(
            receiver.seen().len(),
            1,
            "one create, no retry, no update without an id"
        );
        let outbox = Outbox::open(&dir.path().join("db")).unwrap();
        let states: Vec<DeliveryState> = outbox
            .deliveries("faultline-ticket-42")
            .unwrap()
            .iter()
            .map(|d| d.state)
            .collect();
        assert_eq!(states, [DeliveryState::Failed; 3]);
        let counters = notifier.counters();
        assert_eq!((counters[0].1.sent, counters[0].1.given_up), (0, 3));
    })
    .await
    .expect("test took longer than 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_found_not_repeated() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let receiver = Receiver::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"
[notify.retry]
timeout = "300ms"

[[notify.channels]]
name = "jira"
kinds = ["trigger", "acknowledge"]
[notify.channels.ticket_sink]
id_pointer = "/key"
[notify.channels.ticket_sink.create]
url = "{slow}"
body = '{{"summary": {{{{ summary | tojson }}}}, "labels": ["{{{{ dedup_key }}}}"]}}'
[notify.channels.ticket_sink.update]
method = "PUT"
url = "{slow}/{{{{ remote_id }}}}"
body = '{{"comment": {{{{ details | tojson }}}}}}'
[notify.channels.ticket_sink.find]
url = "{search}?jql=labels%3D{{{{ dedup_key }}}}"
id_pointer = "/issues/0/key"
"#,
            slow = receiver.url("/sink/slow"),
            search = receiver.url("/sink/search"),
        );
        let notifier =
            Notifier::new(config(&text), Outbox::open(&dir.path().join("db")).unwrap()).unwrap();
        for n in ticket_notifications() {
            notifier.enqueue(&n).unwrap();
        }
        let now = faultline_notify::now_ms();
        let round = notifier.deliver_due(now).await.unwrap();
        assert_eq!(
            round.failed, 1,
            "the create timed out after the ticket was made"
        );
        for i in 1..4 {
            notifier.deliver_due(now + i * HOUR).await.unwrap();
        }
        let calls: Vec<(String, String)> = receiver
            .seen()
            .iter()
            .map(|s| (s.method.clone(), s.path().to_string()))
            .collect();
        let calls: Vec<(&str, &str)> = calls
            .iter()
            .map(|(m, p)| (m.as_str(), p.as_str()))
            .collect();
        assert_eq!(
            calls,
            [
                ("POST", "/sink/slow"),
                ("GET", "/sink/search"),
                ("PUT", "/sink/slow/OPS-1"),
            ]
        );
        let outbox = Outbox::open(&dir.path().join("db")).unwrap();
        assert_eq!(
            outbox
                .remote_id("jira", "faultline-ticket-42")
                .unwrap()
                .as_deref(),
            Some("OPS-1")
        );
    })
    .await
    .expect("test took longer than 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_retries_by_itself_and_stops_on_shutdown() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let receiver = Receiver::start().await.unwrap();
        receiver.fail_next(3);
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[notify.retry]\ninitial = \"50ms\"\nmax = \"200ms\"\npoll_interval = \"20ms\"\n\
             [[notify.channels]]\nname = \"pd\"\n[notify.channels.pagerduty]\nurl = \"{}\"\nrouting_key = \"K\"\n",
            receiver.url("/pagerduty")
        );
        let notifier = Notifier::new(config(&text), Outbox::open(&dir.path().join("db")).unwrap()).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn({
            let notifier = notifier.clone();
            async move { notifier.run(async { let _ = stopped.await; }).await }
        });
        for n in ticket_notifications() {
            notifier.enqueue(&n).unwrap();
        }
        while receiver.accepted("/pagerduty").len() < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.send(()).unwrap();
        running.await.unwrap();
        let accepted = receiver.accepted("/pagerduty");
        let actions: Vec<String> = accepted.iter().map(|s| s.json()["event_action"].as_str().unwrap().to_string()).collect();
        assert_eq!(actions, ["trigger", "acknowledge", "resolve"]);
        assert_eq!(receiver.seen().len(), 6, "3 refused + 3 delivered, nothing more");
        let counters = notifier.counters();
        assert_eq!((counters[0].1.sent, counters[0].1.failed), (3, 3));
    })
    .await
    .expect("test took longer than 30 s");
}

/// An SMS gateway and a voice gateway, each a templated POST to the provider: the page reaches
/// the paged engineer's phone with its acknowledge link; the exact request is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_and_voice_gateways_post_the_exact_request() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let receiver = Receiver::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"[notify.retry]
initial = "50ms"
max = "200ms"
poll_interval = "20ms"

[[notify.channels]]
name = "sms"
[notify.channels.sms]
url = "{sms}"
headers = {{ Authorization = "Bearer SMS-KEY" }}
to = ["+8613900000000"]

[[notify.channels]]
name = "call"
[notify.channels.voice]
url = "{voice}"
content_type = "application/x-www-form-urlencoded"
body = "to={{{{ phones | join(',') | urlencode }}}}&tts={{{{ message | urlencode }}}}"
"#,
            sms = receiver.url("/sms/send"),
            voice = receiver.url("/voice/call"),
        );
        let notifier =
            Notifier::new(config(&text), Outbox::open(&dir.path().join("db")).unwrap()).unwrap();
        let mut page = ticket_notifications().remove(0);
        assert_eq!(page.kind, Kind::Trigger);
        page.paged = vec![Contact {
            name: "Ana".into(),
            email: None,
            phone: Some("+8613800000000".into()),
        }];
        page.ack_url = Some("https://faultline.example/api/v1/ack/TOKEN".into());
        notifier.enqueue(&page).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn({
            let notifier = notifier.clone();
            async move { notifier.run(async { let _ = stopped.await; }).await }
        });
        while receiver.accepted("/").len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send(()).unwrap();
        running.await.unwrap();

        let sms = receiver.accepted("/sms/send");
        assert_eq!(sms.len(), 1, "{:#?}", receiver.seen());
        assert_eq!(sms[0].method, "POST");
        assert_eq!(sms[0].header("content-type"), "application/json");
        assert_eq!(sms[0].header("authorization"), "Bearer SMS-KEY");
        assert_eq!(sms[0].header("idempotency-key"), format!("sms:{}:trigger:0", page.dedup_key));
        assert_eq!(
            sms[0].json(),
            serde_json::json!({
                "to": ["+8613800000000", "+8613900000000"],
                "message": "[Faultline #42 P1 carrier] Opened: China Telecom uplink 1 down \
                            Ack: https://faultline.example/api/v1/ack/TOKEN",
            })
        );
        let call = receiver.accepted("/voice/call");
        assert_eq!(call.len(), 1);
        assert_eq!(
            call[0].header("content-type"),
            "application/x-www-form-urlencoded"
        );
        assert_eq!(
            String::from_utf8_lossy(&call[0].body),
            "to=%2B8613800000000&tts=Faultline%20page.%20Opened.%20Ticket%2042%2C%20severity%20P1%2C%20\
             responsibility%20carrier.%20China%20Telecom%20uplink%201%20down."
        );
    })
    .await
    .expect("test took longer than 30 s");
}
