//! The edge both daemons share, outside the data flow: the command-line skeleton ([`cli`]),
//! structured logging set-up, waiting for the shutdown signal, and reading a credential from a
//! file. The agent and the collector call these
//! from their `main` and `run`; nothing here knows about samples or batches. [`backoff`] is the
//! retry-delay formula of everything that retries over the network (agent push, notifications);
//! [`with_causes`] spells out an error with its causes for logs and the command line;
//! [`log_limit`] keeps log lines that outside input can repeat to one per interval; [`process`]
//! reads the daemon's own resource use for the standard `process_*` metrics; [`mqtt`] turns a
//! broker table of either daemon's config into client options; [`reload`] takes a daemon from
//! SIGHUP to a validated config swapped in, keeping the old one when the new one fails; [`outbox`]
//! is the durable on-disk queue of the agent's batches and the collector's remote-write sender.

pub mod backoff;
pub mod cli;
pub mod log_limit;
pub mod mqtt;
pub mod outbox;
pub mod process;
pub mod reload;

use faultline_wire::config_file::Secret;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Log line format, chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (colours only on a terminal).
    Text,
    /// One JSON object per line, for log shippers and tests.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format `{other}` (text or json)")),
        }
    }
}

/// Installs the global `tracing` subscriber writing to stderr; levels come from `RUST_LOG` as
/// `level` or `target=level` directives separated by commas (default `info`). A `RUST_LOG` that
/// does not parse is reported on stderr and `info` is used.
///
/// The filter is `tracing_subscriber`'s `Targets`, not `EnvFilter`: the daemons need no span or
/// field filters, and `EnvFilter` links a regex engine into every binary (the agent's size and
/// resident memory, BENCHMARKS.md).
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let default = || tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO);
    let (filter, problem) = match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => match text.parse() {
            Ok(filter) => (filter, None),
            Err(e) => (
                default(),
                Some(format!("RUST_LOG `{text}`: {e}; logging at info")),
            ),
        },
        _ => (default(), None),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry.with(fmt.json()).init(),
        LogFormat::Text => registry.with(fmt).init(),
    }
    if let Some(problem) = problem {
        tracing::warn!("{problem}");
    }
}

/// Resolves when the process gets SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the process");
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

/// A credential file that cannot be used.
#[derive(Debug, Error)]
pub enum SecretFileError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file's first line is blank.
    #[error("{path}: the first line is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Neither an inline value nor a file was configured (config validation prevents this).
    #[error("no credential configured")]
    NotSet,
}

/// The credential configured inline (`token = …`) or, failing that, in a file (`token_file = …`).
/// Surrounding white space is not part of it; an empty one is refused.
pub fn credential(inline: Option<&Secret>, file: Option<&Path>) -> Result<Secret, SecretFileError> {
    match (inline, file) {
        (Some(secret), _) => {
            let trimmed = secret.expose().trim();
            if trimmed.is_empty() {
                return Err(SecretFileError::Empty {
                    path: PathBuf::from("(inline)"),
                });
            }
            Ok(Secret::new(trimmed))
        }
        (None, Some(path)) => read_secret_file(path).map(Secret::new),
        (None, None) => Err(SecretFileError::NotSet),
    }
}

/// Reads a token or password: the first line of `path`, trimmed.
pub fn read_secret_file(path: &Path) -> Result<String, SecretFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretFileError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let first = text.lines().next().unwrap_or_default().trim();
    if first.is_empty() {
        return Err(SecretFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(first.to_string())
}

/// An error followed by each of its causes (`outer: cause: root cause`), skipping a cause its
/// parent already spelled out. For logs and the command line: reqwest's own message ("error
/// sending request") hides why, e.g. a TLS handshake's "invalid peer certificate: UnknownIssuer",
/// an expired certificate or a name mismatch; the causes say it.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_spelled_out() {
        #[derive(Debug, Error)]
        #[error("error sending request")]
        struct Outer(#[source] std::io::Error);
        let root = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        assert_eq!(
            with_causes(&Outer(root)),
            "error sending request: invalid peer certificate: UnknownIssuer"
        );
        // A cause already spelled out by its parent is not repeated.
        let plain = std::io::Error::other("refused");
        assert_eq!(with_causes(&plain), "refused");
    }

    #[test]
    fn credential_prefers_inline_and_trims() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, "from-file\n").unwrap();
        let inline = Secret::new(" inline ");
        let got = |i: Option<&Secret>, f: Option<&Path>| {
            credential(i, f).ok().map(|s| s.expose().to_string())
        };
        assert_eq!(got(Some(&inline), Some(&file)).as_deref(), Some("inline"));
        assert_eq!(got(None, Some(&file)).as_deref(), Some("from-file"));
        assert_eq!(got(Some(&Secret::new("  ")), None), None);
        assert!(matches!(
            credential(None, None),
            Err(SecretFileError::NotSet)
        ));
    }

    #[test]
    fn secret_file_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("tok-123\n", Some("tok-123")),
            ("  padded  \nsecond\n", Some("padded")),
            ("no newline", Some("no newline")),
            ("\nafter blank\n", None),
            ("", None),
        ];
        for (i, (text, want)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("t{i}"));
            std::fs::write(&path, text).unwrap();
            assert_eq!(read_secret_file(&path).ok().as_deref(), want, "case {i}");
        }
        let missing = read_secret_file(&dir.path().join("missing")).unwrap_err();
        assert!(missing.to_string().contains("missing"), "{missing}");
    }
}
