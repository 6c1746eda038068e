//! Rule unit tests in the style of `promtool test rules`: a TOML file gives input series over time
//! and the incidents the rules must produce; [`RuleTestFile::run`] replays them through the real
//! [`Evaluator`] (ingest → **rules**), so users can check their rule files in CI.
//!
//! ```toml
//! rule_files = ["default.toml"]      # relative to the test file
//! evaluation_interval = "10s"        # how often absence is judged (default 10s)
//!
//! [[tests]]
//! name = "room gets hot"
//! end = "15m"                        # default: the last sample plus one evaluation interval
//!
//! [[tests.series]]
//! metric = "faultline_snmp_env_temperature_celsius"
//! target = "temp-1"
//! labels = { sensor = "inlet" }
//! kind = "gauge"                     # gauge | counter | state (default gauge)
//! interval = "1m"
//! values = "25 31+1x4 27 _ 26"       # promtool notation: a+bxn / a-bxn expand to n+1 values, _ skips
//!
//! [[tests.expect]]
//! rule = "RoomTemperatureHigh"
//! target = "temp-1"
//! started_at = "1m"
//! resolved_at = "6m"                 # omit when it is still firing at `end`
//! summary = "Temperature 35 °C at temp-1 inlet"   # optional, exact
//! ```
//!
//! Time starts at 0 ms; every time in the file is an offset from it.

use crate::eval::{Evaluator, RuleEvent};
use crate::rules::RuleSet;
use crate::{Millis, duration_ms};
use faultline_wire::config_file::{ConfigError, ConfigSource};
use faultline_wire::{Sample, SampleKind};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn default_interval() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    rule_files: Vec<PathBuf>,
    #[serde(default = "default_interval", with = "humantime_serde")]
    evaluation_interval: Duration,
    tests: Vec<TestSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestSpec {
    name: String,
    #[serde(default, with = "humantime_serde")]
    end: Option<Duration>,
    #[serde(default)]
    series: Vec<SeriesSpec>,
    #[serde(default)]
    expect: Vec<ExpectSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesSpec {
    metric: String,
    target: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default = "default_agent")]
    agent: String,
    #[serde(default = "default_kind")]
    kind: SampleKind,
    #[serde(with = "humantime_serde")]
    interval: Duration,
    values: String,
}

fn default_agent() -> String {
    "test-agent".to_string()
}

fn default_kind() -> SampleKind {
    SampleKind::Gauge
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectSpec {
    rule: String,
    target: String,
    #[serde(with = "humantime_serde")]
    started_at: Duration,
    #[serde(default, with = "humantime_serde")]
    resolved_at: Option<Duration>,
    #[serde(default)]
    summary: Option<String>,
}

/// An incident as seen by a rule test.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    rule: String,
    target: String,
    started_at_ms: Millis,
    resolved_at_ms: Option<Millis>,
    summary: Option<String>,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let offset = |ms: Millis| {
            humantime_serde::re::humantime::format_duration(Duration::from_millis(
                u64::try_from(ms).unwrap_or(0),
            ))
            .to_string()
        };
        write!(
            f,
            "{} on {} from {}",
            self.rule,
            self.target,
            offset(self.started_at_ms)
        )?;
        match self.resolved_at_ms {
            Some(r) => write!(f, " to {}", offset(r))?,
            None => write!(f, ", still firing")?,
        }
        if let Some(summary) = &self.summary {
            write!(f, " ({summary:?})")?;
        }
        Ok(())
    }
}

struct TestCase {
    name: String,
    end_ms: Option<Millis>,
    samples: Vec<(String, Sample)>,
    expect: Vec<Seen>,
}

/// A parsed rule test file.
pub struct RuleTestFile {
    rule_files: Vec<PathBuf>,
    interval_ms: Millis,
    tests: Vec<TestCase>,
}

/// The result of one test case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    /// The test's name.
    pub name: String,
    /// What did not match; empty when the test passed.
    pub failures: Vec<String>,
}

