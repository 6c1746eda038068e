//! One ticket as the report sees it (store → **report**): the few facts the figures need, taken
//! from a stored [`Ticket`] and the inventory in one place ([`ReportTicket::from_ticket`]), so the
//! aggregation does not follow every change to the ticket model.

use faultline_incidents::inventory::TargetRole;
use faultline_incidents::ticket::{Change, Channel, SYSTEM, Ticket};
use faultline_incidents::{Inventory, Millis, Owner, Severity};

/// The facts of one ticket that the report counts.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportTicket {
    /// Ticket id.
    pub id: u64,
    /// One-line summary (for the longest incidents).
    pub summary: String,
    /// Responsibility tag; `None`: untagged (still in triage).
    pub tag: Option<Owner>,
    /// Severity now.
    pub severity: Severity,
    /// How it reached the queue.
    pub channel: Channel,
    /// When the fault started.
    pub started_at_ms: Millis,
    /// When the ticket was opened (the period a ticket belongs to).
    pub opened_at_ms: Millis,
    /// First acknowledgement since the last (re-)open.
    pub acknowledged_at_ms: Option<Millis>,
    /// Last resolution.
    pub resolved_at_ms: Option<Millis>,
    /// The respond-by deadline was breached.
    pub respond_breached: bool,
    /// The resolve-by deadline was breached.
    pub resolve_breached: bool,
    /// Departments affected, each once, in ticket order.
    pub departments: Vec<String>,
    /// Target id.
    pub target: String,
    /// The target's role in the inventory (`None`: not in the inventory).
    pub role: Option<TargetRole>,
    /// The carrier circuit (inventory `[[circuits]]` id) when the target is one.
    pub circuit: Option<String>,
    /// On a carrier ticket: how long after opening the first timeline entry by someone other than
    /// Faultline itself came (ms). A stand-in for the carrier's first response until carrier
    /// notification/response entries exist on the timeline; then this is where it is refined.
    pub carrier_first_response_ms: Option<Millis>,
    /// A call-back was due after resolution.
    pub callback_due: bool,
    /// The call-back was recorded as made.
    pub callback_done: bool,
}

impl ReportTicket {
    /// The report row of a stored ticket, with its target looked up in `inventory`.
    pub fn from_ticket(t: &Ticket, inventory: &Inventory) -> Self {
        let tag = Some(t.tag);
        let mut departments: Vec<String> = Vec::new();
        for customer in &t.customers {
            if !departments.contains(&customer.department) {
                departments.push(customer.department.clone());
            }
        }
        let carrier_first_response_ms = (tag == Some(Owner::Carrier))
            .then(|| {
                t.timeline
                    .iter()
                    .skip(1)
                    .find(|e| e.who != SYSTEM && e.at_ms >= t.opened_at_ms)
                    .map(|e| e.at_ms - t.opened_at_ms)
            })
            .flatten();
        Self {
            id: t.id,
            summary: t.summary.clone(),
            tag,
            severity: t.severity,
            channel: t.channel,
            started_at_ms: t.started_at_ms,
            opened_at_ms: t.opened_at_ms,
            acknowledged_at_ms: t.acknowledged_at_ms,
            resolved_at_ms: t.resolved_at_ms,
            respond_breached: t.respond_breached,
            resolve_breached: t.resolve_breached,
            departments,
            target: t.target.clone(),
            role: inventory.target(&t.target).map(|target| target.role()),
            circuit: inventory.circuit(&t.target).map(|c| c.id.clone()),
            carrier_first_response_ms,
            callback_due: t.callback_due_ms.is_some(),
            callback_done: t
                .timeline
                .iter()
                .any(|e| matches!(e.change, Change::CallbackRecorded { .. })),
        }
    }
}
