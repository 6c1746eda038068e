//! The rule evaluator: a state machine fed with samples in their own time order, emitting
//! firing / resolved events (ingest → **rules** → incidents).
//!
//! - Samples are judged as they arrive; no evaluation tick adds latency. All timing (`for`,
//!   start and resolve times) uses the samples' own timestamps, so an agent's backlog replayed after
//!   an outage produces incidents with their original times.
//! - Per series (metric, target and labels; the agent is not part of the identity, so a target that
//!   moves to another agent keeps its state) a rule is inactive, pending or firing. A sample older
//!   than the last one of its series is ignored (counted in [`Evaluator::out_of_order`]).
//! - Events are per fingerprint (rule + target): the first firing series of a rule on a target emits
//!   [`RuleEvent::Firing`], the last one to clear emits [`RuleEvent::Resolved`].
//! - [`Evaluator::tick`] judges absence against the wall clock; a gap found inside a series' own
//!   history (a backlog with a hole) fires and resolves the absence at its sample times.
//! - A `for` duration is completed only by a sample (sample time), never by `tick`: a wall-clock
//!   tick during a backlog replay would fire what later samples of that backlog clear.

use crate::Millis;
use crate::attribution::AGENT_TARGET_PREFIX;
use crate::counter::counter_rate;
use crate::rules::{Condition, Correlate, Rule, RuleSet, Severity, Source};
use crate::template::TemplateContext;
use faultline_wire::Sample;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

mod memory;
mod replace;
pub use memory::{MemoryChange, SeriesMemory};

/// A rule started firing for a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    /// Rule name.
    pub rule: String,
    /// Target id.
    pub target: String,
    /// Labels of the series that fired (sample labels plus `agent`).
    pub labels: BTreeMap<String, String>,
    /// Severity from the rule.
    pub severity: Severity,
    /// Value judged by the sample that completed the condition (rate or ratio where applicable).
    pub value: f64,
    /// When the condition started to hold (the original fault time).
    pub started_at_ms: Millis,
    /// When the rule fired (`for` completed).
    pub fired_at_ms: Millis,
    /// Rendered summary.
    pub summary: String,
    /// Rendered description.
    pub description: String,
    /// The rule's correlation scope.
    pub correlate: Correlate,
    /// The rules whose incidents are one fault with this one, this rule included
    /// ([`RuleSet::same_fault`]): attribution joins it to their ticket.
    pub same_fault: Vec<String>,
}

/// The last firing series of a rule on a target cleared.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Rule name.
    pub rule: String,
    /// Target id.
    pub target: String,
    /// Time of the sample (or tick) that cleared it.
    pub resolved_at_ms: Millis,
    /// The value that cleared it; `None` when a sample ended an absence.
    pub value: Option<f64>,
}

/// What the evaluator tells the incident stage.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleEvent {
    /// A fingerprint (rule + target) started firing.
    Firing(Firing),
    /// A fingerprint stopped firing.
    Resolved(Resolved),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Inactive,
    Pending { since: Millis },
    Firing { since: Millis },
}

#[derive(Debug)]
struct SeriesState {
    target: String,
    labels: BTreeMap<String, String>,
    last_ts: Millis,
    /// Last raw sample value (the counter, for rates).
    last_raw: f64,
    /// Last judged value (rate or ratio), for `changed_to` and templates.
    last_value: Option<f64>,
    phase: Phase,
}

/// How far an agent's data has come.
#[derive(Debug, Clone, Copy)]
struct AgentClock {
    /// Newest sample time delivered.
    newest_ts: Millis,
    /// Wall-clock time of its last push.
    pushed_at_ms: Millis,
}

