//! Swapping the rule set of a running evaluator (config reload → **rules** → incidents): what
//! the evaluator knows of each series — its last sample, whether its condition holds and since
//! when, whether it fires — is kept for every rule still in the new set (matched by name), so a
//! reload neither re-fires nor forgets a fault, and a `for` keeps counting. A rule that is gone
//! stops being judged; its stored memory is forgotten at the next start ([`Evaluator::recall`]).

use super::Evaluator;
use crate::rules::RuleSet;
use std::collections::HashMap;

impl Evaluator {
    /// Judges with `rules` from now on, keeping the state of every series of a rule whose name is
    /// still there (its new threshold, `for` or condition applies from its next sample or tick).
    /// Returns the names of the rules dropped, whose series are no longer judged.
    pub fn replace_rules(&mut self, rules: RuleSet) -> Vec<String> {
        let old = std::mem::replace(self, Evaluator::new(rules));
        let new_index: Vec<Option<usize>> = old
            .rules
            .rules()
            .iter()
            .map(|r| self.rules.rules().iter().position(|n| n.name == r.name))
            .collect();
        let remap = |index: usize| new_index.get(index).copied().flatten();
        let remap_key = |(index, id): (usize, String)| Some((remap(index)?, id));
        self.series = old
            .series
            .into_iter()
            .filter_map(|(key, state)| Some((remap_key(key)?, state)))
            .collect();
        self.firing = old
            .firing
            .into_iter()
            .filter_map(|(key, series)| Some((remap_key(key)?, series)))
            .collect();
        self.restored = old.restored.into_iter().filter_map(remap_key).collect();
        self.dirty = old.dirty.into_iter().filter_map(remap_key).collect();
        self.pending = old
            .pending
            .into_iter()
            .map(|(target, set)| {
                let set = set
                    .into_iter()
                    .filter_map(|(since, index, id)| Some((since, remap(index)?, id)))
                    .collect::<std::collections::BTreeSet<_>>();
                (target, set)
            })
            .filter(|(_, set)| !set.is_empty())
            .collect();
        self.denominators = old
            .denominators
            .into_iter()
            .filter(|((metric, _), _)| self.denominator_metrics.contains(metric))
            .collect::<HashMap<_, _>>();
        self.agents = old.agents;
        self.out_of_order = old.out_of_order;
        old.rules
            .rules()
            .iter()
            .zip(&new_index)
            .filter(|(_, new)| new.is_none())
            .map(|(rule, _)| rule.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::RuleEvent;
    use super::*;
    use faultline_wire::config_file::ConfigSource;
    use faultline_wire::{Sample, SampleKind};
    use std::path::Path;

    fn rules(body: &str) -> RuleSet {
        RuleSet::from_sources(&[ConfigSource::from_text(
            Path::new("r.toml"),
            body.to_string(),
        )])
        .unwrap()
    }

    fn hot(threshold: f64, for_: &str) -> String {
        format!(
            "[[rules]]\nname = \"Hot\"\nmetric = \"temp\"\ncondition = \"above\"\nthreshold = {threshold}\nfor = \"{for_}\"\nseverity = \"P2\"\nsummary = \"hot\"\n"
        )
    }

    const DRY: &str = "[[rules]]\nname = \"Dry\"\nmetric = \"hum\"\ncondition = \"below\"\nthreshold = 0.2\nseverity = \"P3\"\nsummary = \"dry\"\n";

    fn sample(metric: &str, value: f64, ts_ms: i64) -> Sample {
        Sample {
            metric: metric.into(),
            target: "room-a".into(),
            labels: Default::default(),
            value,
            ts_ms,
            kind: SampleKind::Gauge,
        }
    }

    fn kinds(events: &[RuleEvent]) -> Vec<&'static str> {
        events
            .iter()
            .map(|e| match e {
                RuleEvent::Firing(_) => "fire",
                RuleEvent::Resolved(_) => "resolve",
            })
            .collect()
    }

    #[test]
    fn a_lower_threshold_applies_from_the_next_sample() {
        let mut eval = Evaluator::new(rules(&hot(30.0, "0s")));
        assert!(eval.observe("a", &sample("temp", 28.0, 1_000)).is_empty());
        assert!(eval.replace_rules(rules(&hot(25.0, "0s"))).is_empty());
        assert_eq!(
            kinds(&eval.observe("a", &sample("temp", 28.0, 2_000))),
            ["fire"]
        );
    }

    #[test]
    fn kept_rules_keep_their_state_and_dropped_rules_are_named() {
        let mut eval = Evaluator::new(rules(&format!("{}{DRY}", hot(30.0, "1m"))));
        // Hot starts holding at 1 s (pending for its minute); Dry fires.
        assert!(eval.observe("a", &sample("temp", 35.0, 1_000)).is_empty());
        assert_eq!(
            kinds(&eval.observe("a", &sample("hum", 0.1, 1_000))),
            ["fire"]
        );
        // Dry is dropped and Hot now comes first in the set: its state follows it by name.
        let dropped = eval.replace_rules(rules(&hot(30.0, "1m")));
        assert_eq!(dropped, ["Dry"]);
        assert!(
            eval.pending_since("room-a").is_some(),
            "the `for` keeps counting"
        );
        assert_eq!(
            kinds(&eval.observe("a", &sample("temp", 35.0, 61_000))),
            ["fire"]
        );
        // Firing is remembered: the same value does not fire again, a cool one resolves.
        assert!(eval.observe("a", &sample("temp", 36.0, 62_000)).is_empty());
        assert_eq!(
            kinds(&eval.observe("a", &sample("temp", 20.0, 63_000))),
            ["resolve"]
        );
        // The dropped rule is no longer judged.
        assert!(eval.observe("a", &sample("hum", 0.5, 64_000)).is_empty());
    }
}
