//! The ticket REST API (`/api/v1/tickets…` and `/api/v1/followups…`, JSON): the engineers' door
//! into the incidents stage (ingest → rules → **incidents** → notifications). A customer-reported
//! fault entered here joins the same queue as the automatic ones; customer follow-up tasks are
//! listed and recorded as done here.
//!
//! A thin shell: authenticates the bearer token (constant-time, against every configured token),
//! checks the role (viewer reads; engineer and admin also change tickets), turns the request into
//! a [`Request`] for the incidents stage (bounded channel; the stage owns the tickets, so API
//! changes and automatic ones never race) and maps the answer to a status: 400 names the field,
//! 401, 403, 404, 409 carries the ticket state machine's message, 503 when the store fails.
//!
//! ```text
//! GET  /api/v1/tickets?state=&tag=&severity=&customer=&site=&since=&until=&before=&limit=
//!                          list, newest first; `next` in the answer is the `before` of the
//!                          next (older) page; since/until: RFC 3339 or epoch ms (opened time)
//! POST /api/v1/tickets                          {target, summary, severity, description?, tag?, reason?}
//! GET  /api/v1/tickets/{id}                     one ticket with its timeline
//! GET  /api/v1/tickets/{id}/attachments/{n}     a kept mail attachment (its type and file name)
//! POST /api/v1/tickets/{id}/acknowledge         {}
//! POST /api/v1/tickets/{id}/assign              {to}
//! POST /api/v1/tickets/{id}/handover            {to, note?}
//! POST /api/v1/tickets/{id}/comment             {text}
//! POST /api/v1/tickets/{id}/progress            {text}      (sent to the customer contacts)
//! POST /api/v1/tickets/{id}/retag               {tag, reason}
//! POST /api/v1/tickets/{id}/resolve             {note?}
//! POST /api/v1/tickets/{id}/callback            {note}      (records the call-back and closes)
//! POST /api/v1/tickets/{id}/close               {note?}     (tickets without a call-back)
//! POST /api/v1/tickets/{id}/carrier_response    {reference?, note?} (the carrier answered)
//! POST /api/v1/tickets/{id}/link_report         {summary, channel?, description?, target?,
//!                                                department?, reporter?} (same fault, by hand)
//! GET  /api/v1/link_candidates?target=&department=  open automatic tickets a report may be about
//! GET  /api/v1/followups?state=&department=&limit=  follow-up tasks, oldest due first
//! POST /api/v1/followups/{key}/done             {note}      (who and when are recorded)
//! ```
//!
//! A follow-up `key` (`followup:finance:new:3days`) goes into the path as listed, `%`-escaped
//! where it holds characters a path cannot (a department id with a space or a slash).

mod auth;
mod openapi;
mod parse;
mod routes;

pub use auth::{Denied, Logins, Principal, User};
pub use openapi::document as openapi_document;
pub(crate) use parse::{
    attachment_number, command, manual_report, parse_query, report_link, ticket_id,
};
pub(crate) use routes::attachment_response;
pub use routes::router;

use crate::config::ApiConfig;
use faultline_incidents::followup::{FollowUpTask, TaskState};
use faultline_incidents::{
    Command, ListWindow, Millis, NewTicket, Owner, Severity, Ticket, TicketState,
};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

/// Path prefix of every API route.
pub const PREFIX: &str = "/api/v1";
/// Largest accepted request body.
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// Tickets listed when `limit` is not given, and the most a list returns.
pub(crate) const DEFAULT_LIMIT: usize = 100;
pub(crate) const MAX_LIMIT: usize = 1000;

