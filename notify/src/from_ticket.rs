//! Turns a ticket's new timeline entries into notifications (incidents → **notifications**).
//!
//! The collector calls [`notifications`] after every [`Ticket::apply`] (or after
//! [`Ticket::open`]) with the index of the first new timeline entry, and enqueues the result. The
//! timeline is append-only, so an entry's index is a stable [`Notification::occurrence`]: after a
//! crash the collector may enqueue the same entries again and the outbox ignores them.
//!
//! A customer follow-up task that came due becomes one notification too ([`follow_up`]), keyed by
//! the task's own unique key, so announcing it again after a restart sends nothing twice.

use crate::model::{CustomerView, Kind, Link, Notification};
use faultline_incidents::followup::FollowUpTask;
use faultline_incidents::inventory::{Contact, Owner};
use faultline_incidents::ticket::{SYSTEM, SlaKind};
use faultline_incidents::{Change, Severity, Ticket};

/// The `rule` of follow-up notifications (they come from no rule).
pub const FOLLOW_UP_RULE: &str = "CustomerFollowUp";

/// The dedup key receivers see for one ticket.
pub fn dedup_key(ticket_id: u64) -> String {
    format!("faultline-ticket-{ticket_id}")
}

/// Notifications for `ticket.timeline[from..]`, in timeline order. `paged` is left empty: the
/// collector sets it from the on-call schedule. Entries nobody is told about
/// (comments, assignment, symptoms, closing, a merge into another ticket) produce none, but for a
/// symptom that newly affects a customer department: that department's contacts are told once,
/// as a progress notification; a progress interval that passed with
/// nothing posted produces both the customer update and the assignee's reminder. A severity
/// raised by the same fault getting worse is a trigger again, under the ticket's dedup key: the
/// receivers update the one incident they have (PagerDuty takes the new severity) and the
/// on-call is paged.
pub fn notifications(ticket: &Ticket, from: usize, links: &[Link]) -> Vec<Notification> {
    let all_contacts: Vec<Contact> = ticket
        .customers
        .iter()
        .flat_map(|c| c.contacts.iter().cloned())
        .collect();
    let mut out = Vec::new();
    for (index, entry) in ticket.timeline.iter().enumerate().skip(from) {
        let events: Vec<(Kind, String, Option<Vec<Contact>>)> = match &entry.change {
            Change::Opened { .. } => vec![(Kind::Trigger, ticket.description.clone(), None)],
            Change::Reopened {
                count,
                flapping: false,
            } => vec![(
                Kind::Reopen,
                format!("The fault is back (re-opened {count} time(s))."),
                None,
            )],
            Change::FlappingStarted {
                reopens,
                window_secs,
            } => {
                let window =
                    humantime::format_duration(std::time::Duration::from_secs(*window_secs));
                vec![(
                    Kind::Flapping,
                    format!(
                        "The fault is flapping: re-opened {reopens} times within {window}. \
                         Further re-opens are not paged; the resolution is announced once it \
                         stays clear for {window}."
                    ),
                    None,
                )]
            }
            Change::FlappingEnded => vec![(
                Kind::Resolve,
                "The fault stopped flapping: it stayed clear for a whole flap window.".to_string(),
                None,
            )],
            Change::SeverityRaised {
                from,
                to,
                rule,
                target,
            } => vec![(
                Kind::Trigger,
                format!(
                    "The fault got worse: severity raised from {from} to {to} by {rule} on {target}."
                ),
                None,
            )],
            Change::Acknowledged => vec![(
                Kind::Acknowledge,
                format!("Acknowledged by {}.", entry.who),
                None,
            )],
            Change::Resolved {
                automatic,
                note,
                flapping: false,
            } => {
                let how = if *automatic {
                    "The condition cleared."
                } else {
                    "Resolved by hand."
                };
                let text = if note.is_empty() {
                    how.to_string()
                } else {
                    format!("{how} {note}")
                };
                vec![(Kind::Resolve, text, None)]
            }
            Change::SymptomLinked {
                announce_to: Some(department),
                target,
                ..
            } => {
                // A department newly affected, as a symptom of this fault: told once, now.
                let contacts = ticket
                    .customers
                    .iter()
                    .find(|c| c.department == *department)
                    .map(|c| c.contacts.clone())
                    .unwrap_or_default();
                vec![(
                    Kind::Progress,
                    format!(
                        "{target} of {department} is affected by this fault; engineers are working on it."
                    ),
                    Some(contacts),
                )]
            }
            Change::ProgressPosted { text, contacts } => {
                vec![(Kind::Progress, text.clone(), Some(contacts.clone()))]
            }
            Change::ProgressOverdue { contacts, .. } => vec![
                (
                    Kind::Progress,
                    "Engineers are still working on this fault; the next update follows."
                        .to_string(),
                    Some(contacts.clone()),
                ),
                (
                    Kind::Reminder,
                    "No progress update was posted for a whole progress interval.".to_string(),
                    None,
                ),
            ],
            Change::SlaBreached { kind } => {
                let text = match kind {
                    SlaKind::Respond => "Not acknowledged by the respond-by deadline.",
                    SlaKind::Resolve => "Not resolved by the resolve-by deadline.",
                };
                vec![(Kind::Breach, text.to_string(), None)]
            }
            Change::Escalated { level } => vec![(
                Kind::Escalation,
                format!("Not acknowledged: paged on-call level {level}."),
                None,
            )],
            Change::ReportLinked {
                summary,
                reporter,
                department,
                ..
            } => {
                // The reporter and their department hear that engineers are already on it.
                let mut contacts: Vec<Contact> = reporter.iter().map(|r| r.contact()).collect();
                for c in ticket
                    .customers
                    .iter()
                    .filter(|c| Some(&c.department) == department.as_ref())
                    .flat_map(|c| c.contacts.iter())
                {
                    if !contacts.contains(c) {
                        contacts.push(c.clone());
                    }
                }
                vec![(
                    Kind::Progress,
                    format!(
                        "Your report \"{summary}\" is the fault of ticket #{}, which engineers are \
                         already working on.",
                        ticket.id
                    ),
                    Some(contacts),
                )]
            }
            Change::CarrierReported { report } => vec![(
                Kind::CarrierReport,
                format!(
                    "Reported to {} (circuit {}): {}",
                    report.carrier,
                    report.circuit_id,
                    report.evidence.join("; ")
                ),
                Some(report.contacts.clone()),
            )],
            Change::CallbackDue { contacts } => vec![(
                Kind::CallbackDue,
                "The call-back to the customer is due.".to_string(),
                Some(contacts.clone()),
            )],
            _ => Vec::new(),
        };
        let first_notice = matches!(
            entry.change,
            Change::Opened { .. }
                | Change::ReportLinked { .. }
                | Change::SymptomLinked {
                    announce_to: Some(_),
                    ..
                }
        );
        let note = ticket.timeline[..=index]
            .iter()
            .rev()
            .find_map(|e| match &e.change {
                Change::ProgressPosted { text, .. } => Some(text.clone()),
                _ => None,
            });
        for (kind, details, contacts) in events {
            out.push(Notification {
                dedup_key: dedup_key(ticket.id),
                occurrence: index as u64,
                kind,
                ticket_id: ticket.id,
                severity: ticket.severity,
                tag: ticket.tag,
                reason: ticket.reason.clone(),
                summary: ticket.summary.clone(),
                details,
                rule: ticket.rule.clone(),
                target: ticket.target.clone(),
                role: ticket.evidence.as_ref().and_then(|e| e.role),
                started_at_ms: ticket.started_at_ms,
                at_ms: entry.at_ms,
                actor: entry.who.clone(),
                assignee: ticket.assignee.clone(),
                escalation_level: ticket.escalation_level,
                contacts: contacts.unwrap_or_else(|| all_contacts.clone()),
                paged: Vec::new(),
                links: links.to_vec(),
                ack_url: None,
                followup: None,
                carrier: match &entry.change {
                    Change::CarrierReported { report } => Some((**report).clone()),
                    _ => None,
                },
                customer: CustomerView {
                    departments: ticket.customers.clone(),
                    first_notice,
                    state: ticket.state.as_str().to_string(),
                    note: note.clone(),
                    next_update_at_ms: ticket.progress_due_ms,
                },
                reporter: ticket.reporter.clone(),
            });
        }
    }
    out
}

