//! What a ticket is made of: its state, customers, symptoms, timers and timeline entries
//! (rules → **incidents** → notifications: the data the state machine changes and the store keeps).

use crate::Millis;
use crate::attribution::Evidence;
use crate::inventory::{Contact, Inventory, Language, Owner};
use crate::rules::Severity;
use serde::{Deserialize, Serialize};

/// Where a ticket is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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

/// How a fault reached the queue: one queue, whatever the channel (the service entry).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Opened by a rule (Faultline's own monitoring).
    #[default]
    Monitoring,
    /// Entered through the ticket API by another system.
    Api,
    /// Entered at the console by an engineer.
    Console,
    /// A customer phoned the hotline.
    Phone,
    /// A customer came to the desk.
    WalkIn,
    /// A mail to the repair mailbox.
    Mailbox,
}

impl Channel {
    /// Every channel, in the order the console lists them.
    pub const ALL: [Channel; 6] = [
        Channel::Monitoring,
        Channel::Api,
        Channel::Console,
        Channel::Phone,
        Channel::WalkIn,
        Channel::Mailbox,
    ];

    /// Name as sent and shown (`walk_in`).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Monitoring => "monitoring",
            Channel::Api => "api",
            Channel::Console => "console",
            Channel::Phone => "phone",
            Channel::WalkIn => "walk_in",
            Channel::Mailbox => "mailbox",
        }
    }
}

/// A customer department affected by a ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Customer {
    /// Department id.
    pub department: String,
    /// VIP at the time it was affected.
    pub vip: bool,
    /// Who gets progress updates and the call-back.
    pub contacts: Vec<Contact>,
    /// The language of its messages (absent in older stores: English).
    #[serde(default)]
    pub language: Language,
    /// Its systems the ticket's fault affects (absent in older stores).
    #[serde(default)]
    pub targets: Vec<String>,
}

impl Customer {
    /// The customer behind `target`, if it is a customer target.
    pub fn of_target(inventory: &Inventory, target: &str) -> Option<Self> {
        let department = inventory.department_of(target)?;
        Self::of_department(inventory, &department.id, Some(target))
    }

    /// Department `id` of the inventory as an affected customer, with `target` as its affected
    /// system when known; `None` for a department the inventory does not have.
    pub fn of_department(inventory: &Inventory, id: &str, target: Option<&str>) -> Option<Self> {
        inventory.department(id).map(|d| Self {
            department: d.id.clone(),
            vip: inventory.is_vip(&d.id),
            contacts: d.contacts.clone(),
            language: d.language,
            targets: target.map(str::to_string).into_iter().collect(),
        })
    }
}

/// Another incident that joined this ticket as a symptom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Its customer was already told of this fault (by a ticket merged into this one): the link
    /// does not announce it again.
    pub informed: bool,
}

/// Which SLA deadline was breached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlaKind {
    /// Not acknowledged by respond-by.
    Respond,
    /// Not resolved by resolve-by.
    Resolve,
}

/// A timer that can come due on a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// A flapping ticket stayed resolved for a whole flap window.
    FlapEnded,
}

