//! The collector's notifier stage (rules → incidents → **notifications**): a thin shell over
//! `faultline-notify`.
//!
//! Every [`TicketEvent`] from the incident stage is turned into notifications
//! ([`from_ticket::notifications`] for the event's timeline entry), whose `paged` engineers come
//! from the on-call file ([`Paging`]: the escalation policy `[incidents.escalation]` names for the
//! ticket's tag), and persisted in the notification outbox ([`Notifier::enqueue_through`]) with
//! the event's feed position, in one transaction, before the event is counted or logged. A page
//! held back by a maintenance window (opened, re-opened or escalated while covered) is not sent;
//! every other entry — resolutions above all — goes out.
//! A customer follow-up task that came due is one notification ([`from_ticket::follow_up`]).
//! [`Notifier::run`] delivers from the outbox until the collector shuts down, with retries and
//! backoff; [`DeliveryMetrics`] reads its counters and backlog at scrape time.
//!
//! The outbox lives in the ticket database (`incidents.database`, `tickets.db` by default): the
//! notifications are derived from the tickets, so both are backed up and restored together, and
//! the agents' cursor file (`storage.path`) that every push commits to is not shared with the
//! notifier's writes. The outbox versions its own `notify_` tables, so it does not touch the
//! ticket store's `PRAGMA user_version`.
//!
//! Restart: the position recorded with the last persisted event is where the incident stage
//! resumes ([`Downstream::resume`]): it replays the feed after it before any live event, so an
//! event lost with the process (in the channel, or not yet persisted) is notified, counted and
//! logged once after the restart, and one handled before is not again. The outbox is opened, and
//! the position recorded, also without `[[notify.channels]]`: channels added later start from
//! then, not from the history.

