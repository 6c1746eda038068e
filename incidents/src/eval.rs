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
    Firing,
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
                    state.phase = Phase::Firing;
                    newly_absent.push((*index, id.clone(), since, reference));
                }
            }
        }
        newly_absent.sort();
        for (index, id, since, fired_at) in newly_absent {
            self.fire(index, &id, since, fired_at, None, &mut events);
        }
        events
    }

    /// Judges `sample` (series `id`) for rule `index`.
    fn step(
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
                Phase::Firing => {
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
                if state.phase == Phase::Firing {
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
                if state.phase == Phase::Firing {
                    self.unpend(&sample.target, since, index, id);
                    self.fire(index, id, since, ts, Some(value), events);
                }
            }
            (Phase::Pending { since }, false) => {
                state.phase = Phase::Inactive;
                self.unpend(&sample.target, since, index, id);
            }
            (Phase::Firing, false) => {
                state.phase = Phase::Inactive;
                self.clear(index, id, ts, Some(value), events);
            }
            (Phase::Inactive, false) | (Phase::Firing, true) => {}
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
                state.phase = Phase::Firing;
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
        state.phase = Phase::Firing;
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
        Phase::Firing
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
mod tests {
    use super::*;
    use faultline_wire::SampleKind;
    use faultline_wire::config_file::ConfigSource;
    use std::path::Path;

    /// One step of a scenario.
    enum Step {
        /// (metric, target, labels "k=v,k=v", value, ts)
        S(&'static str, &'static str, &'static str, f64, Millis),
        /// Wall-clock tick.
        Tick(Millis),
    }
    use Step::{S, Tick};

    fn rules(body: &str) -> RuleSet {
        RuleSet::from_sources(&[ConfigSource::from_text(
            Path::new("t.toml"),
            body.to_string(),
        )])
        .unwrap()
    }

    /// Runs the steps and renders events as `fire RULE TARGET start=.. at=.. value=..` /
    /// `resolve RULE TARGET at=..`.
    fn run(body: &str, steps: &[Step]) -> Vec<String> {
        let mut eval = Evaluator::new(rules(body));
        let mut out = Vec::new();
        for step in steps {
            let events = match step {
                S(metric, target, labels, value, ts) => {
                    let labels = labels
                        .split(',')
                        .filter(|kv| !kv.is_empty())
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    let sample = Sample {
                        metric: metric.to_string(),
                        target: target.to_string(),
                        labels,
                        value: *value,
                        ts_ms: *ts,
                        kind: SampleKind::Gauge,
                    };
                    eval.observe("agent-1", &sample)
                }
                Tick(now) => eval.tick(*now),
            };
            for event in events {
                out.push(match event {
                    RuleEvent::Firing(f) => format!(
                        "fire {} {} start={} at={} value={} | {}",
                        f.rule, f.target, f.started_at_ms, f.fired_at_ms, f.value, f.summary
                    ),
                    RuleEvent::Resolved(r) => {
                        format!("resolve {} {} at={}", r.rule, r.target, r.resolved_at_ms)
                    }
                });
            }
        }
        out
    }

    const HOT: &str = r#"
[[rules]]
name = "Hot"
metric = "temp"
condition = "above"
threshold = 30.0
clear = 28.0
for = "2m"
severity = "P2"
summary = "{{ target }} {{ value }}"
"#;

    #[test]
    fn threshold_for_and_hysteresis() {
        let got = run(
            HOT,
            &[
                S("temp", "s1", "", 25.0, 0),
                S("temp", "s1", "", 31.0, 60_000), // pending since 60s
                S("temp", "s1", "", 29.0, 120_000), // above clear: still pending
                S("temp", "s1", "", 32.0, 180_000), // 2m since 60s: fires, start 60s
                S("temp", "s1", "", 29.0, 240_000), // hysteresis: still firing
                S("temp", "s1", "", 28.0, 300_000), // at clear: resolves
                S("temp", "s1", "", 31.0, 360_000), // pending again
                S("temp", "s1", "", 27.0, 420_000), // back to normal before `for`: nothing
            ],
        );
        assert_eq!(
            got,
            [
                "fire Hot s1 start=60000 at=180000 value=32 | s1 32",
                "resolve Hot s1 at=300000"
            ]
        );
    }

    #[test]
    fn late_backlog_keeps_original_times_and_drops_out_of_order() {
        let mut eval = Evaluator::new(rules(HOT));
        let sample = |value, ts_ms| Sample {
            metric: "temp".into(),
            target: "s1".into(),
            labels: BTreeMap::new(),
            value,
            ts_ms,
            kind: SampleKind::Gauge,
        };
        // The agent's backlog arrives hours later, in its own order; no tick fires anything.
        assert!(eval.tick(10_000_000).is_empty());
        assert!(eval.observe("a", &sample(35.0, 1_000)).is_empty());
        let events = eval.observe("a", &sample(36.0, 121_000));
        let [RuleEvent::Firing(f)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!((f.started_at_ms, f.fired_at_ms), (1_000, 121_000));
        assert_eq!(f.labels.get("agent").map(String::as_str), Some("a"));
        // A duplicate or older sample of the same series is ignored.
        assert!(eval.observe("a", &sample(10.0, 60_000)).is_empty());
        assert_eq!(eval.out_of_order(), 1);
        let events = eval.observe("a", &sample(20.0, 181_000));
        assert!(
            matches!(events.as_slice(), [RuleEvent::Resolved(r)] if r.resolved_at_ms == 181_000)
        );
    }

    #[test]
    fn one_event_per_fingerprint_across_series() {
        let got = run(
            &HOT.replace("for = \"2m\"", ""),
            &[
                S("temp", "s1", "probe=a", 31.0, 0),
                S("temp", "s1", "probe=b", 31.0, 1_000),
                S("temp", "s2", "probe=a", 31.0, 1_000),
                S("temp", "s1", "probe=a", 20.0, 2_000),
                S("temp", "s1", "probe=b", 20.0, 3_000),
            ],
        );
        assert_eq!(
            got,
            [
                "fire Hot s1 start=0 at=0 value=31 | s1 31",
                "fire Hot s2 start=1000 at=1000 value=31 | s2 31",
                "resolve Hot s1 at=3000",
            ]
        );
    }

    #[test]
    fn counter_rate_ignores_wraps_and_resets() {
        let body = r#"
[[rules]]
name = "IfErrors"
metric = "errs"
condition = "rate_above"
threshold = 10.0
clear = 1.0
severity = "P3"
summary = "{{ labels.ifName }} {{ value }}/s"
"#;
        let wrap = 4_294_967_296.0;
        let got = run(
            body,
            &[
                S("errs", "sw1", "ifName=Gi1", wrap - 1_000.0, 0),
                S("errs", "sw1", "ifName=Gi1", 500.0, 10_000), // 32-bit wrap: 150/s, true rate
                S("errs", "sw1", "ifName=Gi1", 505.0, 20_000), // 0.5/s: clears
                S("errs", "sw1", "ifName=Gi1", 3.0, 30_000),   // reset: skipped, no spike
                S("errs", "sw1", "ifName=Gi1", 8.0, 40_000),   // 0.5/s
                S("errs", "sw1", "ifName=Gi1", 5_000_000.0, 50_000), // real burst
            ],
        );
        assert_eq!(
            got,
            [
                "fire IfErrors sw1 start=10000 at=10000 value=150 | Gi1 150/s",
                "resolve IfErrors sw1 at=20000",
                "fire IfErrors sw1 start=50000 at=50000 value=499999.2 | Gi1 499999.2/s",
            ]
        );
    }

    #[test]
    fn changed_to_fires_only_on_a_change() {
        let body = r#"
[[rules]]
name = "IfDown"
metric = "oper"
match = ['ifName!~"Null.*"', 'agent="agent-1"', 'target=~"sw.*"']
condition = "changed_to"
threshold = 2
severity = "P2"
summary = "{{ labels.ifName }} down"
"#;
        let got = run(
            body,
            &[
                S("oper", "sw1", "ifName=Gi2", 2.0, 0), // already down when first seen: no ticket
                S("oper", "sw1", "ifName=Gi2", 2.0, 10_000),
                S("oper", "sw1", "ifName=Gi1", 1.0, 0),
                S("oper", "sw1", "ifName=Gi1", 2.0, 10_000),
                S("oper", "sw1", "ifName=Gi1", 2.0, 20_000),
                S("oper", "sw1", "ifName=Gi1", 1.0, 30_000),
                S("oper", "sw1", "ifName=Null0", 1.0, 0),
                S("oper", "sw1", "ifName=Null0", 2.0, 10_000), // excluded by matcher
                S("oper", "fw1", "ifName=Gi1", 1.0, 0),
                S("oper", "fw1", "ifName=Gi1", 2.0, 10_000), // excluded by target matcher
            ],
        );
        assert_eq!(
            got,
            [
                "fire IfDown sw1 start=10000 at=10000 value=2 | Gi1 down",
                "resolve IfDown sw1 at=30000"
            ]
        );
    }

    #[test]
    fn absence_by_tick_and_by_gap_in_backlog() {
        let body = r#"
[[rules]]
name = "Silent"
metric = "up"
condition = "absent"
stale_after = "5m"
severity = "P2"
summary = "{{ target }} silent"
"#;
        let got = run(
            body,
            &[
                S("up", "d1", "", 1.0, 0),
                Tick(200_000),
                Tick(300_001), // 5 min after the last sample
                Tick(400_000), // already firing: nothing new
                S("up", "d1", "", 1.0, 410_000),
                S("up", "d1", "", 1.0, 420_000),
                S("up", "d1", "", 1.0, 1_000_000), // backlog with a 580 s hole
            ],
        );
        assert_eq!(
            got,
            [
                "fire Silent d1 start=300000 at=300001 value=1 | d1 silent",
                "resolve Silent d1 at=410000",
                "fire Silent d1 start=720000 at=720000 value=1 | d1 silent",
                "resolve Silent d1 at=1000000",
            ]
        );
    }

    #[test]
    fn absence_is_judged_in_the_agents_time_while_it_replays_a_backlog() {
        let rules = rules(
            r#"
[[rules]]
name = "Silent"
metric = "up"
condition = "absent"
stale_after = "5m"
severity = "P2"
summary = "{{ target }} silent"
"#,
        );
        let mut eval = Evaluator::new(rules);
        let up = |target: &str, ts: Millis| Sample {
            metric: "up".into(),
            target: target.into(),
            labels: BTreeMap::new(),
            value: 1.0,
            ts_ms: ts,
            kind: SampleKind::Gauge,
        };
        const MIN: Millis = 60_000;
        let now = 100 * MIN; // the collector restarts after a long outage
        // The agent replays ten minutes of backlog, a minute per push, one push a second: d1
        // and d2 are polled throughout, d3 only at the start.
        let mut fired = Vec::new();
        for (i, ts) in (0..=10).map(|m| m * MIN).enumerate() {
            let wall = now + i as Millis * 1_000;
            eval.pushed("a", ts, wall);
            let mut batch = vec![up("d1", ts), up("d2", ts)];
            if ts == 0 {
                batch.push(up("d3", ts));
            }
            for s in &batch {
                assert!(eval.observe("a", s).is_empty());
            }
            fired.extend(eval.tick(wall + 500));
        }
        // Only d3 is absent, and at the backlog's time (5 min after its last sample), not at the
        // restart; d1 and d2 are catching up, not silent.
        let names: Vec<(String, Millis, Millis)> = fired
            .iter()
            .map(|e| match e {
                RuleEvent::Firing(f) => (f.target.clone(), f.started_at_ms, f.fired_at_ms),
                RuleEvent::Resolved(r) => (format!("resolved {}", r.target), 0, 0),
            })
            .collect();
        assert_eq!(names, [("d3".to_string(), 5 * MIN, 5 * MIN + 500)]);
        // The agent stops pushing (last push at now + 10 s): after stale_after of wall time its
        // series are absent.
        let later = now + 10_000 + 5 * MIN;
        assert!(eval.tick(later - 1_000).is_empty());
        let silent: Vec<String> = eval
            .tick(later + 1)
            .into_iter()
            .filter_map(|e| match e {
                RuleEvent::Firing(f) => Some(f.target),
                RuleEvent::Resolved(_) => None,
            })
            .collect();
        assert_eq!(silent, ["d1", "d2"]);
    }

    #[test]
    fn ratio_to_denominator() {
        let body = r#"
[[rules]]
name = "DiskFull"
metric = "avail"
divide_by = "size"
condition = "below"
threshold = 0.05
clear = 0.08
severity = "P2"
summary = "{{ labels.mountpoint }} {{ value_pct }}% free"
"#;
        let got = run(
            body,
            &[
                S("avail", "vm1", "mountpoint=/", 10.0, 0), // no denominator yet: skipped
                S("size", "vm1", "mountpoint=/", 1000.0, 0),
                S("avail", "vm1", "mountpoint=/", 40.0, 10_000),
                S("avail", "vm1", "mountpoint=/var", 1.0, 10_000), // other series, no size
                S("avail", "vm1", "mountpoint=/", 60.0, 20_000),   // 6%: hysteresis holds
                S("avail", "vm1", "mountpoint=/", 90.0, 30_000),
            ],
        );
        assert_eq!(
            got,
            [
                "fire DiskFull vm1 start=10000 at=10000 value=0.04 | / 4% free",
                "resolve DiskFull vm1 at=30000"
            ]
        );
    }

    #[test]
    fn restored_fingerprints_settle_on_their_first_sample() {
        let mut eval = Evaluator::new(rules(HOT));
        assert!(!eval.restore_firing("NoSuchRule", "s1"));
        for target in ["s1", "s2", "s3"] {
            assert!(eval.restore_firing("Hot", target));
        }
        let sample = |target: &str, value, ts_ms| Sample {
            metric: "temp".into(),
            target: target.into(),
            labels: BTreeMap::new(),
            value,
            ts_ms,
            kind: SampleKind::Gauge,
        };
        // Cleared while the collector was down: the lost resolution is emitted.
        let events = eval.observe("a", &sample("s1", 25.0, 1_000));
        assert!(
            matches!(events.as_slice(), [RuleEvent::Resolved(r)] if r.target == "s1" && r.resolved_at_ms == 1_000)
        );
        // Still hot (29 is above the clear level): confirmed silently, no second ticket.
        assert!(eval.observe("a", &sample("s2", 29.0, 1_000)).is_empty());
        assert!(eval.observe("a", &sample("s3", 40.0, 1_000)).is_empty());
        let events = eval.observe("a", &sample("s2", 20.0, 2_000));
        assert!(
            matches!(events.as_slice(), [RuleEvent::Resolved(r)] if r.target == "s2" && r.resolved_at_ms == 2_000)
        );
        // Settled fingerprints behave normally afterwards.
        assert!(eval.observe("a", &sample("s1", 20.0, 2_000)).is_empty());
        assert!(eval.observe("a", &sample("s3", 41.0, 2_000)).is_empty());
    }
}
