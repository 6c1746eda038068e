//! The notification model: what every channel renders (… → incidents → **notifications**).
//!
//! A [`Notification`] is one event of one ticket, worth telling someone about: the ticket opened
//! (or re-opened), was acknowledged or resolved, a progress update or reminder is due, an SLA was
//! breached, the page escalated, or a call-back is due — or a customer follow-up task that came
//! due, which belongs to no ticket. [`crate::from_ticket`] builds them from the ticket's timeline
//! entries and from follow-up tasks; the [`crate::Outbox`] stores them per channel until
//! delivered.

use faultline_incidents::followup::FollowUp;
use faultline_incidents::inventory::{Contact, Owner, TargetRole};
use faultline_incidents::ticket::{CarrierReport, Customer, Reporter};
use faultline_incidents::{Millis, Severity};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What happened to the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The ticket opened: page the on-call.
    Trigger,
    /// The fault came back within the re-open window: the same ticket re-opened (pages like a
    /// trigger; announced as a re-open, not as a new opening).
    Reopen,
    /// The ticket re-opened too often within the flap window: it is flapping, and its further
    /// re-opens and resolutions are not announced until it stays resolved (engineers only).
    Flapping,
    /// An engineer acknowledged it.
    Acknowledge,
    /// The fault is resolved.
    Resolve,
    /// A progress update for the customer contacts.
    Progress,
    /// A reminder to the assignee that nothing was posted for a progress interval.
    Reminder,
    /// An SLA deadline was breached.
    Breach,
    /// Unacknowledged: paged to the next on-call level.
    Escalation,
    /// The call-back (return visit) to the customer is due.
    CallbackDue,
    /// A scheduled customer follow-up (new customer, VIP) is due; not a ticket event.
    FollowUp,
    /// A carrier trouble report: the fault told to the carrier's NOC (e-mail to its contacts,
    /// or a carrier portal driven by a ticket-sink template).
    CarrierReport,
}

impl Kind {
    /// Every kind, in lifecycle order.
    pub const ALL: [Kind; 12] = [
        Kind::Trigger,
        Kind::Reopen,
        Kind::Flapping,
        Kind::Acknowledge,
        Kind::Resolve,
        Kind::Progress,
        Kind::Reminder,
        Kind::Breach,
        Kind::Escalation,
        Kind::CallbackDue,
        Kind::FollowUp,
        Kind::CarrierReport,
    ];

    /// Name as written in config files and stored in the outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Trigger => "trigger",
            Kind::Reopen => "reopen",
            Kind::Flapping => "flapping",
            Kind::Acknowledge => "acknowledge",
            Kind::Resolve => "resolve",
            Kind::Progress => "progress",
            Kind::Reminder => "reminder",
            Kind::Breach => "breach",
            Kind::Escalation => "escalation",
            Kind::CallbackDue => "callback_due",
            Kind::FollowUp => "follow_up",
            Kind::CarrierReport => "carrier_report",
        }
    }

    /// Title shown to people (`Opened`, `Resolved`, `SLA breached` …).
    pub fn title(self) -> &'static str {
        match self {
            Kind::Trigger => "Opened",
            Kind::Reopen => "Re-opened",
            Kind::Flapping => "Flapping",
            Kind::Acknowledge => "Acknowledged",
            Kind::Resolve => "Resolved",
            Kind::Progress => "Progress update",
            Kind::Reminder => "Reminder",
            Kind::Breach => "SLA breached",
            Kind::Escalation => "Escalated",
            Kind::CallbackDue => "Call-back due",
            Kind::FollowUp => "Customer follow-up due",
            Kind::CarrierReport => "Reported to the carrier",
        }
    }

    /// Parses [`Kind::as_str`] back.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A link shown with a notification (the ticket in Faultline's UI, a dashboard, a runbook).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Text shown for the link.
    pub title: String,
    /// Absolute URL.
    pub url: String,
}

