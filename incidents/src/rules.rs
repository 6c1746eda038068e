//! Rule files: `[[rules]]` tables in TOML, parsed with the shared
//! [`ConfigSource`] and validated into compiled [`Rule`]s
//! that the [`Evaluator`](crate::eval::Evaluator) runs (ingest → **rules** → incidents).
//!
//! Every problem is reported with file, line and field (`rules[3].clear`), both for parse errors and
//! for the checks done here after parsing.
//!
//! ```toml
//! [[rules]]
//! name = "RoomTemperatureHigh"
//! metric = "faultline_snmp_env_temperature_celsius"
//! match = ['sensor=~"inlet.*"']
//! condition = "above"          # above | below | equal | changed_to | absent | rate_above | rate_below
//! threshold = 30.0
//! clear = 28.0                 # hysteresis: stays firing until the value is back at or under 28
//! for = "2m"
//! severity = "P2"
//! correlate = "room"           # several sensors in one room seeing it are one fault
//! summary = "{{ target }} inlet at {{ value }} °C"
//! description = "Above {{ threshold }} °C for 2 minutes."
//! flap_threshold = 3           # optional: re-opens within flap_window that make its ticket
//! flap_window = "30m"          # flapping (defaults: [incidents.tickets] flap_threshold / _window)
//! ```

use crate::matcher::Matcher;
use crate::template::Template;
use crate::{Millis, duration_ms};
use faultline_wire::config_file::{ConfigError, ConfigSource};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

/// Ticket severity, P1 (most urgent) to P4.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Severity {
    /// Service down for many, or for a VIP.
    P1,
    /// Major degradation.
    P2,
    /// Minor degradation or a risk.
    P3,
    /// Informational.
    P4,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How a rule's incidents on different targets group into one fault.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correlate {
    /// Each target is its own fault unless the dependency graph links them.
    #[default]
    None,
    /// Targets of one room seeing the same rule are one fault (cooling, humidity, power).
    Room,
}

/// Condition names as written in rule files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ConditionKind {
    Above,
    Below,
    Equal,
    ChangedTo,
    Absent,
    RateAbove,
    RateBelow,
}

/// One rule as written in the file, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: String,
    metric: String,
    #[serde(default, rename = "match")]
    matchers: Vec<String>,
    condition: ConditionKind,
    threshold: Option<f64>,
    clear: Option<f64>,
    #[serde(default, rename = "for", with = "humantime_serde")]
    for_: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    stale_after: Option<Duration>,
    divide_by: Option<String>,
    severity: Severity,
    #[serde(default)]
    correlate: Correlate,
    summary: String,
    #[serde(default)]
    description: String,
    flap_threshold: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    flap_window: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rules: Vec<RuleSpec>,
}

/// Which way a level condition fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Fires above the threshold, clears at or under the clear level.
    Above,
    /// Fires below the threshold, clears at or over the clear level.
    Below,
}

/// What a level condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The sample value (or `metric / divide_by`).
    Value,
    /// The counter's per-second rate, wrap- and reset-aware.
    Rate,
}

/// A validated condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Above / below / rate above / rate below with hysteresis.
    Level {
        /// Value or rate.
        source: Source,
        /// Above or below.
        direction: Direction,
        /// Level at which the condition starts to hold.
        threshold: f64,
        /// Level at which a holding condition clears (equal to `threshold` without hysteresis).
        clear: f64,
    },
    /// The value equals `value` (state encodings).
    Equal {
        /// The state value.
        value: f64,
    },
    /// The value changed from something else to `value`; holds until it leaves `value`.
    ChangedTo {
        /// The state value.
        value: f64,
    },
    /// No sample for longer than `stale_after_ms`.
    Absent {
        /// Silence that makes a series absent.
        stale_after_ms: Millis,
    },
}

impl Condition {
    /// The threshold shown in templates.
    pub fn threshold(&self) -> Option<f64> {
        match *self {
            Condition::Level { threshold, .. } => Some(threshold),
            Condition::Equal { value } | Condition::ChangedTo { value } => Some(value),
            Condition::Absent { .. } => None,
        }
    }

