//! The incident stage's task (ingest → **rules → incidents** → notifications): one thread owns
//! the [`Dispatch`] (evaluator, settling, maintenance holds), the [`StoreBook`] (unclosed tickets
//! over SQLite) and the follow-up clocks, so every change to a ticket — from samples, from timers
//! or from the REST API — is applied one at a time, in the store before it is announced. What the
//! rules must recall after a restart ([`faultline_incidents::eval::SeriesMemory`]) is stored
//! after every message, before a judged batch is acknowledged. After a restart it first replays
//! to the notifier what the notifier had not handled.

use super::book::StoreBook;
use super::followups::FollowUps;
use super::{IncidentMetrics, REPLAY_BATCH, Reload, Setup, StageEvent, TICK};
use crate::api::Request;
use crate::config::IncidentsConfig;
use crate::ingest::Accepted;
use faultline_daemon::log_limit::LogLimiter;
use faultline_incidents::dispatch::Dispatch;
use faultline_incidents::eval::MemoryChange;
use faultline_incidents::{
    Command, Evaluator, Fed, FeedPosition, Millis, Store, StoreError, Ticket,
};
use faultline_wire::Sample;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The stage's state; lives on its own thread.
pub(super) struct Stage {
    pub(super) setup: Arc<Setup>,
    pub(super) dispatch: Dispatch,
    pub(super) book: StoreBook,
    pub(super) followups: FollowUps,
    pub(super) metrics: Arc<IncidentMetrics>,
    /// Rule memory the store refused, by (rule, series), retried with the next message.
    unsaved_memory: BTreeMap<(String, String), MemoryChange>,
    /// One log line a minute while the store refuses the memory or does not answer.
    memory_errors: LogLimiter<()>,
}

impl Stage {
    /// The stage on `store`: the unclosed tickets, the follow-up clocks and tasks, the rules
    /// of active tickets (and of their active symptoms) restored as firing — they were before a
    /// restart — and the rest of the rules' memory recalled. Memory older than `horizon` (the
    /// oldest sample ingest accepts) that nothing needs is forgotten.
    pub(super) fn open(
        setup: Setup,
        config: &IncidentsConfig,
        mut store: Box<dyn Store>,
        metrics: Arc<IncidentMetrics>,
        horizon: Duration,
    ) -> Result<Self, StoreError> {
        let tickets = store.unclosed()?;
        let followups = FollowUps::load(config.followups.clone(), &*store)?;
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
        let now = faultline_wire::now_ms();
        let horizon = i64::try_from(horizon.as_millis()).unwrap_or(i64::MAX);
        let memory = store.rule_memory()?;
        let remembered = memory.len();
        let forget = eval.recall(memory, now, now.saturating_sub(horizon));
        store.save_rule_memory(&forget)?;
        tracing::info!(
            recalled = remembered - forget.len(),
            forgotten = forget.len(),
            "rule memory recalled"
        );
        metrics.refresh(&tickets, (0, 0), &followups.pending);
        let setup = Arc::new(setup);
        Ok(Self {
            dispatch: Dispatch::new(eval, config.settle),
            book: StoreBook {
                setup: Arc::clone(&setup),
                store,
                tickets,
                outbox: Vec::new(),
                metrics: Arc::clone(&metrics),
            },
            setup,
            followups,
            metrics,
            unsaved_memory: BTreeMap::new(),
            memory_errors: LogLimiter::new(Duration::from_secs(60), 1),
        })
    }

