//! The figures of a management report (rows → **figures** → HTML/CSV): pure aggregation of
//! [`ReportTicket`]s and follow-up tasks of one period, optionally one department, into a
//! [`Report`]. Rows are added one at a time ([`Builder`]), so a period of any size is aggregated
//! in bounded memory.
//!
//! Definitions (every figure is over the tickets *in scope*: opened within the period
//! `[start, end)` and, with a department, affecting it):
//! - **MTTA**: mean of `acknowledged − opened` over tickets in scope that were acknowledged (at
//!   any time up to the report; after a re-open the first acknowledgement since it).
//! - **MTTR**: mean of `resolved − opened` over tickets in scope that were resolved (the last
//!   resolution).
//! - **SLA compliance**: the share of tickets in scope with neither the respond-by nor the
//!   resolve-by deadline breached. A ticket still open whose deadlines have not passed counts as
//!   compliant (so far).
//! - **Longest incidents**: the [`LONGEST`] tickets in scope with the longest fault duration,
//!   `resolved − started` (fault start), or `as of − started` while unresolved ("ongoing").
//! - **Carrier circuits**: carrier-tagged tickets about an inventory circuit (the circuit itself
//!   or our port on it): count, outage time (sum of their durations as above) and mean time from
//!   the trouble report to the carrier's first response
//!   ([`ReportTicket::carrier_first_response_ms`]).
//! - **Security devices**: tickets in scope whose target's role is a security device (firewall,
//!   IPS, WAF), by role.
//! - **Follow-ups**: call-backs of tickets in scope (due when resolved with customers affected,
//!   done when recorded), and follow-up tasks *due* within the period (for the department), by
//!   kind; done / due.

use crate::row::ReportTicket;
use faultline_incidents::followup::{FollowUpKind, FollowUpTask, TaskState};
use faultline_incidents::inventory::TargetRole;
use faultline_incidents::ticket::Channel;
use faultline_incidents::{Millis, Owner, Severity};
use std::collections::BTreeMap;
use std::time::Duration;

/// How many of the longest incidents a report lists.
pub const LONGEST: usize = 10;

/// The label of a ticket without a responsibility tag (still in triage).
pub const UNTAGGED: &str = "untagged";

/// Counts and times of a set of tickets.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    /// Tickets in scope.
    pub tickets: u64,
    /// By responsibility tag (`platform`, `carrier`, `customer`, [`UNTAGGED`]); every tag listed.
    pub by_tag: BTreeMap<String, u64>,
    /// By severity (`P1`..`P4`); every severity listed.
    pub by_severity: BTreeMap<String, u64>,
    /// By channel (`monitoring`, `phone`, ...); every channel listed.
    pub by_channel: BTreeMap<String, u64>,
    /// Tickets acknowledged.
    pub acknowledged: u64,
    /// Sum of their times to acknowledge (ms).
    pub acknowledge_sum_ms: i64,
    /// Tickets resolved.
    pub resolved: u64,
    /// Sum of their times to resolve (ms).
    pub resolve_sum_ms: i64,
    /// Tickets with the respond-by deadline breached.
    pub respond_breached: u64,
    /// Tickets with the resolve-by deadline breached.
    pub resolve_breached: u64,
    /// Tickets with neither deadline breached.
    pub sla_met: u64,
}

impl Default for Totals {
    fn default() -> Self {
        let zeros = |labels: &mut dyn Iterator<Item = String>| labels.map(|l| (l, 0)).collect();
        Self {
            tickets: 0,
            by_tag: zeros(
                &mut [Owner::Platform, Owner::Carrier, Owner::Customer]
                    .iter()
                    .map(ToString::to_string)
                    .chain([UNTAGGED.to_string()]),
            ),
            by_severity: zeros(
                &mut [Severity::P1, Severity::P2, Severity::P3, Severity::P4]
                    .iter()
                    .map(ToString::to_string),
            ),
            by_channel: zeros(&mut Channel::ALL.iter().map(|c| c.as_str().to_string())),
            acknowledged: 0,
            acknowledge_sum_ms: 0,
            resolved: 0,
            resolve_sum_ms: 0,
            respond_breached: 0,
            resolve_breached: 0,
            sla_met: 0,
        }
    }
}

/// `sum / count`, `None` for no values.
fn mean(sum: i64, count: u64) -> Option<i64> {
    i64::try_from(count)
        .ok()
        .filter(|c| *c > 0)
        .map(|c| sum / c)
}

