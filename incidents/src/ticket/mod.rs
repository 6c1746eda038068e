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

mod command;
mod model;
mod policy;
#[cfg(test)]
mod tests;

pub use command::{Command, TicketError};
pub use model::{
    AttachmentRef, CarrierReport, Change, Channel, Customer, LinkedReport, MailReceived, NewTicket,
    Reporter, SlaKind, Symptom, SymptomLink, Ticket, TicketState, TimelineEntry, Timer,
};
pub use policy::{FlapPolicy, Sla, TicketPolicy};

use crate::inventory::Contact;
use crate::{Millis, duration_ms};

/// The actor recorded for changes made by Faultline itself.
pub const SYSTEM: &str = "faultline";

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
            channel: new.channel,
            pages: new.pages,
            tag: new.tag,
            reason: new.reason.clone(),
            evidence: new.evidence,
            customers: Vec::new(),
            reporter: new.reporter,
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
            flapping_since_ms: None,
            flap_ends_at_ms: None,
            recent_reopens_ms: Vec::new(),
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

    /// Whether `change` on this ticket pages the on-call: a paging change ([`Change::pages`]) of
    /// a ticket that pages (planning tickets never do).
    pub fn pages_for(&self, change: &Change) -> bool {
        self.pages && change.pages()
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
    /// the last level, and for a ticket that does not page.
    fn next_escalation_ms(&self, policy: &TicketPolicy, since: Millis) -> Option<Millis> {
        if !self.pages {
            return None;
        }
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
        if let Some(known) = self
            .customers
            .iter_mut()
            .find(|c| c.department == customer.department)
        {
            for target in customer.targets {
                if !known.targets.contains(&target) {
                    known.targets.push(target);
                }
            }
            return;
        }
        self.customers.push(customer);
        if self.state.is_active() && self.progress_due_ms.is_none() {
            self.progress_due_ms = Some(now.saturating_add(duration_ms(policy.progress_interval)));
        }
    }

    /// Whether the fault was reported to a carrier (a trouble report is sent once per ticket).
    pub fn carrier_reported(&self) -> bool {
        self.timeline
            .iter()
            .any(|e| matches!(e.change, Change::CarrierReported { .. }))
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
        if self.flapping_since_ms.is_some() {
            let window = duration_ms(policy.flap_for(&self.rule).window);
            self.flap_ends_at_ms = Some(now.saturating_add(window));
        }
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
        if self.state == TicketState::Resolved && self.flap_ends_at_ms.is_some_and(|t| now >= t) {
            due.push(Timer::FlapEnded);
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
            self.flap_ends_at_ms
                .filter(|_| self.state == TicketState::Resolved),
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
            Command::LinkReport(report) => {
                if !state.is_active() {
                    return Err(self.invalid(&command));
                }
                if report.channel == Channel::Monitoring {
                    return Err(self.bad("a linked report comes by hand, not from monitoring"));
                }
                if report.summary.trim().is_empty() {
                    return Err(self.bad("a linked report needs a summary"));
                }
                let department = report.customer.as_ref().map(|c| c.department.clone());
                if let Some(customer) = report.customer.clone() {
                    t.add_customer(customer, policy, now);
                }
                out.push((
                    report.by.clone(),
                    Change::ReportLinked {
                        channel: report.channel,
                        summary: report.summary.clone(),
                        description: report.description.clone(),
                        reporter: report.reporter.clone(),
                        department,
                    },
                ));
            }
            Command::ReportToCarrier(report) => {
                if !state.is_active() {
                    return Err(self.invalid(&command));
                }
                if self.carrier_reported() {
                    return Err(self.bad("already reported to the carrier"));
                }
                out.push((
                    SYSTEM.to_string(),
                    Change::CarrierReported {
                        report: report.clone(),
                    },
                ));
            }
            Command::RecordCarrierResponse {
                by,
                reference,
                note,
            } => {
                if closed {
                    return Err(self.invalid(&command));
                }
                if !self.carrier_reported() {
                    return Err(self.bad("not reported to a carrier: nothing to respond to"));
                }
                let reference = reference
                    .as_deref()
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_string);
                if reference.is_none() && note.trim().is_empty() {
                    return Err(self.bad("a carrier response needs a reference or a note"));
                }
                out.push((
                    by.clone(),
                    Change::CarrierResponded {
                        reference,
                        note: note.clone(),
                    },
                ));
            }
            Command::RecordMail(mail) => {
                out.push((
                    mail.from.clone(),
                    Change::MailReceived {
                        mail: (**mail).clone(),
                    },
                ));
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
                if Some(*tag) == self.tag {
                    return Err(self.bad(format!("already tagged {tag}")));
                }
                t.tag = Some(*tag);
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
                    out.push((
                        who,
                        Change::Resolved {
                            automatic,
                            note,
                            flapping: t.flapping_since_ms.is_some(),
                        },
                    ));
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
                    let flap = policy.flap_for(&self.rule);
                    let window = duration_ms(flap.window);
                    t.flap_ends_at_ms = None;
                    t.recent_reopens_ms
                        .retain(|at| now.saturating_sub(*at) < window);
                    t.recent_reopens_ms.push(now);
                    let keep = usize::try_from(flap.threshold).unwrap_or(usize::MAX).max(1);
                    if t.recent_reopens_ms.len() > keep {
                        t.recent_reopens_ms
                            .drain(..t.recent_reopens_ms.len() - keep);
                    }
                    let was_flapping = t.flapping_since_ms.is_some();
                    let starts =
                        !was_flapping && flap.threshold > 0 && t.recent_reopens_ms.len() >= keep;
                    out.push((
                        SYSTEM.to_string(),
                        Change::Reopened {
                            count: t.reopen_count,
                            flapping: was_flapping || starts,
                        },
                    ));
                    if starts {
                        t.flapping_since_ms = Some(now);
                        out.push((
                            SYSTEM.to_string(),
                            Change::FlappingStarted {
                                reopens: flap.threshold,
                                window_secs: flap.window.as_secs(),
                            },
                        ));
                    }
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
                    informed,
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
                let announce_to = customer
                    .as_ref()
                    .filter(|c| {
                        !informed && !t.customers.iter().any(|k| k.department == c.department)
                    })
                    .map(|c| c.department.clone());
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
                        announce_to,
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
            Command::Merge { into, reason } => {
                if !state.is_active() {
                    return Err(self.invalid(&command));
                }
                t.state = TicketState::Closed;
                t.closed_at_ms = Some(now);
                t.condition_cleared_at_ms = None;
                t.escalate_at_ms = None;
                t.progress_due_ms = None;
                t.callback_due_ms = None;
                out.push((
                    SYSTEM.to_string(),
                    Change::Merged {
                        into: *into,
                        reason: reason.clone(),
                    },
                ));
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
                            flapping: t.flapping_since_ms.is_some(),
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
                    Timer::FlapEnded => {
                        t.flapping_since_ms = None;
                        t.flap_ends_at_ms = None;
                        t.recent_reopens_ms.clear();
                        Change::FlappingEnded
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
