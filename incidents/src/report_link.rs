//! Offering to link a hand-made fault report to an open automatic ticket (API / console →
//! **incidents**): when a department phones or walks in about a fault that monitoring already
//! has a ticket for, the desk is shown that ticket — with why it matches — so it does not run
//! two tickets for one fault. Pure: the report, the unclosed tickets and the inventory in, the
//! candidates out, strongest match first.

use crate::inventory::Inventory;
use crate::ticket::{Channel, Ticket};
use serde::Serialize;

/// What a report says about where the fault is: the affected target and/or the reporting
/// department (by default, the target's department).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportedFault<'a> {
    /// The affected target, when the reporter could name it.
    pub target: Option<&'a str>,
    /// The reporting department.
    pub department: Option<&'a str>,
}

/// How strongly a ticket matches the report, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The reported target is the ticket's target or one of its symptoms.
    SameTarget,
    /// The reported target depends on the ticket's target (the fault is upstream of it).
    Upstream,
    /// The ticket already affects the reporting department's systems.
    SameDepartment,
}

/// An open automatic ticket the report may be about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LinkCandidate {
    /// The ticket's id.
    pub ticket: u64,
    /// How it matches.
    pub kind: MatchKind,
    /// Why, in a sentence the desk reads next to the ticket's evidence.
    pub why: String,
}

/// The unclosed automatic tickets (`monitoring` channel, open or acknowledged) `report` may be
/// about, strongest match first, newest first within a kind; each ticket once.
pub fn link_candidates(
    report: &ReportedFault<'_>,
    tickets: &[Ticket],
    inventory: &Inventory,
) -> Vec<LinkCandidate> {
    let department = report.department.or_else(|| {
        report
            .target
            .and_then(|t| inventory.department_of(t))
            .map(|d| d.id.as_str())
    });
    let upstream = report
        .target
        .map(|t| inventory.upstream(t))
        .unwrap_or_default();
    let mut out: Vec<LinkCandidate> = tickets
        .iter()
        .filter(|t| t.channel == Channel::Monitoring && t.state.is_active())
        .filter_map(|t| {
            let (kind, why) = match_ticket(t, report.target, department, &upstream)?;
            Some(LinkCandidate {
                ticket: t.id,
                kind,
                why,
            })
        })
        .collect();
    out.sort_by(|a, b| a.kind.cmp(&b.kind).then(b.ticket.cmp(&a.ticket)));
    out
}

