//! Reloading the agent's config on SIGHUP (config → **SNMP sources** → batcher), the agent's
//! side of [`faultline_daemon::reload`].
//!
//! [`validate`] is `check-config`: the config, its SNMP profiles and Modbus maps, and every file
//! it names, read the way `run` uses them. [`changes`] and [`device_plan`] are the pure core:
//! given the running and the new validated config, which parts change (and whether each needs a
//! restart) and which SNMP device tasks stop and start. [`Reloader::apply`] swaps in the SNMP
//! devices — added ones start, removed ones stop, changed ones restart — and, when the profiles
//! come from `snmp.profiles_dir`, the re-read profiles (every device restarts on them) with their
//! help text. Samples already collected are in the batcher's channel or the outbox and are not
//! touched; a device restarted mid-poll loses that one poll. Everything else (identity, push,
//! batch, outbox, host, the trap listener and its device map, concurrency limit, MQTT, Modbus and
//! probes) is read at start: a change there is logged as needing a restart.

use crate::config::{self, AgentConfig, Loaded};
use crate::help::{self, HelpBook};
use anyhow::Context;
use faultline_daemon::reload::{Changed, Live, ReloadStats, log_changes};
use faultline_snmp::{DeviceConfig, PollLimit, ProfileCatalog};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc};
use tokio::task::{AbortHandle, JoinSet};

/// Loads `file` and reads every file it names (token, CA, client certificate and key, MQTT
/// passwords and TLS files, SNMP profiles, Modbus maps) the way `run` does: what `check-config`
/// and a reload check, so a config that passes also starts.
pub fn validate(file: &Path) -> anyhow::Result<Loaded> {
    let loaded = config::load(file)?;
    faultline_daemon::cli::install_crypto_provider();
    let named = || format!("{}", file.display());
    let agent = &loaded.config.agent.id;
    crate::transport::Pusher::new(agent, &loaded.config.push).with_context(named)?;
    if let Some(broker) = &loaded.config.push.mqtt {
        crate::mqtt_transport::MqttPusher::new(agent, &loaded.config.push, broker)
            .with_context(named)?;
    }
    for mqtt in &loaded.config.mqtt {
        crate::source::mqtt::MqttSource::new(mqtt.clone(), agent)
            .with_context(|| format!("{}: mqtt `{}`", file.display(), mqtt.id))?;
    }
    Ok(loaded)
}

/// Which parts of the config differ between `old` and `new` (both validated); `restart` marks
/// the parts read only at start.
pub fn changes(old: &AgentConfig, new: &AgentConfig) -> Vec<Changed> {
    let mut changed = Vec::new();
    let mut part = |key, differs: bool, restart| {
        if differs {
            changed.push(Changed { key, restart });
        }
    };
    part("agent", old.agent != new.agent, true);
    part("push", old.push != new.push, true);
    part("batch", old.batch != new.batch, true);
    part("outbox", old.outbox != new.outbox, true);
    part("host", old.host != new.host, true);
    part(
        "snmp.profiles_dir",
        old.snmp.profiles_dir != new.snmp.profiles_dir,
        false,
    );
    part(
        "snmp.max_concurrent_polls",
        old.snmp.max_concurrent_polls != new.snmp.max_concurrent_polls,
        true,
    );
    part("snmp.devices", old.snmp.devices != new.snmp.devices, false);
    part("snmp.traps", old.snmp.traps != new.snmp.traps, true);
    part("mqtt", old.mqtt != new.mqtt, true);
    part("modbus", old.modbus != new.modbus, true);
    part("probes", old.probes != new.probes, true);
    changed
}

/// The SNMP device tasks a reload stops and starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DevicePlan {
    /// Ids of running devices to stop (removed, changed, or restarting on new profiles).
    pub stop: Vec<String>,
    /// Devices to start (added, changed, or restarting on new profiles).
    pub start: Vec<DeviceConfig>,
}

/// What takes the SNMP devices from `old` to `new`: a device that is the same keeps polling
/// unless `new_profiles` (then every device restarts on them).
pub fn device_plan(old: &[DeviceConfig], new: &[DeviceConfig], new_profiles: bool) -> DevicePlan {
    let kept = |device: &DeviceConfig, others: &[DeviceConfig]| {
        !new_profiles && others.iter().any(|other| other == device)
    };
    DevicePlan {
        stop: old
            .iter()
            .filter(|d| !kept(d, new))
            .map(|d| d.id.clone())
            .collect(),
        start: new.iter().filter(|d| !kept(d, old)).cloned().collect(),
    }
}

/// The running SNMP device tasks, by device id.
#[derive(Debug)]
pub struct SnmpDevices {
    profiles: Arc<ProfileCatalog>,
    limit: PollLimit,
    samples: mpsc::Sender<Vec<faultline_wire::Sample>>,
    running: HashMap<String, AbortHandle>,
    tasks: JoinSet<()>,
}