impl Totals {
    fn add(&mut self, t: &ReportTicket) {
        self.tickets += 1;
        let tag = t.tag.map_or(UNTAGGED.to_string(), |tag| tag.to_string());
        *self.by_tag.entry(tag).or_default() += 1;
        *self.by_severity.entry(t.severity.to_string()).or_default() += 1;
        *self
            .by_channel
            .entry(t.channel.as_str().to_string())
            .or_default() += 1;
        if let Some(at) = t.acknowledged_at_ms {
            self.acknowledged += 1;
            self.acknowledge_sum_ms += (at - t.opened_at_ms).max(0);
        }
        if let Some(at) = t.resolved_at_ms {
            self.resolved += 1;
            self.resolve_sum_ms += (at - t.opened_at_ms).max(0);
        }
        self.respond_breached += u64::from(t.respond_breached);
        self.resolve_breached += u64::from(t.resolve_breached);
        self.sla_met += u64::from(!t.respond_breached && !t.resolve_breached);
    }

    /// Mean time to acknowledge (ms); `None` when nothing was acknowledged.
    pub fn mtta_ms(&self) -> Option<i64> {
        mean(self.acknowledge_sum_ms, self.acknowledged)
    }

    /// Mean time to resolve (ms); `None` when nothing was resolved.
    pub fn mttr_ms(&self) -> Option<i64> {
        mean(self.resolve_sum_ms, self.resolved)
    }

    /// SLA compliance in percent; `None` without tickets.
    pub fn sla_percent(&self) -> Option<f64> {
        (self.tickets > 0).then(|| self.sla_met as f64 * 100.0 / self.tickets as f64)
    }
}

/// One of the longest incidents.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Ticket id.
    pub id: u64,
    /// Summary.
    pub summary: String,
    /// Target.
    pub target: String,
    /// Responsibility tag label.
    pub tag: String,
    /// Severity.
    pub severity: Severity,
    /// Fault duration (ms).
    pub duration_ms: Millis,
    /// Not resolved when the report was made.
    pub ongoing: bool,
}

/// The figures of one carrier circuit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CircuitFigures {
    /// Carrier tickets on it.
    pub tickets: u64,
    /// Sum of their fault durations (ms).
    pub outage_ms: Millis,
    /// Tickets with a first response.
    pub responses: u64,
    /// Sum of the first response times (ms).
    pub response_sum_ms: Millis,
}

impl CircuitFigures {
    /// Mean first response time (ms); `None` without responses.
    pub fn mean_response_ms(&self) -> Option<Millis> {
        mean(self.response_sum_ms, self.responses)
    }
}

/// A kind of follow-up, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FollowUpLine {
    /// The call-back after a ticket with customers was resolved.
    Callback,
    /// A new-customer visit this long after the department's first target (`3 days`).
    NewCustomer(Duration),
    /// A periodic VIP visit.
    Vip,
}

impl FollowUpLine {
    /// Label in the HTML and CSV: `callback`, `new_customer_3days`, `vip`.
    pub fn label(&self) -> String {
        match self {
            FollowUpLine::Callback => "callback".into(),
            FollowUpLine::NewCustomer(after) => format!(
                "new_customer_{}",
                humantime_serde::re::humantime::format_duration(*after)
                    .to_string()
                    .replace(' ', "")
            ),
            FollowUpLine::Vip => "vip".into(),
        }
    }
}

/// Follow-ups of one kind due in the period, and how many were done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Completion {
    /// Due within the period.
    pub due: u64,
    /// Of those, done.
    pub done: u64,
}

impl Completion {
    /// Done in percent; `None` when nothing was due.
    pub fn percent(&self) -> Option<f64> {
        (self.due > 0).then(|| self.done as f64 * 100.0 / self.due as f64)
    }
}

/// A capacity pool's state at the report's end ([`crate::capacity::rows`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityRow {
    /// Pool name.
    pub pool: String,
    /// Used / capacity, 0..1.
    pub ratio: f64,
    /// Days until full at the current trend (`None`: not growing).
    pub days_to_full: Option<f64>,
}

