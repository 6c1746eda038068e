//! Table tests of the ticket state machine: every command in every state, timers, SLA, escalation.

use super::*;
use crate::attribution::Evidence;
use crate::inventory::Owner;
use crate::rules::Severity;
use faultline_wire::config_file::ConfigSource;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

const S: Millis = 1_000;

/// Seconds-scale timers, as a demo or test config would set them.
fn policy() -> TicketPolicy {
    let sla = Sla {
        respond: Duration::from_secs(60),
        resolve: Duration::from_secs(600),
    };
    TicketPolicy {
        p1: sla,
        p2: sla,
        p3: sla,
        p4: sla,
        ack_timeout: Duration::from_secs(30),
        max_escalation_level: 2,
        progress_interval: Duration::from_secs(100),
        reopen_window: Duration::from_secs(300),
        callback_after: Duration::from_secs(50),
        escalation: BTreeMap::new(),
        flap_threshold: 3,
        flap_window: Duration::from_secs(600),
        flap_by_rule: BTreeMap::new(),
        carrier_report_after: Duration::ZERO,
    }
}

fn finance() -> Customer {
    Customer {
        department: "finance".into(),
        vip: false,
        contacts: vec![Contact {
            name: "Li Wei".into(),
            email: Some("li.wei@example.com".into()),
            phone: None,
        }],
        ..Customer::default()
    }
}

fn open(customers: Vec<Customer>) -> Ticket {
    open_with(&policy(), Some(Owner::Customer), customers)
}

/// A ticket tagged `tag` opened at 0 under `policy`.
fn open_with(policy: &TicketPolicy, tag: Option<Owner>, customers: Vec<Customer>) -> Ticket {
    let new = NewTicket {
        rule: "DiskFull".into(),
        target: "vm-1".into(),
        summary: "vm-1 / has 3 % free".into(),
        description: String::new(),
        severity: Severity::P2,
        tag,
        reason: "customer-owned target".into(),
        evidence: None,
        customers,
        started_at_ms: -60 * S,
        opened_by: SYSTEM.into(),
        channel: crate::ticket::Channel::Monitoring,
        pages: true,
        reporter: None,
    };
    let (ticket, entries) = Ticket::open(1, new, policy, 0);
    assert_eq!(entries.len(), 1);
    ticket
}

fn by(who: &str) -> String {
    who.to_string()
}

/// `rule` on `target` joining: a symptom, or (`same_fault`) the same fault at that severity.
fn link(
    rule: &str,
    target: &str,
    customer: Option<Customer>,
    same_fault: Option<Severity>,
) -> Command {
    Command::LinkSymptom(Box::new(SymptomLink {
        rule: rule.into(),
        target: target.into(),
        customer,
        reason: format!("{rule} on {target} joins"),
        evidence: None,
        same_fault,
        informed: false,
    }))
}

/// Applies commands in order, each expected to succeed; returns the ticket and the names of the
/// changes (serde tag) in timeline order.
fn run(ticket: Ticket, steps: &[(Millis, Command)]) -> (Ticket, Vec<String>) {
    run_with(&policy(), ticket, steps)
}

/// [`run`] under `policy`.
fn run_with(
    policy: &TicketPolicy,
    mut ticket: Ticket,
    steps: &[(Millis, Command)],
) -> (Ticket, Vec<String>) {
    let mut names = Vec::new();
    for (at, command) in steps {
        let (next, entries) = ticket
            .apply(command.clone(), policy, *at)
            .unwrap_or_else(|e| panic!("{command:?} at {at}: {e}"));
        for entry in entries {
            assert_eq!(entry.at_ms, *at);
            let json = serde_json::to_value(&entry.change).unwrap();
            names.push(format!("{}:{}", entry.who, json["type"].as_str().unwrap()));
        }
        ticket = next;
    }
    (ticket, names)
}