impl TestOutcome {
    /// True when every expectation matched.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Expands promtool value notation into one entry per step (`None` = no sample at that step).
pub fn expand_values(text: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for token in text.split_whitespace() {
        if token == "_" {
            out.push(None);
            continue;
        }
        if let Some(count) = token.strip_prefix("_x") {
            let n: usize = count
                .parse()
                .map_err(|_| format!("bad repeat in `{token}`"))?;
            out.extend(std::iter::repeat_n(None, n + 1));
            continue;
        }
        let Some((base, count)) = token.split_once('x') else {
            out.push(Some(parse_number(token)?));
            continue;
        };
        let n: usize = count
            .parse()
            .map_err(|_| format!("bad repeat count in `{token}`"))?;
        // The sign of the step belongs to the step: split at the last + or - after the first char.
        let split = base
            .get(1..)
            .and_then(|rest| rest.rfind(['+', '-']))
            .map(|i| i + 1)
            .ok_or_else(|| format!("`{token}`: expected a+bxn or a-bxn"))?;
        let start = parse_number(&base[..split])?;
        let step = parse_number(&base[split..])?;
        out.extend((0..=n).map(|i| Some(start + step * i as f64)));
    }
    Ok(out)
}

fn parse_number(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("`{text}` is not a finite number"))
}

impl RuleTestFile {
    /// Parses and validates a rule test file.
    pub fn load(source: &ConfigSource) -> Result<Self, ConfigError> {
        let spec: FileSpec = source.parse()?;
        let base = source.path().parent().unwrap_or(Path::new(""));
        let interval_ms = duration_ms(spec.evaluation_interval);
        if interval_ms <= 0 {
            return Err(source.error("evaluation_interval", "must be at least 1ms"));
        }
        let mut tests = Vec::new();
        for (i, test) in spec.tests.into_iter().enumerate() {
            let mut samples = Vec::new();
            for (j, series) in test.series.into_iter().enumerate() {
                let field = |f: &str| format!("tests[{i}].series[{j}].{f}");
                let step = duration_ms(series.interval);
                if step <= 0 {
                    return Err(source.error(&field("interval"), "must be at least 1ms"));
                }
                let values =
                    expand_values(&series.values).map_err(|e| source.error(&field("values"), e))?;
                for (k, value) in (0..).zip(values) {
                    let Some(value) = value else { continue };
                    samples.push((
                        series.agent.clone(),
                        Sample {
                            metric: series.metric.clone(),
                            target: series.target.clone(),
                            labels: series.labels.clone(),
                            value,
                            ts_ms: k * step,
                            kind: series.kind,
                        },
                    ));
                }
            }
            // Stable: samples of one instant keep file order.
            samples.sort_by_key(|(_, s)| s.ts_ms);
            let expect = test
                .expect
                .into_iter()
                .map(|e| Seen {
                    rule: e.rule,
                    target: e.target,
                    started_at_ms: duration_ms(e.started_at),
                    resolved_at_ms: e.resolved_at.map(duration_ms),
                    summary: e.summary,
                })
                .collect();
            tests.push(TestCase {
                name: test.name,
                end_ms: test.end.map(duration_ms),
                samples,
                expect,
            });
        }
        Ok(Self {
            rule_files: spec.rule_files.iter().map(|p| base.join(p)).collect(),
            interval_ms,
            tests,
        })
    }

    /// The rule files named by the test file, resolved against its directory.
    pub fn rule_files(&self) -> &[PathBuf] {
        &self.rule_files
    }

    /// Runs every test case against `rules`.
    pub fn run(&self, rules: &RuleSet) -> Vec<TestOutcome> {
        self.tests
            .iter()
            .map(|test| self.run_one(test, rules))
            .collect()
    }

    fn run_one(&self, test: &TestCase, rules: &RuleSet) -> TestOutcome {
        let mut eval = Evaluator::new(rules.clone());
        let last = test.samples.last().map_or(0, |(_, s)| s.ts_ms);
        let end = test.end_ms.unwrap_or(last + self.interval_ms);
        let mut seen: Vec<Seen> = Vec::new();
        let record = |events: Vec<RuleEvent>, seen: &mut Vec<Seen>| {
            for event in events {
                match event {
                    RuleEvent::Firing(f) => seen.push(Seen {
                        rule: f.rule,
                        target: f.target,
                        started_at_ms: f.started_at_ms,
                        resolved_at_ms: None,
                        summary: Some(f.summary),
                    }),
                    RuleEvent::Resolved(r) => {
                        if let Some(open) = seen.iter_mut().rev().find(|s| {
                            s.rule == r.rule && s.target == r.target && s.resolved_at_ms.is_none()
                        }) {
                            open.resolved_at_ms = Some(r.resolved_at_ms);
                        }
                    }
                }
            }
        };
        let mut next_tick = 0;
        for (agent, sample) in &test.samples {
            while next_tick < sample.ts_ms && next_tick <= end {
                record(eval.tick(next_tick), &mut seen);
                next_tick += self.interval_ms;
            }
            if sample.ts_ms <= end {
                record(eval.observe(agent, sample), &mut seen);
            }
        }
        while next_tick <= end {
            record(eval.tick(next_tick), &mut seen);
            next_tick += self.interval_ms;
        }
        let mut failures = Vec::new();
        let mut unmatched: Vec<Seen> = seen;
        for want in &test.expect {
            let found = unmatched.iter().position(|got| {
                got.rule == want.rule
                    && got.target == want.target
                    && got.started_at_ms == want.started_at_ms
                    && got.resolved_at_ms == want.resolved_at_ms
                    && want
                        .summary
                        .as_ref()
                        .is_none_or(|s| got.summary.as_ref() == Some(s))
            });
            match found {
                Some(i) => {
                    unmatched.remove(i);
                }
                None => failures.push(format!("expected but not produced: {want}")),
            }
        }
        failures.extend(
            unmatched
                .iter()
                .map(|got| format!("produced but not expected: {got}")),
        );
        TestOutcome {
            name: test.name.clone(),
            failures,
        }
    }
}

