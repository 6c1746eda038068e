//! The command-line skeleton both daemons share, outside the data flow: the global
//! `--log-format` option, the config file option every subcommand takes the same way
//! (`-c/--config FILE`), how `check-config` reports, and how `run` starts its runtime.

use crate::{LogFormat, with_causes};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options both daemons take before or after any subcommand.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Log format: `text` or `json`.
    #[arg(long, global = true, default_value = "text")]
    pub log_format: LogFormat,
}

/// The config file, taken the same way by every subcommand that reads one.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Config file (TOML).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
}

/// What `check-config` found in a config that passed.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// A short summary after `OK` (what the config holds), or empty.
    pub summary: String,
    /// Settings that work but are weak, printed as warnings.
    pub warnings: Vec<String>,
}

/// Prints the outcome of `check-config` on `file`: its warnings and `FILE: OK (summary)`, or
/// the error with its causes on stderr. The exit code says which (1 on error), so a unit's
/// pre-start check stops a config that would not start.
pub fn report_check(file: &Path, outcome: anyhow::Result<Checked>) -> ExitCode {
    match outcome {
        Ok(checked) => {
            for warning in &checked.warnings {
                eprintln!("warning: {warning}");
            }
            if checked.summary.is_empty() {
                println!("{}: OK", file.display());
            } else {
                println!("{}: OK ({})", file.display(), checked.summary);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", with_causes(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Installs the process-wide TLS crypto provider (aws-lc-rs, which reqwest and the HTTPS server
/// use too: two providers in one process panic at the first TLS use). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Runs a daemon's `main` on the runtime `builder` makes (the daemon sizes it), after installing
/// the crypto provider; returns when `main` does.
pub fn run_daemon(
    mut builder: tokio::runtime::Builder,
    main: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    install_crypto_provider();
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the runtime: {e}"))?;
    runtime.block_on(main)
}
