//! Limits on what a batch may contain, checked by the collector on every push (and by the agent
//! before it queues samples), so that one bad producer cannot blow up the series store.

use crate::{Batch, RejectReason, RejectedSample, Sample, SampleKind};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Labels that the collector sets itself and a sample may not carry.
pub const RESERVED_LABELS: [&str; 2] = ["agent", "target"];

/// Bounds on batch contents. The defaults suit machine-room telemetry with room to spare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most samples one batch may carry.
    pub max_samples_per_batch: usize,
    /// Most labels one sample may carry.
    pub max_labels_per_sample: usize,
    /// Longest metric name, label name or target id, in bytes.
    pub max_name_bytes: usize,
    /// Longest label value, in bytes.
    pub max_label_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_samples_per_batch: 100_000,
            max_labels_per_sample: 32,
            max_name_bytes: 200,
            max_label_value_bytes: 1024,
        }
    }
}

/// A batch that decoded but breaks a limit or a naming rule; `field` says where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {problem}")]
pub struct InvalidBatch {
    /// Path of the offending field, e.g. `samples[12].labels.ifAlias`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl Limits {
    /// Checks a whole batch's structure (agent, number of samples, names, values), returning the
    /// first problem found. The label limits are judged per sample ([`Limits::judge_labels`]):
    /// a sample over them is refused alone, the rest of its batch applied.
    pub fn check_batch(&self, batch: &Batch) -> Result<(), InvalidBatch> {
        if batch.agent.is_empty() {
            return Err(invalid("agent", "must not be empty"));
        }
        if batch.samples.len() > self.max_samples_per_batch {
            return Err(invalid(
                "samples",
                format!(
                    "{} samples exceed the limit of {}",
                    batch.samples.len(),
                    self.max_samples_per_batch
                ),
            ));
        }
        for (i, sample) in batch.samples.iter().enumerate() {
            self.check_structure(sample)
                .map_err(|e| invalid(format!("samples[{i}].{}", e.field), e.problem))?;
        }
        self.check_help(batch)
    }

    /// Help entries: no more than samples, each named like a metric, its text one line of at
    /// most `max_label_value_bytes`.
    fn check_help(&self, batch: &Batch) -> Result<(), InvalidBatch> {
        if batch.help.len() > batch.samples.len() {
            return Err(invalid(
                "help",
                format!(
                    "{} entries for {} samples",
                    batch.help.len(),
                    batch.samples.len()
                ),
            ));
        }
        for (metric, text) in &batch.help {
            let field = || format!("help.{metric}");
            if metric.len() > self.max_name_bytes || !is_metric_name(metric) {
                return Err(invalid(field(), "not a metric name"));
            }
            if text.len() > self.max_label_value_bytes {
                return Err(invalid(
                    field(),
                    format!("longer than {} bytes", self.max_label_value_bytes),
                ));
            }
            if text.chars().any(char::is_control) {
                return Err(invalid(field(), "holds a control character"));
            }
        }
        Ok(())
    }

    /// Checks one sample, label limits included (what an agent checks before it queues a
    /// sample); the error's `field` is relative to the sample.
    pub fn check_sample(&self, sample: &Sample) -> Result<(), InvalidBatch> {
        self.check_structure(sample)?;
        self.label_limits(sample).map_err(|(_, e)| e)
    }

    /// The verdict on one sample's labels against `max_labels_per_sample`, `max_name_bytes` (label
    /// names) and `max_label_value_bytes`: `None` within them. Allocates nothing when within.
    pub fn judge_labels(&self, sample: &Sample) -> Option<RejectReason> {
        self.label_limits(sample).err().map(|(reason, _)| reason)
    }

    fn label_limits(&self, sample: &Sample) -> Result<(), (RejectReason, InvalidBatch)> {
        if sample.labels.len() > self.max_labels_per_sample {
            return Err((
                RejectReason::TooManyLabels,
                invalid(
                    "labels",
                    format!(
                        "{} labels exceed the limit of {}",
                        sample.labels.len(),
                        self.max_labels_per_sample
                    ),
                ),
            ));
        }
        for (name, value) in &sample.labels {
            let field = || format!("labels.{}", truncate(name));
            self.check_len(field, name, self.max_name_bytes)
                .and_then(|()| self.check_len(field, value, self.max_label_value_bytes))
                .map_err(|e| (RejectReason::LabelTooLong, e))?;
        }
        Ok(())
    }