    /// Whether the condition holds for `value`, given the previous value of the series and whether
    /// it already held (hysteresis). Not used for [`Condition::Absent`].
    pub fn holds(&self, value: f64, previous: Option<f64>, was_holding: bool) -> bool {
        match *self {
            Condition::Level {
                direction,
                threshold,
                clear,
                ..
            } => {
                let level = if was_holding { clear } else { threshold };
                match direction {
                    Direction::Above => value > level,
                    Direction::Below => value < level,
                }
            }
            Condition::Equal { value: want } => value == want,
            Condition::ChangedTo { value: want } => {
                value == want && (was_holding || previous.is_some_and(|p| p != want))
            }
            Condition::Absent { .. } => false,
        }
    }
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name; with the target it forms the ticket fingerprint.
    pub name: String,
    /// Metric the rule selects.
    pub metric: String,
    /// Label matchers, all of which must match.
    pub matchers: Vec<Matcher>,
    /// Optional denominator metric: the value judged is `metric / divide_by` of the same series.
    pub divide_by: Option<String>,
    /// The condition.
    pub condition: Condition,
    /// How long the condition must hold, in sample time, before the rule fires.
    pub for_ms: Millis,
    /// Severity of the resulting ticket.
    pub severity: Severity,
    /// How incidents of this rule on different targets group into one fault.
    pub correlate: Correlate,
    /// One-line summary template.
    pub summary: Template,
    /// Longer description template.
    pub description: Template,
    /// Re-opens within the flap window that make this rule's ticket flapping, if not the
    /// `[incidents.tickets]` default (`flap_threshold`; 0 never flaps).
    pub flap_threshold: Option<u32>,
    /// This rule's flap window, if not the `[incidents.tickets]` default (`flap_window`).
    pub flap_window: Option<Duration>,
}

/// All loaded rules, names unique across files.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// Parses and validates rule files; rule names must be unique across all of them.
    pub fn from_sources(sources: &[ConfigSource]) -> Result<Self, ConfigError> {
        let mut rules = Vec::new();
        let mut seen = HashSet::new();
        for source in sources {
            let file = source.parse::<RuleFile>()?;
            for (i, spec) in file.rules.into_iter().enumerate() {
                let rule = validate_rule(source, i, spec)?;
                if !seen.insert(rule.name.clone()) {
                    return Err(source.error(
                        &format!("rules[{i}].name"),
                        format!("duplicate rule name `{}`", rule.name),
                    ));
                }
                rules.push(rule);
            }
        }
        Ok(Self { rules })
    }

    /// Builds a set from already validated rules (tests, generated rules).
    pub fn new(rules: Vec<Rule>) -> Self {
        Self { rules }
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules whose incidents are one fault with `rule`'s, `rule` included, in file order:
    /// those over the same metric with the same correlation scope (their incidents join one
    /// ticket on the same target, or anywhere in the room with `correlate = "room"`, and the most
    /// severe sets the ticket's severity). Several rules on one metric are levels or faces of one
    /// condition (high and critical temperature, a fail-over and a non-functional HA state);
    /// rules over different metrics are different faults even on one target.
    pub fn same_fault(&self, rule: &Rule) -> Vec<String> {
        self.rules
            .iter()
            .filter(|r| r.metric == rule.metric && r.correlate == rule.correlate)
            .map(|r| r.name.clone())
            .collect()
    }

    /// Rule indices by the metric they select.
    pub(crate) fn by_metric(&self) -> BTreeMap<String, Vec<usize>> {
        let mut map: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, rule) in self.rules.iter().enumerate() {
            map.entry(rule.metric.clone()).or_default().push(i);
        }
        map
    }
}

