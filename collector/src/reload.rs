//! Reloading the collector's config on SIGHUP (config → **rules → incidents**, ingest's
//! inventory, notifications' paging), the collector's side of [`faultline_daemon::reload`].
//!
//! [`validate`] is `check-config`: the config and every file it names, read and checked the way
//! `run` uses them. [`changes`] is the pure core: given the running and the new validated config,
//! which parts change and whether each takes effect now or needs a restart. [`Reloader::apply`]
//! swaps in what can change while running — the rule, inventory, on-call and maintenance files
//! and the `[incidents]` settings they are judged with (ticket policy, correlation window,
//! escalation) — without dropping anything: the incident stage takes the new setup between two
//! messages (a batch being judged finishes on the old rules; the next is judged on the new), the
//! rules keep their memory of every series of a rule still there, ingest and paging read the new
//! inventory and on-call from their next batch or event. Listener, storage, ingest limits, agents,
//! API tokens, notification channels and MQTT are read at start: a change there is logged as
//! needing a restart and the running values stay.

use crate::config::{self, CollectorConfig};
use crate::incidents::{self, Reload, Setup};
use crate::notifications::Paging;
use anyhow::Context;
use faultline_daemon::reload::{Changed, Live, log_changes};
use faultline_incidents::Inventory;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// A config that passed every check of `check-config`, with the incident setup it loaded.
#[derive(Debug)]
pub struct Validated {
    /// The config file's contents.
    pub config: CollectorConfig,
    /// The rule, inventory, on-call and maintenance files, loaded (with `[incidents]`).
    pub setup: Option<Setup>,
}

/// Loads `file` and reads every file it names (agent and API token files, TLS certificate, key
/// and client CA, rule, inventory, on-call and maintenance files) the way `run` does: what
/// `check-config` and a reload check, so a config that passes also starts.
pub fn validate(file: &Path) -> anyhow::Result<Validated> {
    let config = config::load(file)?;
    faultline_daemon::cli::install_crypto_provider();
    let named = || format!("{}", file.display());
    crate::agents::AgentRegistry::build(&config.agents, HashMap::new(), 0).with_context(named)?;
    let api = crate::api::Api::new(&config.api, None).with_context(named)?;
    crate::ack_link::AckLinks::load(&config.api).with_context(named)?;
    let tls = crate::http::tls_acceptor(&config.listen).with_context(named)?;
    crate::console::Console::new(std::sync::Arc::new(api), &config.api, tls.is_some())
        .with_context(named)?;
    let setup = config.incidents.as_ref().map(Setup::load).transpose()?;
    Ok(Validated { config, setup })
}

/// Which parts of the config differ between `old` and `new` (both validated), in file order;
/// `restart` marks the parts read only at start. The incident files are re-read on every
/// reload whatever this says: their contents may change while their paths do not.
pub fn changes(old: &CollectorConfig, new: &CollectorConfig) -> Vec<Changed> {
    let mut changed = Vec::new();
    let mut part = |key, differs: bool, restart| {
        if differs {
            changed.push(Changed { key, restart });
        }
    };
    part("listen", old.listen != new.listen, true);
    part("storage", old.storage != new.storage, true);
    part("ingest", old.ingest != new.ingest, true);
    part("series", old.series != new.series, true);
    part("agents", old.agents != new.agents, true);
    match (&old.incidents, &new.incidents) {
        (Some(old), Some(new)) => {
            part(
                "incidents.rule_files",
                old.rule_files != new.rule_files,
                false,
            );
            part(
                "incidents.inventory_file",
                old.inventory_file != new.inventory_file,
                false,
            );
            part(
                "incidents.oncall_file",
                old.oncall_file != new.oncall_file,
                false,
            );
            part(
                "incidents.maintenance_file",
                old.maintenance_file != new.maintenance_file,
                false,
            );
            part(
                "incidents.correlation_window",
                old.correlation_window != new.correlation_window,
                false,
            );
            part("incidents.tickets", old.tickets != new.tickets, false);
            part(
                "incidents.escalation",
                old.escalation != new.escalation,
                false,
            );
            part("incidents.database", old.database != new.database, true);
            part("incidents.followups", old.followups != new.followups, true);
            part("incidents.settle", old.settle != new.settle, true);
        }
        (old, new) => part("incidents", old.is_some() != new.is_some(), true),
    }
    part("api", old.api != new.api, true);
    part("notify", old.notify != new.notify, true);
    part("mqtt", old.mqtt != new.mqtt, true);
    part("reports", old.reports != new.reports, true);
    changed
}