/// Evaluates a [`RuleSet`] over a stream of samples.
#[derive(Debug)]
pub struct Evaluator {
    rules: Arc<RuleSet>,
    by_metric: Arc<BTreeMap<String, Vec<usize>>>,
    /// [`RuleSet::same_fault`] of each rule, by index.
    same_fault: Vec<Vec<String>>,
    /// Metrics used as `divide_by` denominators.
    denominator_metrics: BTreeSet<String>,
    /// Latest denominator value per (metric, series id).
    denominators: HashMap<(String, String), f64>,
    series: HashMap<(usize, String), SeriesState>,
    /// Firing series per fingerprint (rule index, target).
    firing: HashMap<(usize, String), BTreeSet<String>>,
    /// Fingerprints that were firing before a restart, not yet confirmed or cleared by a sample.
    restored: BTreeSet<(usize, String)>,
    /// Per agent: the newest sample time it delivered and the wall-clock time of its last push
    /// ([`Evaluator::pushed`]), so absence is judged against an agent catching up on a backlog
    /// in the backlog's own time.
    agents: HashMap<String, AgentClock>,
    /// Series pending (condition true, `for` not yet done) per target, by the sample time their
    /// condition started, for settling.
    pending: HashMap<String, BTreeSet<(Millis, usize, String)>>,
    out_of_order: u64,
    /// Series whose remembered state changed since [`Evaluator::take_memory`] last ran.
    dirty: BTreeSet<(usize, String)>,
}

/// Identity of a series within one metric: target and labels (not the agent).
fn series_id(sample: &Sample) -> String {
    let mut id = sample.target.clone();
    for (k, v) in &sample.labels {
        id.push('\u{1f}');
        id.push_str(k);
        id.push('=');
        id.push_str(v);
    }
    id
}

fn rule_matches(rule: &Rule, agent: &str, sample: &Sample) -> bool {
    rule.matchers.iter().all(|m| {
        let value = match m.label.as_str() {
            "target" => Some(sample.target.as_str()),
            "agent" => Some(agent),
            name => sample.labels.get(name).map(String::as_str),
        };
        m.matches(value)
    })
}

impl Evaluator {
    /// An evaluator with no history.
    pub fn new(rules: RuleSet) -> Self {
        let by_metric = Arc::new(rules.by_metric());
        let same_fault = rules.rules().iter().map(|r| rules.same_fault(r)).collect();
        let denominator_metrics = rules
            .rules()
            .iter()
            .filter_map(|r| r.divide_by.clone())
            .collect();
        Self {
            rules: Arc::new(rules),
            by_metric,
            same_fault,
            denominator_metrics,
            denominators: HashMap::new(),
            series: HashMap::new(),
            firing: HashMap::new(),
            restored: BTreeSet::new(),
            agents: HashMap::new(),
            pending: HashMap::new(),
            out_of_order: 0,
            dirty: BTreeSet::new(),
        }
    }

    /// When the earliest rule still pending on `target` started to hold: its condition holds on
    /// a series of the target but its `for` is not done yet ([`crate::settle`] waits for it to
    /// fire or clear).
    pub fn pending_since(&self, target: &str) -> Option<Millis> {
        self.pending
            .get(target)
            .and_then(|set| set.first())
            .map(|(since, ..)| *since)
    }

    /// Samples ignored because they were not newer than their series' last sample.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// Marks rule `rule` on `target` as firing from before a restart (its ticket is still active in
    /// the store). The first judgeable sample of that fingerprint then either confirms it silently
    /// (no second `Firing`) or emits the `Resolved` that the restart would otherwise have lost.
    /// Returns false for an unknown rule.
    pub fn restore_firing(&mut self, rule: &str, target: &str) -> bool {
        match self.rules.rules().iter().position(|r| r.name == rule) {
            Some(index) => {
                self.restored.insert((index, target.to_string()));
                true
            }
            None => false,
        }
    }

    /// Judges one sample from `agent`. Feed each series in timestamp order.
    pub fn observe(&mut self, agent: &str, sample: &Sample) -> Vec<RuleEvent> {
        let mut events = Vec::new();
        if !sample.value.is_finite() {
            return events;
        }
        if self.denominator_metrics.contains(&sample.metric) {
            self.denominators
                .insert((sample.metric.clone(), series_id(sample)), sample.value);
        }
        let by_metric = Arc::clone(&self.by_metric);
        let Some(indices) = by_metric.get(&sample.metric) else {
            return events;
        };
        let id = series_id(sample);
        for &index in indices {
            if rule_matches(&self.rules.rules()[index], agent, sample) {
                self.step(index, &id, agent, sample, &mut events);
            }
        }
        events
    }

