//! The pure core of the MQTT sensor source (source stage of the agent's flow): topic patterns,
//! target templates and payload → sample mapping. Plain synchronous functions, no sockets; the
//! task in [`super`] feeds them every message it receives.

use super::config::{TopicConfig, ValueConfig};
use faultline_wire::Sample;
use std::collections::BTreeMap;

/// A compiled topic pattern (`tele/{device}/SENSOR`).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicPattern {
    levels: Vec<Level>,
}

#[derive(Debug, Clone, PartialEq)]
enum Level {
    Exact(String),
    Capture(String),
    AnyOne,
    Rest,
}

/// Labels captured from a topic.
pub type Captures = BTreeMap<String, String>;

impl TopicPattern {
    /// Parses a pattern; the error says what is wrong with it.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("must not be empty".into());
        }
        let parts: Vec<&str> = pattern.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let level = match *part {
                "#" if i + 1 == parts.len() => Level::Rest,
                "#" => return Err("`#` may only be the last level".into()),
                "+" => Level::AnyOne,
                p if p.starts_with('{') && p.ends_with('}') => {
                    let name = &p[1..p.len() - 1];
                    check_label_name(name)?;
                    if levels
                        .iter()
                        .any(|l| matches!(l, Level::Capture(n) if n == name))
                    {
                        return Err(format!("`{{{name}}}` captured twice"));
                    }
                    Level::Capture(name.to_string())
                }
                p if p.contains(['{', '}', '+', '#']) => {
                    return Err(format!(
                        "level `{p}`: `{{name}}`, `+` and `#` must be a whole level"
                    ));
                }
                p => Level::Exact(p.to_string()),
            };
            levels.push(level);
        }
        Ok(Self { levels })
    }

    /// The MQTT subscription filter (`{name}` → `+`).
    pub fn filter(&self) -> String {
        self.levels
            .iter()
            .map(|l| match l {
                Level::Exact(s) => s.as_str(),
                Level::Capture(_) | Level::AnyOne => "+",
                Level::Rest => "#",
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The captured labels when `topic` matches, `None` otherwise.
    pub fn capture(&self, topic: &str) -> Option<Captures> {
        let mut parts = topic.split('/');
        let mut captures = Captures::new();
        for level in &self.levels {
            match level {
                Level::Rest => return Some(captures),
                Level::Exact(s) => {
                    if parts.next()? != s {
                        return None;
                    }
                }
                Level::AnyOne => {
                    parts.next()?;
                }
                Level::Capture(name) => {
                    captures.insert(name.clone(), parts.next()?.to_string());
                }
            }
        }
        parts.next().is_none().then_some(captures)
    }

    /// Whether `name` is captured by this pattern.
    fn captures(&self, name: &str) -> bool {
        self.levels
            .iter()
            .any(|l| matches!(l, Level::Capture(n) if n == name))
    }
}

fn check_label_name(name: &str) -> Result<(), String> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`{name}` is not a label name (letters, digits, `_`)"
        ));
    }
    if name == "agent" || name == "target" {
        return Err(format!("`{name}` is a reserved label"));
    }
    Ok(())
}

/// Text with `{name}` placeholders filled from topic captures.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq)]
enum TemplatePart {
    Text(String),
    Capture(String),
}

impl Template {
    /// Parses `text` whose placeholders must all be captured by `pattern`.
    pub fn parse(text: &str, pattern: &TopicPattern) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(TemplatePart::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in `{text}`"))?;
            let name = &after[..close];
            if !pattern.captures(name) {
                return Err(format!("`{{{name}}}` is not captured by the topic"));
            }
            parts.push(TemplatePart::Capture(name.to_string()));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_string()));
        }
        if parts.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Self { parts })
    }

    /// The text for these captures.
    pub fn render(&self, captures: &Captures) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Text(t) => out.push_str(t),
                TemplatePart::Capture(name) => {
                    out.push_str(captures.get(name).map_or("", String::as_str));
                }
            }
        }
        out
    }
}

/// Why (part of) a payload could not be mapped; its `kind()` is the `kind` label of the count.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayloadError {
    /// The mapping reads JSON fields but the payload is not JSON.
    #[error("payload is not JSON: {0}")]
    NotJson(String),
    /// A field the mapping reads is not in the payload.
    #[error("field `{0}` missing")]
    MissingField(String),
    /// The value is not a number (nor a boolean or ON/OFF).
    #[error("`{field}` is not a number: {found}")]
    NotANumber {
        /// The field (`(payload)` for a plain payload).
        field: String,
        /// What was found instead, shortened.
        found: String,
    },
}

impl PayloadError {
    /// Short name for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            PayloadError::NotJson(_) => "not_json",
            PayloadError::MissingField(_) => "missing_field",
            PayloadError::NotANumber { .. } => "not_a_number",
        }
    }
}