use crate::ack_link::AckLinks;
use crate::config::EscalationConfig;
use crate::incidents::{Downstream, IncidentMetrics, StageEvent, TicketEvent, account};
use anyhow::Context;
use faultline_daemon::reload::Live;
use faultline_incidents::followup::FollowUpTask;
use faultline_incidents::inventory::Contact;
use faultline_incidents::oncall::{EscalationClock, OnCall, Person};
use faultline_incidents::{Change, FeedPosition, Millis, Ticket};
use faultline_notify::{
    ChannelCounters, Kind, Notification, Notifier, NotifyConfig, Outbox, from_ticket,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Who a ticket's pages go to: the on-call file and the escalation policy per tag.
#[derive(Debug)]
pub struct Paging {
    oncall: OnCall,
    escalation: EscalationConfig,
}

fn contact(person: &Person) -> Contact {
    Contact {
        name: if person.name.is_empty() {
            person.id.clone()
        } else {
            person.name.clone()
        },
        email: person.email.clone(),
        phone: person.phone.clone(),
    }
}

impl Paging {
    /// Paging from a loaded on-call file and `[incidents.escalation]`.
    pub fn new(oncall: OnCall, escalation: EscalationConfig) -> Self {
        Self { oncall, escalation }
    }

    /// The engineers a notification of `kind`, made from `change` on `ticket` at `at_ms`, pages.
    /// A trigger pages the policy's first level (the tag's `[incidents.escalation]` policy), the
    /// ticket's `n`-th escalation its level `n + 1` (its last level once the ticket escalated past
    /// it), a severity raise the level the ticket has reached (whoever it is escalated to hears
    /// the fault got worse); a level with nobody on call passes to the next. A reminder goes to
    /// the assignee (an on-call person id); nothing else pages anyone.
    pub fn paged(
        &self,
        ticket: &Ticket,
        change: &Change,
        kind: Kind,
        at_ms: Millis,
    ) -> Vec<Contact> {
        let person = match kind {
            Kind::Reminder => ticket.assignee.as_deref(),
            Kind::Trigger | Kind::Reopen | Kind::Escalation => {
                let level = match change {
                    Change::Escalated { level } => *level,
                    Change::SeverityRaised { .. } => ticket.escalation_level,
                    _ => 0,
                };
                let level = usize::try_from(level).unwrap_or(usize::MAX);
                return self.on_call(ticket, level, at_ms).into_iter().collect();
            }
            _ => None,
        };
        person
            .and_then(|id| self.oncall.person(id))
            .map(contact)
            .into_iter()
            .collect()
    }

    /// The person paged at escalation `level` (0 = first level) of the ticket's policy.
    fn on_call(&self, ticket: &Ticket, level: usize, at_ms: Millis) -> Option<Contact> {
        let policy = self.escalation.policy(ticket.tag)?;
        let chain = self
            .oncall
            .escalation_chain(policy, &EscalationClock::of_ticket(ticket), at_ms)
            .inspect_err(
                |e| tracing::warn!(ticket = ticket.id, error = %e, "cannot page by on-call"),
            )
            .ok()?;
        let from = level.min(chain.steps.len().saturating_sub(1));
        let found = chain.steps[from..]
            .iter()
            .find_map(|step| step.person.as_deref())
            .and_then(|id| self.oncall.person(id));
        if found.is_none() {
            tracing::warn!(ticket = ticket.id, policy, level, "nobody on call to page");
        }
        found.map(contact)
    }
}

/// Whether a notification of `kind` is a page (it wakes the on-call).
fn is_page(kind: Kind) -> bool {
    matches!(kind, Kind::Trigger | Kind::Reopen | Kind::Escalation)
}

/// Turns ticket events into persisted notifications.
struct Stage {
    /// Without channels it only records the positions handled.
    notifier: Notifier,
    paging: Live<Option<Paging>>,
    /// Signs the acknowledge link put into pages, when `[api]` has a key.
    ack_links: Option<AckLinks>,
    metrics: Arc<IncidentMetrics>,
}

impl Stage {
    /// The notifications of one event, `paged` filled; none for a held page.
    fn notifications(&self, event: &TicketEvent) -> Vec<Notification> {
        if let Some(window) = &event.held_by {
            tracing::info!(ticket = event.ticket.id, change = event.kind(), %window, "page held back by maintenance: not sent");
            return Vec::new();
        }
        let occurrence = u64::try_from(event.index).unwrap_or(u64::MAX);
        let paging = self.paging.get();
        from_ticket::notifications(&event.ticket, event.index, &[])
            .into_iter()
            .take_while(|n| n.occurrence == occurrence)
            // A ticket that does not page (capacity planning) waits in the queue: its opening is
            // not announced, and it neither re-opens nor escalates anyone's phone.
            .filter(|n| event.ticket.pages || !is_page(n.kind))
            .map(|mut n| {
                if let Some(paging) = paging.as_ref() {
                    n.paged = paging.paged(&event.ticket, &event.entry.change, n.kind, n.at_ms);
                }
                if let (true, Some(links), Some(person)) =
                    (is_page(n.kind), &self.ack_links, n.paged.first())
                {
                    n.ack_url = Some(links.url(n.ticket_id, &person.name, n.at_ms));
                }
                n
            })
            .collect()
    }

    /// Persists the event's notifications with its feed position, then counts and logs it.
    fn handle(&self, event: &TicketEvent) {
        self.persist(&self.notifications(event), event.position);
        account(event, &self.metrics);
    }

    /// Persists the notification of a follow-up task that came due with its feed position.
    fn follow_up(&self, task: &FollowUpTask, position: FeedPosition) {
        self.persist(&[from_ticket::follow_up(task)], position);
    }

    /// Persists `notifications` and records `position` as handled, in one transaction.
    fn persist(&self, notifications: &[Notification], position: FeedPosition) {
        if let Err(e) = self.notifier.enqueue_through(notifications, position) {
            let labels: Vec<String> = notifications.iter().map(Notification::label).collect();
            tracing::error!(position, notifications = ?labels, error = %e, "cannot persist notifications: they are not sent");
        }
    }
}

/// The running notifier stage; [`Notifications::stop`] ends delivery at shutdown.
pub struct Notifications {
    delivery: Option<(watch::Sender<bool>, JoinHandle<()>, Duration)>,
}

/// Opens the outbox (in the ticket database), tells the incident stage where to resume, starts
/// the thread that turns ticket events into notifications and, when `[[notify.channels]]` are
/// configured, the delivery loop and the delivery metrics.
pub fn start(
    config: &NotifyConfig,
    database: &Path,
    downstream: Downstream,
    ack_links: Option<AckLinks>,
    registry: &mut Registry,
) -> anyhow::Result<Notifications> {
    let Downstream {
        events,
        paging,
        metrics,
        feed_end,
        resume,
    } = downstream;
    let outbox = Outbox::open(database)
        .with_context(|| format!("notification outbox in {}", database.display()))?;
    let notifier = Notifier::new(config.clone(), outbox).context("[notify]")?;
    let position = notifier
        .resume(feed_end)
        .with_context(|| format!("notification outbox in {}", database.display()))?;
    let channels = !config.channels.is_empty();
    if channels {
        registry.register_collector(Box::new(DeliveryMetrics(notifier.clone())));
        tracing::info!(channels = config.channels.len(), outbox = %database.display(), position, "notifier ready");
    } else {
        tracing::info!(
            position,
            "no [[notify.channels]]: ticket events are only logged"
        );
    }
    let delivery = channels.then(|| {
        let notifier = notifier.clone();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            notifier
                .run(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
        });
        // A round in progress finishes first: at most one attempt's timeout.
        (stop, task, config.retry.timeout + Duration::from_secs(1))
    });
    let stage = Stage {
        notifier,
        paging,
        ack_links,
        metrics,
    };
    std::thread::Builder::new()
        .name("notifications".into())
        .spawn(move || consume(stage, events))
        .context("starting the notifier stage")?;
    if resume.send(position).is_err() {
        tracing::error!("incident stage is gone: nothing to notify");
    }
    Ok(Notifications { delivery })
}

