//! The incident stage's own metrics (incidents → **/metrics**): open tickets by tag and
//! severity, by role and by customer department, unclosed tickets by state, pending call-backs and follow-ups, held and settling
//! incidents, SLA breaches, pages, ticket events and time to acknowledge / resolve; the
//! carriers' clocks ([`CarrierMetrics`]).

use super::CarrierMetrics;
use faultline_incidents::followup::{FollowUpKind, FollowUpTask};
use faultline_incidents::inventory::TargetRole;
use faultline_incidents::ticket::SlaKind;
use faultline_incidents::{Change, Owner, Severity, Ticket, TicketState, TimelineEntry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

pub(super) use faultline_incidents::inventory::tag_label;

pub(super) fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::P1 => "P1",
        Severity::P2 => "P2",
        Severity::P3 => "P3",
        Severity::P4 => "P4",
    }
}

/// Every tag a ticket can have, untagged (waiting for triage) first.
pub(super) const TAGS: [Option<Owner>; 4] = [
    None,
    Some(Owner::Platform),
    Some(Owner::Carrier),
    Some(Owner::Customer),
];
const SEVERITIES: [Severity; 4] = [Severity::P1, Severity::P2, Severity::P3, Severity::P4];
const UNCLOSED: [TicketState; 3] = [
    TicketState::Open,
    TicketState::Acknowledged,
    TicketState::Resolved,
];

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];
type DepartmentLabels = [(&'static str, String); 1];
type Durations = Family<Labels1, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 1 s … ~36 h.
    Histogram::new(exponential_buckets(1.0, 2.0, 18))
}

/// The incident, ticket and follow-up metrics on `/metrics` (names `faultline_incident_…`,
/// `faultline_ticket_…` and `faultline_followups_…`, base units). Gauges are recomputed from the
/// unclosed tickets and pending follow-ups after every change; counters and histograms count what
/// the stage sees.
#[derive(Debug)]
pub struct IncidentMetrics {
    open: Family<Labels2, Gauge>,
    open_by_role: Family<Labels1, Gauge>,
    open_by_department: Family<DepartmentLabels, Gauge>,
    /// Departments with a series (the inventory's, and any a ticket named since).
    departments: Mutex<BTreeSet<String>>,
    unclosed: Family<Labels1, Gauge>,
    callbacks_pending: Gauge,
    followups_pending: Family<Labels1, Gauge>,
    pub(super) followups_done: Family<Labels1, Counter>,
    held: Gauge,
    settling: Gauge,
    sla_breaches: Family<Labels2, Counter>,
    evaluation_errors: Family<Labels1, Counter>,
    pub(super) pages: Family<Labels1, Counter>,
    pub(super) events: Family<Labels1, Counter>,
    time_to_acknowledge: Durations,
    time_to_resolve: Durations,
    carrier: CarrierMetrics,
}

/// Reasons counted in `faultline_incident_evaluation_errors_total`.
const ERROR_REASONS: [&str; 3] = ["out_of_order", "store", "rejected"];

impl IncidentMetrics {
    /// Creates the instruments (every known label set at zero) and registers them.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let carrier = CarrierMetrics::register(registry);
        let m = Arc::new(Self {
            open: Family::default(),
            open_by_role: Family::default(),
            open_by_department: Family::default(),
            departments: Mutex::new(BTreeSet::new()),
            unclosed: Family::default(),
            callbacks_pending: Gauge::default(),
            followups_pending: Family::default(),
            followups_done: Family::default(),
            held: Gauge::default(),
            settling: Gauge::default(),
            sla_breaches: Family::default(),
            evaluation_errors: Family::default(),
            pages: Family::default(),
            events: Family::default(),
            time_to_acknowledge: Family::new_with_constructor(duration_histogram),
            time_to_resolve: Family::new_with_constructor(duration_histogram),
            carrier,
        });
        for tag in TAGS.map(tag_label) {
            for severity in SEVERITIES.map(severity_label) {
                drop(
                    m.open
                        .get_or_create(&[("tag", tag), ("severity", severity)]),
                );
            }
            for kind in ["respond", "resolve"] {
                drop(
                    m.sla_breaches
                        .get_or_create(&[("kind", kind), ("tag", tag)]),
                );
            }
            drop(m.pages.get_or_create(&[("tag", tag)]));
            drop(m.time_to_acknowledge.get_or_create(&[("tag", tag)]));
            drop(m.time_to_resolve.get_or_create(&[("tag", tag)]));
        }
        for role in TargetRole::ALL {
            drop(m.open_by_role.get_or_create(&[("role", role.as_str())]));
        }
        for state in UNCLOSED.map(TicketState::as_str) {
            drop(m.unclosed.get_or_create(&[("state", state)]));
        }
        for reason in ERROR_REASONS {
            drop(m.evaluation_errors.get_or_create(&[("reason", reason)]));
        }
        for kind in FollowUpKind::LABELS {
            drop(m.followups_pending.get_or_create(&[("kind", kind)]));
            drop(m.followups_done.get_or_create(&[("kind", kind)]));
        }
        registry.register(
            "faultline_incident_open",
            "Active (open or acknowledged) tickets, by responsibility tag and severity",
            m.open.clone(),
        );
        registry.register(
            "faultline_incident_open_by_role",
            "Active tickets by the role of the target at fault (router, firewall, ips, waf, ups, vm …)",
            m.open_by_role.clone(),
        );
        registry.register(
            "faultline_incident_open_by_department",
            "Active tickets affecting each customer department (a ticket counts once per department)",
            m.open_by_department.clone(),
        );
        registry.register(
            "faultline_ticket_unclosed",
            "Tickets not yet closed, by state",
            m.unclosed.clone(),
        );
        registry.register(
            "faultline_ticket_callbacks_pending",
            "Resolved customer-affecting tickets whose call-back is not recorded yet",
            m.callbacks_pending.clone(),
        );
        registry.register(
            "faultline_followups_pending",
            "Customer follow-up tasks that came due and are not done yet, by kind (new_customer, vip)",
            m.followups_pending.clone(),
        );
        registry.register(
            "faultline_followups_done",
            "Customer follow-up tasks recorded as done, by kind (new_customer, vip)",
            m.followups_done.clone(),
        );
        registry.register(
            "faultline_incident_held",
            "Incidents held back by a maintenance window (no ticket, no page) until it ends",
            m.held.clone(),
        );
        registry.register(
            "faultline_incident_settling",
            "New root incidents waiting for the targets upstream of them to report before they \
             open a ticket (at most [incidents.settle] max_wait)",
            m.settling.clone(),
        );
        registry.register(
            "faultline_incident_sla_breaches",
            "SLA deadlines breached, by kind (respond, resolve) and tag",
            m.sla_breaches.clone(),
        );
        registry.register(
            "faultline_incident_evaluation_errors",
            "Samples or actions the incident stage could not use, by reason (out_of_order sample, store failure, action rejected by the ticket state machine)",
            m.evaluation_errors.clone(),
        );
        registry.register(
            "faultline_incident_pages",
            "Pages raised (ticket opened, re-opened, escalated or raised in severity, not held by maintenance), by tag",
            m.pages.clone(),
        );
        registry.register(
            "faultline_ticket_events",
            "Ticket timeline entries sent to the notifier stage, by change",
            m.events.clone(),
        );
        registry.register_with_unit(
            "faultline_ticket_time_to_acknowledge",
            "Time from a ticket's opening to its acknowledgement, by tag",
            Unit::Seconds,
            m.time_to_acknowledge.clone(),
        );
        registry.register_with_unit(
            "faultline_ticket_time_to_resolve",
            "Time from a ticket's opening to its resolution, by tag",
            Unit::Seconds,
            m.time_to_resolve.clone(),
        );
        m
    }

    pub(super) fn error(&self, reason: &'static str, count: u64) {
        if count > 0 {
            self.evaluation_errors
                .get_or_create(&[("reason", reason)])
                .inc_by(count);
        }
    }

    /// Counts what one new timeline entry means for SLA and duration statistics.
    pub(super) fn observe(&self, ticket: &Ticket, entry: &TimelineEntry) {
        self.carrier.observe(ticket, entry);
        let tag = tag_label(ticket.tag);
        let since_open = (entry.at_ms.saturating_sub(ticket.opened_at_ms)).max(0) as f64 / 1000.0;
        match &entry.change {
            Change::Acknowledged => self
                .time_to_acknowledge
                .get_or_create(&[("tag", tag)])
                .observe(since_open),
            Change::Resolved { .. } => self
                .time_to_resolve
                .get_or_create(&[("tag", tag)])
                .observe(since_open),
            Change::SlaBreached { kind } => {
                let kind = match kind {
                    SlaKind::Respond => "respond",
                    SlaKind::Resolve => "resolve",
                };
                self.sla_breaches
                    .get_or_create(&[("kind", kind), ("tag", tag)])
                    .inc();
            }
            _ => {}
        }
    }

    /// Gives each of `departments` (the inventory's) its series at zero.
    pub fn know_departments<'a>(&self, departments: impl IntoIterator<Item = &'a String>) {
        let mut known = self.departments.lock().unwrap_or_else(|p| p.into_inner());
        for department in departments {
            drop(
                self.open_by_department
                    .get_or_create(&[("department", department.clone())]),
            );
            known.insert(department.clone());
        }
    }

    /// Recomputes the gauges from the unclosed tickets and the pending follow-up tasks.
    pub(super) fn refresh(
        &self,
        tickets: &[Ticket],
        (held, settling): (usize, usize),
        followups: &BTreeMap<String, FollowUpTask>,
    ) {
        for kind in FollowUpKind::LABELS {
            let pending = followups
                .values()
                .filter(|t| t.followup.kind.label() == kind)
                .count();
            self.followups_pending
                .get_or_create(&[("kind", kind)])
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
        }
        let mut open: BTreeMap<(Option<Owner>, Severity), i64> = BTreeMap::new();
        let mut by_role: BTreeMap<TargetRole, i64> = BTreeMap::new();
        let mut states: BTreeMap<&'static str, i64> = BTreeMap::new();
        let mut by_department: BTreeMap<&str, i64> = BTreeMap::new();
        let mut callbacks = 0;
        for t in tickets {
            if t.state.is_active() {
                let affected: BTreeSet<&str> =
                    t.customers.iter().map(|c| c.department.as_str()).collect();
                for department in affected {
                    *by_department.entry(department).or_default() += 1;
                }
                *open.entry((t.tag, t.severity)).or_default() += 1;
                let role = t.evidence.as_ref().and_then(|e| e.role);
                *by_role
                    .entry(role.unwrap_or(TargetRole::Other))
                    .or_default() += 1;
            }
            *states.entry(t.state.as_str()).or_default() += 1;
            if t.state == TicketState::Resolved && t.callback_due_ms.is_some() {
                callbacks += 1;
            }
        }
        for tag in TAGS {
            for severity in SEVERITIES {
                self.open
                    .get_or_create(&[
                        ("tag", tag_label(tag)),
                        ("severity", severity_label(severity)),
                    ])
                    .set(open.get(&(tag, severity)).copied().unwrap_or(0));
            }
        }
        for role in TargetRole::ALL {
            self.open_by_role
                .get_or_create(&[("role", role.as_str())])
                .set(by_role.get(&role).copied().unwrap_or(0));
        }
        let mut known = self.departments.lock().unwrap_or_else(|p| p.into_inner());
        known.extend(by_department.keys().map(|d| d.to_string()));
        for department in known.iter() {
            self.open_by_department
                .get_or_create(&[("department", department.clone())])
                .set(by_department.get(department.as_str()).copied().unwrap_or(0));
        }
        drop(known);
        for state in UNCLOSED.map(TicketState::as_str) {
            self.unclosed
                .get_or_create(&[("state", state)])
                .set(states.get(state).copied().unwrap_or(0));
        }
        self.callbacks_pending.set(callbacks);
        self.held.set(i64::try_from(held).unwrap_or(i64::MAX));
        self.settling
            .set(i64::try_from(settling).unwrap_or(i64::MAX));
    }
}