#[test]
fn full_customer_lifecycle() {
    let t = open(vec![finance()]);
    assert_eq!(t.started_at_ms, -60 * S, "original fault time kept");
    assert_eq!(t.progress_due_ms, Some(100 * S));
    let (t, names) = run(
        t,
        &[
            (10 * S, Command::Acknowledge { by: by("ana") }),
            (
                20 * S,
                Command::PostProgress {
                    by: by("ana"),
                    text: "cleaning /var/log".into(),
                },
            ),
            (
                30 * S,
                Command::HandOver {
                    to: by("bo"),
                    by: by("ana"),
                    note: "shift change".into(),
                },
            ),
            (40 * S, Command::ConditionCleared),
            (90 * S, Command::Fire(Timer::Callback)),
            (
                95 * S,
                Command::RecordCallback {
                    by: by("bo"),
                    note: "customer confirmed".into(),
                },
            ),
            (
                99 * S,
                Command::Comment {
                    by: by("bo"),
                    text: "history stays".into(),
                },
            ),
        ],
    );
    assert_eq!(
        names,
        [
            "ana:acknowledged",
            "ana:assigned",
            "ana:progress_posted",
            "ana:handed_over",
            "faultline:resolved",
            "faultline:callback_due",
            "bo:callback_recorded",
            "bo:closed",
            "bo:commented",
        ]
    );
    assert_eq!(t.state, TicketState::Closed);
    assert_eq!(t.assignee.as_deref(), Some("bo"));
    assert_eq!(t.timeline.len(), 10, "opened + every change");
    assert_eq!(t.next_due_ms(), None);
}

#[test]
fn invalid_transitions_are_errors() {
    let open_t = open(vec![finance()]);
    let platform = open(Vec::new());
    let acked = run(
        open_t.clone(),
        &[(S, Command::Acknowledge { by: by("ana") })],
    )
    .0;
    let resolved = run(acked.clone(), &[(2 * S, Command::ConditionCleared)]).0;
    let closed = run(
        resolved.clone(),
        &[(
            3 * S,
            Command::RecordCallback {
                by: by("ana"),
                note: String::new(),
            },
        )],
    )
    .0;
    let cases: Vec<(&str, &Ticket, Command, &str)> = vec![
        (
            "ack twice",
            &acked,
            Command::Acknowledge { by: by("bo") },
            "is acknowledged: cannot acknowledge",
        ),
        (
            "ack resolved",
            &resolved,
            Command::Acknowledge { by: by("bo") },
            "is resolved: cannot acknowledge",
        ),
        (
            "assign assigned",
            &acked,
            Command::Assign {
                to: by("bo"),
                by: by("bo"),
            },
            "use an explicit hand-over",
        ),
        (
            "hand over unassigned",
            &open_t,
            Command::HandOver {
                to: by("bo"),
                by: by("bo"),
                note: String::new(),
            },
            "assign first",
        ),
        (
            "hand over to self",
            &acked,
            Command::HandOver {
                to: by("ana"),
                by: by("ana"),
                note: String::new(),
            },
            "already assigned",
        ),
        (
            "retag without reason",
            &acked,
            Command::Retag {
                by: by("ana"),
                tag: Owner::Platform,
                reason: " ".into(),
            },
            "needs a reason",
        ),
        (
            "retag same tag",
            &acked,
            Command::Retag {
                by: by("ana"),
                tag: Owner::Customer,
                reason: "x".into(),
            },
            "already tagged",
        ),
        (
            "retag closed",
            &closed,
            Command::Retag {
                by: by("ana"),
                tag: Owner::Platform,
                reason: "x".into(),
            },
            "closed",
        ),
        (
            "resolve resolved by hand",
            &resolved,
            Command::Resolve {
                by: by("ana"),
                note: String::new(),
            },
            "cannot resolve",
        ),
        (
            "close with call-back pending",
            &resolved,
            Command::Close {
                by: by("ana"),
                note: String::new(),
            },
            "call-back is required",
        ),
        (
            "call-back while open",
            &open_t,
            Command::RecordCallback {
                by: by("ana"),
                note: String::new(),
            },
            "is open",
        ),
        (
            "progress on resolved",
            &resolved,
            Command::PostProgress {
                by: by("ana"),
                text: "x".into(),
            },
            "is resolved",
        ),
        ("re-open closed", &closed, Command::Refire, "is closed"),
        (
            "timer not due",
            &open_t,
            Command::Fire(Timer::Escalate),
            "not due",
        ),
        (
            "close an open ticket",
            &platform,
            Command::Close {
                by: by("ana"),
                note: String::new(),
            },
            "is open",
        ),
        (
            "link symptom to resolved",
            &resolved,
            link("r", "t", None, None),
            "is resolved",
        ),
        (
            "clear unknown symptom",
            &acked,
            Command::SymptomCleared {
                rule: "r".into(),
                target: "t".into(),
            },
            "not an active symptom",
        ),
    ];
    for (name, ticket, command, fragment) in cases {
        let err = ticket
            .apply(command, &policy(), 5 * S)
            .unwrap_err()
            .to_string();
        assert!(err.contains(fragment), "{name}: {err}");
    }
}

