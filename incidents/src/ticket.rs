//! The ticket lifecycle as a pure state machine (rules → **incidents** → notifications).
//!
//! One fault is one [`Ticket`] (fingerprint = rule + target). The collector opens it with
//! [`Ticket::open`], changes it only through [`Ticket::apply`] and asks [`Ticket::due_timers`] /
//! [`Ticket::next_due_ms`] what its timers need; a due [`Timer`] is applied back as
//! [`Command::Fire`]. Every change returns the [`TimelineEntry`]s it appended (who, when, what): the
//! notifiers act on them and the store appends them; nothing is ever removed.
//!
//! ```text
//! open ──ack──► acknowledged ──► resolved ──call-back recorded──► closed
//!   │   (condition clears, or by hand)  ▲
//!   └───────────────────────────────────┘  re-open within the window
//! ```
//!
//! All timer deadlines are fields of the ticket, so a restarted collector recomputes exactly what is
//! due from the stored tickets.
//!
//! One fault, one ticket: an incident of the same fault ([`SymptomLink::same_fault`]: another
//! rule over the ticket's metric, or another sensor of the room) joins the ticket like a symptom.
//! When its rule is more severe the ticket's severity is raised ([`Change::SeverityRaised`],
//! which pages again: the fault got worse) and its SLA deadlines tighten to the new severity's,
//! counted from the raise but never later than they were (a raise never buys time). Severity is
//! never lowered by itself. While an incident of the same fault still fires the ticket stays
//! open even if its own condition cleared ([`Ticket::condition_cleared_at_ms`]); it resolves when
//! the last of them clears. One that fires again within the re-open window of a resolved ticket
//! re-opens it.
//!
//! Escalation: an unacknowledged ticket escalates to on-call level `n` at its last (re-)open plus
//! the `after` of level `n + 1` of its tag's escalation policy ([`TicketPolicy::escalation`], the
//! offsets the collector derives from the on-call file), and never after the policy's last level;
//! a tag without a policy escalates every `ack_timeout` up to `max_escalation_level`.

use crate::attribution::Evidence;
use crate::inventory::{Contact, Inventory, Owner};
use crate::rules::Severity;
use crate::{Millis, duration_ms};
use faultline_wire::config_file::{ConfigError, ConfigSource};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;

/// The actor recorded for changes made by Faultline itself.
pub const SYSTEM: &str = "faultline";

/// Respond-by and resolve-by for one severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// Time from opening to acknowledgement.
    #[serde(with = "humantime_serde")]
    pub respond: Duration,
    /// Time from opening to resolution.
    #[serde(with = "humantime_serde")]
    pub resolve: Duration,
}

/// Ticket timers, from the collector's config. Every timer goes down to seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicketPolicy {
    /// SLA for P1.
    pub p1: Sla,
    /// SLA for P2.
    pub p2: Sla,
    /// SLA for P3.
    pub p3: Sla,
    /// SLA for P4.
    pub p4: Sla,
    /// Unacknowledged this long → escalate one on-call level (and again after each further
    /// period). Only for tickets whose tag has no on-call escalation policy
    /// (`[incidents.escalation]`): those escalate on the policy's level times.
    #[serde(with = "humantime_serde")]
    pub ack_timeout: Duration,
    /// Highest escalation level with `ack_timeout` (level 0 is the primary on-call).
    pub max_escalation_level: u32,
    /// Progress update to the customer contacts this often while a customer-affecting ticket is open.
    #[serde(with = "humantime_serde")]
    pub progress_interval: Duration,
    /// A fault firing again within this time after resolution re-opens the same ticket.
    #[serde(with = "humantime_serde")]
    pub reopen_window: Duration,
    /// Call-back to the customer due this long after resolution.
    #[serde(with = "humantime_serde")]
    pub callback_after: Duration,
    /// Escalation times by tag, not read from the file: every level's `after` of the escalation
    /// policy `[incidents.escalation]` names for the tag (level 1, paged at the (re-)open, first),
    /// derived once when the on-call file is loaded. A tag without an entry uses `ack_timeout`.
    #[serde(skip)]
    pub escalation: BTreeMap<Owner, Vec<Duration>>,
}

const MINUTE: u64 = 60;

impl Default for TicketPolicy {
    fn default() -> Self {
        let sla = |respond_min: u64, resolve_min: u64| Sla {
            respond: Duration::from_secs(respond_min * MINUTE),
            resolve: Duration::from_secs(resolve_min * MINUTE),
        };
        Self {
            p1: sla(15, 4 * 60),
            p2: sla(30, 8 * 60),
            p3: sla(2 * 60, 24 * 60),
            p4: sla(8 * 60, 72 * 60),
            ack_timeout: Duration::from_secs(10 * MINUTE),
            max_escalation_level: 3,
            progress_interval: Duration::from_secs(30 * MINUTE),
            reopen_window: Duration::from_secs(60 * MINUTE),
            callback_after: Duration::from_secs(24 * 60 * MINUTE),
            escalation: BTreeMap::new(),
        }
    }
}