/// True for a Prometheus metric name.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn validate_rule(source: &ConfigSource, i: usize, spec: RuleSpec) -> Result<Rule, ConfigError> {
    let err = |field: &str, msg: String| source.error(&format!("rules[{i}].{field}"), msg);
    if spec.name.is_empty()
        || !spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-:.".contains(c))
    {
        return Err(err(
            "name",
            format!(
                "`{}`: must be non-empty and use only A-Z a-z 0-9 _ - : .",
                spec.name
            ),
        ));
    }
    if !is_metric_name(&spec.metric) {
        return Err(err(
            "metric",
            format!("`{}` is not a metric name", spec.metric),
        ));
    }
    let matchers = spec
        .matchers
        .iter()
        .enumerate()
        .map(|(j, text)| {
            Matcher::parse(text).map_err(|e| err(&format!("match[{j}]"), e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let kind = spec.condition;
    let threshold = match (kind, spec.threshold) {
        (ConditionKind::Absent, Some(_)) => {
            return Err(err(
                "threshold",
                "not used by `absent`; set `stale_after`".into(),
            ));
        }
        (ConditionKind::Absent, None) => 0.0,
        (_, None) => return Err(err("threshold", "required by this condition".into())),
        (_, Some(t)) if !t.is_finite() => return Err(err("threshold", "must be finite".into())),
        (_, Some(t)) => t,
    };
    let level = |source, direction| -> Result<Condition, ConfigError> {
        let clear = spec.clear.unwrap_or(threshold);
        let ok = clear.is_finite()
            && match direction {
                Direction::Above => clear <= threshold,
                Direction::Below => clear >= threshold,
            };
        if !ok {
            let side = if direction == Direction::Above {
                "at or under"
            } else {
                "at or over"
            };
            return Err(err(
                "clear",
                format!("must be finite and {side} the threshold {threshold}"),
            ));
        }
        Ok(Condition::Level {
            source,
            direction,
            threshold,
            clear,
        })
    };
    let condition = match kind {
        ConditionKind::Above => level(Source::Value, Direction::Above)?,
        ConditionKind::Below => level(Source::Value, Direction::Below)?,
        ConditionKind::RateAbove => level(Source::Rate, Direction::Above)?,
        ConditionKind::RateBelow => level(Source::Rate, Direction::Below)?,
        ConditionKind::Equal => Condition::Equal { value: threshold },
        ConditionKind::ChangedTo => Condition::ChangedTo { value: threshold },
        ConditionKind::Absent => match spec.stale_after {
            Some(d) if !d.is_zero() => Condition::Absent {
                stale_after_ms: duration_ms(d),
            },
            _ => {
                return Err(err(
                    "stale_after",
                    "`absent` needs a non-zero `stale_after`".into(),
                ));
            }
        },
    };
    let is_level = matches!(condition, Condition::Level { .. });
    if spec.clear.is_some() && !is_level {
        return Err(err(
            "clear",
            "only above / below / rate_above / rate_below take `clear`".into(),
        ));
    }
    if spec.stale_after.is_some() && kind != ConditionKind::Absent {
        return Err(err(
            "stale_after",
            "only `absent` takes `stale_after`".into(),
        ));
    }
    if let Some(den) = &spec.divide_by {
        if !matches!(
            condition,
            Condition::Level {
                source: Source::Value,
                ..
            } | Condition::Equal { .. }
        ) {
            return Err(err(
                "divide_by",
                "only above / below / equal take `divide_by`".into(),
            ));
        }
        if !is_metric_name(den) || *den == spec.metric {
            return Err(err(
                "divide_by",
                format!("`{den}` must be another metric name"),
            ));
        }
    }
    let summary = Template::parse(&spec.summary).map_err(|e| err("summary", e))?;
    if spec.summary.trim().is_empty() {
        return Err(err("summary", "must not be empty".into()));
    }
    let description = Template::parse(&spec.description).map_err(|e| err("description", e))?;
    Ok(Rule {
        name: spec.name,
        metric: spec.metric,
        matchers,
        divide_by: spec.divide_by,
        condition,
        for_ms: spec.for_.map_or(0, duration_ms),
        severity: spec.severity,
        correlate: spec.correlate,
        summary,
        description,
        flap_threshold: spec.flap_threshold,
        flap_window: spec.flap_window,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> Result<RuleSet, ConfigError> {
        RuleSet::from_sources(&[ConfigSource::from_text(
            Path::new("r.toml"),
            text.to_string(),
        )])
    }

    const GOOD: &str = r#"
[[rules]]
name = "Hot"
metric = "faultline_snmp_env_temperature_celsius"
match = ['sensor=~"inlet.*"']
condition = "above"
threshold = 30.0
clear = 28.0
for = "2m"
severity = "P2"
summary = "{{ target }} at {{ value }}"
"#;

    #[test]
    fn flap_detection_can_be_set_per_rule() {
        let set = load(
            r#"
[[rules]]
name = "PortFlaps"
metric = "faultline_snmp_if_oper_status"
condition = "changed_to"
threshold = 2
severity = "P3"
summary = "x"
flap_threshold = 4
flap_window = "30m"
"#,
        )
        .unwrap();
        let rule = &set.rules()[0];
        assert_eq!(rule.flap_threshold, Some(4));
        assert_eq!(rule.flap_window, Some(Duration::from_secs(1800)));
        let err = load(&GOOD.replace("severity", "flap_window = \"often\"\nseverity")).unwrap_err();
        assert!(err.field.ends_with("flap_window"), "{err}");
    }

    #[test]
    fn good_rule_compiles() {
        let set = load(GOOD).unwrap();
        let rule = &set.rules()[0];
        assert_eq!(rule.for_ms, 120_000);
        assert_eq!(
            rule.condition,
            Condition::Level {
                source: Source::Value,
                direction: Direction::Above,
                threshold: 30.0,
                clear: 28.0
            }
        );
        assert_eq!(rule.severity, Severity::P2);
    }

    /// Each case replaces one line of `GOOD` (or appends one) and expects the error's field, line
    /// and a fragment of its message.
    #[test]
    fn validation_errors_name_field_and_line() {
        let cases: &[(&str, &str, &str, usize, &str)] = &[
            (
                "clear = 28.0",
                "clear = 31.0",
                "rules[0].clear",
                8,
                "at or under",
            ),
            ("threshold = 30.0", "", "rules[0].threshold", 2, "required"),
            (
                "severity = \"P2\"",
                "severity = \"P5\"",
                "rules[0].severity",
                10,
                "P5",
            ),
            (
                "condition = \"above\"",
                "condition = \"over\"",
                "rules[0].condition",
                6,
                "over",
            ),
            (
                "match = ['sensor=~\"inlet.*\"']",
                "match = ['sensor=~\"(\"']",
                "rules[0].match[0]",
                5,
                "regex",
            ),
            (
                "summary = \"{{ target }} at {{ value }}\"",
                "summary = \"{{ vlaue }}\"",
                "rules[0].summary",
                11,
                "vlaue",
            ),
            ("for = \"2m\"", "for = \"2 parsecs\"", "rules[0].for", 9, ""),
            (
                "metric = \"faultline_snmp_env_temperature_celsius\"",
                "metric = \"9bad\"",
                "rules[0].metric",
                4,
                "metric name",
            ),
            (
                "condition = \"above\"",
                "condition = \"equal\"",
                "rules[0].clear",
                8,
                "only above",
            ),
            (
                "for = \"2m\"",
                "stale_after = \"5m\"",
                "rules[0].stale_after",
                9,
                "only `absent`",
            ),
            (
                "clear = 28.0",
                "divide_by = \"faultline_snmp_env_temperature_celsius\"",
                "rules[0].divide_by",
                8,
                "another",
            ),
            (
                "severity = \"P2\"",
                "severity = \"P2\"\nbogus = 1",
                "rules[0]",
                11,
                "bogus",
            ),
        ];
        for (from, to, field, line, fragment) in cases {
            assert!(GOOD.contains(from), "{from}");
            let err = load(&GOOD.replacen(from, to, 1)).unwrap_err();
            assert!(
                err.field.starts_with(field),
                "{to}: field {} != {field}",
                err.field
            );
            assert_eq!(err.position.map(|p| p.0), Some(*line), "{to}: {err}");
            assert!(err.message.contains(fragment), "{to}: {err}");
            assert!(err.to_string().starts_with("r.toml:"), "{err}");
        }
    }

    #[test]
    fn absent_needs_stale_after_and_no_threshold() {
        let base = "[[rules]]\nname = \"Gone\"\nmetric = \"m\"\ncondition = \"absent\"\nseverity = \"P3\"\nsummary = \"s\"\n";
        let err = load(base).unwrap_err();
        assert_eq!(err.field, "rules[0].stale_after");
        assert!(load(&format!("{base}stale_after = \"5m\"\n")).is_ok());
        let err = load(&format!("{base}stale_after = \"5m\"\nthreshold = 1\n")).unwrap_err();
        assert_eq!(err.field, "rules[0].threshold");
    }

    #[test]
    fn duplicate_names_across_files_are_rejected() {
        let a = ConfigSource::from_text(Path::new("a.toml"), GOOD.to_string());
        let b = ConfigSource::from_text(Path::new("b.toml"), GOOD.to_string());
        let err = RuleSet::from_sources(&[a, b]).unwrap_err();
        assert!(err.to_string().starts_with("b.toml:3:"), "{err}");
        assert!(err.message.contains("duplicate"), "{err}");
    }

    #[test]
    fn hysteresis_table() {
        let above = Condition::Level {
            source: Source::Value,
            direction: Direction::Above,
            threshold: 30.0,
            clear: 28.0,
        };
        let below = Condition::Level {
            source: Source::Value,
            direction: Direction::Below,
            threshold: 10.0,
            clear: 12.0,
        };
        let changed = Condition::ChangedTo { value: 2.0 };
        // (condition, value, previous, was holding, holds)
        let cases: &[(&Condition, f64, Option<f64>, bool, bool)] = &[
            (&above, 30.5, None, false, true),
            (&above, 29.0, None, false, false),
            (&above, 29.0, None, true, true),
            (&above, 28.0, None, true, false),
            (&below, 9.0, None, false, true),
            (&below, 11.0, None, true, true),
            (&below, 12.0, None, true, false),
            (&changed, 2.0, None, false, false),
            (&changed, 2.0, Some(2.0), false, false),
            (&changed, 2.0, Some(1.0), false, true),
            (&changed, 2.0, Some(2.0), true, true),
            (&changed, 1.0, Some(2.0), true, false),
        ];
        for (cond, value, prev, was, want) in cases {
            assert_eq!(
                cond.holds(*value, *prev, *was),
                *want,
                "{cond:?} {value} {prev:?} {was}"
            );
        }
    }

    #[test]
    fn default_rule_set_loads_and_covers_the_machine_room() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/default.toml");
        let set = RuleSet::from_sources(&[ConfigSource::read(&path).unwrap()]).unwrap();
        let names: Vec<&str> = set.rules().iter().map(|r| r.name.as_str()).collect();
        for want in [
            "RoomTemperatureHigh",
            "RoomHumidityHigh",
            "UpsOnBattery",
            "DeviceUnreachable",
            "DeviceSilent",
            "InterfaceDown",
            "InterfaceInErrors",
            "FirewallCpuHigh",
            "FirewallSessionsHigh",
            "FirewallHaFailover",
            "DiskFull",
            "CarrierLinkLoss",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
    }

    #[test]
    fn same_fault_table() {
        let set = load(
            r#"
[[rules]]
name = "High"
metric = "temp"
condition = "above"
threshold = 30.0
severity = "P2"
correlate = "room"
summary = "x"

[[rules]]
name = "Critical"
metric = "temp"
condition = "above"
threshold = 35.0
severity = "P1"
correlate = "room"
summary = "x"

[[rules]]
name = "PerSensor"
metric = "temp"
condition = "below"
threshold = 5.0
severity = "P3"
summary = "x"

[[rules]]
name = "Humid"
metric = "humidity"
condition = "above"
threshold = 0.7
severity = "P3"
correlate = "room"
summary = "x"
"#,
        )
        .unwrap();
        // (rule, the rules one fault with it)
        let cases: [(&str, &[&str]); 4] = [
            ("High", &["High", "Critical"]),
            ("Critical", &["High", "Critical"]),
            ("PerSensor", &["PerSensor"]),
            ("Humid", &["Humid"]),
        ];
        for (name, want) in cases {
            let rule = set.rules().iter().find(|r| r.name == name).unwrap();
            assert_eq!(set.same_fault(rule), want, "{name}");
        }
    }
}