    /// Records that `agent` pushed a batch at wall-clock `now_ms` whose newest sample is dated
    /// `newest_ts`: while it keeps pushing, absence of its series is judged in its samples' time.
    pub fn pushed(&mut self, agent: &str, newest_ts: Millis, now_ms: Millis) {
        match self.agents.get_mut(agent) {
            Some(clock) => {
                clock.newest_ts = clock.newest_ts.max(newest_ts);
                clock.pushed_at_ms = now_ms;
            }
            None => {
                self.agents.insert(
                    agent.to_string(),
                    AgentClock {
                        newest_ts,
                        pushed_at_ms: now_ms,
                    },
                );
            }
        }
    }

    /// Judges absence at wall-clock time `now_ms`. A series is absent when nothing newer came for
    /// `stale_after` (plus `for`), measured in its agent's own time: an agent replaying a backlog
    /// after a collector outage is catching up, not silent, and its series go absent only where
    /// its backlog has a hole; once the agent stops pushing, its time runs on with the wall clock.
    pub fn tick(&mut self, now_ms: Millis) -> Vec<RuleEvent> {
        let mut events = Vec::new();
        let mut newly_absent = Vec::new();
        for ((index, id), state) in &mut self.series {
            let rule = &self.rules.rules()[*index];
            if let Condition::Absent { stale_after_ms } = rule.condition {
                let since = state.last_ts.saturating_add(stale_after_ms);
                // The agent's own time: its newest sample, moved on by the wall-clock time since
                // its last push (a live agent: about now; one replaying a backlog: the backlog's
                // time; one that stopped: its last time plus how long it has been silent).
                // An agent's own heartbeat (`agent:<id>`) is judged in wall-clock time: pushes
                // happen in it.
                let heartbeat = state.target.starts_with(AGENT_TARGET_PREFIX);
                let reference = state
                    .labels
                    .get("agent")
                    .and_then(|agent| self.agents.get(agent))
                    .filter(|_| !heartbeat)
                    .map_or(now_ms, |c| {
                        let silent_for = now_ms.saturating_sub(c.pushed_at_ms).max(0);
                        c.newest_ts.saturating_add(silent_for).min(now_ms)
                    });
                if state.phase == Phase::Inactive && reference > since.saturating_add(rule.for_ms) {
                    state.phase = Phase::Firing { since };
                    newly_absent.push((*index, id.clone(), since, reference));
                }
            }
        }
        newly_absent.sort();
        for (index, id, since, fired_at) in newly_absent {
            self.fire(index, &id, since, fired_at, None, &mut events);
            self.dirty.insert((index, id));
        }
        events
    }

    /// Judges `sample` (series `id`) for rule `index`, marking the series for
    /// [`Evaluator::take_memory`] when what a restart must remember of it changed.
    fn step(
        &mut self,
        index: usize,
        id: &str,
        agent: &str,
        sample: &Sample,
        events: &mut Vec<RuleEvent>,
    ) {
        let key = (index, id.to_string());
        let before = self.series.get(&key).map(|s| (s.phase, s.last_value));
        self.judge(index, id, agent, sample, events);
        let after = self.series.get(&key).map(|s| (s.phase, s.last_value));
        if memory::worth_writing(&self.rules.rules()[index], before, after) {
            self.dirty.insert(key);
        }
    }