    pub(super) async fn run(
        mut self,
        resume: oneshot::Receiver<FeedPosition>,
        mut accepted: mpsc::Receiver<Accepted>,
        mut requests: mpsc::Receiver<Request>,
        mut reloads: mpsc::Receiver<Reload>,
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
                Some(batch) = accepted.recv() => {
                    let verdict = match self.store_answers() {
                        Ok(()) => {
                            self.on_batch(&batch.agent, &batch.samples);
                            self.remember()
                        }
                        Err(why) => Err(why),
                    };
                    // Ingest waits for this before it acknowledges the batch.
                    let _ = batch.judged.send(verdict);
                }
                Some(request) = requests.recv() => {
                    self.on_request(request);
                    let _ = self.remember();
                }
                Some(reload) = reloads.recv() => {
                    self.on_reload(reload.setup);
                    let _ = reload.done.send(());
                }
                _ = tick.tick() => {
                    self.on_tick(faultline_wire::now_ms());
                    let _ = self.remember();
                }
            }
            self.metrics.refresh(
                &self.book.tickets,
                (self.dispatch.held(), self.dispatch.settling()),
                &self.followups.pending,
            );
            self.flush(&events).await;
        }
    }

    /// Runs on `setup` from the next message on (a config reload): the rules keep the state of
    /// every series of a rule still there; tickets of a rule that is gone stay as they are (an
    /// engineer resolves them).
    fn on_reload(&mut self, setup: Setup) {
        let dropped = self.dispatch.replace_rules(setup.rules.clone());
        self.metrics
            .know_departments(setup.inventory.departments().keys());
        tracing::info!(
            rules = setup.rule_count(),
            targets = setup.inventory.targets().len(),
            maintenance_windows = setup.maintenance.windows().len(),
            "incident rules, inventory and maintenance reloaded"
        );
        if !dropped.is_empty() {
            tracing::warn!(rules = ?dropped, "rules removed by the reload: their open tickets are resolved by hand");
        }
        self.setup = Arc::new(setup);
        self.book.setup = Arc::clone(&self.setup);
    }

    /// Whether the store answers (a cheap read), asked before a batch is judged: a batch is
    /// judged only on a store that can keep the tickets it opens. Otherwise it is refused
    /// unjudged (ingest answers 503, the agent sends it again), so a store that is down — a
    /// PostgreSQL server gone away — loses no firing. Left: a store failing between this read
    /// and the batch's writes (logged as `automatic ticket change failed`).
    fn store_answers(&mut self) -> Result<(), String> {
        let Err(e) = self.book.store.feed_end() else {
            return Ok(());
        };
        self.metrics.error("store", 1);
        if let Some(held_back) = self.memory_errors.check(&(), std::time::Instant::now()) {
            tracing::error!(error = %e, held_back, "ticket store unavailable; batches are refused unjudged until it answers");
        }
        Err(format!("ticket store: {e}"))
    }

    /// Stores what the rules must recall after a restart and changed while handling the last
    /// message (with what the store refused before); on failure keeps it for the next message
    /// and says why, so a batch is not acknowledged on memory that was not stored.
    fn remember(&mut self) -> Result<(), String> {
        for change in self.dispatch.take_memory() {
            let key = match &change {
                MemoryChange::Keep(m) => (m.rule.clone(), m.series.clone()),
                MemoryChange::Forget { rule, series } => (rule.clone(), series.clone()),
            };
            self.unsaved_memory.insert(key, change);
        }
        if self.unsaved_memory.is_empty() {
            return Ok(());
        }
        let changes: Vec<MemoryChange> = self.unsaved_memory.values().cloned().collect();
        match self.book.store.save_rule_memory(&changes) {
            Ok(()) => {
                self.unsaved_memory.clear();
                Ok(())
            }
            Err(e) => {
                self.metrics.error("store", 1);
                if let Some(held_back) = self.memory_errors.check(&(), std::time::Instant::now()) {
                    tracing::error!(error = %e, unsaved = changes.len(), held_back, "cannot store the rules' memory; batches are not acknowledged until it can");
                }
                Err(format!("ticket store: {e}"))
            }
        }
    }

    /// Sends the events of the message handled to the notifier stage, waiting for room.
    async fn flush(&mut self, events: &mpsc::Sender<StageEvent>) {
        for event in self.book.outbox.drain(..) {
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
            let items = match self.book.store.feed_after(through, batch) {
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
                            .or_insert_with(|| match self.book.store.get(id) {
                                Ok(ticket) => ticket.map(Arc::new),
                                Err(e) => {
                                    self.metrics.error("store", 1);
                                    tracing::error!(ticket = id, error = %e, "cannot read a ticket to replay its events");
                                    None
                                }
                            })
                            .clone();
                        match ticket.and_then(|t| self.book.ticket_event(t, index, item.position)) {
                            Some(event) => self.book.send(event),
                            None => tracing::error!(
                                ticket = id,
                                index,
                                position = item.position,
                                "fed timeline entry not found: not notified"
                            ),
                        }
                    }
                    Fed::FollowUp(task) => self.book.outbox.push(StageEvent::FollowUp {
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
    /// samples' time, so tickets carry the original fault times). Ingest has already resolved
    /// the samples against the inventory (a device's port sample is its interface target's).
    pub(super) fn on_batch(&mut self, agent: &str, samples: &[Sample]) {
        let setup = Arc::clone(&self.setup);
        let env = setup.env();
        let mut ordered: Vec<&Sample> = samples.iter().collect();
        ordered.sort_by_key(|s| s.ts_ms);
        let out_of_order = self.dispatch.out_of_order();
        let now = faultline_wire::now_ms();
        if let Some(newest) = ordered.last() {
            self.dispatch
                .pushed(&env, &mut self.book, agent, newest.ts_ms, now);
        }
        let mut first_seen = Vec::new();
        for sample in &ordered {
            if self
                .dispatch
                .observe(&env, &mut self.book, agent, sample, now)
            {
                first_seen.push(sample.target.as_str());
            }
        }
        self.dispatch.release(&env, &mut self.book, now);
        for target in first_seen {
            self.first_sighting(target, now);
        }
        self.metrics.error(
            "out_of_order",
            self.dispatch.out_of_order().saturating_sub(out_of_order),
        );
    }

    /// Absence, settled incidents, ended maintenance windows, due ticket timers, carrier
    /// tickets due to be reported, and due follow-ups.
    fn on_tick(&mut self, now: Millis) {
        let setup = Arc::clone(&self.setup);
        self.dispatch.tick(&setup.env(), &mut self.book, now);
        let due: Vec<(u64, Vec<faultline_incidents::Timer>)> = self
            .book
            .tickets
            .iter()
            .filter(|t| t.next_due_ms().is_some_and(|due| due <= now))
            .map(|t| (t.id, t.due_timers(now)))
            .collect();
        for (id, timers) in due {
            for timer in timers {
                if let Err(refusal) = self.book.change_ticket(id, Command::Fire(timer), now) {
                    self.book.automatic_failed(id, &refusal);
                }
            }
        }
        self.book.report_to_carriers(now);
        self.plan_followups(now);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::incidents::Setup;
    use faultline_incidents::followup::{FollowUpKind, FollowUpTask};
    use faultline_incidents::store::test_db::Db;
    use faultline_incidents::{NewTicket, Owner, Severity};
    use faultline_wire::config_file::ConfigSource;
    use prometheus_client::registry::Registry;
    use std::path::Path;
    use std::time::Duration;

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

    faultline_incidents::both_stores!(
        replay_sends_what_follows_the_handled_position_in_order_and_screened_like_live,
        a_ticket_held_open_by_the_same_fault_notices_its_own_rule_again_after_a_restart,
    );

    fn replay_sends_what_follows_the_handled_position_in_order_and_screened_like_live(db: &Db) {
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
        let metrics = IncidentMetrics::register(&mut Registry::default());
        let mut stage = Stage::open(
            Setup::load(&config).unwrap(),
            &config,
            db.open(),
            metrics,
            Duration::from_secs(86_400),
        )
        .unwrap();
        // 2026-01-01T00:10:00Z: edge1 is in its window (its page is held), host-2 is not.
        let now = 1_767_226_200_000;
        let new = |target: &str| NewTicket {
            rule: "DeviceUnreachable".into(),
            target: target.into(),
            summary: format!("{target} unreachable"),
            description: String::new(),
            severity: Severity::P2,
            tag: Some(Owner::Platform),
            reason: "platform owns it".into(),
            evidence: None,
            customers: Vec::new(),
            started_at_ms: now,
            opened_by: faultline_incidents::ticket::SYSTEM.into(),
            channel: faultline_incidents::Channel::Monitoring,
            pages: true,
            reporter: None,
        };
        stage.book.create_ticket(new("edge1"), now).unwrap();
        let host = stage.book.create_ticket(new("host-2"), now).unwrap();
        stage
            .book
            .change_ticket(host.id, Command::ConditionCleared, now + 1_000)
            .unwrap();
        let due = faultline_incidents::followup::FollowUp {
            department: "finance".into(),
            kind: FollowUpKind::NewCustomer {
                after: Duration::from_secs(3),
            },
            due_at_ms: now,
        };
        let task = FollowUpTask::new(due, Vec::new(), now);
        let position = stage.book.store.create_followup(&task).unwrap().unwrap();
        stage
            .book
            .outbox
            .push(StageEvent::FollowUp { task, position });
        // What went out live — then the process died before the notifier handled the rest.
        let live: Vec<(FeedPosition, String)> =
            stage.book.outbox.drain(..).map(|e| summary(&e)).collect();
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
        assert!(stage.book.outbox.is_empty());
    }

    /// A stage on a new connection to `db` with inventory `inventory` (written into `dir`) and
    /// default settings (a second call on the same `db` is a restart).
    pub(in crate::incidents) fn stage_with_inventory(
        db: &Db,
        dir: &Path,
        inventory: &str,
    ) -> Stage {
        let file = dir.join("inventory.toml");
        std::fs::write(&file, inventory).unwrap();
        let source = ConfigSource::from_text(Path::new("c.toml"), "[incidents]\n".into());
        #[derive(serde::Deserialize)]
        struct Wrapper {
            incidents: IncidentsConfig,
        }
        let mut config = source.parse::<Wrapper>().unwrap().incidents;
        config.inventory_file = Some(file);
        let metrics = IncidentMetrics::register(&mut Registry::default());
        Stage::open(
            Setup::load(&config).unwrap(),
            &config,
            db.open(),
            metrics,
            Duration::from_secs(86_400),
        )
        .unwrap()
    }

    fn a_ticket_held_open_by_the_same_fault_notices_its_own_rule_again_after_a_restart(db: &Db) {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            stage_with_inventory(
                db,
                dir.path(),
                "[[sites]]\nid = \"dc1\"\n\n[[rooms]]\nid = \"r1\"\nsite = \"dc1\"\n\n[[targets]]\nid = \"env-1\"\nkind = \"sensor\"\nroom = \"r1\"\nowner = \"platform\"\n\n[[targets]]\nid = \"env-2\"\nkind = \"sensor\"\nroom = \"r1\"\nowner = \"platform\"\n",
            )
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
            assert!(
                stage.book.tickets.len() <= 1,
                "batch {i}: {:?}",
                stage.book.tickets
            );
        }
        let id = stage.book.tickets[0].id;
        // env-1 cools, env-2 is still hot: the ticket stays open, its own condition cleared.
        stage.on_batch(
            "a1",
            &[
                temperature("env-1", 25.0, t0 + 4 * MIN),
                temperature("env-2", 33.0, t0 + 4 * MIN),
            ],
        );
        let held = stage.book.store.get(id).unwrap().unwrap();
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
        let refired = stage.book.store.get(id).unwrap().unwrap();
        assert_eq!(refired.condition_cleared_at_ms, None, "{refired:?}");
        stage.on_batch(
            "a1",
            &[
                temperature("env-1", 34.0, t0 + 6 * MIN),
                temperature("env-2", 25.0, t0 + 6 * MIN),
            ],
        );
        let still = stage.book.store.get(id).unwrap().unwrap();
        assert!(still.state.is_active(), "env-1 is still hot: {still:?}");
    }
}
