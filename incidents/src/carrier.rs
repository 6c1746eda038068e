//! Carrier trouble tickets (attribution → **incidents** → notifications): when a ticket is the
//! carrier's, Faultline reports it to that carrier's NOC itself instead of someone phoning them,
//! and keeps the clock on the carrier: time to its first response and time to restore, per
//! carrier and circuit (the basis for holding carriers to their SLA).
//!
//! Pure functions over a ticket and the inventory: [`report_due`] decides whether (and what) to
//! report, [`CarrierClock`] reads the times back from the timeline. The collector applies the
//! report as [`Command::ReportToCarrier`](crate::Command::ReportToCarrier); the notifier turns
//! the timeline entry into a mail to the NOC contacts and, where configured, a call to the
//! carrier's portal.

use crate::circuits::Circuit;
use crate::inventory::{Inventory, Owner};
use crate::ticket::{CarrierReport, Change, Ticket};
use crate::{Millis, duration_ms, format_time};
use std::time::Duration;

/// The carrier circuit a carrier ticket is about: the ticket's own target when it is a
/// `[[circuits]]` entry, else the circuit its target depends on directly (our edge port, or a
/// far-side probe), else the first circuit on its evidence's dependency chain.
pub fn circuit_of<'a>(ticket: &Ticket, inventory: &'a Inventory) -> Option<&'a Circuit> {
    let direct = inventory
        .target(&ticket.target)
        .into_iter()
        .flat_map(|t| t.depends_on.iter());
    let chain = ticket.evidence.iter().flat_map(|e| e.chain.iter());
    std::iter::once(&ticket.target)
        .chain(direct)
        .chain(chain)
        .find_map(|id| inventory.circuit(id))
}

/// Since when `ticket` has been the carrier's: its last re-tag to carrier, else its opening
/// (`None` when it is not the carrier's).
pub fn carrier_since_ms(ticket: &Ticket) -> Option<Millis> {
    if ticket.tag != Some(Owner::Carrier) {
        return None;
    }
    let retagged = ticket.timeline.iter().rev().find_map(|e| match e.change {
        Change::Retagged {
            to: Owner::Carrier, ..
        } => Some(e.at_ms),
        _ => None,
    });
    Some(retagged.unwrap_or(ticket.opened_at_ms))
}

/// The trouble report to send for `ticket` at `now`, if one is due: the ticket is active, has
/// been the carrier's for `after` (the policy's `carrier_report_after`), its fault lies on a
/// circuit declared in `[[circuits]]` (which names the NOC contacts and both ends; a bare
/// carrier target names no one to tell), and it was not reported yet (once per ticket; a
/// re-opened ticket is the same fault, already reported).
pub fn report_due(
    ticket: &Ticket,
    inventory: &Inventory,
    after: Duration,
    now: Millis,
) -> Option<CarrierReport> {
    let since = carrier_since_ms(ticket)?;
    if !ticket.state.is_active()
        || ticket.carrier_reported()
        || now < since.saturating_add(duration_ms(after))
    {
        return None;
    }
    let circuit = circuit_of(ticket, inventory)?;
    Some(CarrierReport {
        circuit: circuit.id.clone(),
        carrier: circuit.carrier.clone(),
        circuit_id: circuit.circuit_id.clone(),
        a_end: circuit.a_end.clone(),
        z_end: circuit.z_end.clone(),
        contacts: circuit.noc.clone(),
        evidence: boundary_evidence(ticket),
    })
}

/// Why the fault lies beyond our boundary, in lines a carrier's NOC can read: what fired and
/// since when, the dependency chain to the circuit, and each check of our side.
fn boundary_evidence(ticket: &Ticket) -> Vec<String> {
    let mut lines = vec![format!(
        "Fault started {}; responsibility: {}",
        format_time(ticket.started_at_ms),
        ticket.reason
    )];
    let Some(evidence) = &ticket.evidence else {
        return lines;
    };
    lines.push(format!(
        "{} on {} (value {}) since {}",
        evidence.rule,
        evidence.target,
        evidence.value,
        format_time(evidence.started_at_ms)
    ));
    if evidence.chain.len() > 1 {
        lines.push(format!("Dependency chain: {}", evidence.chain.join(" → ")));
    }
    for check in &evidence.boundary {
        let state = match check.incident {
            Some(id) => format!("has its own incident #{id}"),
            None => "no fault of its own".to_string(),
        };
        let seen = check.last_seen_ms.map_or_else(
            || "no sample seen".to_string(),
            |at| format!("last sample {}", format_time(at)),
        );
        lines.push(format!("Our side {}: {state}, {seen}", check.target));
    }
    lines
}

/// The carrier's clock on one ticket, read from its timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierClock {
    /// What was reported, and to whom.
    pub report: CarrierReport,
    /// When the report went out.
    pub reported_at_ms: Millis,
    /// When the carrier first answered.
    pub first_response_at_ms: Option<Millis>,
    /// The carrier's own reference number (the latest one given).
    pub reference: Option<String>,
    /// When service came back: the ticket's first resolution after the report.
    pub restored_at_ms: Option<Millis>,
}

