//! Label matchers of a rule (`site="dc1"`, `ifName=~"Gi.*"`), parsed from rule files at load time and
//! applied by the evaluator to every sample of the rule's metric (ingest → **rules** → incidents).
//!
//! Syntax and semantics follow Prometheus: `name op "value"` with `=`, `!=`, `=~`, `!~`; regexes are
//! fully anchored; a missing label matches as the empty string.

use regex::Regex;
use thiserror::Error;

/// How a matcher compares a label value.
#[derive(Debug, Clone)]
pub enum MatchOp {
    /// `=`: equal.
    Equal(String),
    /// `!=`: not equal.
    NotEqual(String),
    /// `=~`: the anchored regex matches.
    Regex(Regex),
    /// `!~`: the anchored regex does not match.
    NotRegex(Regex),
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name (`target` and `agent` are the collector's own labels).
    pub label: String,
    /// The comparison.
    pub op: MatchOp,
}

/// Why a matcher string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct MatcherError(String);

impl Matcher {
    /// Parses `name op "value"` (double or single quotes; `\"` and `\\` escapes).
    pub fn parse(text: &str) -> Result<Self, MatcherError> {
        let text = text.trim();
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        let label = &text[..name_end];
        if !is_label_name(label) {
            return Err(MatcherError(format!(
                "`{text}`: expected a label name ([a-zA-Z_][a-zA-Z0-9_]*) before the operator"
            )));
        }
        let rest = text[name_end..].trim_start();
        let (op, rest) = ["=~", "!~", "!=", "="]
            .iter()
            .find_map(|op| rest.strip_prefix(op).map(|r| (*op, r.trim())))
            .ok_or_else(|| {
                MatcherError(format!(
                    "`{text}`: expected one of =, !=, =~, !~ after `{label}`"
                ))
            })?;
        let value = unquote(rest).ok_or_else(|| {
            MatcherError(format!("`{text}`: the value must be one quoted string"))
        })?;
        let op = match op {
            "=" => MatchOp::Equal(value),
            "!=" => MatchOp::NotEqual(value),
            "=~" => MatchOp::Regex(anchored(&value)?),
            _ => MatchOp::NotRegex(anchored(&value)?),
        };
        Ok(Self {
            label: label.to_string(),
            op,
        })
    }

    /// True when a series whose value for this label is `value` (`None`: label absent) matches.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let value = value.unwrap_or("");
        match &self.op {
            MatchOp::Equal(want) => value == want,
            MatchOp::NotEqual(want) => value != want,
            MatchOp::Regex(re) => re.is_match(value),
            MatchOp::NotRegex(re) => !re.is_match(value),
        }
    }
}

/// True for a Prometheus label name.
pub(crate) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn anchored(pattern: &str) -> Result<Regex, MatcherError> {
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| MatcherError(format!("invalid regex `{pattern}`: {e}")))
}

/// Strips one pair of quotes and resolves `\"`, `\'` and `\\`; `None` if `text` is not exactly one
/// quoted string.
fn unquote(text: &str) -> Option<String> {
    let quote = text.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let mut out = String::new();
    let mut chars = text[1..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            c if c == quote => return chars.as_str().is_empty().then_some(out),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_table() {
        // (matcher, label value, expected match)
        let cases: &[(&str, Option<&str>, bool)] = &[
            (r#"site="dc1""#, Some("dc1"), true),
            (r#"site="dc1""#, Some("dc2"), false),
            (r#"site="""#, None, true),
            (r#"site!="dc1""#, Some("dc2"), true),
            (r#"site!="dc1""#, Some("dc1"), false),
            (r#"ifName=~"Gi.*""#, Some("Gi0/1"), true),
            (r#"ifName=~"Gi.*""#, Some("xGi0/1"), false), // anchored
            (r#"ifName!~"Gi.*""#, Some("Te1/1"), true),
            (r#"ifName!~"Gi.*""#, None, true),
            (r#"mountpoint = '/'"#, Some("/"), true),
            (r#"say="a \"q\"""#, Some("a \"q\""), true),
        ];
        for (text, value, want) in cases {
            let m = Matcher::parse(text).unwrap();
            assert_eq!(m.matches(*value), *want, "{text} vs {value:?}");
        }
    }

    #[test]
    fn bad_matchers_are_rejected() {
        for text in [
            "site",
            "=\"x\"",
            "1site=\"x\"",
            "site==\"x\"x",
            "site=dc1",
            "site=\"dc1",
            "site=\"a\" extra",
            "x=~\"(\"",
        ] {
            assert!(Matcher::parse(text).is_err(), "{text} should fail");
        }
    }
}