/// One `[[mqtt.topics]]` entry, compiled.
#[derive(Debug, Clone)]
pub struct TopicMap {
    pattern: TopicPattern,
    target: Template,
    labels: BTreeMap<String, String>,
    values: Vec<ValueMap>,
    needs_json: bool,
}

#[derive(Debug, Clone)]
struct ValueMap {
    path: Option<Vec<String>>,
    config: ValueConfig,
}

/// What one message gave: samples, and the values that could not be read.
#[derive(Debug, Default, PartialEq)]
pub struct Mapped {
    /// Target id the topic resolved to.
    pub target: String,
    /// Samples of the values that were read.
    pub samples: Vec<Sample>,
    /// Values that were not.
    pub errors: Vec<PayloadError>,
}

impl TopicMap {
    /// Compiles a topic entry; errors are `(field relative to the entry, message)`.
    pub fn compile(config: &TopicConfig) -> Result<Self, (String, String)> {
        let pattern = TopicPattern::parse(&config.topic).map_err(|m| ("topic".to_string(), m))?;
        let target =
            Template::parse(&config.target, &pattern).map_err(|m| ("target".to_string(), m))?;
        for name in config.labels.keys() {
            check_label_name(name).map_err(|m| ("labels".to_string(), m))?;
        }
        if config.values.is_empty() {
            return Err(("values".into(), "at least one value is needed".into()));
        }
        let mut values = Vec::with_capacity(config.values.len());
        for (i, value) in config.values.iter().enumerate() {
            let field = |f: &str| format!("values[{i}].{f}");
            if !is_metric_name(&value.metric) {
                return Err((
                    field("metric"),
                    format!("`{}` is not a metric name", value.metric),
                ));
            }
            if !value.scale.is_finite() || value.scale == 0.0 || !value.offset.is_finite() {
                return Err((
                    field("scale"),
                    "scale must be finite and non-zero, offset finite".into(),
                ));
            }
            for name in value.labels.keys() {
                check_label_name(name).map_err(|m| (field("labels"), m))?;
            }
            let path = match value.field.as_deref() {
                None => None,
                Some(f) if f.is_empty() || f.split('.').any(str::is_empty) => {
                    return Err((field("field"), format!("`{f}` is not a dotted path")));
                }
                Some(f) => Some(f.split('.').map(String::from).collect()),
            };
            values.push(ValueMap {
                path,
                config: value.clone(),
            });
        }
        let needs_json = values.iter().any(|v| v.path.is_some());
        Ok(Self {
            pattern,
            target,
            labels: config.labels.clone(),
            values,
            needs_json,
        })
    }

    /// The subscription filter.
    pub fn filter(&self) -> String {
        self.pattern.filter()
    }

    /// Maps a message on `topic` when the topic matches this entry.
    pub fn map(&self, topic: &str, payload: &[u8], ts_ms: i64) -> Option<Mapped> {
        let captures = self.pattern.capture(topic)?;
        let target = self.target.render(&captures);
        let mut mapped = Mapped {
            target,
            ..Mapped::default()
        };
        let json = if self.needs_json {
            match serde_json::from_slice::<serde_json::Value>(payload) {
                Ok(v) => Some(v),
                Err(e) => {
                    mapped.errors.push(PayloadError::NotJson(e.to_string()));
                    return Some(mapped);
                }
            }
        } else {
            None
        };
        for value in &self.values {
            let raw = match (&value.path, &json) {
                (Some(path), Some(json)) => lookup(json, path)
                    .ok_or_else(|| PayloadError::MissingField(path.join(".")))
                    .and_then(|v| json_number(v, path)),
                _ => plain_number(payload),
            };
            match raw {
                Ok(raw) => {
                    let mut labels = captures.clone();
                    labels.extend(self.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                    labels.extend(
                        value
                            .config
                            .labels
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone())),
                    );
                    mapped.samples.push(Sample {
                        metric: value.config.metric.clone(),
                        target: mapped.target.clone(),
                        labels,
                        value: raw * value.config.scale + value.config.offset,
                        ts_ms,
                        kind: value.config.kind,
                    });
                }
                Err(e) => mapped.errors.push(e),
            }
        }
        Some(mapped)
    }
}

/// Whether `name` is a Prometheus metric name.
pub fn is_metric_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn lookup<'a>(json: &'a serde_json::Value, path: &[String]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(json, |node, key| match node {
        serde_json::Value::Object(map) => map.get(key),
        serde_json::Value::Array(items) => items.get(key.parse::<usize>().ok()?),
        _ => None,
    })
}

fn json_number(value: &serde_json::Value, path: &[String]) -> Result<f64, PayloadError> {
    let number = match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        serde_json::Value::String(s) => text_number(s),
        _ => None,
    };
    number
        .filter(|n| n.is_finite())
        .ok_or_else(|| PayloadError::NotANumber {
            field: path.join("."),
            found: shorten(&value.to_string()),
        })
}