impl TicketPolicy {
    /// Checks the policy after parsing; `prefix` is where it sits in the config file (`tickets`).
    /// Zero periods are rejected: a zero progress interval or ack timeout would make a timer due
    /// again the moment it fired.
    pub fn validate(&self, source: &ConfigSource, prefix: &str) -> Result<(), ConfigError> {
        let field = |name: &str| {
            if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            }
        };
        let periods = [
            ("ack_timeout", self.ack_timeout),
            ("progress_interval", self.progress_interval),
        ];
        for (name, period) in periods {
            if period.is_zero() {
                return Err(source.error(&field(name), "must be longer than zero"));
            }
        }
        for (name, sla) in [
            ("p1", self.p1),
            ("p2", self.p2),
            ("p3", self.p3),
            ("p4", self.p4),
        ] {
            if sla.respond.is_zero() || sla.resolve < sla.respond {
                return Err(source.error(
                    &field(name),
                    "respond must be longer than zero and resolve at least as long as respond",
                ));
            }
        }
        Ok(())
    }

    /// How long after its last (re-)open an unacknowledged ticket tagged `tag` escalates to
    /// on-call `level` (0 is paged at the (re-)open): the `after` of level `level + 1` of the tag's
    /// escalation policy, else `level` ack timeouts up to `max_escalation_level`. `None`: there is
    /// no such level, so escalation ends before it.
    pub fn escalation_offset(&self, tag: Owner, level: u32) -> Option<Duration> {
        match self.escalation.get(&tag) {
            Some(levels) => levels.get(usize::try_from(level).ok()?).copied(),
            None => {
                (level <= self.max_escalation_level).then(|| self.ack_timeout.saturating_mul(level))
            }
        }
    }

    /// The SLA of a severity.
    pub fn sla(&self, severity: Severity) -> Sla {
        match severity {
            Severity::P1 => self.p1,
            Severity::P2 => self.p2,
            Severity::P3 => self.p3,
            Severity::P4 => self.p4,
        }
    }
}

/// Where a ticket is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    /// Not yet acknowledged.
    Open,
    /// An engineer is on it.
    Acknowledged,
    /// The fault is gone; a call-back may be due.
    Resolved,
    /// Done.
    Closed,
}

impl TicketState {
    /// Open or acknowledged.
    pub fn is_active(self) -> bool {
        matches!(self, TicketState::Open | TicketState::Acknowledged)
    }

    /// Name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::Open => "open",
            TicketState::Acknowledged => "acknowledged",
            TicketState::Resolved => "resolved",
            TicketState::Closed => "closed",
        }
    }
}

/// A customer department affected by a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Department id.
    pub department: String,
    /// VIP at the time it was affected.
    pub vip: bool,
    /// Who gets progress updates and the call-back.
    pub contacts: Vec<Contact>,
}

impl Customer {
    /// The customer behind `target`, if it is a customer target.
    pub fn of_target(inventory: &Inventory, target: &str) -> Option<Self> {
        inventory.department_of(target).map(|d| Self {
            department: d.id.clone(),
            vip: inventory.is_vip(&d.id),
            contacts: d.contacts.clone(),
        })
    }
}

/// Another incident that joined this ticket as a symptom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symptom {
    /// Its rule.
    pub rule: String,
    /// Its target.
    pub target: String,
    /// When it joined.
    pub joined_at_ms: Millis,
    /// When it cleared on its own.
    pub cleared_at_ms: Option<Millis>,
    /// Its rule's severity when it is the ticket's own fault seen again
    /// ([`SymptomLink::same_fault`]); none for a symptom of it (absent in older stores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_fault: Option<Severity>,
}

/// An incident joining a ticket whose fingerprint it is not ([`Command::LinkSymptom`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SymptomLink {
    /// Its rule.
    pub rule: String,
    /// Its target.
    pub target: String,
    /// Its customer, if it is a customer target.
    pub customer: Option<Customer>,
    /// Why it belongs to this ticket (attribution's one line), kept on the timeline.
    pub reason: String,
    /// What that was based on (rule, value, times, dependency chain), kept on the timeline.
    pub evidence: Option<Evidence>,
    /// Set when it is the ticket's own fault seen by another rule or target (same metric, same
    /// correlation scope): its rule's severity, which raises the ticket's when more severe. A
    /// ticket resolved within the re-open window re-opens for it. `None`: a symptom of the
    /// fault, which never changes severity or state.
    pub same_fault: Option<Severity>,
}

/// Which SLA deadline was breached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaKind {
    /// Not acknowledged by respond-by.
    Respond,
    /// Not resolved by resolve-by.
    Resolve,
}

/// A timer that can come due on a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timer {
    /// Respond-by passed while still open.
    RespondBreach,
    /// Resolve-by passed while still active.
    ResolveBreach,
    /// Unacknowledged for another ack timeout.
    Escalate,
    /// Progress interval passed with nothing posted.
    Progress,
    /// The call-back after resolution is due.
    Callback,
}