    /// Judges `sample` (series `id`) for rule `index`.
    fn judge(
        &mut self,
        index: usize,
        id: &str,
        agent: &str,
        sample: &Sample,
        events: &mut Vec<RuleEvent>,
    ) {
        let rules = Arc::clone(&self.rules);
        let rule = &rules.rules()[index];
        let key = (index, id.to_string());
        let ts = sample.ts_ms;
        let previous = self
            .series
            .get(&key)
            .map(|s| (s.last_ts, s.last_raw, s.last_value, s.phase));
        if let Some((last_ts, ..)) = previous
            && ts <= last_ts
        {
            self.out_of_order += 1;
            return;
        }
        let previous_sample = previous.map(|(last_ts, last_raw, ..)| (last_ts, last_raw));
        let value = judged_value(rule, &self.denominators, id, sample, previous_sample);
        let previous_value = previous.and_then(|p| p.2);
        let phase = previous.map_or(Phase::Inactive, |p| p.3);
        match self.series.get_mut(&key) {
            Some(state) => {
                state.last_ts = ts;
                state.last_raw = sample.value;
                state.last_value = value.or(previous_value);
                if state.labels.get("agent").map(String::as_str) != Some(agent) {
                    state.labels.insert("agent".to_string(), agent.to_string());
                }
            }
            None => {
                let mut labels = sample.labels.clone();
                labels.insert("agent".to_string(), agent.to_string());
                let state = SeriesState {
                    target: sample.target.clone(),
                    labels,
                    last_ts: ts,
                    last_raw: sample.value,
                    last_value: value,
                    phase,
                };
                self.series.insert(key.clone(), state);
            }
        }
        if phase == Phase::Inactive
            && self.settle_restored(index, id, value, previous_value, events)
        {
            return;
        }
        let Some(state) = self.series.get_mut(&key) else {
            return;
        };
        if let Condition::Absent { stale_after_ms } = rule.condition {
            let Some((previous_ts, ..)) = previous else {
                return;
            };
            let gap_start = previous_ts.saturating_add(stale_after_ms);
            match phase {
                Phase::Firing { .. } => {
                    state.phase = Phase::Inactive;
                    self.clear(index, id, ts, None, events);
                }
                _ if ts > gap_start.saturating_add(rule.for_ms) => {
                    // A hole inside the series' own history: absent from gap_start until now.
                    let fired_at = gap_start.saturating_add(rule.for_ms);
                    self.fire(index, id, gap_start, fired_at, None, events);
                    self.clear(index, id, ts, None, events);
                }
                _ => {}
            }
            return;
        }
        let Some(value) = value else {
            return; // first counter sample (or after a reset), or a ratio without its denominator
        };
        let holds = rule
            .condition
            .holds(value, previous_value, phase != Phase::Inactive);
        match (phase, holds) {
            (Phase::Inactive, true) => {
                state.phase = advance(rule.for_ms, ts, ts);
                if matches!(state.phase, Phase::Firing { .. }) {
                    self.fire(index, id, ts, ts, Some(value), events);
                } else {
                    self.pending
                        .entry(sample.target.clone())
                        .or_default()
                        .insert((ts, index, id.to_string()));
                }
            }
            (Phase::Pending { since }, true) => {
                state.phase = advance(rule.for_ms, since, ts);
                if matches!(state.phase, Phase::Firing { .. }) {
                    self.unpend(&sample.target, since, index, id);
                    self.fire(index, id, since, ts, Some(value), events);
                }
            }
            (Phase::Pending { since }, false) => {
                state.phase = Phase::Inactive;
                self.unpend(&sample.target, since, index, id);
            }
            (Phase::Firing { .. }, false) => {
                state.phase = Phase::Inactive;
                self.clear(index, id, ts, Some(value), events);
            }
            (Phase::Inactive, false) | (Phase::Firing { .. }, true) => {}
        }
    }

    /// Series `id` of rule `index` on `target`, pending since `since`, is no longer pending.
    fn unpend(&mut self, target: &str, since: Millis, index: usize, id: &str) {
        if let Some(set) = self.pending.get_mut(target) {
            set.remove(&(since, index, id.to_string()));
            if set.is_empty() {
                self.pending.remove(target);
            }
        }
    }

    /// If the fingerprint of series `id` was restored and its latest sample can be judged, settles
    /// it: still holding → firing without an event; clear → `Resolved` at the sample's time.
    /// Returns true when settled.
    fn settle_restored(
        &mut self,
        index: usize,
        id: &str,
        value: Option<f64>,
        previous: Option<f64>,
        events: &mut Vec<RuleEvent>,
    ) -> bool {
        let Some((target, ts)) = self
            .series
            .get(&(index, id.to_string()))
            .map(|s| (s.target.clone(), s.last_ts))
        else {
            return false;
        };
        let fingerprint = (index, target);
        if !self.restored.contains(&fingerprint) {
            return false;
        }
        let rule = &self.rules.rules()[index];
        let holding = match rule.condition {
            Condition::Absent { .. } => false, // a sample ends an absence
            ref condition => match value {
                Some(v) => condition.holds(v, previous, true),
                None => return false, // not judgeable yet (first counter sample)
            },
        };
        self.restored.remove(&fingerprint);
        if holding {
            if let Some(state) = self.series.get_mut(&(index, id.to_string())) {
                state.phase = Phase::Firing {
                    since: state.last_ts,
                };
            }
            self.firing
                .entry(fingerprint)
                .or_default()
                .insert(id.to_string());
        } else {
            events.push(RuleEvent::Resolved(Resolved {
                rule: rule.name.clone(),
                target: fingerprint.1,
                resolved_at_ms: ts,
                value,
            }));
        }
        true
    }