fn plain_number(payload: &[u8]) -> Result<f64, PayloadError> {
    let text = String::from_utf8_lossy(payload);
    text_number(&text)
        .filter(|n| n.is_finite())
        .ok_or_else(|| PayloadError::NotANumber {
            field: "(payload)".into(),
            found: shorten(&text),
        })
}

/// A number in text, or a switch state (`ON`/`OFF`, `true`/`false`) as 1/0.
fn text_number(text: &str) -> Option<f64> {
    let text = text.trim();
    match text.to_ascii_lowercase().as_str() {
        "on" | "true" => Some(1.0),
        "off" | "false" => Some(0.0),
        _ => text.parse().ok(),
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_wire::SampleKind;

    #[test]
    fn patterns_capture_and_filter() {
        // (pattern, topic, filter, captures or None for no match)
        type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a [(&'a str, &'a str)]>);
        let cases: &[Case] = &[
            (
                "tele/{device}/SENSOR",
                "tele/rack1/SENSOR",
                "tele/+/SENSOR",
                Some(&[("device", "rack1")]),
            ),
            (
                "tele/{device}/SENSOR",
                "tele/rack1/STATE",
                "tele/+/SENSOR",
                None,
            ),
            (
                "tele/{device}/SENSOR",
                "tele/rack1/SENSOR/x",
                "tele/+/SENSOR",
                None,
            ),
            ("tele/{device}/SENSOR", "tele/SENSOR", "tele/+/SENSOR", None),
            (
                "zigbee2mqtt/{sensor}",
                "zigbee2mqtt/cold-aisle-1",
                "zigbee2mqtt/+",
                Some(&[("sensor", "cold-aisle-1")]),
            ),
            (
                "dc/{room}/+/{sensor}/#",
                "dc/a/x/s1/t/h",
                "dc/+/+/+/#",
                Some(&[("room", "a"), ("sensor", "s1")]),
            ),
            ("dc/{room}/#", "dc/a", "dc/+/#", Some(&[("room", "a")])),
            ("fixed/topic", "fixed/topic", "fixed/topic", Some(&[])),
        ];
        for (pattern, topic, filter, want) in cases {
            let p = TopicPattern::parse(pattern).unwrap();
            assert_eq!(p.filter(), *filter, "{pattern}");
            let want: Option<Captures> = want.map(|w| {
                w.iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect()
            });
            assert_eq!(p.capture(topic), want, "{pattern} on {topic}");
        }
    }

    #[test]
    fn bad_patterns_and_templates() {
        for bad in [
            "",
            "a/#/b",
            "a/b#",
            "a/{x}{y}",
            "a/{agent}",
            "a/{1x}",
            "a/{x}/{x}",
        ] {
            assert!(TopicPattern::parse(bad).is_err(), "{bad}");
        }
        let p = TopicPattern::parse("a/{x}").unwrap();
        assert!(Template::parse("{y}", &p).is_err());
        assert!(Template::parse("{x", &p).is_err());
        assert!(Template::parse("", &p).is_err());
        let t = Template::parse("room-{x}-t", &p).unwrap();
        assert_eq!(t.render(&p.capture("a/7").unwrap()), "room-7-t");
    }

    fn topic(pattern: &str, values: &[(Option<&str>, f64, f64)]) -> TopicMap {
        TopicMap::compile(&TopicConfig {
            topic: pattern.into(),
            target: "{sensor}".into(),
            labels: BTreeMap::from([("vendor".into(), "acme".into())]),
            values: values
                .iter()
                .enumerate()
                .map(|(i, (field, scale, offset))| ValueConfig {
                    field: field.map(String::from),
                    metric: format!("m{i}"),
                    scale: *scale,
                    offset: *offset,
                    kind: SampleKind::Gauge,
                    labels: BTreeMap::new(),
                })
                .collect(),
        })
        .unwrap()
    }

    #[test]
    fn payload_styles_map_to_scaled_samples() {
        // (mapping fields with scale and offset, payload, expected values, expected error kinds)
        type Case<'a> = (
            &'a [(Option<&'a str>, f64, f64)],
            &'a str,
            &'a [f64],
            &'a [&'a str],
        );
        let cases: &[Case] = &[
            // Plain number.
            (&[(None, 1.0, 0.0)], "23.4", &[23.4], &[]),
            (&[(None, 0.1, 0.0)], " 234 \n", &[23.4], &[]),
            (&[(None, 1.0, 0.0)], "ON", &[1.0], &[]),
            (&[(None, 1.0, -273.15)], "300", &[26.85], &[]),
            // Flat JSON.
            (
                &[
                    (Some("temperature"), 1.0, 0.0),
                    (Some("humidity"), 0.01, 0.0),
                ],
                r#"{"temperature":23.4,"humidity":41}"#,
                &[23.4, 0.41],
                &[],
            ),
            // Tasmota (nested), Zigbee2MQTT with a string number and a boolean.
            (
                &[
                    (Some("AM2301.Temperature"), 1.0, 0.0),
                    (Some("AM2301.Humidity"), 1.0, 0.0),
                ],
                r#"{"Time":"2026-01-01T00:00:00","AM2301":{"Temperature":22.1,"Humidity":40.5},"TempUnit":"C"}"#,
                &[22.1, 40.5],
                &[],
            ),
            (
                &[
                    (Some("temperature"), 1.0, 0.0),
                    (Some("water_leak"), 1.0, 0.0),
                ],
                r#"{"temperature":"19.5","water_leak":false,"linkquality":96}"#,
                &[19.5, 0.0],
                &[],
            ),
            // Arrays by position.
            (
                &[(Some("sensors.1.v"), 1.0, 0.0)],
                r#"{"sensors":[{"v":1},{"v":2}]}"#,
                &[2.0],
                &[],
            ),
            // What the mapping does not expect: one good value still goes through.
            (
                &[
                    (Some("temperature"), 1.0, 0.0),
                    (Some("humidity"), 1.0, 0.0),
                ],
                r#"{"temperature":21}"#,
                &[21.0],
                &["missing_field"],
            ),
            (
                &[(Some("t"), 1.0, 0.0)],
                r#"{"t":{"x":1}}"#,
                &[],
                &["not_a_number"],
            ),
            (
                &[(Some("t"), 1.0, 0.0)],
                r#"{"t":null}"#,
                &[],
                &["not_a_number"],
            ),
            (&[(Some("t"), 1.0, 0.0)], "23.4", &[], &["missing_field"]),
            (&[(Some("t"), 1.0, 0.0)], "{not json", &[], &["not_json"]),
            (&[(None, 1.0, 0.0)], "hot", &[], &["not_a_number"]),
            (&[(None, 1.0, 0.0)], "NaN", &[], &["not_a_number"]),
            (&[(None, 1.0, 0.0)], "", &[], &["not_a_number"]),
        ];
        for (values, payload, want, errors) in cases {
            let map = topic("sensors/{sensor}", values);
            let got = map.map("sensors/s1", payload.as_bytes(), 1000).unwrap();
            assert_eq!(got.target, "s1");
            let got_values: Vec<f64> = got.samples.iter().map(|s| s.value).collect();
            assert_eq!(got_values.len(), want.len(), "{payload}: {got_values:?}");
            for (got, want) in got_values.iter().zip(want.iter()) {
                assert!((got - want).abs() < 1e-9, "{payload}: {got} vs {want}");
            }
            let kinds: Vec<&str> = got.errors.iter().map(PayloadError::kind).collect();
            assert_eq!(&kinds, errors, "{payload}");
            for s in &got.samples {
                assert_eq!(s.target, "s1");
                assert_eq!(s.labels.get("sensor").map(String::as_str), Some("s1"));
                assert_eq!(s.labels.get("vendor").map(String::as_str), Some("acme"));
                assert_eq!(s.ts_ms, 1000);
            }
        }
        assert!(
            topic("sensors/{sensor}", &[(None, 1.0, 0.0)])
                .map("other/s1", b"1", 0)
                .is_none()
        );
    }

    #[test]
    fn compile_errors_name_the_field() {
        let good = TopicConfig {
            topic: "a/{s}".into(),
            target: "{s}".into(),
            labels: BTreeMap::new(),
            values: vec![ValueConfig {
                field: Some("t".into()),
                metric: "m".into(),
                scale: 1.0,
                offset: 0.0,
                kind: SampleKind::Gauge,
                labels: BTreeMap::new(),
            }],
        };
        assert!(TopicMap::compile(&good).is_ok());
        let mut cases: Vec<(TopicConfig, &str)> = Vec::new();
        let mut c = good.clone();
        c.topic = "a/#/b".into();
        cases.push((c, "topic"));
        let mut c = good.clone();
        c.target = "{t}".into();
        cases.push((c, "target"));
        let mut c = good.clone();
        c.values.clear();
        cases.push((c, "values"));
        let mut c = good.clone();
        c.values[0].metric = "bad metric".into();
        cases.push((c, "values[0].metric"));
        let mut c = good.clone();
        c.values[0].scale = 0.0;
        cases.push((c, "values[0].scale"));
        let mut c = good.clone();
        c.values[0].field = Some("a..b".into());
        cases.push((c, "values[0].field"));
        let mut c = good;
        c.labels.insert("target".into(), "x".into());
        cases.push((c, "labels"));
        for (config, field) in cases {
            assert_eq!(TopicMap::compile(&config).unwrap_err().0, field);
        }
    }
}
