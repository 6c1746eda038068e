//! One ticket as the report sees it (store → **report**): the few facts the figures need, taken
//! from a stored [`Ticket`] and the inventory in one place ([`ReportTicket::from_ticket`]), so the
//! aggregation does not follow every change to the ticket model.

use faultline_incidents::carrier::{CarrierClock, circuit_of};
use faultline_incidents::inventory::TargetRole;
use faultline_incidents::ticket::{Change, Channel, Ticket};
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
    /// The carrier circuit (inventory `[[circuits]]` id) the ticket is about: its target, or the
    /// circuit its target (our port) depends on ([`circuit_of`]).
    pub circuit: Option<String>,
    /// Time from the trouble report to the carrier's first response (ms), when the ticket was
    /// reported to the carrier and it answered ([`CarrierClock`]).
    pub carrier_first_response_ms: Option<Millis>,
    /// A call-back was due after resolution.
    pub callback_due: bool,
    /// The call-back was recorded as made.
    pub callback_done: bool,
}

impl ReportTicket {
    /// The report row of a stored ticket, with its target looked up in `inventory`.
    pub fn from_ticket(t: &Ticket, inventory: &Inventory) -> Self {
        let tag = t.tag;
        let mut departments: Vec<String> = Vec::new();
        for customer in &t.customers {
            if !departments.contains(&customer.department) {
                departments.push(customer.department.clone());
            }
        }
        let clock = CarrierClock::of(t);
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
            circuit: circuit_of(t, inventory).map(|c| c.id.clone()),
            carrier_first_response_ms: clock.and_then(|c| c.response_ms()),
            callback_due: t.callback_due_ms.is_some(),
            callback_done: t
                .timeline
                .iter()
                .any(|e| matches!(e.change, Change::CallbackRecorded { .. })),
        }
    }
}
