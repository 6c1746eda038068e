//! The Faultline agent: collects samples on hosts and machine-room gateways and pushes them to the
//! collector without losing them across outages.
//!
//! Flow (one way): [`source`] tasks → bounded channel → [`batcher`] → [`outbox`] (disk) →
//! [`transport`] → collector. [`config`] is the file format, [`stats`] the agent's own counters,
//! [`help`] the help text of the series the sources produce, sent along with them;
//! [`try_device`] is `faultline-agent poll` (one device, one poll, no collector).

pub mod batcher;
pub mod config;
pub mod help;
pub mod outbox;
pub mod source;
pub mod stats;
pub mod transport;
pub mod try_device;

use anyhow::Context;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Collections that may wait between the sources and the batcher before sources block.
const SOURCE_CHANNEL_DEPTH: usize = 64;

/// Runs the agent until SIGINT/SIGTERM; on shutdown the batcher writes what it holds to the outbox.
pub async fn run(loaded: config::Loaded) -> anyhow::Result<()> {
    let config::Loaded {
        config, profiles, ..
    } = loaded;
    let outbox = outbox::Outbox::open(
        &config.outbox.dir,
        config.outbox.max_bytes,
        config.outbox.fsync,
    )
    .with_context(|| format!("opening outbox {}", config.outbox.dir.display()))?;
    let depth = outbox.depth();
    tracing::info!(
        agent = %config.agent.id,
        collector = %config.push.url,
        outbox_records = depth.records,
        torn_records = outbox.counters().torn_records,
        "agent starting"
    );
    let outbox = outbox::OutboxHandle::new(outbox);
    let stats = Arc::new(stats::AgentStats::default());
    let pusher = transport::Pusher::new(&config.agent.id, &config.push)?;

    let (tx, rx) = mpsc::channel(SOURCE_CHANNEL_DEPTH);
    let mut sources = tokio::task::JoinSet::new();
    if config.host.enabled {
        let host = source::host::HostSource::new(
            config.host.clone(),
            Box::new(source::host::SysinfoTemperatures::new()),
        );
        tracing::info!(target = host.target(), interval = ?config.host.interval, "host source enabled");
        sources.spawn(host.run(tx.clone()));
    }
    let poll_limit = faultline_snmp::PollLimit::new(config.snmp.max_concurrent_polls);
    for device in &config.snmp.devices {
        tracing::info!(device = %device.id, address = %device.address, "SNMP device enabled");
        sources.spawn(faultline_snmp::run_device(
            device.clone(),
            profiles.clone(),
            poll_limit.clone(),
            tx.clone(),
        ));
    }
    if let Some(traps) = &config.snmp.traps {
        let socket = tokio::net::UdpSocket::bind(&traps.listen)
            .await
            .with_context(|| format!("snmp.traps.listen {}", traps.listen))?;
        tracing::info!(listen = %traps.listen, "SNMP trap listener enabled");
        sources.spawn(faultline_snmp::run_trap_listener(
            socket,
            traps.clone(),
            faultline_snmp::trap_targets(&config.snmp.devices),
            tx.clone(),
        ));
    }
    drop(tx);

    let batcher = tokio::spawn(batcher::run(
        rx,
        outbox.clone(),
        config.batch.clone(),
        config.base_labels(),
        stats.clone(),
    ));
    let help = help::HelpBook::new(
        source::host::HELP
            .iter()
            .map(|(m, h)| (m.to_string(), h.to_string()))
            .chain(faultline_snmp::help::metric_help(&profiles)),
    );
    let transport = tokio::spawn(pusher.run(outbox, stats, Arc::new(help)));

    faultline_daemon::shutdown_signal().await;
    tracing::info!("shutting down: flushing the batcher to the outbox");
    sources.abort_all();
    while sources.join_next().await.is_some() {}
    if let Err(e) = batcher.await {
        tracing::error!(error = %e, "batcher ended abnormally");
    }
    transport.abort();
    Ok(())
}
