//! The collector's rules → incidents stage (ingest → **rules → incidents** → notifications): the
//! thin shell that runs `faultline-incidents`' pure core as a task.
//!
//! One thread owns the rule evaluator, the ticket store and the in-memory copy of the unclosed
//! tickets, so every change to a ticket — from samples, from timers or from the REST API — is
//! applied one at a time, in the store before it is announced. The stage receives applied batches
//! from ingest ([`Accepted`]) and requests from the API ([`Request`]) over bounded channels; every
//! second it judges absence, re-evaluates incidents held back by a maintenance window that ended,
//! fires the ticket timers that are due and creates the customer follow-up tasks that came due.
//! Every timeline entry and every new follow-up task goes downstream as a [`StageEvent`] over a
//! bounded channel to the notifier stage ([`crate::notifications`]), carrying its position in the
//! store's feed (given in the transaction that stored it).
//!
//! Escalation: the ticket state machine escalates on the `after` times of the escalation policy
//! `[incidents.escalation]` names for the ticket's tag (the same times the notifier pages each
//! level on), derived once at load into the ticket policy; `ack_timeout` is the fallback.
//!
//! Follow-ups (`[incidents.followups]`): the first sample of a customer department's target
//! starts that department's clock (stored once); each tick plans only the departments whose next
//! follow-up is due ([`followup::plan`]) and stores every due task under its unique key before
//! announcing it. Done is recorded through the API (who, when, note); nothing is deleted.
//!
//! Restart: tickets, timelines, every timer deadline, the departments' clocks and the follow-up
//! tasks are in the store; on start the stage marks the rules of active tickets (and of their active
//! symptoms) as firing in the evaluator, so a restart neither duplicates a ticket nor loses the
//! resolution that comes while it was down.
//!
//! Nothing stored is lost to a crash on its way to the notifier (a transactional outbox): the
//! notifier records the feed position it has handled in the same transaction as the
//! notifications it persisted, and before anything else the stage waits for that position
//! ([`Downstream::resume`]) and replays every timeline entry and follow-up task after it
//! ([`TicketStore::feed_after`], bounded batches) through the same events as live changes — held
//! pages screened alike. What was handled is not replayed, so no page is counted or logged twice;
//! a replayed event carries the ticket as stored now. The stage is never more than the channel
//! plus one message's events ahead of the notifier, so a replay is that long at most (unless
//! persisting failed).
//!
//! The ticket store is `[store]` ([`crate::store`]): by default its own SQLite file
//! (`incidents.database`, default `tickets.db` next to `storage.path`: the cursor store and the
//! ticket store each version their schema with `PRAGMA user_version`, which cannot be shared by
//! two migration sequences in one file), or a PostgreSQL server.

mod book;
mod carrier;
mod followups;
mod mail;
mod metrics;
mod requests;
mod setup;
mod stage;

pub use carrier::CarrierMetrics;
pub use metrics::IncidentMetrics;
pub use setup::Setup;

use crate::api::{Refusal, Request};
use crate::config::{IncidentsConfig, StorageConfig};
use crate::ingest::Accepted;
use crate::notifications::Paging;
use crate::store::Location;
use anyhow::Context;
use faultline_daemon::reload::Live;
use faultline_incidents::followup::FollowUpTask;
use faultline_incidents::{Change, FeedPosition, Inventory, StoreError, Ticket, TimelineEntry};
use metrics::{severity_label, tag_label};
use prometheus_client::registry::Registry;
use stage::Stage;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The machine-room rule set built into the binary (`incidents/rules/default.toml`), used when
/// `incidents.rule_files` is empty.
pub const DEFAULT_RULES: &str = include_str!("../../../incidents/rules/default.toml");
/// Where errors in the built-in rule set point.
const DEFAULT_RULES_NAME: &str = "<built-in>/default.toml";
/// Applied batches waiting for the stage before ingest feels back-pressure.
const ACCEPTED_DEPTH: usize = 256;
/// API requests waiting for the stage.
const REQUEST_DEPTH: usize = 64;
/// Ticket events waiting for the notifier stage.
const EVENT_DEPTH: usize = 1024;
/// Feed items read from the store at a time when replaying after a restart.
const REPLAY_BATCH: usize = 256;
/// How often absence is judged and ticket timers are fired.
const TICK: Duration = Duration::from_secs(1);
/// Rule name of tickets created by hand (a customer-reported fault).
pub const MANUAL_RULE: &str = "CustomerReported";
/// Rule name of tickets opened by a mail to the repair mailbox ([`crate::mailbox`]): target
/// `department:<id>` for a known sender, `mailbox:unknown` (untagged, for triage) otherwise.
pub const MAILBOX_RULE: &str = "MailboxReport";
/// Most tickets (or follow-up tasks) a list request reads from the store before filtering.
const LIST_SCAN: usize = 10_000;

