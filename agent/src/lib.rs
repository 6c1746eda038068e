//! The Faultline agent: collects samples on hosts and machine-room gateways and pushes them to the
//! collector without losing them across outages.
//!
//! Flow (one way): [`source`] tasks → bounded channel → [`batcher`] → [`outbox`] (disk) →
//! [`transport`] (HTTP) or [`mqtt_transport`] → collector. [`config`] is the file format,
//! [`stats`] the agent's own counters, [`help`] the help text of the series the sources produce,
//! sent along with them; [`try_device`] is `faultline-agent poll` (one device, one poll, no
//! collector); [`reload`] swaps in the SNMP devices and profiles on SIGHUP.

pub mod batcher;
pub mod config;
pub mod help;
pub mod mqtt_transport;
/// The durable outbox, shared with the collector's remote-write sender.
pub use faultline_daemon::outbox;
pub mod reload;
pub mod source;
pub mod stats;
pub mod transport;
pub mod try_device;

use anyhow::Context;
use faultline_daemon::reload::Live;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Collections that may wait between the sources and the batcher before sources block.
const SOURCE_CHANNEL_DEPTH: usize = 64;

/// Runs the agent on `loaded` (from `file`) until SIGINT/SIGTERM; on shutdown the batcher writes
/// what it holds to the outbox. On SIGHUP it reloads `file` ([`reload`]).
pub async fn run(loaded: config::Loaded, file: std::path::PathBuf) -> anyhow::Result<()> {
    let config::Loaded {
        config,
        profiles,
        modbus_maps,
        ..
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
    let help = Live::new(Arc::new(help::book(&profiles)));
    let push: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
        match &config.push.mqtt {
            Some(broker) => Box::pin(
                mqtt_transport::MqttPusher::new(&config.agent.id, &config.push, broker)?.run(
                    outbox.clone(),
                    stats.clone(),
                    help.clone(),
                ),
            ),
            None => Box::pin(transport::Pusher::new(&config.agent.id, &config.push)?.run(
                outbox.clone(),
                stats.clone(),
                help.clone(),
            )),
        };

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
    let mut devices = reload::SnmpDevices::new(
        profiles.clone(),
        faultline_snmp::PollLimit::new(config.snmp.max_concurrent_polls),
        tx.clone(),
    );
    devices.apply(&reload::device_plan(&[], &config.snmp.devices, false));
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
    for mqtt in &config.mqtt {
        let source = source::mqtt::MqttSource::new(mqtt.clone(), &config.agent.id)
            .with_context(|| format!("mqtt `{}`", mqtt.id))?;
        tracing::info!(source = %mqtt.id, broker = %mqtt.broker.address, "MQTT sensor source enabled");
        sources.spawn(source.run(tx.clone()));
    }
    for device in &config.modbus.devices {
        let Some(map) = modbus_maps.get(&device.map) else {
            anyhow::bail!(
                "modbus device `{}`: unknown register map `{}`",
                device.id,
                device.map
            );
        };
        tracing::info!(device = %device.id, map = %device.map, "Modbus device enabled");
        let poller = source::modbus::ModbusDevice::new(device.clone(), map);
        sources.spawn(source::modbus::run_device(poller, tx.clone()));
    }
    if !config.probes.is_empty() {
        let icmp = config
            .probes
            .iter()
            .any(|p| p.kind == source::probe::config::ProbeKind::Icmp);
        let shared = Arc::new(source::probe::Probers::new(icmp).context("probe HTTP client")?);
        for probe in &config.probes {
            tracing::info!(probe = %probe.id, kind = probe.kind.as_str(), address = %probe.address, "probe enabled");
            let probe = source::probe::Probe::new(probe.clone(), shared.clone());
            sources.spawn(source::probe::run_probe(probe, tx.clone()));
        }
    }
    drop(tx);

    let batcher = tokio::spawn(batcher::run(
        rx,
        outbox.clone(),
        config.batch.clone(),
        config.base_labels(),
        stats.clone(),
    ));
    let transport = tokio::spawn(push);

    let reloader = reload::Reloader::new(config, devices, help);
    tokio::select! {
        _ = faultline_daemon::shutdown_signal() => {}
        _ = reload::on_sighup(file, reloader.clone(), stats.reload.clone()) => {}
    }
    tracing::info!("shutting down: flushing the batcher to the outbox");
    sources.abort_all();
    while sources.join_next().await.is_some() {}
    reloader.stop().await;
    if let Err(e) = batcher.await {
        tracing::error!(error = %e, "batcher ended abnormally");
    }
    transport.abort();
    Ok(())
}
