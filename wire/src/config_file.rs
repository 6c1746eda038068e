//! The one config-file format both daemons share: TOML, read into typed structs.
//!
//! Every error names the file, the line and column, and the field (`push.url`,
//! `agents[1].token`), whether it comes from parsing or from a daemon's own `validate()` after
//! parsing, so an operator can fix a config without guessing.

use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A config problem, located in its file.
#[derive(Debug, Error)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line and column, where the problem can be placed.
    pub position: Option<(usize, usize)>,
    /// Dotted path of the field (`outbox.max_bytes`), empty for whole-file problems.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": field `{}`: {}", self.field, self.message)
        }
    }
}

/// A credential read from config (token, password). Its `Debug` output is redacted so that it never
/// reaches a log line; [`Secret::expose`] is the one deliberate way to read it.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A config file's text, kept so that errors found after parsing can still be placed.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    path: PathBuf,
    text: String,
}

impl ConfigSource {
    /// Reads the file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            position: None,
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Ok(Self::from_text(path, text))
    }

    /// Wraps text that came from `path` (or from a test).
    pub fn from_text(path: &Path, text: String) -> Self {
        Self {
            path: path.to_path_buf(),
            text,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Parses the text as `T`, naming the field and position of the first error.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let de = toml::Deserializer::parse(&self.text).map_err(|e| self.toml_error(e, ""))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            self.toml_error(e.into_inner(), &path)
        })
    }

    /// Builds an error for `field` found by validation after parsing, placed at the field's line.
    pub fn error(&self, field: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.clone(),
            position: self.locate(field),
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn toml_error(&self, e: toml::de::Error, field: &str) -> ConfigError {
        let position = e
            .span()
            .map(|span| line_column(&self.text, span.start))
            .or_else(|| self.locate(field));
        ConfigError {
            file: self.path.clone(),
            position,
            field: field.to_string(),
            message: e.message().trim().to_string(),
        }
    }

    /// Finds the line and column of a dotted field path such as `agents[1].token`; falls back to
    /// the deepest parent that exists.
    fn locate(&self, field: &str) -> Option<(usize, usize)> {
        let doc = toml_edit::Document::parse(self.text.as_str()).ok()?;
        let mut item = doc.as_item();
        let mut found = None;
        for segment in path_segments(field) {
            let next = match segment {
                Segment::Key(key) => item.get(key),
                Segment::Index(index) => item.get(index),
            };
            match next {
                Some(next) => {
                    item = next;
                    if let Some(span) = item.span() {
                        found = Some(span.start);
                    }
                }
                None => break,
            }
        }
        found.map(|offset| line_column(&self.text, offset))
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `a.b[2].c` into `a`, `b`, `2`, `c`.
fn path_segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                out.push(Segment::Key(&rest[..open]));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(index) = stripped[..close].parse() {
                    out.push(Segment::Index(index));
                }
                rest = &stripped[close + 1..];
            }
        } else {
            out.push(Segment::Key(rest));
        }
    }
    out
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Conf {
        name: String,
        #[serde(default)]
        peers: Vec<Peer>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Peer {
        id: String,
        port: u16,
    }

    fn source(text: &str) -> ConfigSource {
        ConfigSource::from_text(Path::new("x.toml"), text.to_string())
    }

    #[test]
    fn type_error_names_field_and_line() {
        let err = source("name = \"a\"\n\n[[peers]]\nid = \"p\"\nport = \"nine\"\n")
            .parse::<Conf>()
            .unwrap_err();
        assert_eq!(err.field, "peers[0].port");
        assert_eq!(err.position.map(|p| p.0), Some(5));
        let text = err.to_string();
        assert!(text.starts_with("x.toml:5:"), "{text}");
    }

    #[test]
    fn unknown_field_is_named() {
        let err = source("name = \"a\"\nnmae = 3\n")
            .parse::<Conf>()
            .unwrap_err();
        assert_eq!(err.position.map(|p| p.0), Some(2));
        assert!(err.message.contains("nmae"), "{err}");
    }

    #[test]
    fn syntax_error_has_position() {
        let err = source("name = \n").parse::<Conf>().unwrap_err();
        assert_eq!(err.position.map(|p| p.0), Some(1));
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn validation_error_is_placed() {
        let src = source(
            "name = \"a\"\n[[peers]]\nid = \"p\"\nport = 1\n[[peers]]\nid = \"q\"\nport = 0\n",
        );
        let err = src.error("peers[1].port", "must not be 0");
        assert_eq!(err.position.map(|p| p.0), Some(7));
        assert_eq!(
            err.to_string(),
            "x.toml:7:8: field `peers[1].port`: must not be 0"
        );
    }
}
