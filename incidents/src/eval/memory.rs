//! Rule memory (ingest → **rules** → incidents): the part of the evaluator's state a restart
//! must not lose, so that every sample the collector acknowledged is judged as if it had never
//! stopped.
//!
//! The collector acknowledges a batch only after the rules have judged it and this memory is
//! stored; a batch interrupted before that is sent again by its agent and judged on the state
//! recalled here. What is remembered, per series of a rule:
//! - a rule pending or firing (when its condition started to hold), so a `for` keeps counting
//!   and a firing that had no ticket yet (held while settling) fires again;
//! - the last value of a `changed_to` rule, the edge it needs to see a change;
//! - that an `absent` rule's series exists, so a device that went silent while the collector
//!   was down is found: its absence is judged from the restart (the time in between is unknown);
//! - the time of the last edge of any series, so a batch judged before a crash but not yet
//!   acknowledged, and so sent again, does not open or resolve anything a second time.
//!
//! Everything else (values between edges, rates' previous counters) is rebuilt by the next
//! sample. Writes happen only at edges (a phase change, a new `changed_to` value, a new absent
//! series), never per sample. An inactive series of a level rule is forgotten once its last edge
//! is older than any sample ingest still accepts.

use super::{AgentClock, Evaluator, Phase, SeriesState};
use crate::Millis;
use crate::attribution::AGENT_TARGET_PREFIX;
use crate::rules::{Condition, Rule};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// What a restart recalls of one series of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesMemory {
    /// The rule's name (a rule removed from the configuration is forgotten).
    pub rule: String,
    /// The series' identity within the rule's metric (target and labels).
    pub series: String,
    /// The series' target.
    pub target: String,
    /// The series' labels, `agent` included.
    pub labels: BTreeMap<String, String>,
    /// Time of the series' last judged sample.
    pub last_ts: Millis,
    /// Its raw value (the counter, for rates).
    pub last_raw: f64,
    /// The value last judged, when there was one.
    pub last_value: Option<f64>,
    /// When the condition started to hold, while pending or firing.
    pub holding_since: Option<Millis>,
    /// Whether the rule was firing on this series.
    pub firing: bool,
}

/// A change to the stored rule memory.
#[derive(Debug, Clone, PartialEq)]
pub enum MemoryChange {
    /// Store (or replace) the memory of a series.
    Keep(SeriesMemory),
    /// Nothing about this series needs remembering any more (its rule is gone, or its last
    /// edge is older than any sample that can still arrive).
    Forget {
        /// The rule's name.
        rule: String,
        /// The series' identity.
        series: String,
    },
}

/// Rules whose series are remembered even while inactive: a `changed_to` needs its last value,
/// an `absent` needs to know the series exists.
fn remembers_inactive(rule: &Rule) -> bool {
    matches!(
        rule.condition,
        Condition::ChangedTo { .. } | Condition::Absent { .. }
    )
}

/// Whether a step of `rule` that took a series from `before` to `after` (phase and last judged
/// value; `None` for a series not seen yet) changed what is remembered of it.
pub(super) fn worth_writing(
    rule: &Rule,
    before: Option<(Phase, Option<f64>)>,
    after: Option<(Phase, Option<f64>)>,
) -> bool {
    match (before, after) {
        (_, None) => false,
        (None, Some((phase, _))) => phase != Phase::Inactive || remembers_inactive(rule),
        (Some((was, old)), Some((now, new))) => {
            was != now
                || (matches!(rule.condition, Condition::ChangedTo { .. })
                    && old.map(f64::to_bits) != new.map(f64::to_bits))
        }
    }
}

