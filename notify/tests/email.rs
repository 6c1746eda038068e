//! E-mail against a real SMTP server on 127.0.0.1 (Python's stdlib `smtpd`): the server is down
//! at first, then every e-mail arrives exactly once, to the ticket mailbox and — for the kinds
//! customers get — as a separate customer message to the customer contacts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use faultline_incidents::inventory::{Contact, Owner};
use faultline_incidents::ticket::{Customer, SYSTEM, TicketPolicy};
use faultline_incidents::{Command, NewTicket, Severity, Ticket};
use faultline_notify::{Notifier, NotifyConfig, Outbox, from_ticket};
use faultline_tests::free_port;
use faultline_tests::receivers::SmtpSink;
use faultline_wire::config_file::ConfigSource;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

const HOUR: i64 = 3_600_000;

#[derive(Deserialize)]
struct File {
    notify: NotifyConfig,
}

fn ticket() -> Ticket {
    let policy = TicketPolicy::default();
    let new = NewTicket {
        rule: "VmDiskFull".into(),
        target: "vm-fin-7".into(),
        summary: "vm-fin-7 disk / at 97%".into(),
        description: "the customer's VM disk is filling; its host is healthy".into(),
        severity: Severity::P3,
        tag: Some(Owner::Customer),
        reason: "target owned by the customer".into(),
        evidence: None,
        customers: vec![Customer {
            department: "finance".into(),
            vip: false,
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
    let (t, _) = Ticket::open(7, new, &policy, 1_795_850_000_000);
    let (t, _) = t
        .apply(
            Command::Acknowledge { by: "bo".into() },
            &policy,
            1_795_850_100_000,
        )
        .unwrap();
    t.apply(Command::ConditionCleared, &policy, 1_795_850_200_000)
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_reaches_the_mailbox_and_customers_once_after_an_outage() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let port = free_port();
        let text = format!(
            r#"
[[notify.channels]]
name = "mail"
[notify.channels.email]
host = "127.0.0.1"
port = {port}
tls = "none"
from = "Faultline <faultline@example.com>"
mailbox = ["noc@example.com"]
"#
        );
        let source = ConfigSource::from_text(Path::new("collector.toml"), text);
        let file: File = source.parse().unwrap();
        file.notify.validate(&source, "notify").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let notifier =
            Notifier::new(file.notify, Outbox::open(&dir.path().join("db")).unwrap()).unwrap();
        for mut n in from_ticket::notifications(&ticket(), 0, &[]) {
            if n.kind == faultline_notify::Kind::Trigger {
                // What the collector adds from the on-call schedule.
                n.paged = vec![Contact {
                    name: "Ana".into(),
                    email: Some("ana@ops.example".into()),
                    phone: None,
                }];
            }
            notifier.enqueue(&n).unwrap();
        }

        // No SMTP server yet: the attempt fails and is kept.
        let now = faultline_notify::now_ms();
        let round = notifier.deliver_due(now).await.unwrap();
        assert_eq!((round.attempted, round.failed), (1, 1));

        let sink = SmtpSink::start(port).unwrap();
        let mut at = now + HOUR;
        for _ in 0..10 {
            notifier.deliver_due(at).await.unwrap();
            at += HOUR;
        }
        let messages = sink.stop();
        assert_eq!(messages.len(), 5, "{messages:#?}");
        // (expected envelope recipients, subject fragment, Message-ID, for customers)
        let expected = [
            (
                vec!["noc@example.com", "ana@ops.example"],
                "Opened: vm-fin-7 disk",
                "<mail.faultline-ticket-7.trigger.0@faultline>",
                false,
            ),
            (
                vec!["li@finance.example"],
                "[Ticket #7] Service disruption affecting your systems",
                "<mail.faultline-ticket-7.trigger.0.finance@faultline>",
                true,
            ),
            (
                vec!["noc@example.com"],
                "Acknowledged: vm-fin-7 disk",
                "<mail.faultline-ticket-7.acknowledge.1@faultline>",
                false,
            ),
            (
                vec!["noc@example.com"],
                "Resolved: vm-fin-7 disk",
                "<mail.faultline-ticket-7.resolve.3@faultline>",
                false,
            ),
            (
                vec!["li@finance.example"],
                "Resolved: service disruption affecting your systems",
                "<mail.faultline-ticket-7.resolve.3.finance@faultline>",
                true,
            ),
        ];
        for (message, (to, subject, id, for_customer)) in messages.iter().zip(expected) {
            assert_eq!(message["from"], "faultline@example.com");
            assert_eq!(message["to"], serde_json::json!(to));
            let data = message["data"]
                .as_str()
                .unwrap()
                .replace("\r\n ", " ")
                .replace("\n ", " ");
            assert!(data.contains(subject), "{subject} missing:\n{data}");
            assert!(
                data.contains(&format!("Message-ID: {id}")),
                "{id} missing:\n{data}"
            );
            assert!(
                data.contains("References: <faultline-ticket-7@faultline>"),
                "{data}"
            );
            if for_customer {
                // Plain words for the customer: what is affected; nothing internal.
                assert!(data.contains("Affected systems: vm-fin-7"), "{data}");
                assert!(!data.contains("Responsibility"), "{data}");
                assert!(!data.contains("VmDiskFull"), "no rule names:\n{data}");
                assert!(!data.contains("noc@example.com"), "{data}");
            } else {
                assert!(data.contains("Responsibility:  customer"), "{data}");
                assert!(
                    !data.contains("li@finance.example"),
                    "customers get their own messages:\n{data}"
                );
            }
        }
        let counters = notifier.counters();
        assert_eq!((counters[0].1.sent, counters[0].1.failed), (3, 1));
    })
    .await
    .expect("test took longer than 60 s");
}