/// What happened; one per timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// Ticket opened (pages the on-call level 0).
    Opened {
        /// Severity.
        severity: Severity,
        /// Responsibility tag.
        tag: Owner,
        /// Why that tag.
        reason: String,
    },
    /// Acknowledged.
    Acknowledged,
    /// First assignee set.
    Assigned {
        /// New assignee.
        to: String,
    },
    /// Assignee changed explicitly.
    HandedOver {
        /// Previous assignee.
        from: String,
        /// New assignee.
        to: String,
        /// Hand-over note.
        note: String,
    },
    /// Internal comment.
    Commented {
        /// Text.
        text: String,
    },
    /// A progress update posted by an engineer, sent to the customer contacts.
    ProgressPosted {
        /// Text.
        text: String,
        /// Recipients.
        contacts: Vec<Contact>,
    },
    /// The progress interval passed with nothing posted: an automatic update to the customer
    /// contacts and a reminder to the assignee.
    ProgressOverdue {
        /// Recipients of the automatic update.
        contacts: Vec<Contact>,
        /// Who is reminded (none: the on-call).
        assignee: Option<String>,
    },
    /// Responsibility re-tagged.
    Retagged {
        /// Old tag.
        from: Owner,
        /// New tag.
        to: Owner,
        /// Why.
        reason: String,
    },
    /// Resolved.
    Resolved {
        /// True when the condition cleared, false when resolved by hand.
        automatic: bool,
        /// Note.
        note: String,
    },
    /// The ticket's own condition cleared without resolving it: it was already resolved by hand,
    /// or the same fault still fires on another rule or target of the ticket.
    ConditionCleared,
    /// Re-opened by the fault firing again within the re-open window.
    Reopened {
        /// How many times it has been re-opened.
        count: u32,
    },
    /// Another incident joined as a symptom, or as the same fault (no page by itself).
    SymptomLinked {
        /// Its rule.
        rule: String,
        /// Its target.
        target: String,
        /// Why it joined this ticket (empty in older stores).
        #[serde(default)]
        reason: String,
        /// What that was based on: rule, value, times, dependency chain (absent in older stores).
        #[serde(default)]
        evidence: Option<Box<Evidence>>,
    },
    /// An incident of the same fault with a more severe rule joined: the ticket's severity rose
    /// (pages again, like an opening: the fault got worse).
    SeverityRaised {
        /// Severity before.
        from: Severity,
        /// Severity now.
        to: Severity,
        /// The rule that raised it.
        rule: String,
        /// Where it fired.
        target: String,
    },
    /// A symptom cleared on its own.
    SymptomCleared {
        /// Its rule.
        rule: String,
        /// Its target.
        target: String,
    },
    /// An SLA deadline was breached.
    SlaBreached {
        /// Which one.
        kind: SlaKind,
    },
    /// Escalated to the next on-call level.
    Escalated {
        /// The new level.
        level: u32,
    },
    /// The call-back to the customer is due.
    CallbackDue {
        /// Whom to call.
        contacts: Vec<Contact>,
    },
    /// The call-back was made.
    CallbackRecorded {
        /// What the customer said.
        note: String,
    },
    /// Closed.
    Closed {
        /// Note.
        note: String,
    },
}

/// One line of a ticket's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When.
    pub at_ms: Millis,
    /// Who (an engineer, or [`SYSTEM`]).
    pub who: String,
    /// What.
    pub change: Change,
}

/// What the collector knows when it opens a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTicket {
    /// Rule name (fingerprint part).
    pub rule: String,
    /// Target id (fingerprint part).
    pub target: String,
    /// One-line summary.
    pub summary: String,
    /// Description.
    pub description: String,
    /// Severity.
    pub severity: Severity,
    /// Responsibility tag.
    pub tag: Owner,
    /// One-line reason for the tag.
    pub reason: String,
    /// Attribution evidence (none for a ticket created by hand).
    pub evidence: Option<Evidence>,
    /// Affected customers.
    pub customers: Vec<Customer>,
    /// When the fault started (original time, possibly before `now`).
    pub started_at_ms: Millis,
    /// Who opens it ([`SYSTEM`] or the engineer entering a customer-reported fault).
    pub opened_by: String,
}