#[test]
fn timers_table() {
    // (what, ticket after setup, now, due timers)
    let fresh = open(vec![finance()]);
    let internal = open(Vec::new());
    let acked = run(
        fresh.clone(),
        &[(10 * S, Command::Acknowledge { by: by("ana") })],
    )
    .0;
    let resolved = run(acked.clone(), &[(20 * S, Command::ConditionCleared)]).0;
    let internal_resolved = run(internal.clone(), &[(20 * S, Command::ConditionCleared)]).0;
    let cases: Vec<(&str, &Ticket, Millis, Vec<Timer>)> = vec![
        ("nothing due yet", &fresh, 29 * S, vec![]),
        (
            "escalate after ack timeout",
            &fresh,
            30 * S,
            vec![Timer::Escalate],
        ),
        (
            "respond-by breach",
            &fresh,
            60 * S,
            vec![Timer::RespondBreach, Timer::Escalate],
        ),
        (
            "progress overdue",
            &fresh,
            100 * S,
            vec![Timer::RespondBreach, Timer::Escalate, Timer::Progress],
        ),
        (
            "internal ticket has no progress timer",
            &internal,
            100 * S,
            vec![Timer::RespondBreach, Timer::Escalate],
        ),
        (
            "acknowledged: no escalation, no respond breach",
            &acked,
            100 * S,
            vec![Timer::Progress],
        ),
        (
            "resolve-by breach",
            &acked,
            600 * S,
            vec![Timer::ResolveBreach, Timer::Progress],
        ),
        (
            "resolved: only the call-back",
            &resolved,
            70 * S,
            vec![Timer::Callback],
        ),
        ("resolved: call-back not yet", &resolved, 69 * S, vec![]),
        (
            "no call-back without customers",
            &internal_resolved,
            10_000 * S,
            vec![],
        ),
    ];
    for (name, ticket, now, want) in cases {
        assert_eq!(ticket.due_timers(now), want, "{name}");
        let next = ticket.next_due_ms();
        assert!(
            next.is_none_or(|n| want.is_empty() == (n > now)),
            "{name}: next {next:?}"
        );
    }
}

#[test]
fn escalation_stops_at_the_last_level_and_progress_reminds() {
    let (t, names) = run(
        open(vec![finance()]),
        &[
            (30 * S, Command::Fire(Timer::Escalate)),
            (60 * S, Command::Fire(Timer::Escalate)),
            (60 * S, Command::Fire(Timer::RespondBreach)),
            (100 * S, Command::Fire(Timer::Progress)),
            (
                150 * S,
                Command::Assign {
                    to: by("cy"),
                    by: by("lead"),
                },
            ),
            (
                180 * S,
                Command::PostProgress {
                    by: by("cy"),
                    text: "on site".into(),
                },
            ),
        ],
    );
    assert_eq!(t.escalation_level, 2);
    assert_eq!(t.escalate_at_ms, None, "max level reached");
    assert!(
        t.due_timers(10_000 * S)
            .iter()
            .all(|d| *d != Timer::Escalate)
    );
    assert_eq!(
        t.progress_due_ms,
        Some(280 * S),
        "a post restarts the interval"
    );
    assert!(t.due_timers(279 * S).is_empty());
    assert_eq!(names[3], "faultline:progress_overdue");
    let Change::ProgressOverdue { contacts, assignee } = &t.timeline[4].change else {
        panic!("{:?}", t.timeline[4]);
    };
    assert_eq!((contacts.len(), assignee.as_deref()), (1, None));
    assert_eq!(t.state, TicketState::Open, "timers never change the state");
}