/// What happened; one per timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// Ticket opened (pages the on-call level 0).
    Opened {
        /// Severity.
        severity: Severity,
        /// Responsibility tag (`null`: untagged, waiting for triage).
        tag: Option<Owner>,
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
        /// Old tag (`null`: it was untagged, waiting for triage).
        from: Option<Owner>,
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
        /// Resolved while flapping: recorded, not announced (the resolution is announced by
        /// [`Change::FlappingEnded`]).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        flapping: bool,
    },
    /// The ticket's own condition cleared without resolving it: it was already resolved by hand,
    /// or the same fault still fires on another rule or target of the ticket.
    ConditionCleared,
    /// Re-opened by the fault firing again within the re-open window.
    Reopened {
        /// How many times it has been re-opened.
        count: u32,
        /// Re-opened while flapping: recorded, neither paged nor mailed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        flapping: bool,
    },
    /// The ticket re-opened `reopens` times within the flap window: it is flapping. Announced
    /// once; further re-opens and resolutions are recorded quietly until it stays resolved for a
    /// whole window.
    FlappingStarted {
        /// Re-opens counted within the window.
        reopens: u32,
        /// The window, in seconds.
        window_secs: u64,
    },
    /// A flapping ticket stayed resolved for a whole flap window: its resolution is announced.
    FlappingEnded,
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
        /// The customer department this link newly affects, told of the fault by this entry
        /// (none when it was already affected, or already told by a ticket merged into this one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        announce_to: Option<String>,
    },
    /// Joined ticket `into` as a symptom of a root found after this ticket opened: closed
    /// without a resolution (the fault goes on there); nobody is notified.
    Merged {
        /// The root's ticket.
        into: u64,
        /// Why.
        reason: String,
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
    /// The fault was reported to the carrier's NOC (a carrier trouble ticket): its contacts
    /// and the circuit, as they were when reported. Not paging; the carrier hears of it.
    CarrierReported {
        /// What was reported.
        report: Box<CarrierReport>,
    },
    /// A fault reported by hand (phone, walk-in, console, mailbox) was linked to this ticket
    /// instead of opening a second one: how it came, what was said, by whom. The reporter and
    /// the department hear that engineers are on it.
    ReportLinked {
        /// How the report came in.
        channel: Channel,
        /// What the reporter said, in one line.
        summary: String,
        /// More detail.
        #[serde(default)]
        description: String,
        /// The reporter, to hear back (timelines stored before this was a [`Reporter`] hold an
        /// inventory contact, `{name, email, phone}`, which reads as one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reporter: Option<Reporter>,
        /// The reporting department, when known (it becomes an affected customer).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        department: Option<String>,
    },
    /// The carrier answered the trouble report: by phone (recorded by an engineer) or by a
    /// reply threaded into the ticket. The first one stops the carrier's response clock.
    CarrierResponded {
        /// The carrier's own trouble-ticket number, when they gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        /// What they said.
        #[serde(default)]
        note: String,
    },
    /// A mail about the ticket reached the repair mailbox (a reply of the reporter, threaded in
    /// by the ticket number or its references); recorded, never paged.
    MailReceived {
        /// The mail.
        mail: MailReceived,
    },
}

/// A mail recorded on a ticket's timeline ([`Change::MailReceived`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MailReceived {
    /// The sender's address.
    pub from: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body (HTML converted).
    pub text: String,
    /// Its Message-ID.
    pub message_id: String,
    /// Its attachments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
}

/// An attachment of a mail on a ticket's timeline. Those within the size caps are kept in the
/// ticket store (numbered per ticket, `GET /api/v1/tickets/{id}/attachments/{n}`); larger ones
/// are recorded by name and size only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttachmentRef {
    /// Its number on the ticket (1, 2 …) when kept; `None` when it was over a size cap.
    pub number: Option<u32>,
    /// File name as sent.
    pub name: String,
    /// MIME type as sent.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
}

/// Who reported a fault by mail, phone or at the desk: gets the acknowledgement with the ticket
/// number, the progress updates and the resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reporter {
    /// Name (as given, or the mail's display name).
    #[serde(default)]
    pub name: String,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The department they belong to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// The Message-ID of the mail that opened the ticket (replies thread to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

impl Reporter {
    /// The reporter as a contact to notify (name, e-mail, phone).
    pub fn contact(&self) -> Contact {
        Contact {
            name: self.name.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
        }
    }
}

impl Change {
    /// Whether Faultline pages the on-call for this change by itself: an opening, a re-open that
    /// is not flapping, an escalation, a severity raised by the same fault getting worse.
    pub fn pages(&self) -> bool {
        matches!(
            self,
            Change::Opened { .. }
                | Change::Reopened {
                    flapping: false,
                    ..
                }
                | Change::Escalated { .. }
                | Change::SeverityRaised { .. }
        )
    }
}

