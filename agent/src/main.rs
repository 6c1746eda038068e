//! `faultline-agent`: the command-line edge of the agent (run, check-config, poll, version).

use anyhow::Context;
use clap::{Parser, Subcommand};
use faultline_daemon::cli::{self, Checked, ConfigArg, GlobalArgs};
use std::path::PathBuf;
use std::process::ExitCode;

/// Faultline agent: collects host and device samples and pushes them to the collector.
#[derive(Parser)]
#[command(name = "faultline-agent", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent.
    Run(ConfigArg),
    /// Validate a config file and every file it names, and exit (non-zero on error).
    CheckConfig(ConfigArg),
    /// Poll one SNMP device once and print the samples the agent would send, the profiles
    /// detected and the profile OIDs that did not answer; no collector needed. Exits non-zero
    /// when the device does not answer.
    Poll(Box<PollArgs>),
}

/// The device to poll: an entry of a config file, or an address with credentials.
#[derive(clap::Args)]
struct PollArgs {
    /// Agent config file holding the device (with `--device`).
    #[arg(short, long, requires = "device", conflicts_with = "address")]
    config: Option<PathBuf>,
    /// Id of the `[[snmp.devices]]` entry in `--config`.
    #[arg(long)]
    device: Option<String>,
    /// Device address, `host` or `host:port` (default port 161).
    #[arg(long, required_unless_present = "config")]
    address: Option<String>,
    /// SNMP version: v1, v2c or v3.
    #[arg(long, default_value = "v2c")]
    version: String,
    /// v1/v2c community.
    #[arg(long, default_value = "public")]
    community: String,
    /// v3 user (auth_priv with SHA-256/AES-128 when `--v3-priv-password` is given, else
    /// auth_no_priv).
    #[arg(long)]
    v3_user: Option<String>,
    /// v3 authentication passphrase.
    #[arg(long)]
    v3_auth_password: Option<String>,
    /// v3 privacy passphrase.
    #[arg(long)]
    v3_priv_password: Option<String>,
    /// Profiles to apply by name, besides those detected from sysObjectID (repeatable).
    #[arg(long = "profile")]
    profiles: Vec<String>,
    /// Directory of extra profiles (`*.toml`), as `snmp.profiles_dir`.
    #[arg(long)]
    profiles_dir: Option<PathBuf>,
    /// Time to wait for each response.
    #[arg(long, default_value = "2s", value_parser = humantime_serde::re::humantime::parse_duration)]
    timeout: std::time::Duration,
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    faultline_daemon::init_logging(cli.global.log_format);
    match cli.command {
        Command::CheckConfig(ConfigArg { config }) => {
            Ok(cli::report_check(&config, check_config(&config)))
        }
        Command::Poll(args) => {
            let (device, catalog) = poll_target(*args)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            let report = runtime.block_on(faultline_agent::try_device::poll_once(device, catalog));
            print!("{}", report.render());
            if !report.answered() {
                eprintln!("{}: the device did not answer", report.device);
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(ConfigArg { config: file }) => {
            let config = faultline_agent::config::load(&file).map_err(anyhow::Error::new)?;
            for warning in &config.warnings {
                tracing::warn!(%warning, "weak setting");
            }
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            runtime.worker_threads(1).max_blocking_threads(4);
            cli::run_daemon(runtime, faultline_agent::run(config, file))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads the config and reads every file it names the way `run` (and a reload) does, so a config
/// that passes also starts ([`faultline_agent::reload::validate`]).
fn check_config(file: &std::path::Path) -> anyhow::Result<Checked> {
    let loaded = faultline_agent::reload::validate(file)?;
    Ok(Checked {
        summary: format!(
            "{} SNMP devices, {} MQTT sources, {} Modbus devices, {} probes, {} profiles",
            loaded.config.snmp.devices.len(),
            loaded.config.mqtt.len(),
            loaded.config.modbus.devices.len(),
            loaded.config.probes.len(),
            loaded.profiles.iter().count()
        ),
        warnings: loaded.warnings.iter().map(ToString::to_string).collect(),
    })
}

/// The device and profiles `poll` uses: the config's entry and profile directory, or a device
/// built from the command line (checked like a config entry).
fn poll_target(
    args: PollArgs,
) -> anyhow::Result<(
    faultline_snmp::DeviceConfig,
    std::sync::Arc<faultline_snmp::ProfileCatalog>,
)> {
    if let (Some(file), Some(id)) = (&args.config, &args.device) {
        let loaded = faultline_agent::config::load(file)?;
        let device = loaded
            .config
            .snmp
            .devices
            .iter()
            .find(|d| &d.id == id)
            .cloned()
            .with_context(|| format!("{}: no [[snmp.devices]] with id `{id}`", file.display()))?;
        return Ok((device, loaded.profiles));
    }
    let address = args
        .address
        .context("give --address, or --config with --device")?;
    let mut device = faultline_snmp::DeviceConfig::v2c(&address, &address, &args.community);
    device.version = match args.version.as_str() {
        "v1" => faultline_snmp::SnmpVersion::V1,
        "v2c" => faultline_snmp::SnmpVersion::V2c,
        "v3" => faultline_snmp::SnmpVersion::V3,
        other => anyhow::bail!("--version `{other}`: use v1, v2c or v3"),
    };
    if let Some(user) = args.v3_user {
        use faultline_snmp::config::{Secret, SecurityLevel};
        device.v3 = Some(faultline_snmp::UsmConfig {
            user,
            level: if args.v3_priv_password.is_some() {
                SecurityLevel::AuthPriv
            } else {
                SecurityLevel::AuthNoPriv
            },
            auth_protocol: Default::default(),
            auth_password: Secret::new(args.v3_auth_password.unwrap_or_default()),
            priv_protocol: Default::default(),
            priv_password: Secret::new(args.v3_priv_password.unwrap_or_default()),
            context: String::new(),
        });
    }
    device.profiles = args.profiles;
    device.timeout = args.timeout;
    device.retries = 1;
    device.interval = args.timeout * 2 + std::time::Duration::from_secs(1);
    let catalog = match &args.profiles_dir {
        Some(dir) => faultline_snmp::ProfileCatalog::with_user_dir(dir)?,
        None => faultline_snmp::ProfileCatalog::builtin()?,
    };
    for issue in device.validate(&catalog) {
        if issue.severity == faultline_snmp::Severity::Error {
            anyhow::bail!("{}: {}", issue.field, issue.message);
        }
    }
    Ok((device, std::sync::Arc::new(catalog)))
}