#[test]
fn escalation_follows_the_tags_policy_table() {
    // Customer tickets follow an on-call policy with levels at 0 s, 10 s and 30 s; platform
    // tickets have none and fall back to the 30 s ack timeout up to level 2.
    let mut policy = policy();
    policy.escalation.insert(
        Some(Owner::Customer),
        [0, 10, 30].map(Duration::from_secs).to_vec(),
    );
    // Untagged tickets (waiting for triage) follow the default policy: levels at 0 s and 20 s.
    policy
        .escalation
        .insert(None, [0, 20].map(Duration::from_secs).to_vec());
    let escalate = || Command::Fire(Timer::Escalate);
    let retag = |tag| Command::Retag {
        by: by("ana"),
        tag,
        reason: "moved".into(),
    };
    // (what, tag, steps, expected level and next escalation)
    type Case = (
        &'static str,
        Option<Owner>,
        Vec<(Millis, Command)>,
        u32,
        Option<Millis>,
    );
    let cases: Vec<Case> = vec![
        (
            "policy: first at 10 s",
            Some(Owner::Customer),
            vec![],
            0,
            Some(10 * S),
        ),
        (
            "policy: then at 30 s",
            Some(Owner::Customer),
            vec![(10 * S, escalate())],
            1,
            Some(30 * S),
        ),
        (
            "policy: a late timer keeps the schedule",
            Some(Owner::Customer),
            vec![(25 * S, escalate())],
            1,
            Some(30 * S),
        ),
        (
            "policy: never after the last level",
            Some(Owner::Customer),
            vec![(10 * S, escalate()), (30 * S, escalate())],
            2,
            None,
        ),
        (
            "policy: an acknowledgement stops it",
            Some(Owner::Customer),
            vec![(5 * S, Command::Acknowledge { by: by("ana") })],
            0,
            None,
        ),
        (
            "policy: a re-open restarts from level 0",
            Some(Owner::Customer),
            vec![
                (10 * S, escalate()),
                (12 * S, Command::ConditionCleared),
                (100 * S, Command::Refire),
            ],
            0,
            Some(110 * S),
        ),
        (
            "policy: the second level after a re-open",
            Some(Owner::Customer),
            vec![
                (12 * S, Command::ConditionCleared),
                (100 * S, Command::Refire),
                (110 * S, escalate()),
            ],
            1,
            Some(130 * S),
        ),
        (
            "fallback: ack timeout",
            Some(Owner::Platform),
            vec![],
            0,
            Some(30 * S),
        ),
        (
            "fallback: every ack timeout",
            Some(Owner::Platform),
            vec![(30 * S, escalate())],
            1,
            Some(60 * S),
        ),
        (
            "fallback: up to the highest level",
            Some(Owner::Platform),
            vec![(30 * S, escalate()), (60 * S, escalate())],
            2,
            None,
        ),
        (
            "re-tag onto a policy: its times from the open",
            Some(Owner::Platform),
            vec![(5 * S, retag(Owner::Customer))],
            0,
            Some(10 * S),
        ),
        (
            "triage: an untagged ticket follows the default policy",
            None,
            vec![],
            0,
            Some(20 * S),
        ),
        (
            "triage: never after the default policy's last level",
            None,
            vec![(20 * S, escalate())],
            1,
            None,
        ),
        (
            "triage: tagging it moves it onto the tag's policy",
            None,
            vec![(5 * S, retag(Owner::Customer))],
            0,
            Some(10 * S),
        ),
        (
            "re-tag off a policy: the fallback",
            Some(Owner::Customer),
            vec![(5 * S, retag(Owner::Carrier))],
            0,
            Some(30 * S),
        ),
    ];
    for (what, tag, steps, level, next) in cases {
        let (t, _) = run_with(&policy, open_with(&policy, tag, Vec::new()), &steps);
        assert_eq!(
            (t.escalation_level, t.escalate_at_ms),
            (level, next),
            "{what}"
        );
        if let Some(next) = next {
            assert!(!t.due_timers(next - 1).contains(&Timer::Escalate), "{what}");
            assert!(t.due_timers(next).contains(&Timer::Escalate), "{what}");
            assert!(
                t.apply(escalate(), &policy, next - 1).is_err(),
                "{what}: not due yet"
            );
        } else {
            assert!(
                !t.due_timers(Millis::MAX).contains(&Timer::Escalate),
                "{what}"
            );
        }
    }
}