/// What the incident stage sends to the notifier stage (incidents → **notifications**), in feed
/// order.
#[derive(Debug, Clone)]
pub enum StageEvent {
    /// A ticket's new timeline entry.
    Ticket(TicketEvent),
    /// A customer follow-up task that came due.
    FollowUp {
        /// The task as stored.
        task: FollowUpTask,
        /// Its position in the store's feed.
        position: FeedPosition,
    },
}

impl StageEvent {
    /// Position in the store's feed: what the notifier records as handled.
    pub fn position(&self) -> FeedPosition {
        match self {
            StageEvent::Ticket(event) => event.position,
            StageEvent::FollowUp { position, .. } => *position,
        }
    }
}

/// One timeline entry of a ticket, sent to the notifier stage (incidents → **notifications**).
#[derive(Debug, Clone)]
pub struct TicketEvent {
    /// The ticket after the change.
    pub ticket: Arc<Ticket>,
    /// What happened.
    pub entry: TimelineEntry,
    /// Position of `entry` in `ticket.timeline` (stable: the timeline is append-only).
    pub index: usize,
    /// The maintenance window holding back this entry's page, if any.
    pub held_by: Option<String>,
    /// Position of `entry` in the store's feed.
    pub position: FeedPosition,
}

impl TicketEvent {
    /// Whether this entry pages the on-call (opened, re-opened, escalated or severity raised by
    /// the same fault getting worse, on a ticket that pages, and not held back by maintenance).
    /// Symptoms never open a ticket, so they never page; planning tickets never page.
    pub fn pages(&self) -> bool {
        self.held_by.is_none() && self.ticket.pages_for(&self.entry.change)
    }

    /// The change's type, as in its JSON `type` field.
    pub fn kind(&self) -> &'static str {
        change_kind(&self.entry.change)
    }
}

fn change_kind(change: &Change) -> &'static str {
    match change {
        Change::Opened { .. } => "opened",
        Change::Acknowledged => "acknowledged",
        Change::Assigned { .. } => "assigned",
        Change::HandedOver { .. } => "handed_over",
        Change::Commented { .. } => "commented",
        Change::ProgressPosted { .. } => "progress_posted",
        Change::ProgressOverdue { .. } => "progress_overdue",
        Change::Retagged { .. } => "retagged",
        Change::Resolved { .. } => "resolved",
        Change::ConditionCleared => "condition_cleared",
        Change::Reopened { .. } => "reopened",
        Change::SymptomLinked { .. } => "symptom_linked",
        Change::SeverityRaised { .. } => "severity_raised",
        Change::SymptomCleared { .. } => "symptom_cleared",
        Change::SlaBreached { .. } => "sla_breached",
        Change::Escalated { .. } => "escalated",
        Change::CallbackDue { .. } => "callback_due",
        Change::CallbackRecorded { .. } => "callback_recorded",
        Change::Closed { .. } => "closed",
        Change::Merged { .. } => "merged",
        Change::FlappingStarted { .. } => "flapping_started",
        Change::FlappingEnded => "flapping_ended",
        Change::ReportLinked { .. } => "report_linked",
        Change::CarrierReported { .. } => "carrier_reported",
        Change::CarrierResponded { .. } => "carrier_responded",
        Change::MailReceived { .. } => "mail_received",
    }
}

/// A validated incident setup for the stage to run on from its next message (config reload →
/// **incidents**, [`crate::reload`]); `done` is answered once it is in effect.
#[derive(Debug)]
pub struct Reload {
    /// The rule, inventory, on-call and maintenance files and the ticket policy, loaded.
    pub setup: Setup,
    /// Answered when the stage runs on `setup`.
    pub done: oneshot::Sender<()>,
}

/// The channel ends the rest of the collector uses.
pub struct Handles {
    /// Where ingest sends applied batches.
    pub accepted: mpsc::Sender<Accepted>,
    /// Where the API sends its requests.
    pub requests: mpsc::Sender<Request>,
    /// Where a config reload sends the new setup.
    pub reload: mpsc::Sender<Reload>,
    /// What the notifier stage consumes.
    pub downstream: Downstream,
    /// The inventory: ingest re-targets samples with it before the series store, so /metrics
    /// shows a port's samples under its interface target and role, as the rules see them. A
    /// reload replaces it.
    pub inventory: Live<Inventory>,
}