/// Where a reload swaps in the new incident setup: the stage's channel and what ingest and the
/// notifier read.
#[derive(Debug)]
pub struct Targets {
    /// The incident stage's reload channel.
    pub stage: mpsc::Sender<Reload>,
    /// The inventory ingest re-targets samples with.
    pub inventory: Live<Inventory>,
    /// Who the notifier pages.
    pub paging: Live<Option<Paging>>,
}

/// The collector's reload: the running config, and where its reloadable parts live.
#[derive(Debug)]
pub struct Reloader {
    running: Mutex<CollectorConfig>,
    targets: Option<Targets>,
}

impl Reloader {
    /// A reloader of a collector running `config`, with its incident stage's `targets` (none
    /// without `[incidents]`).
    pub fn new(config: CollectorConfig, targets: Option<Targets>) -> Arc<Self> {
        Arc::new(Self {
            running: Mutex::new(config),
            targets,
        })
    }

    /// Swaps in the reloadable parts of `new` (see the module doc) and logs what changed; the
    /// parts that need a restart keep their running values. Fails when the incident stage has
    /// stopped (nothing is swapped then).
    pub async fn apply(&self, new: Validated) -> anyhow::Result<()> {
        let changed = {
            let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            changes(&running, &new.config)
        };
        if let (Some(targets), Some(mut setup), Some(incidents)) =
            (&self.targets, new.setup, &new.config.incidents)
        {
            let (done, applied) = oneshot::channel();
            let inventory = setup.inventory();
            let paging = setup
                .take_oncall()
                .map(|oncall| Paging::new(oncall, incidents.escalation.clone()));
            targets
                .stage
                .send(Reload { setup, done })
                .await
                .map_err(|_| anyhow::anyhow!("the incident stage has stopped"))?;
            applied
                .await
                .context("the incident stage stopped during the reload")?;
            targets.inventory.set(inventory);
            targets.paging.set(Arc::new(paging));
        }
        log_changes(&changed);
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        // What needs a restart keeps running as it was: remember only what was applied.
        if let (Some(old), Some(new)) = (running.incidents.as_mut(), new.config.incidents) {
            let (database, followups, settle) =
                (old.database.take(), old.followups.clone(), old.settle);
            *old = config::IncidentsConfig {
                database,
                followups,
                settle,
                ..new
            };
        }
        Ok(())
    }
}

/// Starts reloading on SIGHUP: each one validates `file` as `check-config` does and applies it
/// with `reloader`, counting the outcome in `stats`. Runs until the process ends.
pub async fn on_sighup(
    file: std::path::PathBuf,
    reloader: Arc<Reloader>,
    stats: faultline_daemon::reload::ReloadStats,
) {
    faultline_daemon::reload::on_sighup(
        stats,
        || validate(&file),
        |new| {
            let reloader = Arc::clone(&reloader);
            async move { reloader.apply(new).await }
        },
    )
    .await;
}

/// The incident stage's side of [`Targets`], made at start from its handles.
pub fn targets(handles: &incidents::Handles) -> Targets {
    Targets {
        stage: handles.reload.clone(),
        inventory: handles.inventory.clone(),
        paging: handles.downstream.paging.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_wire::config_file::ConfigSource;

    const BASE: &str = "[listen]\naddress = \"127.0.0.1:9410\"\n[storage]\npath = \"/tmp/s.db\"\n[[agents]]\nid = \"a\"\ntoken = \"0123456789abcdef0\"\n[incidents]\n";

    fn parse(text: &str) -> CollectorConfig {
        let source = ConfigSource::from_text(Path::new("c.toml"), text.to_string());
        source.parse().unwrap()
    }

    fn keys(changes: &[Changed]) -> Vec<(&str, bool)> {
        changes.iter().map(|c| (c.key, c.restart)).collect()
    }

    #[test]
    fn what_changes_and_what_needs_a_restart() {
        let old = parse(BASE);
        assert!(changes(&old, &old).is_empty());
        let new = parse(&format!(
            "{BASE}rule_files = [\"r.toml\"]\ncorrelation_window = \"1m\"\n"
        ));
        assert_eq!(
            keys(&changes(&old, &new)),
            [
                ("incidents.rule_files", false),
                ("incidents.correlation_window", false)
            ]
        );
        let moved = parse(&BASE.replace("9410", "9411").replace("[incidents]\n", ""));
        assert_eq!(
            keys(&changes(&old, &moved)),
            [("listen", true), ("incidents", true)]
        );
    }
}
