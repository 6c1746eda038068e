//! The incident stage's decisions, without storage (ingest → **rules → settle → desk →
//! tickets**): every sample goes through the [`Evaluator`]; a firing that would open a new root
//! first settles ([`crate::settle`]), then passes the maintenance screen and the [`Desk`]; the
//! resulting ticket changes are carried out against a [`Book`] — the collector's SQLite-backed
//! one, or an in-memory one in tests and simulations — so that the collector and the order
//! independence property test run exactly the same code.
//!
//! Pure and synchronous: time is passed in. What the shell may want to log comes back through
//! [`Book::note`].

use crate::Millis;
use crate::attribution::agent_target;
use crate::desk::{Action, Desk, adopt_actions};
use crate::eval::{Evaluator, Firing, RuleEvent};
use crate::inventory::Inventory;
use crate::maintenance::{Maintenance, Screened, Suppression};
use crate::settle::{Settle, SettlePolicy, View, Waiting};
use crate::ticket::{Command, NewTicket, Ticket, TicketPolicy};
use faultline_wire::{Sample, SampleKind};
use std::collections::BTreeMap;

/// The metric of an agent's heartbeat: one sample per push, target [`agent_target`].
pub const AGENT_PUSH_METRIC: &str = "faultline_agent_pushing";

/// Samples of one target at least this far apart are two polls (closer ones are one poll's
/// walk); their gap is the target's poll interval for settling.
pub const MIN_POLL_GAP_MS: Millis = 1_000;

/// Where tickets are kept while the dispatch's changes are carried out.
pub trait Book {
    /// Every ticket that is not closed, oldest first.
    fn tickets(&self) -> &[Ticket];
    /// Opens ticket `new` at `now` and keeps it; `None` when it could not be kept (the book
    /// reports why itself).
    fn create(&mut self, new: NewTicket, now: Millis) -> Option<Ticket>;
    /// Applies `command` to ticket `id` at `now` and keeps the result; `None` when refused or
    /// not kept (the book reports why itself).
    fn apply(&mut self, id: u64, command: Command, now: Millis) -> Option<Ticket>;
    /// Something worth a log line.
    fn note(&mut self, note: Note<'_>);
}

/// What the dispatch did that changed no ticket, for the shell's log.
#[derive(Debug)]
pub enum Note<'a> {
    /// A new root waits for its upstream to report.
    Settling {
        /// The firing held.
        firing: &'a Firing,
        /// What it waits for.
        waiting: &'a [Waiting],
    },
    /// A new ticket held back by a maintenance window.
    Maintenance {
        /// The firing held.
        firing: &'a Firing,
        /// The window.
        suppression: &'a Suppression,
    },
    /// A maintenance window ended with its incident still firing: judged again.
    MaintenanceEnded {
        /// The firing judged again.
        firing: &'a Firing,
        /// The window that ended.
        suppression: &'a Suppression,
    },
    /// A rule event that changes no ticket.
    Nothing {
        /// Why.
        why: &'a str,
    },
}

/// The fixed parts the dispatch judges with (the collector's loaded files and config).
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The inventory.
    pub inventory: &'a Inventory,
    /// Ticket timers.
    pub policy: &'a TicketPolicy,
    /// Maintenance windows.
    pub maintenance: &'a Maintenance,
    /// How far apart two failures may be and still be one fault.
    pub correlation_window_ms: Millis,
}

/// An incident held back by a maintenance window, judged again when the window ends.
#[derive(Debug, Clone)]
struct Held {
    firing: Firing,
    suppression: Suppression,
}

/// The evaluator, what each target reported, and the incidents held back (settling,
/// maintenance).
#[derive(Debug)]
pub struct Dispatch {
    eval: Evaluator,
    settle: Settle,
    held: Vec<Held>,
    /// Newest sample time per target.
    last_seen: BTreeMap<String, Millis>,
    /// Gap between the last two polls per target (samples at least [`MIN_POLL_GAP_MS`] apart).
    intervals: BTreeMap<String, Millis>,
}

impl Dispatch {
    /// A dispatch over `eval` (restore firing fingerprints on it first), settling by `settle`.
    pub fn new(eval: Evaluator, settle: SettlePolicy) -> Self {
        Self {
            eval,
            settle: Settle::new(settle),
            held: Vec::new(),
            last_seen: BTreeMap::new(),
            intervals: BTreeMap::new(),
        }
    }