impl SnmpDevices {
    /// No devices yet; they will poll with `profiles` under `limit` and send to `samples`.
    pub fn new(
        profiles: Arc<ProfileCatalog>,
        limit: PollLimit,
        samples: mpsc::Sender<Vec<faultline_wire::Sample>>,
    ) -> Self {
        Self {
            profiles,
            limit,
            samples,
            running: HashMap::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Stops and starts the device tasks as `plan` says.
    pub fn apply(&mut self, plan: &DevicePlan) {
        for id in &plan.stop {
            if let Some(task) = self.running.remove(id) {
                task.abort();
                tracing::info!(device = %id, "SNMP device stopped");
            }
        }
        for device in &plan.start {
            tracing::info!(device = %device.id, address = %device.address, "SNMP device enabled");
            let task = self.tasks.spawn(faultline_snmp::run_device(
                device.clone(),
                Arc::clone(&self.profiles),
                self.limit.clone(),
                self.samples.clone(),
            ));
            self.running.insert(device.id.clone(), task);
        }
    }

    /// Stops every device and waits for their tasks to end (their senders with them).
    async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The agent's reload: the running config, its SNMP device tasks and the help book.
#[derive(Debug)]
pub struct Reloader {
    running: Mutex<Option<(AgentConfig, SnmpDevices)>>,
    help: Live<HelpBook>,
}

impl Reloader {
    /// A reloader of an agent running `config` with `devices` and `help`.
    pub fn new(config: AgentConfig, devices: SnmpDevices, help: Live<HelpBook>) -> Arc<Self> {
        Arc::new(Self {
            running: Mutex::new(Some((config, devices))),
            help,
        })
    }

    /// Swaps in the SNMP devices and profiles of `new` (see the module doc) and logs what
    /// changed; the parts that need a restart keep their running values. Fails after
    /// [`Reloader::stop`].
    pub async fn apply(&self, new: Loaded) -> anyhow::Result<()> {
        let mut running = self.running.lock().await;
        let Some((config, devices)) = running.as_mut() else {
            anyhow::bail!("the agent is shutting down");
        };
        let changed = changes(config, &new.config);
        let new_profiles = new.config.snmp.profiles_dir.is_some()
            || config.snmp.profiles_dir != new.config.snmp.profiles_dir;
        let plan = device_plan(&config.snmp.devices, &new.config.snmp.devices, new_profiles);
        if new_profiles {
            self.help.set(Arc::new(help::book(&new.profiles)));
            devices.profiles = new.profiles;
        }
        devices.apply(&plan);
        log_changes(&changed);
        config.snmp.devices = new.config.snmp.devices;
        config.snmp.profiles_dir = new.config.snmp.profiles_dir;
        Ok(())
    }

    /// Stops the SNMP device tasks (shutdown); later reloads fail.
    pub async fn stop(&self) {
        if let Some((_, devices)) = self.running.lock().await.take() {
            devices.stop().await;
        }
    }
}

/// Reloads `file` on every SIGHUP with `reloader`, counting the outcome in `stats`; runs until
/// the process ends.
pub async fn on_sighup(file: PathBuf, reloader: Arc<Reloader>, stats: ReloadStats) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, community: &str) -> DeviceConfig {
        DeviceConfig::v2c(id, "192.0.2.1", community)
    }

    #[test]
    fn only_added_removed_and_changed_devices_restart() {
        let old = [device("a", "public"), device("b", "public")];
        let new = [
            device("b", "secret"),
            device("c", "public"),
            device("a", "public"),
        ];
        let plan = device_plan(&old, &new, false);
        assert_eq!(plan.stop, ["b"]);
        let started: Vec<_> = plan.start.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(started, ["b", "c"]);
        assert_eq!(device_plan(&old, &old, false), DevicePlan::default());
        // New profiles: every device restarts on them.
        let all = device_plan(&old, &old, true);
        assert_eq!((all.stop.len(), all.start.len()), (2, 2));
    }

    #[test]
    fn what_changes_and_what_needs_a_restart() {
        let text = "[agent]\nid = \"a\"\n[push]\nurl = \"http://127.0.0.1:9410\"\ntoken = \"0123456789abcdef\"\n";
        let parse = |t: &str| {
            faultline_wire::config_file::ConfigSource::from_text(
                Path::new("agent.toml"),
                t.to_string(),
            )
            .parse::<AgentConfig>()
            .unwrap()
        };
        let old = parse(text);
        assert!(changes(&old, &old).is_empty());
        let new = parse(&format!(
            "{}\n[[snmp.devices]]\nid = \"ups\"\naddress = \"192.0.2.9\"\ncommunity = \"public\"\n",
            text.replace("9410", "9411")
        ));
        let keys: Vec<_> = changes(&old, &new)
            .into_iter()
            .map(|c| (c.key, c.restart))
            .collect();
        assert_eq!(keys, [("push", true), ("snmp.devices", false)]);
    }
}
