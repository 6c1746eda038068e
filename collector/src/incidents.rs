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
//! tasks are in SQLite; on start the stage marks the rules of active tickets (and of their active
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
//! The ticket store is its own SQLite file (`incidents.database`, default `tickets.db` next to
//! `storage.path`): the cursor store and the ticket store each version their schema with
//! `PRAGMA user_version`, which cannot be shared by two migration sequences in one file.

use crate::api::{ManualReport, Refusal, Request, TicketQuery};
use crate::config::{IncidentsConfig, StorageConfig};
use crate::ingest::Accepted;
use anyhow::Context;
use faultline_incidents::desk::{Action, Desk, adopt_actions};
use faultline_incidents::followup::{self, FollowUpKind, FollowUpPolicy, FollowUpTask};
use faultline_incidents::maintenance::{Maintenance, Screened, Suppression};
use faultline_incidents::oncall::OnCall;
use faultline_incidents::settle::{Settle, View as SettleView};
use faultline_incidents::ticket::{Customer, SlaKind};
use faultline_incidents::{
    Change, Command, Evaluator, Fed, FeedPosition, Firing, Inventory, Millis, NewTicket, Owner,
    RuleEvent, RuleSet, Severity, SqliteStore, StoreError, Ticket, TicketPolicy, TicketState,
    TicketStore, TimelineEntry,
};
use faultline_wire::Sample;
use faultline_wire::config_file::{ConfigError, ConfigSource};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Samples of one target at least this far apart are two polls (closer ones are one poll's
/// walk); their gap is the target's poll interval for settling.
const MIN_POLL_GAP_MS: Millis = 1_000;

/// The machine-room rule set built into the binary (`incidents/rules/default.toml`), used when
/// `incidents.rule_files` is empty.
pub const DEFAULT_RULES: &str = include_str!("../../incidents/rules/default.toml");
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
/// Most tickets (or follow-up tasks) a list request reads from the store before filtering.
const LIST_SCAN: usize = 10_000;

/// What the stage runs on, loaded and validated from the files `[incidents]` names.
#[derive(Debug)]
pub struct Setup {
    rules: RuleSet,
    inventory: Inventory,
    maintenance: Maintenance,
    oncall: Option<OnCall>,
    /// `[incidents.tickets]` with the escalation times of each tag's on-call policy.
    policy: TicketPolicy,
}

fn read_optional<T>(
    path: Option<&Path>,
    load: impl FnOnce(&ConfigSource) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    path.map(|p| load(&ConfigSource::read(p)?)).transpose()
}

impl Setup {
    /// Reads and validates the rule, inventory, on-call and maintenance files; errors name the
    /// file, line and field. The on-call file must define every policy `[incidents.escalation]`
    /// names; their levels' `after` become the ticket policy's escalation times per tag (paging
    /// by schedule is the notifier stage's).
    pub fn load(config: &IncidentsConfig) -> Result<Self, ConfigError> {
        let sources = if config.rule_files.is_empty() {
            vec![ConfigSource::from_text(
                Path::new(DEFAULT_RULES_NAME),
                DEFAULT_RULES.to_string(),
            )]
        } else {
            config
                .rule_files
                .iter()
                .map(|p| ConfigSource::read(p))
                .collect::<Result<Vec<_>, _>>()?
        };
        let rules = RuleSet::from_sources(&sources)?;
        let inventory =
            read_optional(config.inventory_file.as_deref(), Inventory::load)?.unwrap_or_default();
        let maintenance = read_optional(config.maintenance_file.as_deref(), |s| {
            Maintenance::load(s, &inventory)
        })?
        .unwrap_or_default();
        let oncall = read_optional(config.oncall_file.as_deref(), |source| {
            let oncall = OnCall::load(source)?;
            match config
                .escalation
                .named()
                .find(|(_, policy)| oncall.escalation(policy).is_none())
            {
                Some((field, policy)) => Err(source.error(
                    "escalations",
                    format!(
                        "no escalation policy `{policy}` (named by incidents.escalation.{field})"
                    ),
                )),
                None => Ok(oncall),
            }
        })?;
        let mut policy = config.tickets.clone();
        if let Some(oncall) = &oncall {
            // Every policy named exists (checked above).
            policy.escalation = TAGS
                .into_iter()
                .filter_map(|tag| {
                    let id = config.escalation.policy(tag)?;
                    Some((tag, oncall.escalation_offsets(id).ok()?))
                })
                .collect();
        }
        Ok(Self {
            rules,
            inventory,
            maintenance,
            oncall,
            policy,
        })
    }

    /// Number of rules loaded.
    pub fn rule_count(&self) -> usize {
        self.rules.rules().len()
    }
}

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
    /// the same fault getting worse, and not held back by maintenance). Symptoms never open a
    /// ticket, so they never page.
    pub fn pages(&self) -> bool {
        self.held_by.is_none()
            && matches!(
                self.entry.change,
                Change::Opened { .. }
                    | Change::Reopened { .. }
                    | Change::Escalated { .. }
                    | Change::SeverityRaised { .. }
            )
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
    }
}

fn tag_label(tag: Owner) -> &'static str {
    match tag {
        Owner::Platform => "platform",
        Owner::Carrier => "carrier",
        Owner::Customer => "customer",
    }
}

fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::P1 => "P1",
        Severity::P2 => "P2",
        Severity::P3 => "P3",
        Severity::P4 => "P4",
    }
}