/// Reads a rule test file and its rule files and runs it: what `faultline-collector test-rules`
/// calls for each file. Times in messages are offsets from the test's start.
pub fn run_file(path: &Path) -> Result<Vec<TestOutcome>, ConfigError> {
    let file = RuleTestFile::load(&ConfigSource::read(path)?)?;
    let sources = file
        .rule_files()
        .iter()
        .map(|p| ConfigSource::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(file.run(&RuleSet::from_sources(&sources)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_notation_table() {
        type Expanded = Result<Vec<Option<f64>>, ()>;
        let cases: &[(&str, Expanded)] = &[
            ("1 2 3", Ok(vec![Some(1.0), Some(2.0), Some(3.0)])),
            (
                "1+2x3",
                Ok(vec![Some(1.0), Some(3.0), Some(5.0), Some(7.0)]),
            ),
            ("10-5x2", Ok(vec![Some(10.0), Some(5.0), Some(0.0)])),
            ("-1+1x1", Ok(vec![Some(-1.0), Some(0.0)])),
            ("5+0x1 _ 7", Ok(vec![Some(5.0), Some(5.0), None, Some(7.0)])),
            ("_x2 1e3", Ok(vec![None, None, None, Some(1000.0)])),
            ("1x3", Err(())),
            ("a", Err(())),
            ("1+1xq", Err(())),
            ("NaN", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(expand_values(text).map_err(|_| ()), *want, "{text}");
        }
    }

    #[test]
    fn default_rules_pass_their_tests() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/default_test.toml");
        let outcomes = run_file(&path).unwrap();
        assert!(outcomes.len() >= 10, "{outcomes:?}");
        for outcome in &outcomes {
            assert!(
                outcome.passed(),
                "{}: {:#?}",
                outcome.name,
                outcome.failures
            );
        }
    }

    #[test]
    fn a_wrong_expectation_fails_with_both_sides_named() {
        let rules = RuleSet::from_sources(&[ConfigSource::from_text(
            Path::new("r.toml"),
            "[[rules]]\nname = \"Hot\"\nmetric = \"t\"\ncondition = \"above\"\nthreshold = 30\nseverity = \"P3\"\nsummary = \"hot\"\n"
                .to_string(),
        )])
        .unwrap();
        let text = r#"
rule_files = ["r.toml"]
[[tests]]
name = "off by one step"
[[tests.series]]
metric = "t"
target = "s1"
interval = "1m"
values = "20 31 32 20"
[[tests.expect]]
rule = "Hot"
target = "s1"
started_at = "2m"
"#;
        let file = RuleTestFile::load(&ConfigSource::from_text(
            Path::new("dir/t.toml"),
            text.to_string(),
        ))
        .unwrap();
        assert_eq!(file.rule_files(), [PathBuf::from("dir/r.toml")]);
        let outcomes = file.run(&rules);
        assert_eq!(
            outcomes[0].failures,
            [
                "expected but not produced: Hot on s1 from 2m, still firing",
                "produced but not expected: Hot on s1 from 1m to 3m (\"hot\")",
            ]
        );
    }

    #[test]
    fn bad_values_are_placed() {
        let text = "rule_files = []\n[[tests]]\nname = \"x\"\n[[tests.series]]\nmetric = \"t\"\ntarget = \"s\"\ninterval = \"1m\"\nvalues = \"1 zz\"\n";
        let err = RuleTestFile::load(&ConfigSource::from_text(
            Path::new("t.toml"),
            text.to_string(),
        ))
        .err()
        .unwrap();
        assert_eq!(err.field, "tests[0].series[0].values");
        assert_eq!(err.position.map(|p| p.0), Some(8));
    }
}