impl CarrierClock {
    /// The clock of `ticket`; `None` when it was never reported to a carrier.
    pub fn of(ticket: &Ticket) -> Option<Self> {
        let mut clock: Option<CarrierClock> = None;
        for entry in &ticket.timeline {
            match (&entry.change, clock.as_mut()) {
                (Change::CarrierReported { report }, None) => {
                    clock = Some(CarrierClock {
                        report: (**report).clone(),
                        reported_at_ms: entry.at_ms,
                        first_response_at_ms: None,
                        reference: None,
                        restored_at_ms: None,
                    });
                }
                (Change::CarrierResponded { reference, .. }, Some(c)) => {
                    c.first_response_at_ms.get_or_insert(entry.at_ms);
                    if reference.is_some() {
                        c.reference.clone_from(reference);
                    }
                }
                (Change::Resolved { .. }, Some(c)) => {
                    c.restored_at_ms.get_or_insert(entry.at_ms);
                }
                _ => {}
            }
        }
        clock
    }

    /// Time from the report to the carrier's first answer.
    pub fn response_ms(&self) -> Option<Millis> {
        self.first_response_at_ms
            .map(|at| at.saturating_sub(self.reported_at_ms))
    }

    /// Time from the fault's start to service restored (the outage the carrier owes for).
    pub fn restore_ms(&self, started_at_ms: Millis) -> Option<Millis> {
        self.restored_at_ms
            .map(|at| at.saturating_sub(started_at_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::{BoundaryCheck, Evidence};
    use crate::rules::Severity;
    use crate::ticket::{Command, NewTicket, TicketPolicy};
    use faultline_wire::config_file::ConfigSource;
    use std::path::Path;

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
depends_on = ["edge1"]

[[targets]]
id = "edge1-wan2"
kind = "interface"
room = "r1"
owner = "platform"
device = "edge1"
ifname = "Te0/0/1"
depends_on = ["edge1", "bare-circuit"]

[[targets]]
id = "bare-circuit"
kind = "link"
owner = "carrier"
carrier = "Unicom"
circuit_id = "CU-77"

[[circuits]]
id = "acme-1"
carrier = "ACME"
circuit_id = "ACME-0042"
a_end = "edge1-wan"
z_end = "ACME POP 3"
noc = [{ name = "ACME NOC", email = "noc@acme.example" }]
"#;

    fn inventory() -> Inventory {
        let source = ConfigSource::from_text(Path::new("inventory.toml"), INVENTORY.into());
        Inventory::load(&source).unwrap()
    }

    fn ticket(target: &str, tag: Owner, chain: &[&str]) -> Ticket {
        let evidence = Evidence {
            rule: "CarrierLinkLoss".into(),
            target: target.into(),
            value: 2.0,
            started_at_ms: 60_000,
            fired_at_ms: 90_000,
            chain: chain.iter().map(|s| s.to_string()).collect(),
            related: None,
            boundary: vec![BoundaryCheck {
                target: "edge1".into(),
                incident: None,
                last_seen_ms: Some(85_000),
            }],
            role: None,
            labels: Default::default(),
        };
        let new = NewTicket {
            rule: "CarrierLinkLoss".into(),
            target: target.into(),
            summary: "link down".into(),
            description: String::new(),
            severity: Severity::P2,
            tag: Some(tag),
            reason: "fault beyond the boundary".into(),
            evidence: Some(evidence),
            customers: Vec::new(),
            started_at_ms: 60_000,
            opened_by: "faultline".into(),
            channel: Default::default(),
            pages: true,
            reporter: None,
        };
        Ticket::open(1, new, &TicketPolicy::default(), 90_000).0
    }

    #[test]
    fn a_carrier_ticket_is_reported_once_with_its_circuit_and_evidence() {
        let inv = inventory();
        // (target, tag, chain, expected (circuit, circuit id, NOC contacts))
        type Case<'a> = (
            &'a str,
            Owner,
            &'a [&'a str],
            Option<(&'a str, &'a str, usize)>,
        );
        let cases: [Case<'_>; 6] = [
            // The circuit itself (its own far-side fault).
            (
                "acme-1",
                Owner::Carrier,
                &["acme-1"],
                Some(("acme-1", "ACME-0042", 1)),
            ),
            // Our port, which depends on the circuit.
            (
                "edge1-wan",
                Owner::Carrier,
                &["edge1-wan"],
                Some(("acme-1", "ACME-0042", 1)),
            ),
            // A bare carrier target (not a `[[circuits]]` entry): nobody to tell.
            ("edge1-wan2", Owner::Carrier, &["edge1-wan2"], None),
            // Found on the evidence's chain only.
            (
                "vm-x",
                Owner::Carrier,
                &["vm-x", "acme-1"],
                Some(("acme-1", "ACME-0042", 1)),
            ),
            // Not the carrier's fault: nothing to report.
            ("edge1-wan", Owner::Platform, &["edge1-wan"], None),
            // Tagged carrier but no carrier target anywhere.
            ("edge1", Owner::Carrier, &["edge1"], None),
        ];
        for (target, tag, chain, want) in cases {
            let t = ticket(target, tag, chain);
            let got = report_due(&t, &inv, Duration::ZERO, 90_000);
            let summary = got
                .as_ref()
                .map(|r| (r.circuit.as_str(), r.circuit_id.as_str(), r.contacts.len()));
            assert_eq!(summary, want, "{target} {tag:?}");
            if let Some(report) = got {
                assert!(
                    report.evidence.iter().any(|l| l.contains("Our side edge1")),
                    "{:?}",
                    report.evidence
                );
                let (reported, _) = t
                    .apply(
                        Command::ReportToCarrier(Box::new(report)),
                        &TicketPolicy::default(),
                        100_000,
                    )
                    .unwrap();
                assert_eq!(
                    report_due(&reported, &inv, Duration::ZERO, 200_000),
                    None,
                    "once per ticket"
                );
            }
        }
    }

    #[test]
    fn the_report_waits_for_the_delay_from_opening_or_the_retag_to_carrier() {
        let inv = inventory();
        let policy = TicketPolicy::default();
        let wait = Duration::from_secs(120);
        let t = ticket("edge1-wan", Owner::Carrier, &["edge1-wan"]);
        // Opened at 90 s: due at 210 s.
        assert_eq!(report_due(&t, &inv, wait, 209_999), None);
        assert!(report_due(&t, &inv, wait, 210_000).is_some());
        // Opened as platform, re-tagged carrier at 300 s: due at 420 s.
        let t = ticket("edge1-wan", Owner::Platform, &["edge1-wan"]);
        assert_eq!(report_due(&t, &inv, wait, 1_000_000), None);
        let retag = Command::Retag {
            by: "ana".into(),
            tag: Owner::Carrier,
            reason: "the carrier confirmed a fibre cut".into(),
        };
        let (t, _) = t.apply(retag, &policy, 300_000).unwrap();
        assert_eq!(carrier_since_ms(&t), Some(300_000));
        assert_eq!(report_due(&t, &inv, wait, 419_999), None);
        assert!(report_due(&t, &inv, wait, 420_000).is_some());
        // Resolved within the delay: never reported.
        let resolve = Command::Resolve {
            by: "ana".into(),
            note: String::new(),
        };
        let (t, _) = t.apply(resolve, &policy, 400_000).unwrap();
        assert_eq!(report_due(&t, &inv, wait, 500_000), None);
    }

    #[test]
    fn the_clock_reads_report_first_response_reference_and_restore() {
        let inv = inventory();
        let policy = TicketPolicy::default();
        let t = ticket("edge1-wan", Owner::Carrier, &["edge1-wan"]);
        assert_eq!(CarrierClock::of(&t), None);
        let report = report_due(&t, &inv, Duration::ZERO, 90_000).unwrap();
        let respond = |reference: Option<&str>, note: &str| Command::RecordCarrierResponse {
            by: "ana".into(),
            reference: reference.map(str::to_string),
            note: note.into(),
        };
        // A response before any report is refused.
        assert!(t.apply(respond(Some("X"), ""), &policy, 95_000).is_err());
        let (t, _) = t
            .apply(Command::ReportToCarrier(Box::new(report)), &policy, 100_000)
            .unwrap();
        // Neither reference nor note: refused.
        assert!(t.apply(respond(Some("  "), " "), &policy, 150_000).is_err());
        let (t, _) = t.apply(respond(None, "looking"), &policy, 400_000).unwrap();
        let (t, _) = t
            .apply(respond(Some("CT-123"), "fibre cut"), &policy, 700_000)
            .unwrap();
        let (t, _) = t
            .apply(
                Command::Resolve {
                    by: "ana".into(),
                    note: String::new(),
                },
                &policy,
                3_700_000,
            )
            .unwrap();
        let clock = CarrierClock::of(&t).unwrap();
        assert_eq!(clock.reported_at_ms, 100_000);
        assert_eq!(clock.response_ms(), Some(300_000));
        assert_eq!(clock.reference.as_deref(), Some("CT-123"));
        assert_eq!(clock.restore_ms(t.started_at_ms), Some(3_640_000));
        // A second report on the same ticket is refused.
        let again = report_due(
            &ticket("acme-1", Owner::Carrier, &[]),
            &inv,
            Duration::ZERO,
            90_000,
        )
        .unwrap();
        assert!(
            t.apply(
                Command::ReportToCarrier(Box::new(again)),
                &policy,
                3_800_000
            )
            .is_err()
        );
    }
}