const TAGS: [Owner; 3] = [Owner::Platform, Owner::Carrier, Owner::Customer];
const SEVERITIES: [Severity; 4] = [Severity::P1, Severity::P2, Severity::P3, Severity::P4];
const UNCLOSED: [TicketState; 3] = [
    TicketState::Open,
    TicketState::Acknowledged,
    TicketState::Resolved,
];

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];
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
    unclosed: Family<Labels1, Gauge>,
    callbacks_pending: Gauge,
    followups_pending: Family<Labels1, Gauge>,
    followups_done: Family<Labels1, Counter>,
    held: Gauge,
    settling: Gauge,
    sla_breaches: Family<Labels2, Counter>,
    evaluation_errors: Family<Labels1, Counter>,
    pages: Family<Labels1, Counter>,
    events: Family<Labels1, Counter>,
    time_to_acknowledge: Durations,
    time_to_resolve: Durations,
}

/// Reasons counted in `faultline_incident_evaluation_errors_total`.
const ERROR_REASONS: [&str; 3] = ["out_of_order", "store", "rejected"];

impl IncidentMetrics {
    /// Creates the instruments (every known label set at zero) and registers them.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let m = Arc::new(Self {
            open: Family::default(),
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

    fn error(&self, reason: &'static str, count: u64) {
        if count > 0 {
            self.evaluation_errors
                .get_or_create(&[("reason", reason)])
                .inc_by(count);
        }
    }