    /// What changed in the evaluator's memory since the last call
    /// ([`Evaluator::take_memory`]): the stage stores it before acknowledging what it judged.
    pub fn take_memory(&mut self) -> Vec<crate::eval::MemoryChange> {
        self.eval.take_memory()
    }

    /// Judges with `rules` from now on, keeping the state of the series of every rule still
    /// there ([`Evaluator::replace_rules`]); returns the names of the rules dropped.
    pub fn replace_rules(&mut self, rules: crate::rules::RuleSet) -> Vec<String> {
        self.eval.replace_rules(rules)
    }

    /// Samples the evaluator ignored as not newer than their series' last one.
    pub fn out_of_order(&self) -> u64 {
        self.eval.out_of_order()
    }

    /// Incidents held back by maintenance windows.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// New roots waiting for their upstream to report.
    pub fn settling(&self) -> usize {
        self.settle.len()
    }

    /// Records that `agent` pushed a batch at wall-clock `now` whose newest sample is dated
    /// `newest_ts` (absence is judged in an agent's own time while it keeps pushing), and judges
    /// the agent's own heartbeat: one [`AGENT_PUSH_METRIC`] sample of target
    /// [`agent_target`]`(agent)` dated `now` (pushes happen in wall-clock time), which the
    /// default `AgentSilent` rule watches. Call it before
    /// [`Dispatch::observe`] for the batch's samples.
    pub fn pushed(
        &mut self,
        env: &Env<'_>,
        book: &mut impl Book,
        agent: &str,
        newest_ts: Millis,
        now: Millis,
    ) {
        self.eval.pushed(agent, newest_ts, now);
        let heartbeat = Sample {
            metric: AGENT_PUSH_METRIC.to_string(),
            target: agent_target(agent),
            labels: BTreeMap::new(),
            value: 1.0,
            ts_ms: now,
            kind: SampleKind::Gauge,
        };
        self.observe(env, book, agent, &heartbeat, now);
    }