/// One fault's ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// Id.
    pub id: u64,
    /// Rule name (fingerprint part).
    pub rule: String,
    /// Target id (fingerprint part).
    pub target: String,
    /// Summary.
    pub summary: String,
    /// Description.
    pub description: String,
    /// Severity.
    pub severity: Severity,
    /// Lifecycle state.
    pub state: TicketState,
    /// Responsibility tag.
    pub tag: Owner,
    /// Reason for the tag.
    pub reason: String,
    /// Attribution evidence.
    pub evidence: Option<Evidence>,
    /// Affected customers (customer-affecting when not empty).
    pub customers: Vec<Customer>,
    /// Current assignee; changes only by explicit hand-over.
    pub assignee: Option<String>,
    /// Fault start (original time).
    pub started_at_ms: Millis,
    /// Ticket creation.
    pub opened_at_ms: Millis,
    /// First acknowledgement since the last (re-)open.
    pub acknowledged_at_ms: Option<Millis>,
    /// Last resolution.
    pub resolved_at_ms: Option<Millis>,
    /// Closing.
    pub closed_at_ms: Option<Millis>,
    /// Acknowledge by.
    pub respond_by_ms: Millis,
    /// Resolve by.
    pub resolve_by_ms: Millis,
    /// Respond-by breach recorded.
    pub respond_breached: bool,
    /// Resolve-by breach recorded.
    pub resolve_breached: bool,
    /// Current on-call escalation level (0 = primary).
    pub escalation_level: u32,
    /// Next escalation, while unacknowledged.
    pub escalate_at_ms: Option<Millis>,
    /// Next progress update, while customer-affecting and active.
    pub progress_due_ms: Option<Millis>,
    /// Call-back due time, once resolved with customers affected.
    pub callback_due_ms: Option<Millis>,
    /// Call-back due already announced.
    pub callback_announced: bool,
    /// Times re-opened.
    pub reopen_count: u32,
    /// When the ticket's own condition cleared while an incident of the same fault still fired,
    /// keeping it open; `None` while it holds (or once resolved).
    #[serde(default)]
    pub condition_cleared_at_ms: Option<Millis>,
    /// Incidents that joined as symptoms.
    pub symptoms: Vec<Symptom>,
    /// Everything that happened, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// A change the ticket cannot take.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TicketError {
    /// The command is not valid in the ticket's state.
    #[error("ticket #{id} is {state}: cannot {action}")]
    InvalidTransition {
        /// Ticket id.
        id: u64,
        /// Its state.
        state: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// A re-open came after the re-open window; open a new ticket instead.
    #[error(
        "ticket #{id} was resolved at {resolved_at_ms}, outside the re-open window: open a new ticket"
    )]
    ReopenWindowPassed {
        /// Ticket id.
        id: u64,
        /// When it was resolved.
        resolved_at_ms: Millis,
    },
    /// Assign on an assigned ticket.
    #[error("ticket #{id} is assigned to {assignee}: use an explicit hand-over")]
    AlreadyAssigned {
        /// Ticket id.
        id: u64,
        /// Current assignee.
        assignee: String,
    },
    /// A command's argument is unusable.
    #[error("ticket #{id}: {problem}")]
    BadArgument {
        /// Ticket id.
        id: u64,
        /// What is wrong.
        problem: String,
    },
    /// A timer fired that is not due.
    #[error("ticket #{id}: timer {timer:?} is not due")]
    NotDue {
        /// Ticket id.
        id: u64,
        /// The timer.
        timer: Timer,
    },
}

/// A change requested of a ticket.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Acknowledge; the acknowledger becomes assignee if there is none.
    Acknowledge {
        /// Engineer.
        by: String,
    },
    /// Set the first assignee.
    Assign {
        /// Assignee.
        to: String,
        /// Who assigns.
        by: String,
    },
    /// Hand the ticket over to another engineer.
    HandOver {
        /// New assignee.
        to: String,
        /// Who hands over.
        by: String,
        /// Hand-over note.
        note: String,
    },
    /// Internal comment.
    Comment {
        /// Author.
        by: String,
        /// Text.
        text: String,
    },
    /// Progress update for the customer contacts.
    PostProgress {
        /// Author.
        by: String,
        /// Text.
        text: String,
    },
    /// Change the responsibility tag.
    Retag {
        /// Engineer.
        by: String,
        /// New tag.
        tag: Owner,
        /// Why (required).
        reason: String,
    },
    /// Resolve by hand.
    Resolve {
        /// Engineer.
        by: String,
        /// Note.
        note: String,
    },
    /// The rule's condition cleared: resolves the ticket, unless an incident of the same fault
    /// still fires (then it stays open until that clears too).
    ConditionCleared,
    /// The rule fired again for this fingerprint: re-opens a ticket resolved within the re-open
    /// window, changes nothing on an active one (a restarted evaluator re-fires) but that its
    /// condition holds again, and is an error on a closed one or after the window (open a new
    /// ticket then).
    Refire,
    /// Another incident joins as a symptom or as the same fault.
    LinkSymptom(Box<SymptomLink>),
    /// A symptom cleared on its own.
    SymptomCleared {
        /// Its rule.
        rule: String,
        /// Its target.
        target: String,
    },
    /// Record the call-back and close.
    RecordCallback {
        /// Engineer.
        by: String,
        /// What the customer said.
        note: String,
    },
    /// Close a resolved ticket that needs no call-back.
    Close {
        /// Engineer.
        by: String,
        /// Note.
        note: String,
    },
    /// A due timer.
    Fire(Timer),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Acknowledge { .. } => "acknowledge",
            Command::Assign { .. } => "assign",
            Command::HandOver { .. } => "hand over",
            Command::Comment { .. } => "comment",
            Command::PostProgress { .. } => "post progress",
            Command::Retag { .. } => "re-tag",
            Command::Resolve { .. } | Command::ConditionCleared => "resolve",
            Command::Refire => "re-open",
            Command::LinkSymptom { .. } => "link a symptom",
            Command::SymptomCleared { .. } => "clear a symptom",
            Command::RecordCallback { .. } => "record the call-back",
            Command::Close { .. } => "close (a call-back is required)",
            Command::Fire(_) => "fire a timer",
        }
    }
}