/// One event of one ticket, to be delivered to the channels that want it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The key receivers use to tie events of one ticket together (PagerDuty `dedup_key`,
    /// Alertmanager fingerprint, the ticket sink's remote ticket); stable for the ticket's life.
    pub dedup_key: String,
    /// Position of the timeline entry this event comes from. Together with the channel, the dedup
    /// key and the kind it makes the event unique: enqueueing the same entry again does nothing,
    /// while a second trigger (a re-open) is a new notification.
    pub occurrence: u64,
    /// What happened.
    pub kind: Kind,
    /// Faultline's ticket id (0 for a follow-up, which belongs to no ticket).
    pub ticket_id: u64,
    /// Severity.
    pub severity: Severity,
    /// Responsibility tag: platform, carrier or customer; `untagged` (`None`) while a reported
    /// fault waits for triage.
    #[serde(with = "tag_text")]
    pub tag: Option<Owner>,
    /// One-line reason for the tag.
    pub reason: String,
    /// One-line summary of the fault.
    pub summary: String,
    /// Longer text: the ticket description, or the progress update's text.
    pub details: String,
    /// The rule that fired.
    pub rule: String,
    /// The target the fault is on.
    pub target: String,
    /// The target's role (`router`, `firewall`, `ups`, `vm` …), where known.
    #[serde(default)]
    pub role: Option<TargetRole>,
    /// When the fault started (its original time), ms since the Unix epoch.
    pub started_at_ms: Millis,
    /// When this event happened, ms since the Unix epoch.
    pub at_ms: Millis,
    /// Who caused the event (an engineer, or `faultline`).
    pub actor: String,
    /// The assignee, if any (reminders go to them).
    pub assignee: Option<String>,
    /// On-call escalation level (0 = primary).
    pub escalation_level: u32,
    /// Customer contacts to inform (empty when no customer is affected).
    pub contacts: Vec<Contact>,
    /// The engineers this notification pages: the on-call person of the escalation level, or the
    /// assignee for a reminder. The collector fills it from the on-call schedule; e-mail sends to
    /// their addresses and DingTalk @-mentions their phone numbers.
    #[serde(default)]
    pub paged: Vec<Contact>,
    /// Links to show.
    pub links: Vec<Link>,
    /// A signed link that acknowledges the ticket as the paged engineer: set by the collector on
    /// pages (trigger, re-open, escalation) when it has an acknowledge-link key; the robots,
    /// PagerDuty and SMS show it.
    #[serde(default)]
    pub ack_url: Option<String>,
    /// For [`Kind::FollowUp`]: the department, which follow-up (`kind` `new_customer` with its
    /// `after`, or `vip` with its `period`) and when it came due (`due_at_ms`); `null` otherwise.
    #[serde(default)]
    pub followup: Option<FollowUp>,
    /// The customer view of the event ([`crate::customer`]): what customer messages are written
    /// from. Never the reason, the evidence or engineers' comments.
    #[serde(default)]
    pub customer: CustomerView,
    /// For [`Kind::CarrierReport`]: the circuit, its carrier, both ends, the NOC contacts and the
    /// evidence that the fault is beyond our boundary ([`crate::carrier`] writes the NOC's mail
    /// from it); `null` otherwise.
    #[serde(default)]
    pub carrier: Option<CarrierReport>,
    /// Who reported the fault (mailbox, phone, walk-in): e-mail sends them the customer kinds,
    /// replying to their mail, with the ticket number `[FL-<id>]` in the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<Reporter>,
}

/// The tag as templates and receivers read it: the owner's name, or `untagged`.
mod tag_text {
    use faultline_incidents::inventory::{Owner, UNTAGGED, tag_label};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tag: &Option<Owner>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tag_label(*tag))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Owner>, D::Error> {
        let text = String::deserialize(d)?;
        if text == UNTAGGED {
            return Ok(None);
        }
        Owner::deserialize(serde::de::value::StringDeserializer::<D::Error>::new(text)).map(Some)
    }
}

/// What a customer message may say about a ticket event: the affected departments (each with
/// its language and systems), whether this is the first notice, the ticket's state, the latest
/// progress text engineers posted for customers, and when the next update is due.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerView {
    /// The affected departments.
    #[serde(default)]
    pub departments: Vec<Customer>,
    /// The first notice of the fault to the contacts addressed (an opening, or a department
    /// newly affected as a symptom).
    #[serde(default)]
    pub first_notice: bool,
    /// Ticket state after the event (`open`, `acknowledged`, `resolved`, `closed`).
    #[serde(default)]
    pub state: String,
    /// The latest progress update posted for the customers, if any.
    #[serde(default)]
    pub note: Option<String>,
    /// When the next progress update is due, ms since the Unix epoch.
    #[serde(default)]
    pub next_update_at_ms: Option<Millis>,
}

impl Notification {
    /// A short identification for logs and errors: `ticket-42/trigger#0`.
    pub fn label(&self) -> String {
        format!("{}/{}#{}", self.dedup_key, self.kind, self.occurrence)
    }
}