/// What the API (and the repair mailbox) asks of the incidents stage; each carries where the
/// answer goes.
#[derive(Debug)]
pub enum Request {
    /// A mail to the repair mailbox: a new ticket or a reply to one, answered once committed.
    Mail {
        /// The mail.
        intake: Box<crate::mailbox::intake::MailIntake>,
        /// Answer.
        reply: oneshot::Sender<Result<crate::mailbox::intake::MailOutcome, Refusal>>,
    },
    /// An attachment kept with a ticket.
    Attachment {
        /// Ticket id.
        id: u64,
        /// Its number on the ticket.
        number: u32,
        /// Answer.
        reply: oneshot::Sender<Result<faultline_incidents::store::Attachment, Refusal>>,
    },
    /// Tickets matching a query.
    List {
        /// The filters.
        query: TicketQuery,
        /// Answer.
        reply: oneshot::Sender<Result<TicketPage, Refusal>>,
    },
    /// One ticket with its timeline.
    Get {
        /// Ticket id.
        id: u64,
        /// Answer.
        reply: oneshot::Sender<Result<Ticket, Refusal>>,
    },
    /// A change by an engineer.
    Change {
        /// Ticket id.
        id: u64,
        /// The change.
        command: Command,
        /// Answer: the ticket after the change.
        reply: oneshot::Sender<Result<Ticket, Refusal>>,
    },
    /// A ticket created by hand.
    Create {
        /// What was reported.
        report: ManualReport,
        /// Answer: the new ticket.
        reply: oneshot::Sender<Result<Ticket, Refusal>>,
    },
    /// A report made by hand, linked to an open ticket of the same fault.
    LinkReport {
        /// Ticket id.
        id: u64,
        /// The report.
        link: ReportLink,
        /// Answer: the ticket after the link.
        reply: oneshot::Sender<Result<Ticket, Refusal>>,
    },
    /// The open automatic tickets a report by hand may be about.
    LinkCandidates {
        /// Where the reporter says the fault is.
        query: CandidateQuery,
        /// Answer: the candidates, strongest first.
        reply: oneshot::Sender<Result<Vec<Candidate>, Refusal>>,
    },
    /// A pool that needs capacity planning (capacity watch → incidents, not an API route): opens
    /// the pool's non-paging planning ticket, or comments on the active one.
    Plan {
        /// The planning ticket as the watch writes it ([`faultline_incidents::capacity::decide`]).
        ticket: Box<NewTicket>,
        /// Answer: the ticket opened or commented on.
        reply: oneshot::Sender<Result<Ticket, Refusal>>,
    },
    /// Follow-up tasks matching a query.
    FollowUps {
        /// The filters.
        query: FollowUpQuery,
        /// Answer.
        reply: oneshot::Sender<Result<Vec<FollowUpTask>, Refusal>>,
    },
    /// A follow-up task recorded as done.
    CompleteFollowUp {
        /// Task key.
        key: String,
        /// Who did it.
        by: String,
        /// How it went.
        note: String,
        /// Answer: the task, done.
        reply: oneshot::Sender<Result<FollowUpTask, Refusal>>,
    },
}

/// A fault reported by hand that the desk links to an open ticket instead of opening a second
/// one (`POST /api/v1/tickets/{id}/link_report`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportLink {
    /// The engineer at the desk.
    pub by: String,
    /// How the report came in (never `monitoring`).
    pub channel: faultline_incidents::Channel,
    /// What the reporter said, in one line.
    pub summary: String,
    /// More detail.
    pub description: String,
    /// The affected target, when named.
    pub target: Option<String>,
    /// The reporting department (default: the target's).
    pub department: Option<String>,
    /// The reporter, to hear back.
    pub reporter: Option<faultline_incidents::ticket::Reporter>,
}

/// Where a reporter says the fault is (`GET /api/v1/link_candidates?target=&department=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CandidateQuery {
    /// The affected target.
    pub target: Option<String>,
    /// The reporting department.
    pub department: Option<String>,
}

/// An open automatic ticket a report may be about: the ticket (with its evidence) and why.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Candidate {
    /// The ticket.
    pub ticket: Ticket,
    /// How it matches.
    pub kind: faultline_incidents::report_link::MatchKind,
    /// Why, in a sentence.
    pub why: String,
}