/// What a carrier trouble report told the carrier's NOC, kept on the ticket as it was sent: the
/// circuit (ours and the carrier's id), its two ends, the NOC contacts reached, and the evidence
/// that the fault lies beyond our boundary (our side's checks, one line each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CarrierReport {
    /// The circuit's id in the inventory (also its target id).
    pub circuit: String,
    /// The carrier.
    pub carrier: String,
    /// The carrier's circuit id (what its NOC asks for).
    pub circuit_id: String,
    /// Our end: the edge port the circuit is plugged into.
    pub a_end: String,
    /// The carrier's hand-off.
    #[serde(default)]
    pub z_end: String,
    /// The NOC contacts told.
    pub contacts: Vec<Contact>,
    /// Why the fault is beyond our boundary, one line per check of our side.
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// A hand-made report to link to an open ticket ([`crate::Command::LinkReport`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedReport {
    /// The engineer at the desk.
    pub by: String,
    /// How the report came in (never `monitoring`).
    pub channel: Channel,
    /// What the reporter said, in one line.
    pub summary: String,
    /// More detail.
    pub description: String,
    /// The reporter, to hear back.
    pub reporter: Option<Reporter>,
    /// The reporting department with its contacts (from the inventory), when known.
    pub customer: Option<Customer>,
}

/// One line of a ticket's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// When.
    pub at_ms: Millis,
    /// Who (an engineer, or [`SYSTEM`](super::SYSTEM)).
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
    /// Responsibility tag (`None`: untagged, waiting for triage).
    pub tag: Option<Owner>,
    /// One-line reason for the tag.
    pub reason: String,
    /// Attribution evidence (none for a ticket created by hand).
    pub evidence: Option<Evidence>,
    /// Affected customers.
    pub customers: Vec<Customer>,
    /// When the fault started (original time, possibly before `now`).
    pub started_at_ms: Millis,
    /// Who opens it ([`SYSTEM`](super::SYSTEM) or the engineer entering a customer-reported fault).
    pub opened_by: String,
    /// How the fault reached the queue.
    pub channel: Channel,
    /// Whether its opening, re-opening and escalation page the on-call; false for planning
    /// tickets (capacity), which wait in the queue.
    pub pages: bool,
    /// Who reported it (mailbox, phone, walk-in), to be told of its progress.
    pub reporter: Option<Reporter>,
}

fn pages_by_default() -> bool {
    true
}

/// One fault's ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// How the fault reached the queue (tickets stored before channels were kept: monitoring).
    #[serde(default)]
    pub channel: Channel,
    /// Whether it pages: its opening, re-opening and escalation page the on-call. False for a
    /// planning ticket (capacity watch), which never pages nor escalates (absent in older
    /// stores: true).
    #[serde(default = "pages_by_default")]
    pub pages: bool,
    /// Responsibility tag (`null`: untagged, waiting for triage; stored tickets always had one).
    pub tag: Option<Owner>,
    /// Reason for the tag.
    pub reason: String,
    /// Attribution evidence.
    pub evidence: Option<Evidence>,
    /// Affected customers (customer-affecting when not empty).
    pub customers: Vec<Customer>,
    /// Who reported it (mailbox, phone, walk-in; absent in older stores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<Reporter>,
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
    /// Since when the ticket is flapping (re-opened too often within the flap window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flapping_since_ms: Option<Millis>,
    /// When a flapping ticket's resolution is announced if it stays resolved until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flap_ends_at_ms: Option<Millis>,
    /// When it last re-opened, newest last (at most the flap threshold of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_reopens_ms: Vec<Millis>,
    /// Incidents that joined as symptoms.
    pub symptoms: Vec<Symptom>,
    /// Everything that happened, oldest first.
    pub timeline: Vec<TimelineEntry>,
}
