//! Summary and description templates of a rule, parsed and checked when the rule file loads and
//! rendered by the evaluator when a rule fires (ingest → **rules** → incidents → notifications).
//!
//! A deliberately tiny `{{ name }}` substitution instead of a template engine such as minijinja:
//! rule texts only ever interpolate a handful of values (labels, the value, the threshold), an
//! operator-facing one-liner needs no loops or filters, and a closed set of placeholders lets load
//! time reject a typo such as `{{ vaule }}` instead of rendering it empty at 3 a.m.
//!
//! Placeholders: `{{ value }}`, `{{ value_pct }}` (value × 100), `{{ threshold }}`, `{{ target }}`,
//! `{{ rule }}`, `{{ labels.NAME }}` (empty when the series has no such label).

use crate::matcher::is_label_name;
use std::collections::BTreeMap;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Value,
    ValuePct,
    Threshold,
    Target,
    Rule,
    Label(String),
}

/// What a template is rendered with.
#[derive(Debug, Clone, Copy)]
pub struct TemplateContext<'a> {
    /// Rule name.
    pub rule: &'a str,
    /// Target id.
    pub target: &'a str,
    /// The series' labels (including `agent`).
    pub labels: &'a BTreeMap<String, String>,
    /// The value the condition was judged on (a rate for rate rules).
    pub value: f64,
    /// The rule's threshold, if it has one.
    pub threshold: Option<f64>,
}

impl Template {
    /// Parses `text`, rejecting unknown placeholders and unclosed `{{`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed `{{{{` in `{text}`"))?;
            let name = after[..close].trim();
            parts.push(match name {
                "value" => Part::Value,
                "value_pct" => Part::ValuePct,
                "threshold" => Part::Threshold,
                "target" => Part::Target,
                "rule" => Part::Rule,
                _ => match name.strip_prefix("labels.") {
                    Some(label) if is_label_name(label) => Part::Label(label.to_string()),
                    _ => {
                        return Err(format!(
                            "unknown placeholder `{{{{ {name} }}}}`; known: value, value_pct, \
                             threshold, target, rule, labels.NAME"
                        ));
                    }
                },
            });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Self { parts })
    }

    /// Renders the template.
    pub fn render(&self, ctx: &TemplateContext<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Value => out.push_str(&format_number(ctx.value)),
                Part::ValuePct => out.push_str(&format_number(ctx.value * 100.0)),
                Part::Threshold => {
                    out.push_str(&ctx.threshold.map(format_number).unwrap_or_default())
                }
                Part::Target => out.push_str(ctx.target),
                Part::Rule => out.push_str(ctx.rule),
                Part::Label(name) => {
                    out.push_str(ctx.labels.get(name).map(String::as_str).unwrap_or(""));
                }
            }
        }
        out
    }
}

/// At most two decimals, trailing zeros dropped: `31.5`, `0.04`, `2`.
pub fn format_number(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders() {
        let labels = BTreeMap::from([("mountpoint".to_string(), "/var".to_string())]);
        let ctx = TemplateContext {
            rule: "DiskFull",
            target: "vm-7",
            labels: &labels,
            value: 0.034,
            threshold: Some(0.05),
        };
        let cases = [
            ("{{target}} {{ labels.mountpoint }}", "vm-7 /var"),
            (
                "free {{ value_pct }}% < {{ threshold }}",
                "free 3.4% < 0.05",
            ),
            ("{{rule}}: {{ value }}", "DiskFull: 0.03"),
            ("no such {{ labels.x }}!", "no such !"),
            ("plain", "plain"),
        ];
        for (text, want) in cases {
            assert_eq!(Template::parse(text).unwrap().render(&ctx), want, "{text}");
        }
    }

    #[test]
    fn rejects_typos_and_unclosed() {
        for text in [
            "{{ vaule }}",
            "{{ labels. }}",
            "{{ labels.a-b }}",
            "open {{ value",
        ] {
            assert!(Template::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn number_format() {
        assert_eq!(format_number(2.0), "2");
        assert_eq!(format_number(31.456), "31.46");
        assert_eq!(format_number(-0.001), "0");
        assert_eq!(format_number(1e6), "1000000");
    }
}