/// A management report's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The period (`2026-11`, `2026-W48`).
    pub period: String,
    /// Period start (inclusive, ms).
    pub start_ms: Millis,
    /// Period end (exclusive, ms).
    pub end_ms: Millis,
    /// The one department reported on; `None`: all.
    pub department: Option<String>,
    /// When the report was made; unresolved incidents last until then.
    pub as_of_ms: Millis,
    /// Every ticket in scope.
    pub overall: Totals,
    /// Per affected department (a ticket affecting two counts in both).
    pub departments: BTreeMap<String, Totals>,
    /// The longest incidents, longest first (at most [`LONGEST`]).
    pub longest: Vec<Incident>,
    /// Carrier circuits by inventory id.
    pub circuits: BTreeMap<String, CircuitFigures>,
    /// Security-device tickets by role (`firewall`, `ips`, `waf`; every one listed).
    pub security: BTreeMap<String, u64>,
    /// Follow-up completion by kind.
    pub followups: BTreeMap<FollowUpLine, Completion>,
    /// Capacity pools (empty: none declared).
    pub capacity: Vec<CapacityRow>,
}

/// Builds a [`Report`] from rows added one at a time.
#[derive(Debug)]
pub struct Builder {
    report: Report,
}

impl Builder {
    /// An empty report of `[start_ms, end_ms)` labelled `period`, for `department` or all,
    /// made at `as_of_ms`.
    pub fn new(period: &crate::Period, department: Option<&str>, as_of_ms: Millis) -> Self {
        let security = TargetRole::ALL
            .iter()
            .filter(|r| r.is_security())
            .map(|r| (r.as_str().to_string(), 0))
            .collect();
        Self {
            report: Report {
                period: period.label.clone(),
                start_ms: period.start_ms,
                end_ms: period.end_ms,
                department: department.map(str::to_string),
                as_of_ms,
                overall: Totals::default(),
                departments: BTreeMap::new(),
                longest: Vec::new(),
                circuits: BTreeMap::new(),
                security,
                followups: BTreeMap::new(),
                capacity: Vec::new(),
            },
        }
    }

    fn in_period(&self, at_ms: Millis) -> bool {
        (self.report.start_ms..self.report.end_ms).contains(&at_ms)
    }

    fn for_department(&self, department: &str) -> bool {
        self.report
            .department
            .as_deref()
            .is_none_or(|d| d == department)
    }

    /// Counts `t` when it is in scope (opened within the period, affecting the department).
    pub fn add_ticket(&mut self, t: &ReportTicket) {
        if !self.in_period(t.opened_at_ms)
            || (self.report.department.is_some()
                && !t.departments.iter().any(|d| self.for_department(d)))
        {
            return;
        }
        let r = &mut self.report;
        r.overall.add(t);
        for department in &t.departments {
            if r.department.as_deref().is_none_or(|d| d == department) {
                r.departments.entry(department.clone()).or_default().add(t);
            }
        }
        let duration_ms = (t.resolved_at_ms.unwrap_or(r.as_of_ms) - t.started_at_ms).max(0);
        let tag = t.tag.map_or(UNTAGGED.to_string(), |tag| tag.to_string());
        r.longest.push(Incident {
            id: t.id,
            summary: t.summary.clone(),
            target: t.target.clone(),
            tag,
            severity: t.severity,
            duration_ms,
            ongoing: t.resolved_at_ms.is_none(),
        });
        r.longest
            .sort_by(|a, b| b.duration_ms.cmp(&a.duration_ms).then(a.id.cmp(&b.id)));
        r.longest.truncate(LONGEST);
        if let (Some(circuit), Some(Owner::Carrier)) = (&t.circuit, t.tag) {
            let c = r.circuits.entry(circuit.clone()).or_default();
            c.tickets += 1;
            c.outage_ms += duration_ms;
            if let Some(response) = t.carrier_first_response_ms {
                c.responses += 1;
                c.response_sum_ms += response;
            }
        }
        if let Some(role) = t.role.filter(|r| r.is_security()) {
            *r.security.entry(role.as_str().to_string()).or_default() += 1;
        }
        if t.callback_due {
            let c = r.followups.entry(FollowUpLine::Callback).or_default();
            c.due += 1;
            c.done += u64::from(t.callback_done);
        }
    }

    /// Counts `task` when it came due within the period (for the department).
    pub fn add_followup(&mut self, task: &FollowUpTask) {
        let f = &task.followup;
        if !self.in_period(f.due_at_ms) || !self.for_department(&f.department) {
            return;
        }
        let line = match f.kind {
            FollowUpKind::NewCustomer { after } => FollowUpLine::NewCustomer(after),
            FollowUpKind::Vip { .. } => FollowUpLine::Vip,
        };
        let c = self.report.followups.entry(line).or_default();
        c.due += 1;
        c.done += u64::from(task.state == TaskState::Done);
    }

    /// The report, with the capacity pools' state.
    pub fn finish(mut self, capacity: Vec<CapacityRow>) -> Report {
        self.report.capacity = capacity;
        self.report
    }
}