/// Handles events until the incident stage is gone. On its own thread: enqueueing writes SQLite.
fn consume(stage: Stage, mut events: mpsc::Receiver<StageEvent>) {
    while let Some(event) = events.blocking_recv() {
        match event {
            StageEvent::Ticket(event) => stage.handle(&event),
            StageEvent::FollowUp { task, position } => stage.follow_up(&task, position),
        }
    }
}

impl Notifications {
    /// Stops the delivery loop after its current round (bounded by the attempt timeout); what is
    /// not delivered stays in the outbox for the next start.
    pub async fn stop(self) {
        if let Some((stop, task, grace)) = self.delivery {
            let _ = stop.send(true);
            if tokio::time::timeout(grace, task).await.is_err() {
                tracing::warn!("notification delivery did not stop in time");
            }
        }
    }
}

/// Scrape-time metrics of the notifier: counters since start and the outbox backlog, by channel.
pub struct DeliveryMetrics(Notifier);

impl std::fmt::Debug for DeliveryMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeliveryMetrics")
    }
}

impl Collector for DeliveryMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counters = self.0.counters();
        type Count = fn(&ChannelCounters) -> u64;
        let families: [(&str, &str, Count); 3] = [
            (
                "faultline_notifications_sent",
                "Notifications delivered, by channel",
                |c| c.sent,
            ),
            (
                "faultline_notifications_failed",
                "Notification delivery attempts that failed (each retry counts), by channel",
                |c| c.failed,
            ),
            (
                "faultline_notifications_given_up",
                "Notifications given up on (rejected by the receiver or out of attempts), by channel",
                |c| c.given_up,
            ),
        ];
        for (name, help, field) in families {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (channel, c) in &counters {
                metric
                    .encode_family(&[("channel", channel.as_str())])?
                    .encode_counter::<NoLabelSet, u64, f64>(&field(c), None)?;
            }
        }
        let mut backlog: BTreeMap<String, (u64, u64)> = counters
            .iter()
            .map(|(channel, _)| (channel.clone(), (0, 0)))
            .collect();
        match self.0.backlog() {
            Ok(rows) => backlog.extend(rows.into_iter().map(|(c, b)| (c, (b.pending, b.failed)))),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the notification backlog");
                backlog.clear();
            }
        }
        let mut metric = encoder.encode_descriptor(
            "faultline_notifications_backlog",
            "Notifications in the outbox by channel and state: pending (not delivered yet) or failed (given up)",
            None,
            MetricType::Gauge,
        )?;
        for (channel, (pending, failed)) in &backlog {
            for (state, value) in [("pending", pending), ("failed", failed)] {
                metric
                    .encode_family(&[("channel", channel.as_str()), ("state", state)])?
                    .encode_gauge(&i64::try_from(*value).unwrap_or(i64::MAX))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_incidents::ticket::{SYSTEM, TicketPolicy, TimelineEntry};
    use faultline_incidents::{Command, NewTicket, Owner, Severity};
    use faultline_wire::config_file::ConfigSource;

    const S: Millis = 1000;

    const ONCALL: &str = r#"
[[people]]
id = "ana"
name = "Ana Berg"
email = "ana@example.com"

[[people]]
id = "bo"
phone = "+49 30 5555 0102"

[[schedules]]
id = "primary"
time_zone = "UTC"
rotation = "daily"
handoff = "09:00"
start = "2020-01-06"
participants = ["ana"]

[[escalations]]
id = "ops"
levels = [{ schedule = "primary", after = "0s" }, { person = "bo", after = "10m" }]
"#;

    fn paging() -> Paging {
        let source = ConfigSource::from_text(Path::new("oncall.toml"), ONCALL.to_string());
        let escalation = EscalationConfig {
            platform: Some("ops".into()),
            ..EscalationConfig::default()
        };
        Paging::new(OnCall::load(&source).unwrap(), escalation)
    }

    fn ticket(tag: Option<Owner>) -> Ticket {
        let new = NewTicket {
            rule: "DeviceUnreachable".into(),
            target: "edge1".into(),
            summary: "edge1 unreachable".into(),
            description: "no answer".into(),
            severity: Severity::P1,
            tag,
            reason: "platform owns edge1".into(),
            evidence: None,
            customers: Vec::new(),
            started_at_ms: 0,
            opened_by: SYSTEM.into(),
            channel: faultline_incidents::Channel::Monitoring,
            pages: true,
            reporter: None,
        };
        Ticket::open(3, new, &TicketPolicy::default(), 1_700_000_000 * S).0
    }

    fn names(contacts: &[Contact]) -> Vec<&str> {
        contacts.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn pages_follow_the_tags_escalation_policy() {
        let paging = paging();
        let t = ticket(Some(Owner::Platform));
        let opened = t.timeline[0].change.clone();
        let at = t.opened_at_ms;
        let cases = [
            (Kind::Trigger, opened.clone(), vec!["Ana Berg"]),
            (Kind::Escalation, Change::Escalated { level: 1 }, vec!["bo"]),
            (Kind::Escalation, Change::Escalated { level: 5 }, vec!["bo"]),
            (Kind::Resolve, opened.clone(), vec![]),
            (Kind::Reminder, opened.clone(), vec![]),
        ];
        for (kind, change, want) in cases {
            assert_eq!(names(&paging.paged(&t, &change, kind, at)), want, "{kind}");
        }
        // A severity raise pages the level the ticket has reached.
        let raised = Change::SeverityRaised {
            from: Severity::P2,
            to: Severity::P1,
            rule: "RoomTemperatureCritical".into(),
            target: "edge1".into(),
        };
        let mut escalated = t.clone();
        escalated.escalation_level = 1;
        for (ticket, want) in [(&t, "Ana Berg"), (&escalated, "bo")] {
            assert_eq!(
                names(&paging.paged(ticket, &raised, Kind::Trigger, at)),
                [want]
            );
        }
        let mut assigned = t.clone();
        assigned.assignee = Some("bo".into());
        assert_eq!(
            names(&paging.paged(&assigned, &opened, Kind::Reminder, at)),
            ["bo"]
        );
        // No policy for carrier tickets and no default: the page names nobody.
        let carrier = ticket(Some(Owner::Carrier));
        assert!(
            paging
                .paged(&carrier, &opened, Kind::Trigger, at)
                .is_empty()
        );
        // An untagged ticket (a mail waiting for triage) pages along the default policy, the
        // service desk's path; without one, nobody.
        let untagged = ticket(None);
        assert!(
            paging
                .paged(&untagged, &opened, Kind::Trigger, at)
                .is_empty()
        );
        let desk = Paging::new(
            paging.oncall.clone(),
            EscalationConfig {
                default: Some("ops".into()),
                ..EscalationConfig::default()
            },
        );
        assert_eq!(
            names(&desk.paged(&untagged, &opened, Kind::Trigger, at)),
            ["Ana Berg"]
        );
    }

    #[test]
    fn a_ticket_that_does_not_page_announces_no_page() {
        let dir = tempfile::tempdir().unwrap();
        let source = ConfigSource::from_text(
            Path::new("collector.toml"),
            "[[channels]]\nname = \"hook\"\n[channels.webhook]\nurl = \"http://127.0.0.1:9/\"\n"
                .into(),
        );
        let config: NotifyConfig = source.parse().unwrap();
        let outbox = Outbox::open(&dir.path().join("tickets.db")).unwrap();
        let stage = Stage {
            notifier: Notifier::new(config, outbox).unwrap(),
            paging: Live::new(Arc::new(Some(paging()))),
            ack_links: None,
            metrics: IncidentMetrics::register(&mut Registry::default()),
        };
        for pages in [true, false] {
            let mut opened = ticket(Some(Owner::Platform));
            opened.pages = pages;
            let event = TicketEvent {
                entry: opened.timeline[0].clone(),
                ticket: Arc::new(opened),
                index: 0,
                held_by: None,
                position: 1,
            };
            let kinds: Vec<Kind> = stage.notifications(&event).iter().map(|n| n.kind).collect();
            assert_eq!(kinds.contains(&Kind::Trigger), pages, "{kinds:?}");
            assert_eq!(event.pages(), pages);
        }
    }

    #[test]
    fn held_pages_are_not_enqueued_and_every_event_records_its_position() {
        const HOOK: &str =
            "[[channels]]\nname = \"hook\"\n[channels.webhook]\nurl = \"http://127.0.0.1:9/\"\n";
        // With a channel, and without any: the position handled is recorded either way, so
        // channels added later do not replay the history.
        for (channels, want) in [(HOOK, vec![Some(Kind::Resolve)]), ("", vec![])] {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("tickets.db");
            let source = ConfigSource::from_text(Path::new("collector.toml"), channels.into());
            let config: NotifyConfig = source.parse().unwrap();
            let notifier = Notifier::new(config, Outbox::open(&db).unwrap()).unwrap();
            assert_eq!(
                notifier.resume(5).unwrap(),
                5,
                "a new outbox starts at the end"
            );
            let stage = Stage {
                notifier: notifier.clone(),
                paging: Live::new(Arc::new(Some(paging()))),
                ack_links: None,
                metrics: IncidentMetrics::register(&mut Registry::default()),
            };
            let opened = ticket(Some(Owner::Platform));
            let (resolved, entries) = opened
                .apply(
                    Command::ConditionCleared,
                    &TicketPolicy::default(),
                    opened.opened_at_ms + 60 * S,
                )
                .unwrap();
            let resolved = Arc::new(resolved);
            let event = |entry: TimelineEntry, index: usize, held_by: Option<&str>| TicketEvent {
                ticket: resolved.clone(),
                entry,
                index,
                held_by: held_by.map(str::to_string),
                position: 6 + index as u64,
            };
            let first = resolved.timeline.len() - entries.len();
            stage.handle(&event(resolved.timeline[0].clone(), 0, Some("works")));
            assert_eq!(notifier.resume(0).unwrap(), 6, "a held page is handled too");
            for (i, entry) in entries.into_iter().enumerate() {
                stage.handle(&event(entry, first + i, None));
            }
            let kinds: Vec<Option<Kind>> = Outbox::open(&db)
                .unwrap()
                .deliveries(&from_ticket::dedup_key(3))
                .unwrap()
                .into_iter()
                .map(|d| d.kind)
                .collect();
            assert_eq!(kinds, want, "{channels}");
            assert_eq!(
                notifier.resume(0).unwrap(),
                5 + resolved.timeline.len() as u64,
                "{channels}"
            );
            let backlog = notifier.backlog().unwrap();
            assert_eq!(
                backlog.iter().map(|(_, b)| b.pending).sum::<u64>(),
                want.len() as u64
            );
        }
    }
}