impl Ticket {
    /// Opens a ticket at `now`.
    pub fn open(
        id: u64,
        new: NewTicket,
        policy: &TicketPolicy,
        now: Millis,
    ) -> (Ticket, Vec<TimelineEntry>) {
        let sla = policy.sla(new.severity);
        let mut ticket = Ticket {
            id,
            rule: new.rule,
            target: new.target,
            summary: new.summary,
            description: new.description,
            severity: new.severity,
            state: TicketState::Open,
            tag: new.tag,
            reason: new.reason.clone(),
            evidence: new.evidence,
            customers: Vec::new(),
            assignee: None,
            started_at_ms: new.started_at_ms,
            opened_at_ms: now,
            acknowledged_at_ms: None,
            resolved_at_ms: None,
            closed_at_ms: None,
            respond_by_ms: now.saturating_add(duration_ms(sla.respond)),
            resolve_by_ms: now.saturating_add(duration_ms(sla.resolve)),
            respond_breached: false,
            resolve_breached: false,
            escalation_level: 0,
            escalate_at_ms: None,
            progress_due_ms: None,
            callback_due_ms: None,
            callback_announced: false,
            reopen_count: 0,
            condition_cleared_at_ms: None,
            symptoms: Vec::new(),
            timeline: Vec::new(),
        };
        ticket.escalate_at_ms = ticket.next_escalation_ms(policy, now);
        for customer in new.customers {
            ticket.add_customer(customer, policy, now);
        }
        let entry = TimelineEntry {
            at_ms: now,
            who: new.opened_by,
            change: Change::Opened {
                severity: new.severity,
                tag: new.tag,
                reason: new.reason,
            },
        };
        ticket.timeline.push(entry.clone());
        (ticket, vec![entry])
    }

    /// Rule + target.
    pub fn fingerprint(&self) -> (&str, &str) {
        (&self.rule, &self.target)
    }

    /// Whether customers are affected (progress updates and call-back apply).
    pub fn customer_affecting(&self) -> bool {
        !self.customers.is_empty()
    }

    /// Whether the fault firing again at `now` re-opens this ticket (resolved within the window).
    pub fn reopens(&self, policy: &TicketPolicy, now: Millis) -> bool {
        self.state == TicketState::Resolved
            && self
                .resolved_at_ms
                .is_some_and(|r| now.saturating_sub(r) <= duration_ms(policy.reopen_window))
    }

    /// When the ticket last (re-)opened (its last `Opened` or `Reopened` entry): escalation
    /// counts from here.
    pub fn escalation_since_ms(&self) -> Millis {
        self.timeline
            .iter()
            .rev()
            .find(|e| matches!(e.change, Change::Opened { .. } | Change::Reopened { .. }))
            .map_or(self.opened_at_ms, |e| e.at_ms)
    }

    /// When the ticket, (re-)opened at `since`, escalates past its current level; `None` after
    /// the last level.
    fn next_escalation_ms(&self, policy: &TicketPolicy, since: Millis) -> Option<Millis> {
        let offset = policy.escalation_offset(self.tag, self.escalation_level.checked_add(1)?)?;
        Some(since.saturating_add(duration_ms(offset)))
    }

    fn contacts(&self) -> Vec<Contact> {
        self.customers
            .iter()
            .flat_map(|c| c.contacts.iter().cloned())
            .collect()
    }

    fn add_customer(&mut self, customer: Customer, policy: &TicketPolicy, now: Millis) {
        if self
            .customers
            .iter()
            .any(|c| c.department == customer.department)
        {
            return;
        }
        self.customers.push(customer);
        if self.state.is_active() && self.progress_due_ms.is_none() {
            self.progress_due_ms = Some(now.saturating_add(duration_ms(policy.progress_interval)));
        }
    }

    /// Whether an incident of the same fault that joined the ticket still fires.
    fn same_fault_firing(&self) -> bool {
        self.symptoms
            .iter()
            .any(|s| s.same_fault.is_some() && s.cleared_at_ms.is_none())
    }

    /// Moves an active ticket to resolved at `now`: timers of the active states stop, the
    /// call-back is planned for a customer-affecting one.
    fn resolve(&mut self, policy: &TicketPolicy, now: Millis) {
        self.state = TicketState::Resolved;
        self.resolved_at_ms = Some(now);
        self.condition_cleared_at_ms = None;
        self.escalate_at_ms = None;
        self.progress_due_ms = None;
        self.callback_announced = false;
        self.callback_due_ms = self
            .customer_affecting()
            .then(|| now.saturating_add(duration_ms(policy.callback_after)));
    }

    fn invalid(&self, command: &Command) -> TicketError {
        TicketError::InvalidTransition {
            id: self.id,
            state: self.state.as_str(),
            action: command.name(),
        }
    }

    fn bad(&self, problem: impl Into<String>) -> TicketError {
        TicketError::BadArgument {
            id: self.id,
            problem: problem.into(),
        }
    }