#[test]
fn triage_tags_an_untagged_ticket_once_and_mail_is_recorded_in_any_state() {
    let t = open_with(&policy(), None, Vec::new());
    let mail = || {
        Command::RecordMail(Box::new(MailReceived {
            from: "li.wei@example.com".into(),
            subject: "Re: [FL-1] printer".into(),
            text: "still broken".into(),
            message_id: "<r1@example.com>".into(),
            attachments: Vec::new(),
        }))
    };
    let (t, names) = run(
        t,
        &[
            (5 * S, mail()),
            (
                10 * S,
                Command::Retag {
                    by: by("ana"),
                    tag: Owner::Customer,
                    reason: "their printer".into(),
                },
            ),
            (
                20 * S,
                Command::Resolve {
                    by: by("ana"),
                    note: String::new(),
                },
            ),
            (30 * S, mail()),
        ],
    );
    assert_eq!(
        names,
        [
            "li.wei@example.com:mail_received",
            "ana:retagged",
            "ana:resolved",
            "li.wei@example.com:mail_received",
        ]
    );
    assert_eq!(t.tag, Some(Owner::Customer));
    assert!(matches!(
        &t.timeline[2].change,
        Change::Retagged {
            from: None,
            to: Owner::Customer,
            ..
        }
    ));
    assert!(!t.timeline[1].change.pages(), "a mail never pages");
    // A stored `retagged` entry of an older Faultline (a string `from`) still loads.
    let old: Change = serde_json::from_str(
        r#"{"type":"retagged","from":"carrier","to":"platform","reason":"x"}"#,
    )
    .unwrap();
    assert!(matches!(
        old,
        Change::Retagged {
            from: Some(Owner::Carrier),
            ..
        }
    ));
}

#[test]
fn reopen_within_window_keeps_ticket_and_assignee() {
    let (t, _) = run(
        open(Vec::new()),
        &[
            (10 * S, Command::Acknowledge { by: by("ana") }),
            (20 * S, Command::ConditionCleared),
        ],
    );
    assert!(t.reopens(&policy(), 320 * S));
    assert!(!t.reopens(&policy(), 321 * S));
    let (again, names) = run(t.clone(), &[(100 * S, Command::Refire)]);
    assert_eq!(names, ["faultline:reopened"]);
    assert_eq!(again.state, TicketState::Open);
    assert_eq!(again.reopen_count, 1);
    assert_eq!(again.assignee.as_deref(), Some("ana"));
    assert_eq!(again.escalate_at_ms, Some(130 * S));
    // Firing again while active changes nothing; a late re-fire must open a new ticket.
    let (same, names) = run(again.clone(), &[(110 * S, Command::Refire)]);
    assert!(names.is_empty());
    assert_eq!(same, again);
    let err = t.apply(Command::Refire, &policy(), 400 * S).unwrap_err();
    assert!(
        matches!(err, TicketError::ReopenWindowPassed { id: 1, resolved_at_ms } if resolved_at_ms == 20 * S)
    );
}

#[test]
fn symptoms_join_resolve_on_their_own_and_bring_customers() {
    let mut root = open(Vec::new());
    root.tag = Some(Owner::Carrier);
    assert_eq!(root.progress_due_ms, None);
    let (t, names) = run(
        root,
        &[
            (5 * S, link("VmUnreachable", "vm-1", Some(finance()), None)),
            (6 * S, link("VmUnreachable", "vm-2", Some(finance()), None)),
            (
                50 * S,
                Command::SymptomCleared {
                    rule: "VmUnreachable".into(),
                    target: "vm-1".into(),
                },
            ),
            (
                60 * S,
                Command::Retag {
                    by: by("ana"),
                    tag: Owner::Platform,
                    reason: "our optic, not the carrier".into(),
                },
            ),
            (70 * S, Command::ConditionCleared),
        ],
    );
    assert_eq!(
        names,
        [
            "faultline:symptom_linked",
            "faultline:symptom_linked",
            "faultline:symptom_cleared",
            "ana:retagged",
            "faultline:resolved",
        ]
    );
    assert_eq!(t.customers.len(), 1, "one department, counted once");
    assert_eq!(
        t.callback_due_ms,
        Some(120 * S),
        "customer-affecting through its symptoms"
    );
    assert_eq!(
        (t.tag, t.reason.as_str()),
        (Some(Owner::Platform), "our optic, not the carrier")
    );
    // The remaining symptom still clears after the root resolved.
    let (t, _) = run(
        t,
        &[(
            80 * S,
            Command::SymptomCleared {
                rule: "VmUnreachable".into(),
                target: "vm-2".into(),
            },
        )],
    );
    assert!(t.symptoms.iter().all(|s| s.cleared_at_ms.is_some()));
}