/// The notification of a follow-up task that came due: kind `follow_up`, dedup key the task's
/// key, the department as `target`, its contacts, and `followup` naming the department, which
/// follow-up and its due time. Tagged `customer`, severity P4 (channels filter on both).
pub fn follow_up(task: &FollowUpTask) -> Notification {
    let f = &task.followup;
    Notification {
        dedup_key: task.key.clone(),
        occurrence: 0,
        kind: Kind::FollowUp,
        ticket_id: 0,
        severity: Severity::P4,
        tag: Some(Owner::Customer),
        reason: f.describe(),
        summary: format!("Follow up with {} ({})", f.department, f.describe()),
        details: format!(
            "Call the department's contacts, then record it: POST /api/v1/followups/{}/done with a note.",
            task.key
        ),
        rule: FOLLOW_UP_RULE.to_string(),
        target: f.department.clone(),
        role: None,
        started_at_ms: f.due_at_ms,
        at_ms: task.created_at_ms,
        actor: SYSTEM.to_string(),
        assignee: None,
        escalation_level: 0,
        contacts: task.contacts.clone(),
        paged: Vec::new(),
        links: Vec::new(),
        ack_url: None,
        followup: Some(f.clone()),
        carrier: None,
        customer: CustomerView::default(),
        reporter: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_incidents::inventory::Owner;
    use faultline_incidents::ticket::{Customer, SYSTEM, TicketPolicy, Timer};
    use faultline_incidents::{Command, NewTicket, Severity};

    const S: i64 = 1000;

    fn contact() -> Contact {
        Contact {
            name: "Li".into(),
            email: Some("li@finance.example".into()),
            phone: None,
        }
    }

    fn policy() -> TicketPolicy {
        TicketPolicy {
            ack_timeout: std::time::Duration::from_secs(30),
            progress_interval: std::time::Duration::from_secs(100),
            ..TicketPolicy::default()
        }
    }

    fn open() -> Ticket {
        let new = NewTicket {
            rule: "UplinkDown".into(),
            target: "uplink-1".into(),
            summary: "carrier uplink down".into(),
            description: "no light on the carrier side".into(),
            severity: Severity::P1,
            tag: Some(Owner::Carrier),
            reason: "carrier edge unreachable, our interface up".into(),
            evidence: None,
            customers: vec![Customer {
                department: "finance".into(),
                vip: true,
                contacts: vec![contact()],
                ..Customer::default()
            }],
            started_at_ms: 0,
            opened_by: SYSTEM.into(),
            channel: faultline_incidents::Channel::Monitoring,
            pages: true,
            reporter: None,
        };
        Ticket::open(7, new, &policy(), S).0
    }

    #[test]
    fn a_reopen_is_announced_as_a_reopen_and_flapping_quietens_until_it_ends() {
        let mut t = open();
        let mut from = t.timeline.len();
        let mut kinds = Vec::new();
        // Default flap detection: the second re-open within the hour is flapping.
        for (i, command) in [
            Command::ConditionCleared,
            Command::Refire,
            Command::ConditionCleared,
            Command::Refire,
            Command::ConditionCleared,
            Command::Refire,
            Command::ConditionCleared,
        ]
        .into_iter()
        .enumerate()
        {
            t = t.apply(command, &policy(), (10 + i as i64) * S).unwrap().0;
            kinds.extend(notifications(&t, from, &[]).into_iter().map(|n| n.kind));
            from = t.timeline.len();
        }
        assert_eq!(
            kinds,
            [Kind::Resolve, Kind::Reopen, Kind::Resolve, Kind::Flapping],
            "the flapping re-opens and resolutions after it tell nobody"
        );
        let due = t.flap_ends_at_ms.unwrap();
        let t = t
            .apply(Command::Fire(Timer::FlapEnded), &policy(), due)
            .unwrap()
            .0;
        let end = notifications(&t, from, &[]);
        assert_eq!(end.len(), 1);
        assert_eq!(end[0].kind, Kind::Resolve);
        assert_eq!(
            end[0].contacts,
            [contact()],
            "the customer hears the end once"
        );
        let reopen = Kind::Reopen;
        assert_eq!((reopen.as_str(), reopen.title()), ("reopen", "Re-opened"));
    }

    #[test]
    fn timeline_entries_map_to_kinds() {
        let mut t = open();
        let steps = [
            (31 * S, Command::Fire(Timer::Escalate)),
            (
                40 * S,
                Command::Comment {
                    by: "ana".into(),
                    text: "looking".into(),
                },
            ),
            (50 * S, Command::Acknowledge { by: "ana".into() }),
            (101 * S, Command::Fire(Timer::Progress)),
            (
                120 * S,
                Command::PostProgress {
                    by: "ana".into(),
                    text: "carrier dispatched".into(),
                },
            ),
            (130 * S, Command::ConditionCleared),
        ];
        for (now, command) in steps {
            t = t.apply(command, &policy(), now).unwrap().0;
        }
        let links = [Link {
            title: "ticket".into(),
            url: "https://faultline.example/tickets/7".into(),
        }];
        let got = notifications(&t, 0, &links);
        let summary: Vec<(Kind, u64, usize)> = got
            .iter()
            .map(|n| (n.kind, n.occurrence, n.contacts.len()))
            .collect();
        assert_eq!(
            summary,
            [
                (Kind::Trigger, 0, 1),
                (Kind::Escalation, 1, 1),
                (Kind::Acknowledge, 3, 1), // 2 is the comment, 4 the assignment
                (Kind::Progress, 5, 1),
                (Kind::Reminder, 5, 1),
                (Kind::Progress, 6, 1),
                (Kind::Resolve, 7, 1),
            ]
        );
        assert!(got.iter().all(|n| n.dedup_key == "faultline-ticket-7"));
        assert_eq!(got[1].escalation_level, 1);
        assert_eq!(got[2].actor, "ana");
        assert_eq!(got[5].details, "carrier dispatched");
        assert_eq!(got[6].at_ms, 130 * S);
        assert_eq!(got[0].links, links);
        // Only the new entries are turned into notifications.
        let tail = notifications(&t, 7, &[]);
        assert_eq!(tail.len(), 1);
        assert_eq!(tail[0].kind, Kind::Resolve);
    }

    #[test]
    fn a_severity_raise_triggers_again_under_the_tickets_dedup_key() {
        use faultline_incidents::ticket::SymptomLink;
        let mut t = open();
        t.severity = Severity::P2;
        let join = Command::LinkSymptom(Box::new(SymptomLink {
            rule: "UplinkDownHard".into(),
            target: "uplink-1".into(),
            customer: None,
            reason: "uplink-1 UplinkDownHard while it has UplinkDown".into(),
            evidence: None,
            same_fault: Some(Severity::P1),
            informed: false,
        }));
        let t = t.apply(join, &policy(), 20 * S).unwrap().0;
        let got = notifications(&t, 1, &[]);
        let summary: Vec<(Kind, u64, Severity, &str)> = got
            .iter()
            .map(|n| (n.kind, n.occurrence, n.severity, n.dedup_key.as_str()))
            .collect();
        assert_eq!(
            summary,
            [(Kind::Trigger, 2, Severity::P1, "faultline-ticket-7")],
            "the symptom itself tells nobody; the raise pages"
        );
        assert!(
            got[0]
                .details
                .contains("from P2 to P1 by UplinkDownHard on uplink-1"),
            "{}",
            got[0].details
        );
    }

    #[test]
    fn a_follow_up_renders_on_every_channel_that_takes_it() {
        use crate::channel::ChannelConfig;
        use crate::channel::{Prepared, prepare};
        use faultline_incidents::followup::{FollowUp, FollowUpKind};
        let followup = FollowUp {
            department: "finance".into(),
            kind: FollowUpKind::NewCustomer {
                after: std::time::Duration::from_secs(3 * 86_400),
            },
            due_at_ms: 1_795_850_000_000,
        };
        let task = FollowUpTask::new(followup, vec![contact()], 1_795_850_000_500);
        let n = follow_up(&task);
        assert_eq!(
            (n.dedup_key.as_str(), n.kind, n.target.as_str()),
            ("followup:finance:new:3days", Kind::FollowUp, "finance")
        );
        let channel = |text: &str| -> ChannelConfig { toml::from_str(text).unwrap() };
        // (channel, what must be in the request)
        let cases = [
            (
                "name = \"hook\"\n[webhook]\nurl = \"http://127.0.0.1:9/in\"\n",
                "\"department\":\"finance\"",
            ),
            (
                "name = \"ding\"\n[dingtalk]\nurl = \"http://127.0.0.1:9/robot\"\n",
                "Follow up with finance (new customer, 3days after the first target)",
            ),
            (
                "name = \"sink\"\n[ticket_sink]\nid_pointer = \"/key\"\n[ticket_sink.create]\nurl = \"http://127.0.0.1:9/issue\"\nbody = '{}'\n[ticket_sink.update]\nurl = \"http://127.0.0.1:9/issue\"\nbody = '{}'\n",
                "skip",
            ),
        ];
        for (text, want) in cases {
            let c = channel(text);
            assert!(c.accepts(&n), "{text}");
            let rendered = match prepare(&c, &n, None, 0, 0) {
                Ok(Prepared::Http { request, .. }) => String::from_utf8(request.body).unwrap(),
                Ok(Prepared::Skip(why)) => format!("skip: {why}"),
                other => panic!("{text}: {other:?}"),
            };
            assert!(rendered.contains(want), "{want} missing in {rendered}");
        }
        let hook = prepare(&channel(cases[0].0), &n, None, 0, 0).unwrap();
        let Prepared::Http { request, .. } = hook else {
            panic!("{hook:?}")
        };
        let body = request.json().unwrap();
        let f = &body["notification"]["followup"];
        assert_eq!(
            (&f["department"], &f["kind"], &f["after"], &f["due_at_ms"]),
            (
                &"finance".into(),
                &"new_customer".into(),
                &"3days".into(),
                &1_795_850_000_000_i64.into()
            )
        );
        assert_eq!(body["notification"]["kind"], "follow_up");
        assert_eq!(body["notification"]["contacts"][0]["name"], "Li");
        // Ticket events carry no follow-up.
        assert_eq!(notifications(&open(), 0, &[])[0].followup, None);
    }
}