    /// Counts what one new timeline entry means for SLA and duration statistics.
    fn observe(&self, ticket: &Ticket, entry: &TimelineEntry) {
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

    /// Recomputes the gauges from the unclosed tickets and the pending follow-up tasks.
    fn refresh(
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
        let mut open: BTreeMap<(Owner, Severity), i64> = BTreeMap::new();
        let mut states: BTreeMap<&'static str, i64> = BTreeMap::new();
        let mut callbacks = 0;
        for t in tickets {
            if t.state.is_active() {
                *open.entry((t.tag, t.severity)).or_default() += 1;
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

/// An incident held back by a maintenance window, re-evaluated when the window ends.
#[derive(Debug)]
struct Held {
    firing: Firing,
    suppression: Suppression,
}

/// A customer department's follow-up clock.
#[derive(Debug)]
struct Clock {
    /// When its first target appeared.
    first_seen_ms: Millis,
    /// Keys of the tasks created so far.
    created: BTreeSet<String>,
    /// When a follow-up next comes due (`None`: never again).
    next_ms: Option<Millis>,
}

impl Clock {
    /// A clock planned at the next tick.
    fn new(first_seen_ms: Millis) -> Self {
        Self {
            first_seen_ms,
            created: BTreeSet::new(),
            next_ms: Some(first_seen_ms),
        }
    }
}

/// Customer follow-ups: the policy, each department's clock and the tasks not done yet.
#[derive(Debug)]
struct FollowUps {
    policy: FollowUpPolicy,
    clocks: BTreeMap<String, Clock>,
    /// Pending tasks by key.
    pending: BTreeMap<String, FollowUpTask>,
}

impl FollowUps {
    /// The clocks and tasks stored in `store`; every clock is planned at the first tick.
    fn load(policy: FollowUpPolicy, store: &SqliteStore) -> Result<Self, StoreError> {
        let mut clocks: BTreeMap<String, Clock> = store
            .first_seen()?
            .into_iter()
            .map(|(department, first_seen_ms)| (department, Clock::new(first_seen_ms)))
            .collect();
        let mut pending = BTreeMap::new();
        for task in store.followups(None, usize::MAX)? {
            if let Some(clock) = clocks.get_mut(&task.followup.department) {
                clock.created.insert(task.key.clone());
            }
            if task.done.is_none() {
                pending.insert(task.key.clone(), task);
            }
        }
        Ok(Self {
            policy,
            clocks,
            pending,
        })
    }
}

/// The stage's state; lives on its own thread.
struct Stage {
    setup: Setup,
    correlation_window_ms: Millis,
    eval: Evaluator,
    store: SqliteStore,
    /// Every ticket that is not closed, oldest first (what the desk and the timers look at).
    tickets: Vec<Ticket>,
    /// Newest sample time per target.
    last_seen: BTreeMap<String, Millis>,
    /// Gap between the last two polls per target (samples at least [`MIN_POLL_GAP_MS`] apart).
    intervals: BTreeMap<String, Millis>,
    /// New roots waiting for their upstream to report.
    settle: Settle,
    held: Vec<Held>,
    followups: FollowUps,
    /// Events of the message being handled, sent when it is done.
    outbox: Vec<StageEvent>,
    metrics: Arc<IncidentMetrics>,
}

/// The channel ends the rest of the collector uses.
pub struct Handles {
    /// Where ingest sends applied batches.
    pub accepted: mpsc::Sender<Accepted>,
    /// Where the API sends its requests.
    pub requests: mpsc::Sender<Request>,
    /// What the notifier stage consumes.
    pub downstream: Downstream,
}

/// The stage's output, for the notifier stage ([`crate::notifications::start`]).
pub struct Downstream {
    /// Every timeline entry and follow-up task, in order.
    pub events: mpsc::Receiver<StageEvent>,
    /// The on-call file, if `incidents.oncall_file` is set.
    pub oncall: Option<OnCall>,
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
/// thread; its ticket events come out of [`Handles::downstream`].
pub fn start(
    config: &IncidentsConfig,
    storage: &StorageConfig,
    registry: &mut Registry,
) -> anyhow::Result<Handles> {
    let mut setup = Setup::load(config).map_err(anyhow::Error::new)?;
    let oncall = setup.oncall.take();
    let database = config.database_path(storage);
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("incidents.database {}", database.display()))?;
    }
    let store = SqliteStore::open(&database)
        .with_context(|| format!("incidents.database {}", database.display()))?;
    let metrics = IncidentMetrics::register(registry);
    let stage = Stage::open(setup, config, store, metrics.clone())
        .with_context(|| format!("incidents.database {}", database.display()))?;
    let feed_end = stage
        .store
        .feed_end()
        .with_context(|| format!("incidents.database {}", database.display()))?;
    tracing::info!(
        rules = stage.setup.rule_count(),
        targets = stage.setup.inventory.targets().len(),
        maintenance_windows = stage.setup.maintenance.windows().len(),
        unclosed_tickets = stage.tickets.len(),
        departments_seen = stage.followups.clocks.len(),
        pending_followups = stage.followups.pending.len(),
        feed_end,
        database = %database.display(),
        "incident stage ready"
    );
    let (accepted, accepted_rx) = mpsc::channel(ACCEPTED_DEPTH);
    let (requests, requests_rx) = mpsc::channel(REQUEST_DEPTH);
    let (events, events_rx) = mpsc::channel(EVENT_DEPTH);
    let (resume, resumed) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("starting the incident stage's runtime")?;
    std::thread::Builder::new()
        .name("incidents".into())
        .spawn(move || runtime.block_on(stage.run(resumed, accepted_rx, requests_rx, events)))
        .context("starting the incident stage")?;
    Ok(Handles {
        accepted,
        requests,
        downstream: Downstream {
            events: events_rx,
            oncall,
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

impl Stage {
    /// The stage on `store`: the unclosed tickets, the follow-up clocks and tasks, and the rules
    /// of active tickets (and of their active symptoms) restored as firing — they were before a
    /// restart.
    fn open(
        setup: Setup,
        config: &IncidentsConfig,
        store: SqliteStore,
        metrics: Arc<IncidentMetrics>,
    ) -> Result<Self, StoreError> {
        let tickets = store.unclosed()?;
        let followups = FollowUps::load(config.followups.clone(), &store)?;
        let mut eval = Evaluator::new(setup.rules.clone());
        // Symptoms not yet cleared are restored also under resolved roots: a symptom clears on
        // its own. A ticket held open only by the same fault elsewhere has its own rule cleared.
        for t in &tickets {
            if t.state.is_active() && t.condition_cleared_at_ms.is_none() {
                eval.restore_firing(&t.rule, &t.target);
            }
            for s in t.symptoms.iter().filter(|s| s.cleared_at_ms.is_none()) {
                eval.restore_firing(&s.rule, &s.target);
            }
        }
        metrics.refresh(&tickets, (0, 0), &followups.pending);
        Ok(Self {
            setup,
            correlation_window_ms: i64::try_from(config.correlation_window.as_millis())
                .unwrap_or(i64::MAX),
            eval,
            store,
            tickets,
            last_seen: BTreeMap::new(),
            intervals: BTreeMap::new(),
            settle: Settle::new(config.settle),
            held: Vec::new(),
            followups,
            outbox: Vec::new(),
            metrics,
        })
    }

    async fn run(
        mut self,
        resume: oneshot::Receiver<FeedPosition>,
        mut accepted: mpsc::Receiver<Accepted>,
        mut requests: mpsc::Receiver<Request>,
        events: mpsc::Sender<StageEvent>,
    ) {
        match resume.await {
            Ok(after) => self.replay(after, REPLAY_BATCH, &events).await,
            Err(_) => tracing::error!("notifier stage is gone before it said where to resume"),
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                Some(batch) = accepted.recv() => self.on_batch(&batch.agent, &batch.samples),
                Some(request) = requests.recv() => self.on_request(request),
                _ = tick.tick() => self.on_tick(faultline_wire::now_ms()),
            }
            self.metrics.refresh(
                &self.tickets,
                (self.held.len(), self.settle.len()),
                &self.followups.pending,
            );
            self.flush(&events).await;
        }
    }

    /// Sends the events of the message handled to the notifier stage, waiting for room.
    async fn flush(&mut self, events: &mpsc::Sender<StageEvent>) {
        for event in self.outbox.drain(..) {
            let position = event.position();
            if events.send(event).await.is_err() {
                tracing::error!(position, "notifier stage is gone; event dropped");
            }
        }
    }

    /// Sends the notifier stage every feed item after `after` (what it has not handled), oldest
    /// first, read `batch` at a time: timeline entries through the same events as live changes
    /// ([`Stage::ticket_event`], held pages screened), follow-up tasks as they are stored.
    async fn replay(
        &mut self,
        after: FeedPosition,
        batch: usize,
        events: &mpsc::Sender<StageEvent>,
    ) {
        let mut through = after;
        let mut replayed = 0;
        loop {
            let items = match self.store.feed_after(through, batch) {
                Ok(items) => items,
                Err(e) => {
                    self.metrics.error("store", 1);
                    tracing::error!(after = through, error = %e, "cannot read the ticket feed: what follows is not notified");
                    break;
                }
            };
            let Some(last) = items.last() else { break };
            through = last.position;
            replayed += items.len();
            let mut tickets: BTreeMap<u64, Option<Arc<Ticket>>> = BTreeMap::new();
            for item in items {
                match item.fed {
                    Fed::Entry { ticket: id, index } => {
                        let ticket = tickets
                            .entry(id)
                            .or_insert_with(|| match self.store.get(id) {
                                Ok(ticket) => ticket.map(Arc::new),
                                Err(e) => {
                                    self.metrics.error("store", 1);
                                    tracing::error!(ticket = id, error = %e, "cannot read a ticket to replay its events");
                                    None
                                }
                            })
                            .clone();
                        match ticket.and_then(|t| self.ticket_event(t, index, item.position)) {
                            Some(event) => self.send(event),
                            None => tracing::error!(
                                ticket = id,
                                index,
                                position = item.position,
                                "fed timeline entry not found: not notified"
                            ),
                        }
                    }
                    Fed::FollowUp(task) => self.outbox.push(StageEvent::FollowUp {
                        task,
                        position: item.position,
                    }),
                }
            }
            self.flush(events).await;
        }
        if replayed > 0 {
            tracing::info!(
                after,
                through,
                replayed,
                "replayed ticket events and follow-ups the notifier had not handled"
            );
        }
    }

    /// Judges one applied batch: each series in its own time order (a backlog replays in the
    /// samples' time, so tickets carry the original fault times), as the inventory resolves it
    /// (a device's port sample becomes its interface target's, target labels added).
    fn on_batch(&mut self, agent: &str, samples: &[Sample]) {
        let mut ordered: Vec<Cow<'_, Sample>> = samples
            .iter()
            .map(|s| self.setup.inventory.resolve(s))
            .collect();
        ordered.sort_by_key(|s| s.ts_ms);
        let out_of_order = self.eval.out_of_order();
        let now = faultline_wire::now_ms();
        for sample in ordered {
            match self.last_seen.get_mut(&sample.target) {
                Some(seen) => {
                    let gap = sample.ts_ms - *seen;
                    if gap >= MIN_POLL_GAP_MS {
                        match self.intervals.get_mut(&sample.target) {
                            Some(interval) => *interval = gap,
                            None => {
                                self.intervals.insert(sample.target.clone(), gap);
                            }
                        }
                    }
                    *seen = (*seen).max(sample.ts_ms);
                }
                None => {
                    self.last_seen.insert(sample.target.clone(), sample.ts_ms);
                    self.first_sighting(&sample.target, now);
                }
            }
            for event in self.eval.observe(agent, &sample) {
                self.on_rule_event(&event, now, None, false);
            }
        }
        self.release_settled(now);
        self.metrics.error(
            "out_of_order",
            self.eval.out_of_order().saturating_sub(out_of_order),
        );
    }

    /// Starts the follow-up clock of `target`'s customer department when this is the first time
    /// (ever, as stored) one of its targets is seen. Called once per target and process.
    fn first_sighting(&mut self, target: &str, now: Millis) {
        let inventory = &self.setup.inventory;
        let Some(department) = inventory
            .target(target)
            .filter(|t| t.owner == Owner::Customer)
            .and_then(|_| inventory.department_of(target))
        else {
            return;
        };
        if self.followups.clocks.contains_key(&department.id) {
            return;
        }
        match self.store.record_first_seen(&department.id, now) {
            Ok(first_seen_ms) => {
                tracing::info!(department = %department.id, target, first_seen_ms, "first target of a customer department: follow-ups scheduled");
                self.followups
                    .clocks
                    .insert(department.id.clone(), Clock::new(first_seen_ms));
            }
            Err(e) => {
                self.metrics.error("store", 1);
                tracing::error!(department = %department.id, error = %e, "cannot record the department's first target");
            }
        }
    }

    /// Creates the follow-up tasks that came due, for the departments whose clock says so.
    fn plan_followups(&mut self, now: Millis) {
        let inventory = &self.setup.inventory;
        for (department, clock) in &mut self.followups.clocks {
            if clock.next_ms.is_none_or(|next| next > now) {
                continue;
            }
            let Some(entry) = inventory.department(department) else {
                clock.next_ms = None; // No longer in the inventory.
                continue;
            };
            let plan = followup::plan(
                &self.followups.policy,
                department,
                clock.first_seen_ms,
                inventory.is_vip(department),
                &clock.created,
                now,
            );
            clock.next_ms = plan.next_ms;
            for due in plan.due {
                let task = FollowUpTask::new(due, entry.contacts.clone(), now);
                match self.store.create_followup(&task) {
                    Ok(fed) => {
                        clock.created.insert(task.key.clone());
                        if let Some(position) = fed {
                            tracing::info!(key = %task.key, department = %department, due_at_ms = task.followup.due_at_ms, "follow-up due");
                            self.followups
                                .pending
                                .insert(task.key.clone(), task.clone());
                            self.outbox.push(StageEvent::FollowUp { task, position });
                        }
                    }
                    Err(e) => {
                        // Tried again at the next tick.
                        clock.next_ms = Some(now);
                        self.metrics.error("store", 1);
                        tracing::error!(key = %task.key, error = %e, "cannot store a follow-up task");
                    }
                }
            }
        }
    }

    /// Records follow-up task `key` as done by `by` with `note`.
    fn complete_followup(
        &mut self,
        key: &str,
        by: &str,
        note: &str,
        now: Millis,
    ) -> Result<FollowUpTask, Refusal> {
        let task = match self.followups.pending.get(key) {
            Some(task) => task.clone(),
            None => self
                .store
                .followup(key)
                .map_err(store_refusal)?
                .ok_or_else(|| Refusal::UnknownFollowUp(key.to_string()))?,
        };
        let done = task
            .complete(by, note, now)
            .map_err(|e| Refusal::Conflict(e.to_string()))?;
        self.store.complete_followup(&done).map_err(store_refusal)?;
        self.followups.pending.remove(key);
        self.metrics
            .followups_done
            .get_or_create(&[("kind", done.followup.kind.label())])
            .inc();
        tracing::info!(key, by, "follow-up done");
        Ok(done)
    }

    /// Absence, ended maintenance windows, due ticket timers and due follow-ups.
    fn on_tick(&mut self, now: Millis) {
        for event in self.eval.tick(now) {
            self.on_rule_event(&event, now, None, false);
        }
        self.release_settled(now);
        let (ended, kept): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| h.suppression.window_end_ms <= now);
        self.held = kept;
        for held in ended {
            tracing::info!(
                rule = %held.firing.rule,
                target = %held.firing.target,
                window = %held.suppression.window,
                "maintenance window ended with the incident still firing: re-evaluating"
            );
            let event = RuleEvent::Firing(held.firing);
            self.on_rule_event(&event, now, Some(held.suppression), true);
        }
        let due: Vec<(u64, Vec<faultline_incidents::Timer>)> = self
            .tickets
            .iter()
            .filter(|t| t.next_due_ms().is_some_and(|due| due <= now))
            .map(|t| (t.id, t.due_timers(now)))
            .collect();
        for (id, timers) in due {
            for timer in timers {
                if let Err(refusal) = self.apply(id, Command::Fire(timer), now) {
                    self.automatic_failed(id, &refusal);
                }
            }
        }
        self.plan_followups(now);
    }

    /// Judges the firings whose upstream has reported since they were held (or whose wait is
    /// over), in settling's fixed order.
    fn release_settled(&mut self, now: Millis) {
        let eval = &self.eval;
        let pending = |target: &str| eval.is_pending(target);
        let view = SettleView {
            inventory: &self.setup.inventory,
            last_seen_ms: &self.last_seen,
            interval_ms: &self.intervals,
            pending: &pending,
        };
        let released = self.settle.settled(&view, now);
        for firing in released {
            self.on_rule_event(&RuleEvent::Firing(firing), now, None, true);
        }
    }

    /// Runs the desk on a rule event and carries its action out. `ended` is the suppression of
    /// an incident re-evaluated because its window ended: the maintenance screen then judges at
    /// `now` (not at the firing's time, which the window covered) and the ticket records it.
    /// A firing that would open a new root waits for its upstream first ([`Settle`]) unless it
    /// is `settled` already; one still waiting when its condition clears is judged at once,
    /// before its resolution.
    fn on_rule_event(
        &mut self,
        event: &RuleEvent,
        now: Millis,
        ended: Option<Suppression>,
        settled: bool,
    ) {
        if let RuleEvent::Resolved(r) = event {
            self.held
                .retain(|h| !(h.firing.rule == r.rule && h.firing.target == r.target));
            if let Some(firing) = self.settle.take(&r.rule, &r.target) {
                self.on_rule_event(&RuleEvent::Firing(firing), now, None, true);
            }
        }
        let desk = Desk {
            inventory: &self.setup.inventory,
            tickets: &self.tickets,
            last_seen_ms: &self.last_seen,
            correlation_window_ms: self.correlation_window_ms,
            policy: &self.setup.policy,
        };
        let action = desk.on_event(event, now);
        if let (RuleEvent::Firing(firing), Action::Open { .. }, false) = (event, &action, settled) {
            let eval = &self.eval;
            let pending = |target: &str| eval.is_pending(target);
            let view = SettleView {
                inventory: &self.setup.inventory,
                last_seen_ms: &self.last_seen,
                interval_ms: &self.intervals,
                pending: &pending,
            };
            let waiting = self.settle.hold(firing, &view, now);
            if !waiting.is_empty() {
                tracing::info!(
                    rule = %firing.rule,
                    target = %firing.target,
                    waiting = ?waiting,
                    "new root waits for its upstream to report before it opens a ticket"
                );
                return;
            }
        }
        let action = match event {
            RuleEvent::Firing(firing) => {
                let at = if ended.is_some() {
                    now
                } else {
                    firing.fired_at_ms
                };
                match self
                    .setup
                    .maintenance
                    .screen(&self.setup.inventory, action, at)
                {
                    Screened::Proceed(action) => action,
                    Screened::Held { suppression, .. } => {
                        tracing::info!(
                            rule = %firing.rule,
                            target = %firing.target,
                            note = %suppression.note(),
                            "incident held back by maintenance: no ticket, no page"
                        );
                        self.held.push(Held {
                            firing: firing.clone(),
                            suppression,
                        });
                        return;
                    }
                }
            }
            RuleEvent::Resolved(_) => action,
        };
        self.carry_out(action, now, ended);
    }

    fn carry_out(&mut self, action: Action, now: Millis, ended: Option<Suppression>) {
        match action {
            Action::Nothing { why } => tracing::debug!(why, "rule event changes no ticket"),
            Action::Apply { ticket, command } => {
                if let Err(refusal) = self.apply(ticket, command, now) {
                    self.automatic_failed(ticket, &refusal);
                }
            }
            Action::Open {
                ticket,
                attribution,
            } => {
                let root = match self.create(*ticket, now) {
                    Ok(ticket) => ticket,
                    Err(refusal) => {
                        self.automatic_failed(0, &refusal);
                        return;
                    }
                };
                let adopted: Vec<Ticket> = self
                    .tickets
                    .iter()
                    .filter(|t| attribution.adopt.contains(&t.id))
                    .cloned()
                    .collect();
                let adopted: Vec<&Ticket> = adopted.iter().collect();
                for action in adopt_actions(&self.setup.inventory, &root, &adopted) {
                    self.carry_out(action, now, None);
                }
                if let Some(suppression) = ended
                    && let Err(refusal) = self.apply(root.id, suppression.timeline_command(), now)
                {
                    self.automatic_failed(root.id, &refusal);
                }
            }
        }
    }

    fn automatic_failed(&self, ticket: u64, refusal: &Refusal) {
        let reason = match refusal {
            Refusal::Unavailable(_) => "store",
            _ => "rejected",
        };
        self.metrics.error(reason, 1);
        tracing::error!(ticket, error = %refusal, "automatic ticket change failed");
    }

    /// Opens and stores a ticket, announcing its first entry.
    fn create(&mut self, new: NewTicket, now: Millis) -> Result<Ticket, Refusal> {
        let (ticket, _) = Ticket::open(0, new, &self.setup.policy, now);
        let (ticket, positions) = self.store.create(ticket).map_err(store_refusal)?;
        tracing::info!(
            ticket = ticket.id,
            rule = %ticket.rule,
            target = %ticket.target,
            tag = tag_label(ticket.tag),
            reason = %ticket.reason,
            "ticket opened"
        );
        self.announce(&ticket, &positions);
        self.tickets.push(ticket.clone());
        Ok(ticket)
    }

    /// Applies a command to ticket `id`, stores it, then announces the new entries.
    fn apply(&mut self, id: u64, command: Command, now: Millis) -> Result<Ticket, Refusal> {
        let index = self.tickets.iter().position(|t| t.id == id);
        let stored;
        let current = match index {
            Some(i) => &self.tickets[i],
            None => {
                stored = self
                    .store
                    .get(id)
                    .map_err(store_refusal)?
                    .ok_or(Refusal::NotFound(id))?;
                &stored
            }
        };
        let (next, _) = current
            .apply(command, &self.setup.policy, now)
            .map_err(|e| Refusal::Conflict(e.to_string()))?;
        let positions = self.store.update(&next).map_err(store_refusal)?;
        self.announce(&next, &positions);
        match index {
            Some(i) if next.state == TicketState::Closed => {
                self.tickets.remove(i);
            }
            Some(i) => self.tickets[i] = next.clone(),
            None if next.state != TicketState::Closed => self.tickets.push(next.clone()),
            None => {}
        }
        Ok(next)
    }

    /// Announces the newest entries of `ticket`, one per feed position the store gave them.
    fn announce(&mut self, ticket: &Ticket, positions: &[FeedPosition]) {
        let shared = Arc::new(ticket.clone());
        let first = ticket.timeline.len().saturating_sub(positions.len());
        for (index, &position) in (first..).zip(positions) {
            if let Some(event) = self.ticket_event(shared.clone(), index, position) {
                self.send(event);
            }
        }
    }

    /// Counts the entry's SLA and duration statistics and queues its event for the notifier.
    /// Live and replayed entries alike: a replayed one was counted only by the process that died.
    fn send(&mut self, event: TicketEvent) {
        self.metrics.observe(&event.ticket, &event.entry);
        self.outbox.push(StageEvent::Ticket(event));
    }

    /// The event of `ticket`'s timeline entry `index` at feed `position`, its page screened by
    /// the maintenance windows; `None` when the timeline has no such entry.
    fn ticket_event(
        &self,
        ticket: Arc<Ticket>,
        index: usize,
        position: FeedPosition,
    ) -> Option<TicketEvent> {
        let entry = ticket.timeline.get(index)?.clone();
        let held_by = self
            .setup
            .maintenance
            .screen_page(&self.setup.inventory, &ticket, &entry)
            .map(|s| s.window);
        Some(TicketEvent {
            ticket,
            entry,
            index,
            held_by,
            position,
        })
    }

    fn on_request(&mut self, request: Request) {
        let now = faultline_wire::now_ms();
        // A requester that gave up (client gone) no longer needs the answer.
        match request {
            Request::List { query, reply } => {
                let _ = reply.send(self.list(&query));
            }
            Request::Get { id, reply } => {
                let found = match self.tickets.iter().find(|t| t.id == id) {
                    Some(t) => Ok(t.clone()),
                    None => self
                        .store
                        .get(id)
                        .map_err(store_refusal)
                        .and_then(|t| t.ok_or(Refusal::NotFound(id))),
                };
                let _ = reply.send(found);
            }
            Request::Change { id, command, reply } => {
                let _ = reply.send(self.apply(id, command, now));
            }
            Request::Create { report, reply } => {
                let _ = reply.send(self.report(report, now));
            }
            Request::FollowUps { query, reply } => {
                let found = self.store.followups(query.state, LIST_SCAN).map(|tasks| {
                    tasks
                        .into_iter()
                        .filter(|t| {
                            query
                                .department
                                .as_deref()
                                .is_none_or(|d| t.followup.department == d)
                        })
                        .take(query.limit)
                        .collect()
                });
                let _ = reply.send(found.map_err(store_refusal));
            }
            Request::CompleteFollowUp {
                key,
                by,
                note,
                reply,
            } => {
                let _ = reply.send(self.complete_followup(&key, &by, &note, now));
            }
        }
    }

    fn list(&self, query: &TicketQuery) -> Result<Vec<Ticket>, Refusal> {
        let site_of = |target: &str| {
            let room = self.setup.inventory.target(target)?.room.as_deref()?;
            Some(self.setup.inventory.room(room)?.site.as_str())
        };
        Ok(self
            .store
            .list(query.state, LIST_SCAN)
            .map_err(store_refusal)?
            .into_iter()
            .filter(|t| query.tag.is_none_or(|tag| t.tag == tag))
            .filter(|t| query.severity.is_none_or(|s| t.severity == s))
            .filter(|t| {
                query
                    .customer
                    .as_deref()
                    .is_none_or(|c| t.customers.iter().any(|x| x.department == c))
            })
            .filter(|t| {
                query
                    .site
                    .as_deref()
                    .is_none_or(|s| site_of(&t.target) == Some(s))
            })
            .take(query.limit)
            .collect())
    }

    /// A customer-reported fault: the same queue as automatic tickets (no evidence, pages).
    fn report(&mut self, report: ManualReport, now: Millis) -> Result<Ticket, Refusal> {
        let target = self.setup.inventory.target(&report.target);
        let tag = match (report.tag, target) {
            (Some(tag), _) => tag,
            (None, Some(t)) => t.owner,
            (None, None) => {
                return Err(Refusal::Invalid {
                    field: "tag".into(),
                    message: format!(
                        "required: target `{}` is not in the inventory",
                        report.target
                    ),
                });
            }
        };
        let reason = report.reason.unwrap_or_else(|| match report.tag {
            None => format!("reported by a customer; {} owns the target", tag_label(tag)),
            Some(_) => format!(
                "reported by a customer; tagged {} by {}",
                tag_label(tag),
                report.by
            ),
        });
        let customers = Customer::of_target(&self.setup.inventory, &report.target)
            .into_iter()
            .collect();
        let new = NewTicket {
            rule: MANUAL_RULE.to_string(),
            target: report.target,
            summary: report.summary,
            description: report.description,
            severity: report.severity,
            tag,
            reason,
            evidence: None,
            customers,
            started_at_ms: report.started_at_ms.unwrap_or(now),
            opened_by: report.by,
        };
        self.create(new, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the notifier would be told: feed position and a readable summary.
    fn summary(event: &StageEvent) -> (FeedPosition, String) {
        let what = match event {
            StageEvent::Ticket(e) => format!(
                "#{} [{}] {} held by {:?}",
                e.ticket.id,
                e.index,
                e.kind(),
                e.held_by
            ),
            StageEvent::FollowUp { task, .. } => task.key.clone(),
        };
        (event.position(), what)
    }

    #[test]
    fn replay_sends_what_follows_the_handled_position_in_order_and_screened_like_live() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            Some(path)
        };
        let source = ConfigSource::from_text(Path::new("c.toml"), "[incidents]\n".into());
        #[derive(serde::Deserialize)]
        struct Wrapper {
            incidents: IncidentsConfig,
        }
        let mut config = source.parse::<Wrapper>().unwrap().incidents;
        config.inventory_file = file(
            "inventory.toml",
            "[[targets]]\nid = \"edge1\"\nkind = \"device\"\nowner = \"platform\"\n\n[[targets]]\nid = \"host-2\"\nkind = \"host\"\nowner = \"platform\"\n",
        );
        config.maintenance_file = file(
            "maintenance.toml",
            "[[windows]]\nid = \"works\"\nreason = \"firmware\"\nannounced_by = \"platform team\"\nscope = { target = \"edge1\" }\nstart = \"2026-01-01T00:00:00Z\"\nend = \"2026-01-01T01:00:00Z\"\n",
        );
        let store = SqliteStore::open(&dir.path().join("tickets.db")).unwrap();
        let metrics = IncidentMetrics::register(&mut Registry::default());
        let mut stage =
            Stage::open(Setup::load(&config).unwrap(), &config, store, metrics).unwrap();
        // 2026-01-01T00:10:00Z: edge1 is in its window (its page is held), host-2 is not.
        let now = 1_767_226_200_000;
        let new = |target: &str| NewTicket {
            rule: "DeviceUnreachable".into(),
            target: target.into(),
            summary: format!("{target} unreachable"),
            description: String::new(),
            severity: Severity::P2,
            tag: Owner::Platform,
            reason: "platform owns it".into(),
            evidence: None,
            customers: Vec::new(),
            started_at_ms: now,
            opened_by: faultline_incidents::ticket::SYSTEM.into(),
        };
        stage.create(new("edge1"), now).unwrap();
        let host = stage.create(new("host-2"), now).unwrap();
        stage
            .apply(host.id, Command::ConditionCleared, now + 1_000)
            .unwrap();
        let due = faultline_incidents::followup::FollowUp {
            department: "finance".into(),
            kind: FollowUpKind::NewCustomer {
                after: Duration::from_secs(3),
            },
            due_at_ms: now,
        };
        let task = FollowUpTask::new(due, Vec::new(), now);
        let position = stage.store.create_followup(&task).unwrap().unwrap();
        stage.outbox.push(StageEvent::FollowUp { task, position });
        // What went out live — then the process died before the notifier handled the rest.
        let live: Vec<(FeedPosition, String)> =
            stage.outbox.drain(..).map(|e| summary(&e)).collect();
        assert!(live.len() >= 4, "{live:?}");
        assert!(
            live[0].1.ends_with("opened held by Some(\"works\")"),
            "{live:?}"
        );
        assert!(live.windows(2).all(|w| w[0].0 < w[1].0), "{live:?}");

        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut replay = |after: FeedPosition| {
            let (events, mut rx) = mpsc::channel(64);
            runtime.block_on(stage.replay(after, 2, &events));
            let mut sent = Vec::new();
            while let Ok(event) = rx.try_recv() {
                sent.push(summary(&event));
            }
            sent
        };
        // From nothing handled: everything, exactly as live (held page included), in batches of 2.
        assert_eq!(replay(0), live);
        // From each handled position: exactly what follows it.
        for (i, (position, _)) in live.iter().enumerate() {
            assert_eq!(replay(*position), live[i + 1..], "after {position}");
        }
        assert!(stage.outbox.is_empty());
    }

    #[test]
    fn a_ticket_held_open_by_the_same_fault_notices_its_own_rule_again_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let inventory = dir.path().join("inventory.toml");
        std::fs::write(
            &inventory,
            "[[sites]]\nid = \"dc1\"\n\n[[rooms]]\nid = \"r1\"\nsite = \"dc1\"\n\n[[targets]]\nid = \"env-1\"\nkind = \"sensor\"\nroom = \"r1\"\nowner = \"platform\"\n\n[[targets]]\nid = \"env-2\"\nkind = \"sensor\"\nroom = \"r1\"\nowner = \"platform\"\n",
        )
        .unwrap();
        let source = ConfigSource::from_text(Path::new("c.toml"), "[incidents]\n".into());
        #[derive(serde::Deserialize)]
        struct Wrapper {
            incidents: IncidentsConfig,
        }
        let mut config = source.parse::<Wrapper>().unwrap().incidents;
        config.inventory_file = Some(inventory);
        let open = || {
            let store = SqliteStore::open(&dir.path().join("tickets.db")).unwrap();
            let metrics = IncidentMetrics::register(&mut Registry::default());
            Stage::open(Setup::load(&config).unwrap(), &config, store, metrics).unwrap()
        };
        let temperature = |target: &str, value: f64, ts_ms: i64| Sample {
            metric: "faultline_snmp_env_temperature_celsius".into(),
            target: target.into(),
            labels: BTreeMap::new(),
            value,
            ts_ms,
            kind: faultline_wire::SampleKind::Gauge,
        };
        const MIN: i64 = 60_000;
        let t0 = faultline_wire::now_ms() - 10 * MIN;
        let mut stage = open();
        // env-1 then env-2 run hot (RoomTemperatureHigh: above 30 °C for 2 minutes): one ticket.
        for (i, ts) in [0, MIN, 2 * MIN, 3 * MIN].into_iter().enumerate() {
            let hot = vec![
                temperature("env-1", 33.0, t0 + ts),
                temperature("env-2", 33.0, t0 + ts),
            ];
            stage.on_batch("a1", &hot);
            assert!(stage.tickets.len() <= 1, "batch {i}: {:?}", stage.tickets);
        }
        let id = stage.tickets[0].id;
        // env-1 cools, env-2 is still hot: the ticket stays open, its own condition cleared.
        stage.on_batch(
            "a1",
            &[
                temperature("env-1", 25.0, t0 + 4 * MIN),
                temperature("env-2", 33.0, t0 + 4 * MIN),
            ],
        );
        let held = stage.store.get(id).unwrap().unwrap();
        assert!(
            held.state.is_active() && held.condition_cleared_at_ms.is_some(),
            "{held:?}"
        );
        drop(stage);

        // Restarted: env-1 runs hot again for the rule's 2 minutes, then env-2 cools. The ticket
        // must notice its own rule firing again and stay open.
        let mut stage = open();
        for ts in [5 * MIN, 6 * MIN, 7 * MIN, 8 * MIN] {
            stage.on_batch("a1", &[temperature("env-1", 34.0, t0 + ts)]);
        }
        let refired = stage.store.get(id).unwrap().unwrap();
        assert_eq!(refired.condition_cleared_at_ms, None, "{refired:?}");
        stage.on_batch(
            "a1",
            &[
                temperature("env-1", 34.0, t0 + 6 * MIN),
                temperature("env-2", 25.0, t0 + 6 * MIN),
            ],
        );
        let still = stage.store.get(id).unwrap().unwrap();
        assert!(still.state.is_active(), "env-1 is still hot: {still:?}");
    }

    #[test]
    fn built_in_rules_load_and_files_are_checked() {
        let source = ConfigSource::from_text(Path::new("c.toml"), "[incidents]\n".into());
        #[derive(serde::Deserialize)]
        struct Wrapper {
            incidents: IncidentsConfig,
        }
        let mut config = source.parse::<Wrapper>().unwrap().incidents;
        let setup = Setup::load(&config).unwrap();
        assert!(setup.rule_count() >= 10, "the machine-room defaults");

        let dir = tempfile::tempdir().unwrap();
        let inventory = dir.path().join("inventory.toml");
        std::fs::write(
            &inventory,
            "[[targets]]\nid = \"vm-1\"\nkind = \"vm\"\nowner = \"customer\"\ndepends_on = [\"nowhere\"]\n",
        )
        .unwrap();
        config.inventory_file = Some(inventory);
        let err = Setup::load(&config).unwrap_err();
        assert!(err.to_string().contains("inventory.toml"), "{err}");
        assert!(err.field.starts_with("targets[0]"), "{err}");

        // The on-call file must define the escalation policies [incidents.escalation] names.
        config.inventory_file = None;
        let oncall = dir.path().join("oncall.toml");
        std::fs::write(
            &oncall,
            "[[people]]\nid = \"ana\"\n\n[[escalations]]\nid = \"ops\"\nlevels = [{ person = \"ana\" }, { person = \"ana\", after = \"10s\" }]\n",
        )
        .unwrap();
        config.oncall_file = Some(oncall);
        config.escalation.default = Some("ops".into());
        let setup = Setup::load(&config).unwrap();
        assert!(setup.oncall.is_some());
        // The ticket escalates on the policy's times, for every tag (all take the default).
        let times = vec![Duration::ZERO, Duration::from_secs(10)];
        assert_eq!(
            setup.policy.escalation,
            BTreeMap::from(TAGS.map(|tag| (tag, times.clone())))
        );
        config.escalation.carrier = Some("noc".into());
        let err = Setup::load(&config).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.position.map(|p| p.0)),
            ("escalations", Some(4)),
            "{err}"
        );
        assert!(
            err.message.contains("incidents.escalation.carrier"),
            "{err}"
        );
    }
}