#[test]
fn policy_validation_table() {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        tickets: TicketPolicy,
    }
    // (file text, expected error field and line)
    let cases = [
        ("[tickets]\n", None),
        (
            "[tickets]\nack_timeout = \"0s\"\n",
            Some(("tickets.ack_timeout", 2)),
        ),
        (
            "[tickets]\nprogress_interval = \"0s\"\n",
            Some(("tickets.progress_interval", 2)),
        ),
        (
            "[tickets.p2]\nrespond = \"1h\"\nresolve = \"30m\"\n",
            Some(("tickets.p2", 1)),
        ),
    ];
    for (text, want) in cases {
        let source = ConfigSource::from_text(std::path::Path::new("c.toml"), text.to_string());
        let file: File = source.parse().unwrap();
        let got = file.tickets.validate(&source, "tickets").err();
        assert_eq!(
            got.as_ref()
                .map(|e| (e.field.as_str(), e.position.map_or(0, |p| p.0))),
            want,
            "{text}: {got:?}"
        );
    }
}

#[test]
fn policy_reads_from_toml_with_defaults() {
    let policy: TicketPolicy =
        toml::from_str("progress_interval = \"30s\"\n[p1]\nrespond = \"5m\"\nresolve = \"1h\"\n")
            .unwrap();
    assert_eq!(policy.progress_interval, Duration::from_secs(30));
    assert_eq!(policy.sla(Severity::P1).respond, Duration::from_secs(300));
    assert_eq!(policy.sla(Severity::P3), TicketPolicy::default().p3);
}

#[test]
fn the_same_fault_raises_severity_and_keeps_the_ticket_open_table() {
    // P1 answers within 10 s and resolves within 100 s; the ticket opens at 0 as P2
    // (respond by 60 s, resolve by 600 s).
    let policy = TicketPolicy {
        p1: Sla {
            respond: Duration::from_secs(10),
            resolve: Duration::from_secs(100),
        },
        ..policy()
    };
    let critical = |severity| link("DiskCritical", "vm-1", None, severity);
    let cleared = || Command::SymptomCleared {
        rule: "DiskCritical".into(),
        target: "vm-1".into(),
    };
    struct Case {
        what: &'static str,
        steps: Vec<(Millis, Command)>,
        changes: &'static [&'static str],
        severity: Severity,
        state: TicketState,
        /// Respond-by and resolve-by, seconds.
        deadlines: (Millis, Millis),
    }
    use TicketState::{Open, Resolved};
    let cases = vec![
        Case {
            what: "a more severe rule of the same fault raises it and tightens the SLA",
            steps: vec![(20 * S, critical(Some(Severity::P1)))],
            changes: &["symptom_linked", "severity_raised"],
            severity: Severity::P1,
            state: Open,
            deadlines: (30, 120),
        },
        Case {
            what: "deadlines never move later",
            steps: vec![(55 * S, critical(Some(Severity::P1)))],
            changes: &["symptom_linked", "severity_raised"],
            severity: Severity::P1,
            state: Open,
            deadlines: (60, 155),
        },
        Case {
            what: "an equally severe rule joins without a raise",
            steps: vec![(20 * S, critical(Some(Severity::P2)))],
            changes: &["symptom_linked"],
            severity: Severity::P2,
            state: Open,
            deadlines: (60, 600),
        },
        Case {
            what: "a less severe rule joins without a raise",
            steps: vec![(20 * S, critical(Some(Severity::P3)))],
            changes: &["symptom_linked"],
            severity: Severity::P2,
            state: Open,
            deadlines: (60, 600),
        },
        Case {
            what: "a symptom of the fault never raises it",
            steps: vec![(20 * S, critical(None))],
            changes: &["symptom_linked"],
            severity: Severity::P2,
            state: Open,
            deadlines: (60, 600),
        },
        Case {
            what: "the worse condition clears: open, severity kept",
            steps: vec![(20 * S, critical(Some(Severity::P1))), (40 * S, cleared())],
            changes: &["symptom_linked", "severity_raised", "symptom_cleared"],
            severity: Severity::P1,
            state: Open,
            deadlines: (30, 120),
        },
        Case {
            what: "its own condition clears while the same fault fires: open",
            steps: vec![
                (20 * S, critical(Some(Severity::P1))),
                (30 * S, Command::ConditionCleared),
                (35 * S, Command::ConditionCleared),
            ],
            changes: &["symptom_linked", "severity_raised", "condition_cleared"],
            severity: Severity::P1,
            state: Open,
            deadlines: (30, 120),
        },
        Case {
            what: "... and resolves when the same fault clears too",
            steps: vec![
                (20 * S, critical(Some(Severity::P1))),
                (30 * S, Command::ConditionCleared),
                (40 * S, cleared()),
            ],
            changes: &[
                "symptom_linked",
                "severity_raised",
                "condition_cleared",
                "symptom_cleared",
                "resolved",
            ],
            severity: Severity::P1,
            state: Resolved,
            deadlines: (30, 120),
        },
        Case {
            what: "its own condition back: the same fault clearing does not resolve",
            steps: vec![
                (20 * S, critical(Some(Severity::P1))),
                (30 * S, Command::ConditionCleared),
                (35 * S, Command::Refire),
                (40 * S, cleared()),
            ],
            changes: &[
                "symptom_linked",
                "severity_raised",
                "condition_cleared",
                "symptom_cleared",
            ],
            severity: Severity::P1,
            state: Open,
            deadlines: (30, 120),
        },
        Case {
            what: "a symptom does not keep the ticket open",
            steps: vec![
                (20 * S, critical(None)),
                (30 * S, Command::ConditionCleared),
            ],
            changes: &["symptom_linked", "resolved"],
            severity: Severity::P2,
            state: Resolved,
            deadlines: (60, 600),
        },
        Case {
            what: "the same fault back within the re-open window re-opens and raises",
            steps: vec![
                (10 * S, Command::ConditionCleared),
                (100 * S, critical(Some(Severity::P1))),
            ],
            changes: &["resolved", "reopened", "symptom_linked", "severity_raised"],
            severity: Severity::P1,
            state: Open,
            deadlines: (60, 200),
        },
    ];
    for c in cases {
        let (t, names) = run_with(&policy, open(Vec::new()), &c.steps);
        let names: Vec<&str> = names
            .iter()
            .map(|n| n.trim_start_matches("faultline:"))
            .collect();
        assert_eq!(names, c.changes, "{}", c.what);
        assert_eq!(
            (t.severity, t.state, t.respond_by_ms, t.resolve_by_ms),
            (c.severity, c.state, c.deadlines.0 * S, c.deadlines.1 * S),
            "{}",
            c.what
        );
        assert_eq!(
            t.condition_cleared_at_ms.is_some(),
            c.changes.last() == Some(&"condition_cleared"),
            "{}",
            c.what
        );
        if let Some(raised) = t
            .timeline
            .iter()
            .find(|e| matches!(e.change, Change::SeverityRaised { .. }))
        {
            assert_eq!(
                raised.change,
                Change::SeverityRaised {
                    from: Severity::P2,
                    to: Severity::P1,
                    rule: "DiskCritical".into(),
                    target: "vm-1".into(),
                },
                "{}",
                c.what
            );
        }
    }
    // After the re-open window the same fault cannot re-open it.
    let (resolved, _) = run_with(
        &policy,
        open(Vec::new()),
        &[(10 * S, Command::ConditionCleared)],
    );
    let err = resolved
        .apply(critical(Some(Severity::P1)), &policy, 311 * S)
        .unwrap_err();
    assert!(err.to_string().contains("cannot link a symptom"), "{err}");
}

