//! `faultline-collector`: the command-line edge of the collector (run, check-config, test-rules,
//! version).

use anyhow::Context;
use clap::{Parser, Subcommand};
use faultline_daemon::cli::{self, Checked, ConfigArg, GlobalArgs};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// mimalloc instead of the system allocator: decoding a push allocates and frees many small strings
/// and label maps per sample (see BENCHMARKS.md, "Collector ingest throughput").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Faultline collector: ingests agent pushes and exports Prometheus metrics.
#[derive(Parser)]
#[command(name = "faultline-collector", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector.
    Run(ConfigArg),
    /// Validate a config file and the rule, inventory, on-call and maintenance files it names,
    /// and exit (non-zero on error).
    CheckConfig(ConfigArg),
    /// Run rule unit test files (input series over time → expected incidents, in the style of
    /// `promtool test rules`); exits non-zero when a test fails.
    TestRules {
        /// Rule test files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    faultline_daemon::init_logging(cli.global.log_format);
    match cli.command {
        Command::CheckConfig(ConfigArg { config }) => {
            Ok(cli::report_check(&config, check_config(&config)))
        }
        Command::TestRules { files } => Ok(if test_rules(&files) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        Command::Run(ConfigArg { config }) => {
            let config = faultline_collector::config::load(&config).map_err(anyhow::Error::new)?;
            let runtime = tokio::runtime::Builder::new_multi_thread();
            cli::run_daemon(runtime, faultline_collector::run(config))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads the config and reads every file it names (agent and API token files, the acknowledge-link
/// key, TLS certificate, key and client CA, rule, inventory, on-call and maintenance files) the way
/// `run` does, so a config that passes also starts.
fn check_config(file: &Path) -> anyhow::Result<Checked> {
    let config = faultline_collector::config::load(file)?;
    cli::install_crypto_provider();
    let named = || format!("{}", file.display());
    faultline_collector::agents::AgentRegistry::build(&config.agents, HashMap::new(), 0)
        .with_context(named)?;
    faultline_collector::api::Api::new(&config.api, None).with_context(named)?;
    faultline_collector::ack_link::AckLinks::load(&config.api).with_context(named)?;
    faultline_collector::http::tls_acceptor(&config.listen).with_context(named)?;
    if let Some(incidents) = &config.incidents {
        faultline_collector::incidents::Setup::load(incidents)?;
    }
    Ok(Checked::default())
}

/// Runs every rule test file, printing each test's result; true when all passed.
fn test_rules(files: &[PathBuf]) -> bool {
    let mut passed = true;
    for file in files {
        match faultline_incidents::ruletest::run_file(file) {
            Err(e) => {
                eprintln!("{e}");
                passed = false;
            }
            Ok(outcomes) => {
                for outcome in outcomes {
                    if outcome.passed() {
                        println!("{}: {}: PASS", file.display(), outcome.name);
                    } else {
                        passed = false;
                        println!("{}: {}: FAIL", file.display(), outcome.name);
                        for failure in &outcome.failures {
                            println!("  {failure}");
                        }
                    }
                }
            }
        }
    }
    passed
}