/// The stage's output, for the notifier stage ([`crate::notifications::start`]).
pub struct Downstream {
    /// Every timeline entry and follow-up task, in order.
    pub events: mpsc::Receiver<StageEvent>,
    /// Who is paged: the on-call file with `[incidents.escalation]`, if `incidents.oncall_file`
    /// is set. A reload replaces it.
    pub paging: Live<Option<Paging>>,
    /// Where events and pages are counted ([`account`]).
    pub metrics: Arc<IncidentMetrics>,
    /// The end of the store's feed at start: where a notifier that never recorded a position
    /// begins (the history before it is not notified).
    pub feed_end: FeedPosition,
    /// Where the notifier tells the stage the position it has handled; the stage replays what
    /// follows before any live event, and waits for it before handling anything.
    pub resume: oneshot::Sender<FeedPosition>,
}

/// Loads the incident files, opens the ticket store, registers the metrics and starts the stage
/// thread; its ticket events come out of [`Handles::downstream`]. `horizon` is how old a sample
/// ingest still accepts (`ingest.max_behind`): rule memory older than that is not needed.
pub fn start(
    config: &IncidentsConfig,
    storage: &StorageConfig,
    location: &Location,
    horizon: std::time::Duration,
    registry: &mut Registry,
) -> anyhow::Result<Handles> {
    let mut setup = Setup::load(config).map_err(anyhow::Error::new)?;
    let inventory = Live::new(setup.inventory());
    let paging = Live::new(Arc::new(
        setup
            .take_oncall()
            .map(|oncall| Paging::new(oncall, config.escalation.clone())),
    ));
    // The notification outbox's file, and the ticket store's with SQLite.
    let database = config.database_path(storage);
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("incidents.database {}", database.display()))?;
    }
    let store = location.open()?;
    let at = location.describe();
    let metrics = IncidentMetrics::register(registry);
    metrics.know_departments(inventory.get().departments().keys());
    let stage = Stage::open(setup, config, store, metrics.clone(), horizon)
        .with_context(|| format!("ticket store {at}"))?;
    let feed_end = stage
        .book
        .store
        .feed_end()
        .with_context(|| format!("ticket store {at}"))?;
    tracing::info!(
        rules = stage.setup.rule_count(),
        targets = stage.setup.inventory.targets().len(),
        maintenance_windows = stage.setup.maintenance.windows().len(),
        unclosed_tickets = stage.book.tickets.len(),
        departments_seen = stage.followups.clocks.len(),
        pending_followups = stage.followups.pending.len(),
        feed_end,
        store = %at,
        "incident stage ready"
    );
    let (accepted, accepted_rx) = mpsc::channel(ACCEPTED_DEPTH);
    let (requests, requests_rx) = mpsc::channel(REQUEST_DEPTH);
    let (reload, reload_rx) = mpsc::channel(1);
    let (events, events_rx) = mpsc::channel(EVENT_DEPTH);
    let (resume, resumed) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("starting the incident stage's runtime")?;
    std::thread::Builder::new()
        .name("incidents".into())
        .spawn(move || {
            runtime.block_on(stage.run(resumed, accepted_rx, requests_rx, reload_rx, events))
        })
        .context("starting the incident stage")?;
    Ok(Handles {
        accepted,
        requests,
        reload,
        inventory,
        downstream: Downstream {
            events: events_rx,
            paging,
            metrics,
            feed_end,
            resume,
        },
    })
}

/// Counts a ticket event (`faultline_ticket_events_total`, `faultline_incident_pages_total`) and
/// logs it; the notifier stage calls it once the event's notifications are persisted, so an event
/// is counted and logged once, replayed or not.
pub fn account(event: &TicketEvent, metrics: &IncidentMetrics) {
    metrics
        .events
        .get_or_create(&[("change", event.kind())])
        .inc();
    if event.pages() {
        metrics
            .pages
            .get_or_create(&[("tag", tag_label(event.ticket.tag))])
            .inc();
    }
    tracing::info!(
            ticket = event.ticket.id,
            rule = %event.ticket.rule,
            target = %event.ticket.target,
            tag = tag_label(event.ticket.tag),
            severity = severity_label(event.ticket.severity),
            state = event.ticket.state.as_str(),
            change = event.kind(),
            who = %event.entry.who,
            at_ms = event.entry.at_ms,
            pages = event.pages(),
            held_by = event.held_by.as_deref().unwrap_or("-"),
            position = event.position,
            "ticket event"
    );
}

fn store_refusal(e: StoreError) -> Refusal {
    match e {
        StoreError::DuplicateActive { .. } => Refusal::Conflict(e.to_string()),
        StoreError::NotFound(id) => Refusal::NotFound(id),
        StoreError::FollowUpNotPending(_) => Refusal::Conflict(e.to_string()),
        other => Refusal::Unavailable(other.to_string()),
    }
}
