//! `faultline-collector`: the command-line edge of the collector (run, check-config, test-rules,
//! report, version).

use clap::{Parser, Subcommand};
use faultline_daemon::cli::{self, Checked, ConfigArg, GlobalArgs};
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
    /// Write the management report of a month or ISO week (tickets by tag, severity and channel,
    /// MTTA/MTTR, SLA compliance, longest incidents, carrier circuits, security devices,
    /// follow-ups) as a self-contained HTML page and a CSV file, reading the ticket store of the
    /// config read-only.
    Report {
        /// The collector config (its ticket store, inventory and time zone are used).
        #[arg(long, short)]
        config: PathBuf,
        /// The period: a month (`2026-11`) or an ISO week (`2026-W48`).
        #[arg(long)]
        period: String,
        /// Only this department's tickets and follow-ups.
        #[arg(long)]
        department: Option<String>,
        /// Directory the files are written to (created if needed).
        #[arg(long, default_value = ".")]
        out: PathBuf,
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
        Command::Report {
            config,
            period,
            department,
            out,
        } => {
            let files = faultline_collector::reports::write_files(
                &config,
                &period,
                department.as_deref(),
                &out,
            )?;
            for file in files {
                println!("{}", file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(ConfigArg { config: file }) => {
            let config = faultline_collector::config::load(&file).map_err(anyhow::Error::new)?;
            let runtime = tokio::runtime::Builder::new_multi_thread();
            cli::run_daemon(runtime, faultline_collector::run(config, file))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads the config and reads every file it names the way `run` (and a reload) does, so a
/// config that passes also starts ([`faultline_collector::reload::validate`]).
fn check_config(file: &Path) -> anyhow::Result<Checked> {
    faultline_collector::reload::validate(file)?;
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
