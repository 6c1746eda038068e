//! `faultline-agent`: the command-line edge of the agent (run, check-config, version).

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Faultline agent: collects host and device samples and pushes them to the collector.
#[derive(Parser)]
#[command(name = "faultline-agent", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent.
    Run {
        /// Config file (TOML).
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Validate a config file and exit (non-zero on error).
    CheckConfig {
        /// Config file (TOML).
        file: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    match cli.command {
        Command::CheckConfig { file } => match faultline_agent::config::load(&file) {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    eprintln!("warning: {warning}");
                }
                println!(
                    "{}: OK ({} SNMP devices, {} profiles)",
                    file.display(),
                    loaded.config.snmp.devices.len(),
                    loaded.profiles.iter().count()
                );
                Ok(())
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        },
        Command::Run { config } => {
            let config = faultline_agent::config::load(&config).map_err(anyhow::Error::new)?;
            for warning in &config.warnings {
                tracing::warn!(%warning, "weak setting");
            }
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .max_blocking_threads(4)
                .enable_all()
                .build()
                .context("starting the runtime")?
                .block_on(faultline_agent::run(config))
        }
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