    /// Timers due at `now`, in a stable order.
    pub fn due_timers(&self, now: Millis) -> Vec<Timer> {
        let mut due = Vec::new();
        let active = self.state.is_active();
        if self.state == TicketState::Open && !self.respond_breached && now >= self.respond_by_ms {
            due.push(Timer::RespondBreach);
        }
        if active && !self.resolve_breached && now >= self.resolve_by_ms {
            due.push(Timer::ResolveBreach);
        }
        if self.state == TicketState::Open && self.escalate_at_ms.is_some_and(|t| now >= t) {
            due.push(Timer::Escalate);
        }
        if active && self.progress_due_ms.is_some_and(|t| now >= t) {
            due.push(Timer::Progress);
        }
        if self.state == TicketState::Resolved
            && !self.callback_announced
            && self.callback_due_ms.is_some_and(|t| now >= t)
        {
            due.push(Timer::Callback);
        }
        due
    }

    /// The earliest pending deadline, for the collector's scheduler; `None` when nothing is pending.
    pub fn next_due_ms(&self) -> Option<Millis> {
        let active = self.state.is_active();
        [
            (self.state == TicketState::Open && !self.respond_breached)
                .then_some(self.respond_by_ms),
            (active && !self.resolve_breached).then_some(self.resolve_by_ms),
            self.escalate_at_ms
                .filter(|_| self.state == TicketState::Open),
            self.progress_due_ms.filter(|_| active),
            self.callback_due_ms
                .filter(|_| self.state == TicketState::Resolved && !self.callback_announced),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Applies `command` at `now`, returning the changed ticket and the timeline entries appended.
    pub fn apply(
        &self,
        command: Command,
        policy: &TicketPolicy,
        now: Millis,
    ) -> Result<(Ticket, Vec<TimelineEntry>), TicketError> {
        let mut t = self.clone();
        let mut out: Vec<(String, Change)> = Vec::new();
        let state = self.state;
        let closed = state == TicketState::Closed;
        match &command {
            Command::Acknowledge { by } => {
                if state != TicketState::Open {
                    return Err(self.invalid(&command));
                }
                t.state = TicketState::Acknowledged;
                t.acknowledged_at_ms = Some(now);
                t.escalate_at_ms = None;
                out.push((by.clone(), Change::Acknowledged));
                if t.assignee.is_none() {
                    t.assignee = Some(by.clone());
                    out.push((by.clone(), Change::Assigned { to: by.clone() }));
                }
            }
            Command::Assign { to, by } => {
                if closed {
                    return Err(self.invalid(&command));
                }
                if let Some(assignee) = &self.assignee {
                    return Err(TicketError::AlreadyAssigned {
                        id: self.id,
                        assignee: assignee.clone(),
                    });
                }
                t.assignee = Some(to.clone());
                out.push((by.clone(), Change::Assigned { to: to.clone() }));
            }
            Command::HandOver { to, by, note } => {
                if closed {
                    return Err(self.invalid(&command));
                }
                let Some(from) = self.assignee.clone() else {
                    return Err(self.bad("nobody to hand over from: assign first"));
                };
                if from == *to {
                    return Err(self.bad(format!("already assigned to {to}")));
                }
                t.assignee = Some(to.clone());
                out.push((
                    by.clone(),
                    Change::HandedOver {
                        from,
                        to: to.clone(),
                        note: note.clone(),
                    },
                ));
            }
            Command::Comment { by, text } => {
                out.push((by.clone(), Change::Commented { text: text.clone() }));
            }
            Command::PostProgress { by, text } => {
                if !state.is_active() {
                    return Err(self.invalid(&command));
                }
                if t.customer_affecting() {
                    t.progress_due_ms =
                        Some(now.saturating_add(duration_ms(policy.progress_interval)));
                }
                out.push((
                    by.clone(),
                    Change::ProgressPosted {
                        text: text.clone(),
                        contacts: self.contacts(),
                    },
                ));
            }
            Command::Retag { by, tag, reason } => {
                if closed {
                    return Err(self.invalid(&command));
                }
                if reason.trim().is_empty() {
                    return Err(self.bad("a re-tag needs a reason"));
                }
                if *tag == self.tag {
                    return Err(self.bad(format!("already tagged {tag}")));
                }
                t.tag = *tag;
                t.reason = reason.clone();
                if state == TicketState::Open {
                    // The next escalation follows the new tag's policy.
                    t.escalate_at_ms = t.next_escalation_ms(policy, self.escalation_since_ms());
                }
                out.push((
                    by.clone(),
                    Change::Retagged {
                        from: self.tag,
                        to: *tag,
                        reason: reason.clone(),
                    },
                ));
            }
            Command::Resolve { .. } | Command::ConditionCleared => {
                let (who, automatic, note) = match &command {
                    Command::Resolve { by, note } => (by.clone(), false, note.clone()),
                    _ => (SYSTEM.to_string(), true, String::new()),
                };
                if automatic && !state.is_active() {
                    // The condition cleared after a resolution by hand: history only.
                    out.push((who, Change::ConditionCleared));
                } else if !state.is_active() {
                    return Err(self.invalid(&command));
                } else if automatic && self.same_fault_firing() {
                    // The same fault still fires elsewhere: open until that clears too. Cleared
                    // again (a restarted evaluator re-judges it): nothing new.
                    if self.condition_cleared_at_ms.is_none() {
                        t.condition_cleared_at_ms = Some(now);
                        out.push((who, Change::ConditionCleared));
                    }
                } else {
                    t.resolve(policy, now);
                    out.push((who, Change::Resolved { automatic, note }));
                }
            }
            Command::Refire => match state {
                TicketState::Open | TicketState::Acknowledged => {
                    // Its own condition holds again (it may have cleared while the same fault
                    // kept the ticket open).
                    t.condition_cleared_at_ms = None;
                }
                TicketState::Resolved if self.reopens(policy, now) => {
                    t.state = TicketState::Open;
                    t.reopen_count += 1;
                    t.acknowledged_at_ms = None;
                    t.resolved_at_ms = None;
                    t.callback_due_ms = None;
                    t.escalation_level = 0;
                    t.escalate_at_ms = t.next_escalation_ms(policy, now);
                    if t.customer_affecting() {
                        t.progress_due_ms =
                            Some(now.saturating_add(duration_ms(policy.progress_interval)));
                    }
                    out.push((
                        SYSTEM.to_string(),
                        Change::Reopened {
                            count: t.reopen_count,
                        },
                    ));
                }
                TicketState::Resolved => {
                    return Err(TicketError::ReopenWindowPassed {
                        id: self.id,
                        resolved_at_ms: self.resolved_at_ms.unwrap_or(now),
                    });
                }
                TicketState::Closed => return Err(self.invalid(&command)),
            },
            Command::LinkSymptom(link) => {
                if link.same_fault.is_some() && self.reopens(policy, now) {
                    // The fault is back within the re-open window: re-open, then join.
                    let (reopened, mut entries) = self.apply(Command::Refire, policy, now)?;
                    let (joined, more) = reopened.apply(command.clone(), policy, now)?;
                    entries.extend(more);
                    return Ok((joined, entries));
                }
                if !state.is_active() {
                    return Err(self.invalid(&command));
                }
                let SymptomLink {
                    rule,
                    target,
                    customer,
                    reason,
                    evidence,
                    same_fault,
                } = link.as_ref();
                if self
                    .symptoms
                    .iter()
                    .any(|s| s.rule == *rule && s.target == *target && s.cleared_at_ms.is_none())
                {
                    return Err(self.bad(format!("{rule} on {target} is already a symptom")));
                }
                t.symptoms.push(Symptom {
                    rule: rule.clone(),
                    target: target.clone(),
                    joined_at_ms: now,
                    cleared_at_ms: None,
                    same_fault: *same_fault,
                });
                if let Some(customer) = customer {
                    t.add_customer(customer.clone(), policy, now);
                }
                out.push((
                    SYSTEM.to_string(),
                    Change::SymptomLinked {
                        rule: rule.clone(),
                        target: target.clone(),
                        reason: reason.clone(),
                        evidence: evidence.clone().map(Box::new),
                    },
                ));
                if let Some(severity) = same_fault.filter(|s| *s < self.severity) {
                    // More severe is smaller: P1 < P2. Deadlines only ever come closer.
                    let sla = policy.sla(severity);
                    t.severity = severity;
                    t.respond_by_ms = t
                        .respond_by_ms
                        .min(now.saturating_add(duration_ms(sla.respond)));
                    t.resolve_by_ms = t
                        .resolve_by_ms
                        .min(now.saturating_add(duration_ms(sla.resolve)));
                    out.push((
                        SYSTEM.to_string(),
                        Change::SeverityRaised {
                            from: self.severity,
                            to: severity,
                            rule: rule.clone(),
                            target: target.clone(),
                        },
                    ));
                }
            }
            Command::SymptomCleared { rule, target } => {
                let Some(symptom) = t
                    .symptoms
                    .iter_mut()
                    .find(|s| s.rule == *rule && s.target == *target && s.cleared_at_ms.is_none())
                else {
                    return Err(self.bad(format!("{rule} on {target} is not an active symptom")));
                };
                symptom.cleared_at_ms = Some(now);
                out.push((
                    SYSTEM.to_string(),
                    Change::SymptomCleared {
                        rule: rule.clone(),
                        target: target.clone(),
                    },
                ));
                if state.is_active()
                    && self.condition_cleared_at_ms.is_some()
                    && !t.same_fault_firing()
                {
                    // The ticket stayed open only for the same fault, which is gone now.
                    t.resolve(policy, now);
                    out.push((
                        SYSTEM.to_string(),
                        Change::Resolved {
                            automatic: true,
                            note: format!(
                                "the last incident of the same fault cleared ({rule} on {target})"
                            ),
                        },
                    ));
                }
            }
            Command::RecordCallback { by, note } => {
                if state != TicketState::Resolved {
                    return Err(self.invalid(&command));
                }
                t.state = TicketState::Closed;
                t.closed_at_ms = Some(now);
                out.push((by.clone(), Change::CallbackRecorded { note: note.clone() }));
                out.push((
                    by.clone(),
                    Change::Closed {
                        note: String::new(),
                    },
                ));
            }
            Command::Close { by, note } => {
                if state != TicketState::Resolved || self.customer_affecting() {
                    return Err(self.invalid(&command));
                }
                t.state = TicketState::Closed;
                t.closed_at_ms = Some(now);
                out.push((by.clone(), Change::Closed { note: note.clone() }));
            }
            Command::Fire(timer) => {
                if !self.due_timers(now).contains(timer) {
                    return Err(TicketError::NotDue {
                        id: self.id,
                        timer: *timer,
                    });
                }
                let change = match timer {
                    Timer::RespondBreach => {
                        t.respond_breached = true;
                        Change::SlaBreached {
                            kind: SlaKind::Respond,
                        }
                    }
                    Timer::ResolveBreach => {
                        t.resolve_breached = true;
                        Change::SlaBreached {
                            kind: SlaKind::Resolve,
                        }
                    }
                    Timer::Escalate => {
                        t.escalation_level += 1;
                        t.escalate_at_ms = t.next_escalation_ms(policy, self.escalation_since_ms());
                        Change::Escalated {
                            level: t.escalation_level,
                        }
                    }
                    Timer::Progress => {
                        t.progress_due_ms =
                            Some(now.saturating_add(duration_ms(policy.progress_interval)));
                        Change::ProgressOverdue {
                            contacts: self.contacts(),
                            assignee: self.assignee.clone(),
                        }
                    }
                    Timer::Callback => {
                        t.callback_announced = true;
                        Change::CallbackDue {
                            contacts: self.contacts(),
                        }
                    }
                };
                out.push((SYSTEM.to_string(), change));
            }
        }
        let entries: Vec<TimelineEntry> = out
            .into_iter()
            .map(|(who, change)| TimelineEntry {
                at_ms: now,
                who,
                change,
            })
            .collect();
        t.timeline.extend(entries.iter().cloned());
        Ok((t, entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    fn open(customers: Vec<Customer>) -> Ticket {
        open_with(&policy(), Owner::Customer, customers)
    }

    /// A ticket tagged `tag` opened at 0 under `policy`.
    fn open_with(policy: &TicketPolicy, tag: Owner, customers: Vec<Customer>) -> Ticket {
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
            Owner::Customer,
            [0, 10, 30].map(Duration::from_secs).to_vec(),
        );
        let escalate = || Command::Fire(Timer::Escalate);
        let retag = |tag| Command::Retag {
            by: by("ana"),
            tag,
            reason: "moved".into(),
        };
        // (what, tag, steps, expected level and next escalation)
        type Case = (
            &'static str,
            Owner,
            Vec<(Millis, Command)>,
            u32,
            Option<Millis>,
        );
        let cases: Vec<Case> = vec![
            (
                "policy: first at 10 s",
                Owner::Customer,
                vec![],
                0,
                Some(10 * S),
            ),
            (
                "policy: then at 30 s",
                Owner::Customer,
                vec![(10 * S, escalate())],
                1,
                Some(30 * S),
            ),
            (
                "policy: a late timer keeps the schedule",
                Owner::Customer,
                vec![(25 * S, escalate())],
                1,
                Some(30 * S),
            ),
            (
                "policy: never after the last level",
                Owner::Customer,
                vec![(10 * S, escalate()), (30 * S, escalate())],
                2,
                None,
            ),
            (
                "policy: an acknowledgement stops it",
                Owner::Customer,
                vec![(5 * S, Command::Acknowledge { by: by("ana") })],
                0,
                None,
            ),
            (
                "policy: a re-open restarts from level 0",
                Owner::Customer,
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
                Owner::Customer,
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
                Owner::Platform,
                vec![],
                0,
                Some(30 * S),
            ),
            (
                "fallback: every ack timeout",
                Owner::Platform,
                vec![(30 * S, escalate())],
                1,
                Some(60 * S),
            ),
            (
                "fallback: up to the highest level",
                Owner::Platform,
                vec![(30 * S, escalate()), (60 * S, escalate())],
                2,
                None,
            ),
            (
                "re-tag onto a policy: its times from the open",
                Owner::Platform,
                vec![(5 * S, retag(Owner::Customer))],
                0,
                Some(10 * S),
            ),
            (
                "re-tag off a policy: the fallback",
                Owner::Customer,
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
        root.tag = Owner::Carrier;
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
            (Owner::Platform, "our optic, not the carrier")
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
        let policy: TicketPolicy = toml::from_str(
            "progress_interval = \"30s\"\n[p1]\nrespond = \"5m\"\nresolve = \"1h\"\n",
        )
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
        };
        let command = Command::LinkSymptom(Box::new(SymptomLink {
            rule: "RoomTemperatureHigh".into(),
            target: "temp-2".into(),
            customer: None,
            reason: "RoomTemperatureHigh already seen in room r2 by temp-1".into(),
            evidence: Some(evidence.clone()),
            same_fault: Some(Severity::P2),
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
}