    /// Judges one sample from `agent` (feed each series in time order) at wall-clock `now`;
    /// returns true when its target is seen for the first time. Call [`Dispatch::release`]
    /// after a batch.
    pub fn observe(
        &mut self,
        env: &Env<'_>,
        book: &mut impl Book,
        agent: &str,
        sample: &Sample,
        now: Millis,
    ) -> bool {
        let first = match self.last_seen.get_mut(&sample.target) {
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
                false
            }
            None => {
                self.last_seen.insert(sample.target.clone(), sample.ts_ms);
                true
            }
        };
        for event in self.eval.observe(agent, sample) {
            self.on_event(env, book, &event, now, None, false);
        }
        first
    }

    /// Judges the held firings whose upstream has reported (or whose wait is over), in
    /// settling's fixed order.
    pub fn release(&mut self, env: &Env<'_>, book: &mut impl Book, now: Millis) {
        let released = with_view(env, &self.eval, &self.last_seen, &self.intervals, |view| {
            self.settle.settled(view, now)
        });
        for firing in released {
            self.on_event(env, book, &RuleEvent::Firing(firing), now, None, true);
        }
    }

    /// Absence at wall-clock `now`, settled firings, and incidents whose maintenance window
    /// ended (ticket timers are the shell's: [`Ticket::due_timers`]).
    pub fn tick(&mut self, env: &Env<'_>, book: &mut impl Book, now: Millis) {
        for event in self.eval.tick(now) {
            self.on_event(env, book, &event, now, None, false);
        }
        self.release(env, book, now);
        let (ended, kept): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| h.suppression.window_end_ms <= now);
        self.held = kept;
        for held in ended {
            book.note(Note::MaintenanceEnded {
                firing: &held.firing,
                suppression: &held.suppression,
            });
            let event = RuleEvent::Firing(held.firing);
            self.on_event(env, book, &event, now, Some(held.suppression), true);
        }
    }

    /// Runs the desk on a rule event and carries its action out. `ended` is the suppression of
    /// an incident judged again because its window ended: the maintenance screen then judges at
    /// `now` (not at the firing's time, which the window covered) and the ticket records it.
    /// A firing that would open a new root settles first unless it is `settled` already; one
    /// still settling when its condition clears is judged at once, before its resolution.
    fn on_event(
        &mut self,
        env: &Env<'_>,
        book: &mut impl Book,
        event: &RuleEvent,
        now: Millis,
        ended: Option<Suppression>,
        settled: bool,
    ) {
        if let RuleEvent::Resolved(r) = event {
            self.held
                .retain(|h| !(h.firing.rule == r.rule && h.firing.target == r.target));
            if let Some(firing) = self.settle.take(&r.rule, &r.target) {
                self.on_event(env, book, &RuleEvent::Firing(firing), now, None, true);
            }
        }
        let desk = Desk {
            inventory: env.inventory,
            tickets: book.tickets(),
            last_seen_ms: &self.last_seen,
            correlation_window_ms: env.correlation_window_ms,
            policy: env.policy,
        };
        let action = desk.on_event(event, now);
        let RuleEvent::Firing(firing) = event else {
            // Resolved when the condition cleared (a backlog's own time), not when it arrived.
            let at = match event {
                RuleEvent::Resolved(r) => r.resolved_at_ms.min(now),
                RuleEvent::Firing(_) => now,
            };
            self.carry_out(env, book, action, at, None);
            return;
        };
        if !settled && matches!(action, Action::Open { .. }) {
            let waiting = with_view(env, &self.eval, &self.last_seen, &self.intervals, |view| {
                self.settle.hold(firing, view, now)
            });
            if !waiting.is_empty() {
                book.note(Note::Settling {
                    firing,
                    waiting: &waiting,
                });
                return;
            }
        }
        let at = if ended.is_some() {
            now
        } else {
            firing.fired_at_ms
        };
        match env.maintenance.screen(env.inventory, action, at) {
            // Opened at the firing's own time: a backlog's incident keeps its SLA clocks.
            Screened::Proceed(action) => self.carry_out(env, book, action, at.min(now), ended),
            Screened::Held { suppression, .. } => {
                book.note(Note::Maintenance {
                    firing,
                    suppression: &suppression,
                });
                self.held.push(Held {
                    firing: firing.clone(),
                    suppression,
                });
            }
        }
    }

    /// Carries a desk action out at `at` (the time of the fact that caused it, never after
    /// now, never before the ticket's last entry): a new root's ticket adopts the tickets its
    /// attribution names.
    fn carry_out(
        &mut self,
        env: &Env<'_>,
        book: &mut impl Book,
        action: Action,
        at: Millis,
        ended: Option<Suppression>,
    ) {
        match action {
            Action::Nothing { why } => book.note(Note::Nothing { why: &why }),
            Action::Apply { ticket, command } => {
                let at = book
                    .tickets()
                    .iter()
                    .find(|t| t.id == ticket)
                    .and_then(|t| t.timeline.last())
                    .map_or(at, |last| at.max(last.at_ms));
                book.apply(ticket, command, at);
            }
            Action::Open {
                ticket,
                attribution,
            } => {
                let Some(root) = book.create(*ticket, at) else {
                    return;
                };
                let adopted: Vec<Ticket> = book
                    .tickets()
                    .iter()
                    .filter(|t| attribution.adopt.contains(&t.id))
                    .cloned()
                    .collect();
                let adopted: Vec<&Ticket> = adopted.iter().collect();
                for action in adopt_actions(env.inventory, &root, &adopted) {
                    self.carry_out(env, book, action, at, None);
                }
                if let Some(suppression) = ended {
                    book.apply(root.id, suppression.timeline_command(), at);
                }
            }
        }
    }
}

