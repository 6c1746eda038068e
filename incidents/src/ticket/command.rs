//! The changes a ticket can be asked for ([`Command`]) and why it may refuse one
//! ([`TicketError`]) (rules / API / timers → **incidents**).

use super::model::{CarrierReport, LinkedReport, MailReceived, SymptomLink, Timer};
use crate::Millis;
use crate::inventory::Owner;
use thiserror::Error;

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
    /// Record a mail about the ticket (a reply to the repair mailbox), in any state: recorded
    /// by its sender, nothing else changes.
    RecordMail(Box<MailReceived>),
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
    /// Joins this ticket to ticket `into`, opened later for the root this ticket's fault turned
    /// out to be a symptom of (adoption): closes it without a resolution — the fault goes on
    /// under `into`, which carries its symptoms, customers and call-back from here on.
    Merge {
        /// The root's ticket.
        into: u64,
        /// Why (attribution's line: the dependency chain to the root).
        reason: String,
    },
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
    /// Link a hand-made report of the same fault to this open ticket instead of opening a
    /// second one; the reporting department becomes an affected customer.
    LinkReport(Box<LinkedReport>),
    /// Report the fault to the carrier's NOC (the collector decides when: see
    /// [`crate::carrier::report_due`]); once per ticket.
    ReportToCarrier(Box<CarrierReport>),
    /// Record the carrier's answer to the trouble report (a reply, a call back, their
    /// reference number).
    RecordCarrierResponse {
        /// Who records it (an engineer, or the mailbox intake for a threaded reply).
        by: String,
        /// The carrier's own trouble-ticket number, if given.
        reference: Option<String>,
        /// What they said.
        note: String,
    },
}

impl Command {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Command::Acknowledge { .. } => "acknowledge",
            Command::Assign { .. } => "assign",
            Command::HandOver { .. } => "hand over",
            Command::Comment { .. } => "comment",
            Command::RecordMail(_) => "record a mail",
            Command::PostProgress { .. } => "post progress",
            Command::Retag { .. } => "re-tag",
            Command::Resolve { .. } | Command::ConditionCleared => "resolve",
            Command::Refire => "re-open",
            Command::LinkSymptom { .. } => "link a symptom",
            Command::Merge { .. } => "merge into another ticket",
            Command::SymptomCleared { .. } => "clear a symptom",
            Command::RecordCallback { .. } => "record the call-back",
            Command::Close { .. } => "close (a call-back is required)",
            Command::Fire(_) => "fire a timer",
            Command::LinkReport(_) => "link a report",
            Command::ReportToCarrier(_) => "report to the carrier",
            Command::RecordCarrierResponse { .. } => "record the carrier's response",
        }
    }
}