/// Follow-up list filters; all given ones must match.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUpQuery {
    /// Pending or done.
    pub state: Option<TaskState>,
    /// Customer department.
    pub department: Option<String>,
    /// Most tasks returned.
    pub limit: usize,
}

/// List filters; all given ones must match.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketQuery {
    /// Lifecycle state.
    pub state: Option<TicketState>,
    /// Responsibility tag; `Some(None)`: untagged tickets (`tag=untagged`, waiting for triage).
    pub tag: Option<Option<Owner>>,
    /// Severity.
    pub severity: Option<Severity>,
    /// An affected customer department.
    pub customer: Option<String>,
    /// The site of the ticket's target (from the inventory).
    pub site: Option<String>,
    /// The role of the ticket's target (from the inventory: `firewall`, `ups`, `vm` …).
    pub role: Option<faultline_incidents::inventory::TargetRole>,
    /// How the fault reached the queue.
    pub channel: Option<faultline_incidents::Channel>,
    /// Which stretch of the history: before a cursor, opened within a time range.
    pub window: ListWindow,
    /// Most tickets returned.
    pub limit: usize,
}

/// One page of a ticket list, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketPage {
    /// The tickets.
    pub tickets: Vec<Ticket>,
    /// The cursor of the next (older) page (`before=`), when there may be one.
    pub next: Option<u64>,
}

/// A customer-reported fault entered by an engineer.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualReport {
    /// The affected target.
    pub target: String,
    /// One-line summary.
    pub summary: String,
    /// Description.
    pub description: String,
    /// Severity.
    pub severity: Severity,
    /// Responsibility; default: the target's owner in the inventory.
    pub tag: Option<Owner>,
    /// Why that tag; default: a note naming who reported it.
    pub reason: Option<String>,
    /// When the fault started; default: now.
    pub started_at_ms: Option<Millis>,
    /// The engineer entering it.
    pub by: String,
    /// How the report came in (`phone`, `walk_in`, `console`, `api`); never `monitoring`.
    pub channel: faultline_incidents::Channel,
    /// Who reported it, to be told of its progress (a hotline caller, a walk-in).
    pub reporter: Option<faultline_incidents::ticket::Reporter>,
}

/// Why the stage (or the API) refused a request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    /// No such ticket (404).
    #[error("ticket #{0} not found")]
    NotFound(u64),
    /// No such attachment on the ticket (404).
    #[error("ticket #{0} has no attachment {1}")]
    NoAttachment(u64, u32),
    /// No such follow-up task (404).
    #[error("follow-up {0} not found")]
    UnknownFollowUp(String),
    /// The ticket cannot take this change in its state (409).
    #[error("{0}")]
    Conflict(String),
    /// A field of the request is unusable (400).
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The ticket store failed (503).
    #[error("{0}")]
    Unavailable(String),
    /// `[incidents]` is not configured, so there are no tickets (404).
    #[error("incidents are not enabled ([incidents] is not configured)")]
    Disabled,
}