#[test]
fn symptom_reason_and_evidence_are_kept_and_older_stores_read() {
    let evidence = Evidence {
        rule: "RoomTemperatureHigh".into(),
        target: "temp-2".into(),
        value: 31.5,
        started_at_ms: 4 * S,
        fired_at_ms: 5 * S,
        chain: vec!["temp-2".into()],
        related: None,
        boundary: Vec::new(),
        role: None,
        labels: BTreeMap::new(),
    };
    let command = Command::LinkSymptom(Box::new(SymptomLink {
        rule: "RoomTemperatureHigh".into(),
        target: "temp-2".into(),
        customer: None,
        reason: "RoomTemperatureHigh already seen in room r2 by temp-1".into(),
        evidence: Some(evidence.clone()),
        same_fault: Some(Severity::P2),
        informed: false,
    }));
    let (t, entries) = open(Vec::new()).apply(command, &policy(), 5 * S).unwrap();
    let json = serde_json::to_value(&entries[0].change).unwrap();
    assert_eq!(json["type"], "symptom_linked");
    assert_eq!(
        json["reason"],
        "RoomTemperatureHigh already seen in room r2 by temp-1"
    );
    assert_eq!(json["evidence"]["value"], 31.5);
    assert_eq!(json["evidence"]["chain"][0], "temp-2");
    let back: Change = serde_json::from_value(json).unwrap();
    assert_eq!(back, entries[0].change);
    assert_eq!(t.symptoms[0].same_fault, Some(Severity::P2));
    // Entries, symptoms and tickets stored before reasons and the same fault existed.
    let old: Change =
        serde_json::from_str(r#"{"type":"symptom_linked","rule":"r","target":"t"}"#).unwrap();
    assert_eq!(
        old,
        Change::SymptomLinked {
            rule: "r".into(),
            target: "t".into(),
            reason: String::new(),
            evidence: None,
            announce_to: None,
        }
    );
    let mut body = serde_json::to_value(&t).unwrap();
    let map = body.as_object_mut().unwrap();
    map.remove("condition_cleared_at_ms");
    map["symptoms"][0]
        .as_object_mut()
        .unwrap()
        .remove("same_fault");
    let old: Ticket = serde_json::from_value(body).unwrap();
    assert_eq!(
        (old.condition_cleared_at_ms, old.symptoms[0].same_fault),
        (None, None)
    );
}

#[test]
fn a_flapping_ticket_pages_once_then_reports_flapping_and_announces_its_end_once() {
    let p = policy(); // re-open window 300 s, flap after 3 re-opens within 600 s
    let mut t = open(vec![finance()]);
    let mut changes = Vec::new();
    // Clears and returns every 20 s.
    for round in 0..5 {
        let at = (round * 40 + 20) * S;
        let (next, e) = t.apply(Command::ConditionCleared, &p, at).unwrap();
        changes.extend(e);
        let (next, e) = next.apply(Command::Refire, &p, at + 20 * S).unwrap();
        changes.extend(e);
        t = next;
    }
    let names: Vec<String> = changes
        .iter()
        .map(|e| {
            let json = serde_json::to_value(&e.change).unwrap();
            let mut name = json["type"].as_str().unwrap().to_string();
            if json["flapping"] == true {
                name.push_str(" (flapping)");
            }
            name
        })
        .collect();
    assert_eq!(
        names,
        [
            "resolved",
            "reopened",
            "resolved",
            "reopened",
            "resolved",
            "reopened (flapping)",
            "flapping_started",
            "resolved (flapping)",
            "reopened (flapping)",
            "resolved (flapping)",
            "reopened (flapping)",
        ]
    );
    assert!(t.flapping_since_ms.is_some());
    // Resolved again; the end is announced only after a whole quiet window.
    let (t, _) = t.apply(Command::ConditionCleared, &p, 300 * S).unwrap();
    assert_eq!(t.flap_ends_at_ms, Some(900 * S));
    assert!(!t.due_timers(899 * S).contains(&Timer::FlapEnded));
    assert_eq!(t.next_due_ms().map(|d| d <= 900 * S), Some(true));
    let (t, e) = t
        .apply(Command::Fire(Timer::FlapEnded), &p, 900 * S)
        .unwrap();
    assert_eq!(e[0].change, Change::FlappingEnded);
    assert_eq!((t.flapping_since_ms, t.flap_ends_at_ms), (None, None));
    assert!(t.recent_reopens_ms.is_empty());
    // A rule with its own threshold 0 never flaps.
    let mut p0 = policy();
    p0.flap_by_rule.insert(
        t.rule.clone(),
        crate::ticket::policy::FlapPolicy {
            threshold: 0,
            window: Duration::from_secs(600),
        },
    );
    let mut t = open(vec![finance()]);
    for round in 0..6 {
        let at = (round * 40 + 20) * S;
        t = t.apply(Command::ConditionCleared, &p0, at).unwrap().0;
        t = t.apply(Command::Refire, &p0, at + 20 * S).unwrap().0;
    }
    assert_eq!(t.flapping_since_ms, None);
}

#[test]
fn a_stored_report_linked_with_a_contact_reads_as_a_reporter() {
    // As stored before the reporter of a linked report was a `Reporter`: an inventory contact.
    let old = r#"{"type":"report_linked","channel":"phone","summary":"payroll is down",
        "description":"","reporter":{"name":"Wang","email":null,"phone":"+86 21 5555 0199"},
        "department":"finance"}"#;
    let change: Change = serde_json::from_str(old).unwrap();
    let Change::ReportLinked { reporter, .. } = &change else {
        panic!("{change:?}");
    };
    assert_eq!(
        reporter.as_ref(),
        Some(&Reporter {
            name: "Wang".into(),
            phone: Some("+86 21 5555 0199".into()),
            ..Reporter::default()
        })
    );
    let again: Change = serde_json::from_value(serde_json::to_value(&change).unwrap()).unwrap();
    assert_eq!(again, change, "and it round-trips as a reporter");
}