impl Evaluator {
    /// Takes what changed in the rule memory since the last call, to be stored before the
    /// samples judged are acknowledged.
    pub fn take_memory(&mut self) -> Vec<MemoryChange> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .filter_map(|(index, series)| {
                let rule = &self.rules.rules()[index];
                let state = self.series.get(&(index, series.clone()))?;
                let holding_since = match state.phase {
                    Phase::Inactive => None,
                    Phase::Pending { since } | Phase::Firing { since } => Some(since),
                };
                Some(MemoryChange::Keep(SeriesMemory {
                    rule: rule.name.clone(),
                    series,
                    target: state.target.clone(),
                    labels: state.labels.clone(),
                    last_ts: state.last_ts,
                    last_raw: state.last_raw,
                    last_value: state.last_value,
                    holding_since,
                    firing: matches!(state.phase, Phase::Firing { .. }),
                }))
            })
            .collect()
    }

    /// Recalls the memory stored before a restart at wall-clock `now_ms`; call it after
    /// [`Evaluator::restore_firing`]. A fingerprint restored from an active ticket is settled by
    /// its next sample as before; any other firing series is pending again since its original
    /// start, so its next sample that still holds fires it (a firing held while settling, or
    /// whose ticket was never stored, is not lost); an absent rule's series is judged from the
    /// restart. Memories of rules that no longer exist, and of inactive level-rule series whose
    /// last edge is before `forget_before` (older than any sample ingest accepts), are not
    /// recalled: the [`MemoryChange::Forget`]s returned remove them from the store.
    pub fn recall(
        &mut self,
        memories: impl IntoIterator<Item = SeriesMemory>,
        now_ms: Millis,
        forget_before: Millis,
    ) -> Vec<MemoryChange> {
        let mut forget = Vec::new();
        // Per agent, the newest of its absent series: they are all judged from there.
        let mut absent_by_agent: HashMap<String, (Millis, Vec<(usize, String)>)> = HashMap::new();
        for memory in memories {
            let index = self
                .rules
                .rules()
                .iter()
                .position(|r| r.name == memory.rule);
            let stale = |rule: &Rule| {
                memory.holding_since.is_none()
                    && !remembers_inactive(rule)
                    && memory.last_ts < forget_before
            };
            let Some(index) = index.filter(|&i| !stale(&self.rules.rules()[i])) else {
                forget.push(MemoryChange::Forget {
                    rule: memory.rule,
                    series: memory.series,
                });
                continue;
            };
            let rule = &self.rules.rules()[index];
            let absent = matches!(rule.condition, Condition::Absent { .. });
            let ticketed = self.restored.contains(&(index, memory.target.clone()));
            let phase = match memory.holding_since {
                Some(since) if !ticketed && !absent => Phase::Pending { since },
                _ => Phase::Inactive,
            };
            let key = (index, memory.series);
            if let Phase::Pending { since } = phase {
                self.pending
                    .entry(memory.target.clone())
                    .or_default()
                    .insert((since, index, key.1.clone()));
            }
            let mut last_ts = memory.last_ts;
            if absent {
                if memory.target.starts_with(AGENT_TARGET_PREFIX) {
                    // A heartbeat is judged in wall-clock time: silent from the restart on.
                    last_ts = last_ts.max(now_ms);
                } else if let Some(agent) = memory.labels.get("agent") {
                    let entry = absent_by_agent
                        .entry(agent.clone())
                        .or_insert((Millis::MIN, Vec::new()));
                    entry.0 = entry.0.max(last_ts);
                    entry.1.push(key.clone());
                }
            }
            self.series.insert(
                key,
                SeriesState {
                    target: memory.target,
                    labels: memory.labels,
                    last_ts,
                    last_raw: memory.last_raw,
                    last_value: memory.last_value,
                    phase,
                },
            );
        }
        for (agent, (newest, keys)) in absent_by_agent {
            for key in keys {
                if let Some(state) = self.series.get_mut(&key) {
                    state.last_ts = newest;
                }
            }
            // The agent's time stood still while the collector was down and runs on from now.
            self.agents.entry(agent).or_insert(AgentClock {
                newest_ts: newest,
                pushed_at_ms: now_ms,
            });
        }
        forget
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::RuleEvent;
    use crate::rules::RuleSet;
    use faultline_wire::config_file::ConfigSource;
    use faultline_wire::{Sample, SampleKind};
    use std::path::Path;

    const RULES: &str = r#"
[[rules]]
name = "LinkDown"
metric = "if_oper_status"
condition = "changed_to"
threshold = 2.0
severity = "P2"
summary = "down"

[[rules]]
name = "Hot"
metric = "temp"
condition = "above"
threshold = 30.0
for = "2m"
severity = "P2"
summary = "hot"

[[rules]]
name = "Silent"
metric = "up"
condition = "absent"
stale_after = "1m"
severity = "P2"
summary = "silent"
"#;

    fn evaluator() -> Evaluator {
        let source = ConfigSource::from_text(Path::new("t.toml"), RULES.to_string());
        Evaluator::new(RuleSet::from_sources(&[source]).unwrap())
    }

    fn sample(metric: &str, value: f64, ts_ms: Millis) -> Sample {
        Sample {
            metric: metric.into(),
            target: "dev".into(),
            labels: BTreeMap::new(),
            value,
            ts_ms,
            kind: SampleKind::Gauge,
        }
    }

    /// Feeds `before` to one evaluator, "restarts" into a new one that recalls what the first
    /// stored (each sample's memory taken after it, as the stage does per batch), then feeds
    /// `after`; returns the rule events of the second evaluator.
    fn across_restart(before: &[Sample], after: &[Sample], now_ms: Millis) -> Vec<String> {
        let mut first = evaluator();
        let mut stored: BTreeMap<(String, String), SeriesMemory> = BTreeMap::new();
        for s in before {
            first.observe("a1", s);
            for change in first.take_memory() {
                match change {
                    MemoryChange::Keep(m) => {
                        stored.insert((m.rule.clone(), m.series.clone()), m);
                    }
                    MemoryChange::Forget { rule, series } => {
                        stored.remove(&(rule, series));
                    }
                }
            }
        }
        let mut second = evaluator();
        assert_eq!(second.recall(stored.into_values(), now_ms, 0), []);
        let mut events: Vec<RuleEvent> = Vec::new();
        for s in after {
            events.extend(second.observe("a1", s));
        }
        events.extend(second.tick(now_ms + 10 * 60_000));
        events
            .iter()
            .map(|e| match e {
                RuleEvent::Firing(f) => format!("fire {} start={}", f.rule, f.started_at_ms),
                RuleEvent::Resolved(r) => format!("resolve {} at={}", r.rule, r.resolved_at_ms),
            })
            .collect()
    }

    #[test]
    fn a_change_judged_after_a_restart_still_fires() {
        // The change to 2 was acknowledged-but-unjudged when the collector died: its agent sends
        // it again, and the recalled last value (1) makes it a change.
        let got = across_restart(
            &[sample("if_oper_status", 1.0, 1_000)],
            &[sample("if_oper_status", 2.0, 2_000)],
            3_000,
        );
        assert_eq!(got, ["fire LinkDown start=2000"]);
        // Without memory the same sample is a first sighting, not a change.
        let mut fresh = evaluator();
        assert!(
            fresh
                .observe("a1", &sample("if_oper_status", 2.0, 2_000))
                .is_empty()
        );
    }

    #[test]
    fn a_pending_for_keeps_its_start() {
        let got = across_restart(
            &[sample("temp", 31.0, 60_000)],
            &[sample("temp", 32.0, 180_000)],
            200_000,
        );
        assert_eq!(got, ["fire Hot start=60000"]);
    }

    #[test]
    fn a_firing_without_ticket_fires_again_from_its_start() {
        // Fired (and was held while settling) before the restart; no ticket was stored.
        let got = across_restart(
            &[sample("temp", 31.0, 0), sample("temp", 31.0, 120_000)],
            &[sample("temp", 31.0, 180_000)],
            200_000,
        );
        assert_eq!(got, ["fire Hot start=0"]);
    }

    #[test]
    fn an_absent_series_is_judged_from_the_restart() {
        // The device went silent while the collector was down: nothing comes after the restart.
        let got = across_restart(&[sample("up", 1.0, 1_000)], &[], 5_000_000);
        // Absent from its last sample plus `stale_after`, found a minute after the restart.
        assert_eq!(got, ["fire Silent start=61000"]);
        // Memory is written at edges only: a level rule that stays inactive is never written.
        let mut eval = evaluator();
        eval.observe("a1", &sample("temp", 20.0, 1_000));
        eval.observe("a1", &sample("temp", 21.0, 2_000));
        assert!(eval.take_memory().is_empty());
        eval.observe("a1", &sample("if_oper_status", 1.0, 1_000));
        assert_eq!(eval.take_memory().len(), 1);
        eval.observe("a1", &sample("if_oper_status", 1.0, 2_000));
        assert!(eval.take_memory().is_empty(), "same value: nothing new");
    }

    #[test]
    fn a_batch_judged_again_after_a_restart_changes_nothing() {
        // Fired and resolved inside one batch that was judged but not acknowledged: sent again
        // after the restart, it neither re-opens nor resolves again.
        let batch = [
            sample("temp", 31.0, 0),
            sample("temp", 31.0, 120_000),
            sample("temp", 20.0, 180_000),
        ];
        assert_eq!(
            across_restart(&batch, &batch, 200_000),
            Vec::<String>::new()
        );
    }

    #[test]
    fn old_inactive_level_memories_and_gone_rules_are_forgotten() {
        let mut eval = evaluator();
        let mut kept = SeriesMemory {
            rule: "Hot".into(),
            series: "dev".into(),
            target: "dev".into(),
            labels: BTreeMap::new(),
            last_ts: 5_000,
            last_raw: 20.0,
            last_value: Some(20.0),
            holding_since: None,
            firing: false,
        };
        let old = SeriesMemory {
            series: "dev2".into(),
            last_ts: 1_000,
            ..kept.clone()
        };
        let gone = SeriesMemory {
            rule: "Removed".into(),
            ..kept.clone()
        };
        let pending_old = SeriesMemory {
            series: "dev3".into(),
            last_ts: 1_000,
            holding_since: Some(500),
            ..kept.clone()
        };
        let forget = eval.recall([kept.clone(), old, gone, pending_old], 10_000, 2_000);
        let names: Vec<String> = forget
            .iter()
            .map(|c| match c {
                MemoryChange::Forget { rule, series } => format!("{rule}/{series}"),
                MemoryChange::Keep(m) => format!("keep {}", m.series),
            })
            .collect();
        assert_eq!(names, ["Hot/dev2", "Removed/dev"]);
        // A pending memory stays however old: its `for` still counts from its start.
        assert_eq!(eval.pending_since("dev"), Some(500));
        kept.series = "dev3".into();
        assert!(eval.series.contains_key(&(1, kept.series)));
    }
}