impl Refusal {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        Refusal::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The HTTP status of the refusal, in the API and the console alike.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            Refusal::NotFound(_)
            | Refusal::NoAttachment(..)
            | Refusal::UnknownFollowUp(_)
            | Refusal::Disabled => StatusCode::NOT_FOUND,
            Refusal::Conflict(_) => StatusCode::CONFLICT,
            Refusal::Invalid { .. } => StatusCode::BAD_REQUEST,
            Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The API's logins and its channel to the incidents stage; the console shares it, so both doors
/// authenticate and change tickets through the same code.
pub struct Api {
    logins: Logins,
    requests: Option<mpsc::Sender<Request>>,
}

impl Api {
    /// Reads the tokens from config; `requests` is `None` when `[incidents]` is not configured.
    pub fn new(
        config: &ApiConfig,
        requests: Option<mpsc::Sender<Request>>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            logins: Logins::new(config)?,
            requests,
        })
    }

    /// Who owns `token`, compared in constant time against every login.
    pub fn authenticate(&self, token: &[u8]) -> Option<&Principal> {
        self.logins.find(token)
    }

    /// Sends a request to the stage and waits for its answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Refusal>>) -> Request,
    ) -> Result<T, Refusal> {
        let requests = self.requests.as_ref().ok_or(Refusal::Disabled)?;
        let (reply, answer) = oneshot::channel();
        let gone = || Refusal::Unavailable("the incidents stage is not running".into());
        requests.send(make(reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// One page of tickets.
    pub async fn list(&self, query: TicketQuery) -> Result<TicketPage, Refusal> {
        self.ask(|reply| Request::List { query, reply }).await
    }

    /// Attachment `number` of ticket `id`.
    pub async fn attachment(
        &self,
        id: u64,
        number: u32,
    ) -> Result<faultline_incidents::store::Attachment, Refusal> {
        self.ask(|reply| Request::Attachment { id, number, reply })
            .await
    }

    /// One ticket with its timeline.
    pub async fn ticket(&self, id: u64) -> Result<Ticket, Refusal> {
        self.ask(|reply| Request::Get { id, reply }).await
    }

    /// Applies an engineer's change to a ticket; the ticket after it.
    pub async fn change(&self, user: &User, id: u64, command: Command) -> Result<Ticket, Refusal> {
        let ticket = self
            .ask(|reply| Request::Change { id, command, reply })
            .await?;
        tracing::info!(user = %user.name, ticket = id, "ticket changed");
        Ok(ticket)
    }

    /// Opens a ticket reported by hand.
    pub async fn create(&self, user: &User, report: ManualReport) -> Result<Ticket, Refusal> {
        let ticket = self.ask(|reply| Request::Create { report, reply }).await?;
        tracing::info!(user = %user.name, ticket = ticket.id, "ticket created by hand");
        Ok(ticket)
    }

    /// `action` on ticket `id` with its JSON `body`, by `user`: a [`command`] of the ticket, or
    /// `link_report` (a report by hand of the ticket's fault); the ticket after it. The API's
    /// and the console's action routes both come here.
    pub async fn act(
        &self,
        user: &User,
        id: u64,
        action: &str,
        body: &[u8],
    ) -> Result<Ticket, Refusal> {
        if action == "link_report" {
            self.link_report(id, report_link(body, user.name.clone())?)
                .await
        } else {
            self.change(user, id, command(action, body, user.name.clone())?)
                .await
        }
    }

    /// Links a report made by hand to open ticket `id`; the ticket after it.
    pub async fn link_report(&self, id: u64, link: ReportLink) -> Result<Ticket, Refusal> {
        let by = link.by.clone();
        let ticket = self
            .ask(|reply| Request::LinkReport { id, link, reply })
            .await?;
        tracing::info!(user = %by, ticket = id, "report linked to an open ticket");
        Ok(ticket)
    }

    /// The open automatic tickets a report by hand may be about, strongest match first.
    pub async fn link_candidates(&self, query: CandidateQuery) -> Result<Vec<Candidate>, Refusal> {
        self.ask(|reply| Request::LinkCandidates { query, reply })
            .await
    }

    /// Follow-up tasks.
    pub async fn followups(&self, query: FollowUpQuery) -> Result<Vec<FollowUpTask>, Refusal> {
        self.ask(|reply| Request::FollowUps { query, reply }).await
    }

    /// Records a follow-up task as done.
    pub async fn complete_followup(
        &self,
        user: &User,
        key: String,
        note: String,
    ) -> Result<FollowUpTask, Refusal> {
        let by = user.name.clone();
        let task = self
            .ask(|reply| Request::CompleteFollowUp {
                key: key.clone(),
                by,
                note,
                reply,
            })
            .await?;
        tracing::info!(user = %user.name, followup = %key, "follow-up done");
        Ok(task)
    }
}