    fn check_structure(&self, sample: &Sample) -> Result<(), InvalidBatch> {
        if !is_metric_name(&sample.metric) {
            return Err(invalid(
                "metric",
                format!("`{}` is not a valid metric name", truncate(&sample.metric)),
            ));
        }
        self.check_len(|| "metric".into(), &sample.metric, self.max_name_bytes)?;
        if sample.kind == SampleKind::Counter && sample.metric.ends_with("_total") {
            return Err(invalid(
                "metric",
                "a counter's name carries no `_total` suffix: the exporter adds it",
            ));
        }
        if sample.target.is_empty() {
            return Err(invalid("target", "must not be empty"));
        }
        self.check_len(|| "target".into(), &sample.target, self.max_name_bytes)?;
        if !sample.value.is_finite() {
            return Err(invalid(
                "value",
                format!("{} is not a finite number", sample.value),
            ));
        }
        for name in sample.labels.keys() {
            if !is_label_name(name) {
                return Err(invalid(
                    format!("labels.{}", truncate(name)),
                    "is not a valid label name",
                ));
            }
            if RESERVED_LABELS.contains(&name.as_str()) {
                return Err(invalid(
                    format!("labels.{}", truncate(name)),
                    "is reserved: the collector sets it",
                ));
            }
        }
        Ok(())
    }

    /// `text` within `max` bytes; `field` names it in the error (built only then).
    fn check_len(
        &self,
        field: impl FnOnce() -> String,
        text: &str,
        max: usize,
    ) -> Result<(), InvalidBatch> {
        if text.len() > max {
            return Err(invalid(
                field(),
                format!("{} bytes exceed the limit of {max}", text.len()),
            ));
        }
        Ok(())
    }
}

/// Appends a verdict for every sample of `samples` to refuse alone, in index order: over a label
/// limit of `limits`, or dated outside `window` at collector time `now_ms`. Nothing is allocated
/// when all are accepted.
pub fn judge_samples(
    limits: &Limits,
    window: &TimeWindow,
    samples: &[Sample],
    now_ms: i64,
    out: &mut Vec<RejectedSample>,
) {
    for (index, sample) in samples.iter().enumerate() {
        let verdict = limits
            .judge_labels(sample)
            .or_else(|| window.judge(sample.ts_ms, now_ms));
        if let Some(reason) = verdict {
            out.push(RejectedSample {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                reason,
            });
        }
    }
}

/// The span of sample timestamps the collector accepts around its own clock. A sample outside it
/// is refused alone (the rest of its batch is applied): dated far ahead it would hold its series'
/// latest value and hide every later sample; dated at or before the epoch it comes from no clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// How far ahead of the collector's clock a timestamp may be, in milliseconds.
    pub max_ahead_ms: i64,
    /// How far behind the collector's clock a timestamp may be, in milliseconds (as far back as
    /// an agent's outbox can hold a backlog).
    pub max_behind_ms: i64,
}