/// Runs `f` with what settling looks at: the inventory, what each target reported, and the
/// evaluator's pending rules.
fn with_view<R>(
    env: &Env<'_>,
    eval: &Evaluator,
    last_seen: &BTreeMap<String, Millis>,
    intervals: &BTreeMap<String, Millis>,
    f: impl FnOnce(&View<'_>) -> R,
) -> R {
    let pending = |target: &str| eval.pending_since(target);
    f(&View {
        inventory: env.inventory,
        last_seen_ms: last_seen,
        interval_ms: intervals,
        pending_since: &pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Owner;
    use crate::rules::RuleSet;
    use crate::ticket::{Change, TicketState};
    use faultline_wire::config_file::ConfigSource;
    use std::path::Path;

    const MIN: Millis = 60_000;

    /// Tickets in memory, pages counted.
    #[derive(Default)]
    struct Memory {
        policy: TicketPolicy,
        tickets: Vec<Ticket>,
        pages: usize,
    }

    impl Memory {
        fn count(&mut self, t: &Ticket, from: usize) {
            self.pages += t.timeline[from..]
                .iter()
                .filter(|e| matches!(e.change, Change::Opened { .. }))
                .count();
        }
    }

    impl Book for Memory {
        fn tickets(&self) -> &[Ticket] {
            &self.tickets
        }
        fn create(&mut self, new: NewTicket, now: Millis) -> Option<Ticket> {
            let id = self.tickets.len() as u64 + 1;
            let (t, _) = Ticket::open(id, new, &self.policy, now);
            self.count(&t, 0);
            self.tickets.push(t.clone());
            Some(t)
        }
        fn apply(&mut self, id: u64, command: Command, now: Millis) -> Option<Ticket> {
            let i = self.tickets.iter().position(|t| t.id == id)?;
            let from = self.tickets[i].timeline.len();
            let (t, _) = self.tickets[i].apply(command, &self.policy, now).ok()?;
            self.count(&t, from);
            self.tickets[i] = t.clone();
            Some(t)
        }
        fn note(&mut self, _: Note<'_>) {}
    }

    #[test]
    fn a_silent_agent_is_one_platform_ticket_with_its_targets_as_symptoms() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let inventory =
            Inventory::load(&ConfigSource::read(&dir.join("testdata/inventory.toml")).unwrap())
                .unwrap();
        let rules =
            RuleSet::from_sources(&[ConfigSource::read(&dir.join("rules/default.toml")).unwrap()])
                .unwrap();
        let maintenance = Maintenance::default();
        let mut book = Memory::default();
        let policy = book.policy.clone();
        let env = Env {
            inventory: &inventory,
            policy: &policy,
            maintenance: &maintenance,
            correlation_window_ms: 5 * MIN,
        };
        let mut dispatch = Dispatch::new(Evaluator::new(rules), SettlePolicy::default());
        let up = |target: &str, ts: Millis| Sample {
            metric: "faultline_snmp_up".into(),
            target: target.into(),
            labels: BTreeMap::new(),
            value: 1.0,
            ts_ms: ts,
            kind: SampleKind::Gauge,
        };
        // gw-1's agent pushes every 30 s for 5 minutes, then goes quiet.
        let t0 = 1_000 * MIN;
        let mut last = t0;
        for i in 0..10 {
            let ts = t0 + i * 30_000;
            dispatch.pushed(&env, &mut book, "gw-agent", ts, ts);
            for target in ["gw-1", "temp-1", "temp-2"] {
                dispatch.observe(&env, &mut book, "gw-agent", &up(target, ts), ts);
            }
            dispatch.release(&env, &mut book, ts);
            last = ts;
        }
        for second in 1..=8 * 60 {
            dispatch.tick(&env, &mut book, last + second * 1_000);
        }
        assert_eq!(book.tickets.len(), 1, "{:#?}", book.tickets);
        let t = &book.tickets[0];
        assert_eq!(
            (t.rule.as_str(), t.target.as_str(), t.tag, t.state),
            (
                "AgentSilent",
                "agent:gw-agent",
                Some(Owner::Platform),
                TicketState::Open
            )
        );
        assert!(t.reason.contains("gateway is ours"), "{}", t.reason);
        let symptoms: Vec<(&str, &str)> = t
            .symptoms
            .iter()
            .map(|s| (s.rule.as_str(), s.target.as_str()))
            .collect();
        assert_eq!(
            symptoms,
            [
                ("DeviceSilent", "gw-1"),
                ("DeviceSilent", "temp-1"),
                ("DeviceSilent", "temp-2")
            ]
        );
        assert_eq!(book.pages, 1, "one page for the silent agent");
        // It pushes again: the agent's ticket resolves, its symptoms clear.
        let back = last + 9 * MIN;
        dispatch.pushed(&env, &mut book, "gw-agent", back, back);
        for target in ["gw-1", "temp-1", "temp-2"] {
            dispatch.observe(&env, &mut book, "gw-agent", &up(target, back), back);
        }
        let t = &book.tickets[0];
        assert_eq!(t.state, TicketState::Resolved);
        assert!(t.symptoms.iter().all(|s| s.cleared_at_ms.is_some()));
    }
}