    /// Records that series `id` of rule `index` fires; emits `Firing` if it is the first of its
    /// fingerprint.
    fn fire(
        &mut self,
        index: usize,
        id: &str,
        started_at_ms: Millis,
        fired_at_ms: Millis,
        value: Option<f64>,
        events: &mut Vec<RuleEvent>,
    ) {
        let Some(state) = self.series.get_mut(&(index, id.to_string())) else {
            return;
        };
        state.phase = Phase::Firing {
            since: started_at_ms,
        };
        let rule = &self.rules.rules()[index];
        let set = self
            .firing
            .entry((index, state.target.clone()))
            .or_default();
        let first = set.is_empty();
        set.insert(id.to_string());
        if !first {
            return;
        }
        let value = value.or(state.last_value).unwrap_or(state.last_raw);
        let ctx = TemplateContext {
            rule: &rule.name,
            target: &state.target,
            labels: &state.labels,
            value,
            threshold: rule.condition.threshold(),
        };
        events.push(RuleEvent::Firing(Firing {
            rule: rule.name.clone(),
            target: state.target.clone(),
            labels: state.labels.clone(),
            severity: rule.severity,
            value,
            started_at_ms,
            fired_at_ms,
            summary: rule.summary.render(&ctx),
            description: rule.description.render(&ctx),
            correlate: rule.correlate,
            same_fault: self.same_fault.get(index).cloned().unwrap_or_default(),
        }));
    }

    /// Records that series `id` of rule `index` cleared; emits `Resolved` if it was the last of its
    /// fingerprint.
    fn clear(
        &mut self,
        index: usize,
        id: &str,
        at: Millis,
        value: Option<f64>,
        events: &mut Vec<RuleEvent>,
    ) {
        let Some(state) = self.series.get(&(index, id.to_string())) else {
            return;
        };
        let fingerprint = (index, state.target.clone());
        let Some(set) = self.firing.get_mut(&fingerprint) else {
            return;
        };
        if !set.remove(id) || !set.is_empty() {
            return;
        }
        self.firing.remove(&fingerprint);
        events.push(RuleEvent::Resolved(Resolved {
            rule: self.rules.rules()[index].name.clone(),
            target: fingerprint.1,
            resolved_at_ms: at,
            value,
        }));
    }
}

/// Pending since `since`, or firing once `for_ms` has passed at `ts`.
fn advance(for_ms: Millis, since: Millis, ts: Millis) -> Phase {
    if ts.saturating_sub(since) >= for_ms {
        Phase::Firing { since }
    } else {
        Phase::Pending { since }
    }
}

/// The value a rule judges for `sample`: the raw value, the ratio to its denominator, or the
/// counter rate since `previous` (`None` when it cannot be computed yet).
fn judged_value(
    rule: &Rule,
    denominators: &HashMap<(String, String), f64>,
    id: &str,
    sample: &Sample,
    previous: Option<(Millis, f64)>,
) -> Option<f64> {
    match rule.condition {
        Condition::Level {
            source: Source::Rate,
            ..
        } => previous.and_then(|prev| counter_rate(prev, (sample.ts_ms, sample.value))),
        _ => match &rule.divide_by {
            None => Some(sample.value),
            Some(metric) => denominators
                .get(&(metric.clone(), id.to_string()))
                .filter(|d| **d != 0.0)
                .map(|d| sample.value / d),
        },
    }
}

#[cfg(test)]
mod tests;
