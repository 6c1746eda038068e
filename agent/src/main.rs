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
    /// Log format: `text` or `json`.
    #[arg(long, global = true, default_value = "text")]
    log_format: faultline_daemon::LogFormat,
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
    faultline_daemon::init_logging(cli.log_format);
    match cli.command {
        Command::CheckConfig { file } => match check_config(&file) {
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
                eprintln!("{}", faultline_daemon::with_causes(e.as_ref()));
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

/// Loads the config and reads every file it names (token, CA, client certificate and key, MQTT
/// passwords and TLS files) the way `run` does, so a config that passes also starts.
fn check_config(file: &std::path::Path) -> anyhow::Result<faultline_agent::config::Loaded> {
    let loaded = faultline_agent::config::load(file)?;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    faultline_agent::transport::Pusher::new(&loaded.config.agent.id, &loaded.config.push)
        .with_context(|| format!("{}", file.display()))?;
    let agent = &loaded.config.agent.id;
    if let Some(broker) = &loaded.config.push.mqtt {
        faultline_agent::mqtt_transport::MqttPusher::new(agent, &loaded.config.push, broker)
            .with_context(|| format!("{}", file.display()))?;
    }
    for mqtt in &loaded.config.mqtt {
        faultline_agent::source::mqtt::MqttSource::new(mqtt.clone(), agent)
            .with_context(|| format!("{}: mqtt `{}`", file.display(), mqtt.id))?;
    }
    Ok(loaded)
}