impl TimeWindow {
    /// The verdict on one timestamp at collector time `now_ms`: `None` accepts it.
    pub fn judge(&self, ts_ms: i64, now_ms: i64) -> Option<RejectReason> {
        if ts_ms <= 0 {
            Some(RejectReason::InvalidTimestamp)
        } else if ts_ms > now_ms.saturating_add(self.max_ahead_ms) {
            Some(RejectReason::TooFarAhead)
        } else if ts_ms < now_ms.saturating_sub(self.max_behind_ms) {
            Some(RejectReason::TooOld)
        } else {
            None
        }
    }
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> InvalidBatch {
    InvalidBatch {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Shortens untrusted text quoted in an error message.
fn truncate(text: &str) -> &str {
    match text.char_indices().nth(64) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// True for a Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// True for a Prometheus label name that is not internal: `[a-zA-Z_][a-zA-Z0-9_]*`, no `__` prefix.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AgentHealth;

    fn sample() -> Sample {
        Sample {
            metric: "faultline_host_load1".into(),
            target: "h1".into(),
            labels: [("site".to_string(), "bj".to_string())].into(),
            value: 0.5,
            ts_ms: 0,
            kind: SampleKind::Gauge,
        }
    }

    fn batch_of(samples: Vec<Sample>) -> Batch {
        Batch {
            agent: "a".into(),
            epoch: 1,
            seq: 1,
            health: AgentHealth::default(),
            samples,
            help: Default::default(),
        }
    }

    #[test]
    fn help_entries_are_checked() {
        let limits = Limits {
            max_label_value_bytes: 16,
            ..Limits::default()
        };
        // (case, help entries, field named)
        type Help = &'static [(&'static str, &'static str)];
        let cases: [(&str, Help, Option<&str>); 5] = [
            ("valid", &[("faultline_host_load1", "Load, 1 min")], None),
            (
                "more entries than samples",
                &[("faultline_a", "a"), ("faultline_b", "b")],
                Some("help"),
            ),
            ("bad name", &[("1abc", "a")], Some("help.1abc")),
            ("too long", &[("m", "seventeen bytes!!")], Some("help.m")),
            ("newline", &[("m", "two\nlines")], Some("help.m")),
        ];
        for (name, help, want) in cases {
            let mut batch = batch_of(vec![sample()]);
            batch.help = help
                .iter()
                .map(|(m, t)| (m.to_string(), t.to_string()))
                .collect();
            let got = limits.check_batch(&batch).err().map(|e| e.field);
            assert_eq!(got.as_deref(), want, "case {name}");
        }
    }

    #[test]
    fn table() {
        let limits = Limits::default();
        type Mutation = Box<dyn Fn(&mut Sample)>;
        let cases: Vec<(&str, Mutation, Option<&str>)> = vec![
            ("valid", Box::new(|_| {}), None),
            (
                "nan",
                Box::new(|s| s.value = f64::NAN),
                Some("samples[0].value"),
            ),
            (
                "inf",
                Box::new(|s| s.value = f64::INFINITY),
                Some("samples[0].value"),
            ),
            (
                "bad metric",
                Box::new(|s| s.metric = "1abc".into()),
                Some("samples[0].metric"),
            ),
            (
                "empty target",
                Box::new(|s| s.target.clear()),
                Some("samples[0].target"),
            ),
            (
                "bad label",
                Box::new(|s| {
                    s.labels.insert("a-b".into(), "x".into());
                }),
                Some("samples[0].labels.a-b"),
            ),
            (
                "reserved label",
                Box::new(|s| {
                    s.labels.insert("agent".into(), "x".into());
                }),
                Some("samples[0].labels.agent"),
            ),
            (
                "internal label",
                Box::new(|s| {
                    s.labels.insert("__name__".into(), "x".into());
                }),
                Some("samples[0].labels.__name__"),
            ),
        ];
        for (name, mutate, want) in cases {
            let mut s = sample();
            mutate(&mut s);
            let got = limits
                .check_batch(&batch_of(vec![s.clone()]))
                .err()
                .map(|e| e.field);
            assert_eq!(got.as_deref(), want, "case {name}");
            let got = limits.check_sample(&s).err().map(|e| e.field);
            assert_eq!(
                got.as_deref(),
                want.map(|f| f.trim_start_matches("samples[0].")),
                "case {name}, one sample"
            );
        }
    }

    #[test]
    fn label_limits_refuse_the_sample_not_the_batch() {
        let limits = Limits {
            max_labels_per_sample: 3,
            max_name_bytes: 24,
            max_label_value_bytes: 16,
            ..Limits::default()
        };
        type Mutation = Box<dyn Fn(&mut Sample)>;
        // (case, mutation, verdict, field the agent-side check names)
        let cases: Vec<(&str, Mutation, Option<RejectReason>, Option<&str>)> = vec![
            ("valid", Box::new(|_| {}), None, None),
            (
                "three labels",
                Box::new(|s| {
                    s.labels.insert("a".into(), "1".into());
                    s.labels.insert("b".into(), "1".into());
                }),
                None,
                None,
            ),
            (
                "four labels",
                Box::new(|s| {
                    for l in ["a", "b", "c"] {
                        s.labels.insert(l.into(), "1".into());
                    }
                }),
                Some(RejectReason::TooManyLabels),
                Some("labels"),
            ),
            (
                "value at the limit",
                Box::new(|s| {
                    s.labels.insert("alias".into(), "x".repeat(16));
                }),
                None,
                None,
            ),
            (
                "value over",
                Box::new(|s| {
                    s.labels.insert("alias".into(), "x".repeat(17));
                }),
                Some(RejectReason::LabelTooLong),
                Some("labels.alias"),
            ),
            (
                "name over",
                Box::new(|s| {
                    s.labels
                        .insert("a_label_of_25_characters_".into(), "x".into());
                }),
                Some(RejectReason::LabelTooLong),
                Some("labels.a_label_of_25_characters_"),
            ),
        ];
        for (name, mutate, verdict, field) in cases {
            let mut s = sample();
            mutate(&mut s);
            assert_eq!(limits.judge_labels(&s), verdict, "case {name}");
            let got = limits.check_sample(&s).err().map(|e| e.field);
            assert_eq!(got.as_deref(), field, "case {name}, agent-side check");
            assert_eq!(
                limits.check_batch(&batch_of(vec![s])),
                Ok(()),
                "case {name}: the batch stays valid"
            );
        }
    }

    #[test]
    fn too_many_samples() {
        let limits = Limits {
            max_samples_per_batch: 2,
            ..Limits::default()
        };
        let err = limits
            .check_batch(&batch_of(vec![sample(), sample(), sample()]))
            .unwrap_err();
        assert_eq!(err.field, "samples");
    }

    #[test]
    fn time_window_table() {
        let window = TimeWindow {
            max_ahead_ms: 300_000,
            max_behind_ms: 86_400_000,
        };
        let now = 1_800_000_000_000;
        let cases = [
            ("now", now, None),
            ("zero", 0, Some(RejectReason::InvalidTimestamp)),
            ("negative", -5, Some(RejectReason::InvalidTimestamp)),
            ("min", i64::MIN, Some(RejectReason::InvalidTimestamp)),
            ("edge ahead", now + 300_000, None),
            ("past ahead", now + 300_001, Some(RejectReason::TooFarAhead)),
            (
                "year 2100",
                4_102_444_800_000,
                Some(RejectReason::TooFarAhead),
            ),
            ("max", i64::MAX, Some(RejectReason::TooFarAhead)),
            ("edge behind", now - 86_400_000, None),
            ("past behind", now - 86_400_001, Some(RejectReason::TooOld)),
            ("seconds not ms", now / 1000, Some(RejectReason::TooOld)),
            ("one ms", 1, Some(RejectReason::TooOld)),
        ];
        for (name, ts, want) in cases {
            assert_eq!(window.judge(ts, now), want, "case {name}");
        }
        let huge = TimeWindow {
            max_ahead_ms: i64::MAX,
            max_behind_ms: i64::MAX,
        };
        assert_eq!(huge.judge(1, now), None, "no overflow with huge bounds");
        assert_eq!(huge.judge(i64::MAX, now), None);

        let mut samples = vec![sample(), sample(), sample(), sample(), sample()];
        for s in &mut samples {
            s.ts_ms = now;
        }
        samples[1].ts_ms = 0;
        samples[3].ts_ms = now + 3_600_000;
        samples[4].ts_ms = 0;
        samples[4].labels.insert("alias".into(), "x".repeat(2000));
        let mut out = Vec::new();
        judge_samples(&Limits::default(), &window, &samples, now, &mut out);
        let got: Vec<(u32, RejectReason)> = out.iter().map(|r| (r.index, r.reason)).collect();
        assert_eq!(
            got,
            [
                (1, RejectReason::InvalidTimestamp),
                (3, RejectReason::TooFarAhead),
                (4, RejectReason::LabelTooLong),
            ]
        );
    }

    #[test]
    fn names() {
        assert!(is_metric_name("a:b_c9"));
        assert!(!is_metric_name(""));
        assert!(!is_metric_name("a b"));
        assert!(is_label_name("_x"));
        assert!(!is_label_name("__x"));
        assert!(!is_label_name("9x"));
    }
}
