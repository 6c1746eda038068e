//! The Faultline collector: receives agents' pushes, keeps the latest value of every series and
//! exports it with the collector's own health as Prometheus metrics.
//!
//! Flow (one way): [`http`] (or [`mqtt`], batches through a broker) → [`ingest`] (authentication via [`agents`], exactly-once via
//! [`cursors`]) → [`series`] store → `/metrics` (assembled in [`telemetry`]); ingest also hands
//! every applied batch to the rules → [`incidents`] stage, whose tickets the [`api`] and the [`console`] serve and
//! whose ticket events feed the [`notifications`] stage (outbox, on-call paging, delivery). The
//! Prometheus senders enter through [`remote_write`] (→ ingest); ingest forwards what it accepts
//! to a Prometheus-compatible store through [`remote_write_out`]'s durable queue. The
//! [`capacity`] watch reads the inventory pools' usage from the series store and asks the
//! incidents stage for planning tickets.
//! [`body`] reads request bodies under a limit for both. [`config`] is the file format; [`process`]
//! the daemons' own build and process metrics; [`reload`] swaps in the rules, inventory, on-call
//! and maintenance on SIGHUP. [`reports`] makes management reports from the tickets: the `report`
//! command's files and the scheduled report mail.

pub mod ack_link;
pub mod agents;
pub mod api;
pub mod body;
pub mod capacity;
pub mod config;
pub mod console;
pub mod cursors;
pub mod http;
pub mod incidents;
pub mod ingest;
pub mod mailbox;
pub mod mqtt;
pub mod notifications;
pub mod process;
pub mod reload;
pub mod remote_write;
pub mod remote_write_out;
pub mod reports;
pub mod series;
pub mod store;
pub mod telemetry;

use anyhow::Context;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often stale series are swept from memory.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Runs the collector on `config` (loaded from `file`) until SIGINT/SIGTERM; on SIGHUP it
/// reloads `file` ([`reload`]).
pub async fn run(config: config::CollectorConfig, file: std::path::PathBuf) -> anyhow::Result<()> {
    let stale_after_ms = i64::try_from(config.series.stale_after.as_millis()).unwrap_or(i64::MAX);
    let (cursors, restored) = cursors::open(&config.storage.path)?;
    let agents = Arc::new(agents::AgentRegistry::build(
        &config.agents,
        restored,
        stale_after_ms,
    )?);
    if agents.is_empty() {
        tracing::warn!("no [[agents]] configured: every push will be refused");
    }
    let series = Arc::new(RwLock::new(series::SeriesStore::new(
        stale_after_ms,
        series::SeriesLimits {
            total: config.ingest.max_series,
            per_agent: config.ingest.max_series_per_agent,
        },
    )));
    let (telemetry, mut registry) = telemetry::Telemetry::new(series.clone(), agents.clone());
    let reload_stats = faultline_daemon::reload::ReloadStats::default();
    reload_stats.register(&mut registry);
    let ack_links = ack_link::AckLinks::load(&config.api)?;
    let mut notifier = None;
    let mut reload_targets = None;
    let mut report_scheduler = None;
    let mut mailbox = None;
    let stage = match &config.incidents {
        Some(incidents) => {
            let location = store::Location::resolve(&config.store, incidents, &config.storage)?;
            let stage = incidents::start(
                incidents,
                &config.storage,
                &location,
                config.ingest.max_behind,
                &mut registry,
            )?;
            reload_targets = Some(reload::targets(&stage));
            capacity::start(
                stage.inventory.clone(),
                series.clone(),
                &location,
                stage.requests.clone(),
                &mut registry,
            )?;
            notifier = Some(notifications::start(
                &config.notify,
                &incidents.database_path(&config.storage),
                stage.downstream,
                ack_links.clone(),
                &mut registry,
            )?);
            report_scheduler = reports::start(&config, location, stage.inventory.clone())?;
            if let Some(settings) = &config.mailbox {
                mailbox = Some(mailbox::start(
                    settings,
                    stage.requests.clone(),
                    &mut registry,
                )?);
            }
            Some((stage.accepted, stage.requests, stage.inventory))
        }
        None => None,
    };
    let (forward, sender) = match &config.remote_write_out {
        Some(out) => {
            let (forward, sender) = remote_write_out::start(out, &mut registry)?;
            (Some(forward), Some(sender))
        }
        None => (None, None),
    };
    let ingest = ingest::Ingest::new(
        agents.clone(),
        series.clone(),
        cursors,
        config.ingest.clone(),
        telemetry.clone(),
        stage.as_ref().map(|(accepted, _, _)| accepted.clone()),
        stage.as_ref().map(|(_, _, inventory)| inventory.clone()),
    )
    .with_forward(forward);
    let requests = stage.map(|(_, requests, _)| requests);
    let ack = ack_links
        .zip(requests.clone())
        .map(|(links, requests)| Arc::new(ack_link::AckEndpoint::new(links, requests)));
    let api = Arc::new(api::Api::new(&config.api, requests)?);
    let tls = http::tls_acceptor(&config.listen)?;
    let console = console::Console::new(api.clone(), &config.api, tls.is_some())?;
    let remote_write = config
        .remote_write
        .clone()
        .map(|rw| remote_write::Receiver::new(rw, &mut registry));
    let app = Arc::new(http::App {
        ingest,
        registry,
        api,
        remote_write,
    });
    let router = http::router(app.clone(), console, ack);

    let listener = tokio::net::TcpListener::bind(&config.listen.address)
        .await
        .with_context(|| format!("listen.address {}", config.listen.address))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        address = %local,
        agents = agents.len(),
        mutual_tls = config.listen.client_ca_file.is_some(),
        "collector listening: {scheme}://{local}/metrics"
    );

    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tick.tick().await;
            let mut store = series.write().unwrap_or_else(|p| p.into_inner());
            let removed = store.sweep(faultline_wire::now_ms());
            telemetry.set_series(store.len());
            if removed > 0 {
                tracing::debug!(removed, "stale series swept");
            }
        }
    });
    let mqtt = config
        .mqtt
        .clone()
        .map(|mqtt| tokio::spawn(mqtt::run(mqtt, app.clone())));
    let reloader = reload::Reloader::new(config.clone(), reload_targets);
    let reloads = tokio::spawn(reload::on_sighup(file, reloader, reload_stats));
    let server = http::serve(listener, tls, router, config.listen.max_connections);
    let result = tokio::select! {
        result = server => result,
        _ = faultline_daemon::shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
    };
    sweeper.abort();
    if let Some(scheduler) = report_scheduler {
        scheduler.abort();
    }
    reloads.abort();
    if let Some(mailbox) = mailbox {
        mailbox.abort();
    }
    if let Some(sender) = sender {
        sender.abort();
    }
    if let Some(mqtt) = mqtt {
        mqtt.abort();
    }
    if let Some(notifier) = notifier {
        notifier.stop().await;
    }
    result
}