fn match_ticket(
    ticket: &Ticket,
    target: Option<&str>,
    department: Option<&str>,
    upstream: &[Vec<String>],
) -> Option<(MatchKind, String)> {
    if let Some(target) = target {
        if ticket.target == target {
            return Some((
                MatchKind::SameTarget,
                format!("{target} is this ticket's target ({})", ticket.rule),
            ));
        }
        if let Some(s) = ticket.symptoms.iter().find(|s| s.target == target) {
            return Some((
                MatchKind::SameTarget,
                format!(
                    "{target} is already a symptom of this ticket ({} on {})",
                    s.rule, ticket.target
                ),
            ));
        }
        if let Some(path) = upstream
            .iter()
            .find(|p| p.last().is_some_and(|t| *t == ticket.target))
        {
            return Some((
                MatchKind::Upstream,
                format!(
                    "{target} depends on {} ({}), which has {}",
                    ticket.target,
                    path.join(" → "),
                    ticket.rule
                ),
            ));
        }
    }
    let department = department?;
    let affected = ticket
        .customers
        .iter()
        .find(|c| c.department == department)?;
    Some((
        MatchKind::SameDepartment,
        format!(
            "this ticket already affects {department}'s systems ({})",
            affected.targets.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Owner;
    use crate::rules::Severity;
    use crate::ticket::{Customer, NewTicket, TicketPolicy};
    use faultline_wire::config_file::ConfigSource;
    use std::path::Path;

    const INVENTORY: &str = r#"
[[departments]]
id = "finance"

[[departments]]
id = "tax"

[[targets]]
id = "core1"
kind = "device"
owner = "platform"

[[targets]]
id = "host-1"
kind = "host"
owner = "platform"
depends_on = ["core1"]

[[targets]]
id = "vm-fin"
kind = "vm"
owner = "customer"
department = "finance"
depends_on = ["host-1"]

[[targets]]
id = "vm-fin2"
kind = "vm"
owner = "customer"
department = "finance"

[[targets]]
id = "vm-tax"
kind = "vm"
owner = "customer"
department = "tax"
"#;

    fn ticket(id: u64, target: &str, channel: Channel, customers: &[&str]) -> Ticket {
        let new = NewTicket {
            rule: "Down".into(),
            target: target.into(),
            summary: format!("{target} down"),
            description: String::new(),
            severity: Severity::P2,
            tag: Some(Owner::Platform),
            reason: String::new(),
            evidence: None,
            customers: customers
                .iter()
                .map(|d| Customer {
                    department: d.to_string(),
                    targets: vec![format!("vm-{d}")],
                    ..Customer::default()
                })
                .collect(),
            started_at_ms: 0,
            opened_by: "faultline".into(),
            channel,
            pages: true,
            reporter: None,
        };
        Ticket::open(id, new, &TicketPolicy::default(), 0).0
    }

    #[test]
    fn candidates_by_target_upstream_and_department() {
        let source = ConfigSource::from_text(Path::new("inventory.toml"), INVENTORY.into());
        let inv = Inventory::load(&source).unwrap();
        let tickets = vec![
            ticket(1, "core1", Channel::Monitoring, &["finance"]),
            ticket(2, "vm-fin", Channel::Monitoring, &["finance"]),
            ticket(3, "vm-fin2", Channel::Phone, &["finance"]),
            ticket(4, "vm-tax", Channel::Monitoring, &["tax"]),
            ticket(5, "host-1", Channel::Monitoring, &[]),
        ];
        // (target, department, expected (ticket, kind) in order)
        type Case<'a> = (Option<&'a str>, Option<&'a str>, &'a [(u64, MatchKind)]);
        let cases: [Case<'_>; 5] = [
            (
                Some("vm-fin"),
                None,
                &[
                    (2, MatchKind::SameTarget),
                    (5, MatchKind::Upstream),
                    (1, MatchKind::Upstream),
                ],
            ),
            // A finance system with no ticket of its own: finance's open tickets.
            (
                Some("vm-fin2"),
                None,
                &[
                    (2, MatchKind::SameDepartment),
                    (1, MatchKind::SameDepartment),
                ],
            ),
            // No target named: the department's.
            (None, Some("tax"), &[(4, MatchKind::SameDepartment)]),
            // Nothing known about the reporter: nothing offered.
            (None, None, &[]),
            (Some("unknown"), None, &[]),
        ];
        for (target, department, want) in cases {
            let report = ReportedFault { target, department };
            let got: Vec<(u64, MatchKind)> = link_candidates(&report, &tickets, &inv)
                .into_iter()
                .map(|c| (c.ticket, c.kind))
                .collect();
            assert_eq!(got, want, "{target:?} {department:?}");
        }
        let why = &link_candidates(
            &ReportedFault {
                target: Some("vm-fin"),
                department: None,
            },
            &tickets,
            &inv,
        )[2]
        .why;
        assert_eq!(
            why,
            "vm-fin depends on core1 (vm-fin → host-1 → core1), which has Down"
        );
    }

    #[test]
    fn linking_a_report_adds_the_department_once_and_is_refused_when_it_cannot_apply() {
        use crate::ticket::{Change, Command, LinkedReport, Reporter};
        let policy = TicketPolicy::default();
        let open = ticket(7, "core1", Channel::Monitoring, &[]);
        let reporter = Reporter {
            name: "Wang".into(),
            phone: Some("+86 21 5555 0199".into()),
            ..Reporter::default()
        };
        let report = |channel: Channel, summary: &str| {
            Command::LinkReport(Box::new(LinkedReport {
                by: "desk".into(),
                channel,
                summary: summary.into(),
                description: String::new(),
                reporter: Some(reporter.clone()),
                customer: Some(Customer {
                    department: "finance".into(),
                    targets: vec!["vm-fin".into()],
                    ..Customer::default()
                }),
            }))
        };
        let (linked, entries) = open
            .apply(report(Channel::Phone, "payroll is down"), &policy, 1_000)
            .unwrap();
        assert_eq!(linked.customers.len(), 1);
        assert!(
            linked.progress_due_ms.is_some(),
            "the department gets updates"
        );
        assert!(matches!(
            &entries[0].change,
            Change::ReportLinked { channel: Channel::Phone, department: Some(d), reporter: Some(r), .. }
                if d == "finance" && r.name == "Wang"
        ));
        // A second report from the same department: still one customer.
        let (twice, _) = linked
            .apply(report(Channel::WalkIn, "still down"), &policy, 2_000)
            .unwrap();
        assert_eq!(twice.customers.len(), 1);
        // Refused: from monitoring, without a summary, on a resolved ticket.
        assert!(
            open.apply(report(Channel::Monitoring, "x"), &policy, 1_000)
                .is_err()
        );
        assert!(
            open.apply(report(Channel::Phone, " "), &policy, 1_000)
                .is_err()
        );
        let resolve = Command::Resolve {
            by: "ana".into(),
            note: String::new(),
        };
        let (resolved, _) = open.apply(resolve, &policy, 1_000).unwrap();
        assert!(
            resolved
                .apply(report(Channel::Phone, "x"), &policy, 2_000)
                .is_err()
        );
    }
}
