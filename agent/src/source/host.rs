//! The host source: this machine's CPU, load, memory, swap, filesystems, network interfaces,
//! hardware temperatures and uptime, read through `sysinfo` (plus `/proc/net/dev` for the drop
//! counters sysinfo does not offer). A source in the agent's flow; one collection per interval.

use super::Collection;
use faultline_wire::{Sample, SampleKind, now_ms};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use sysinfo::{
    Components, CpuRefreshKind, Disks, MemoryRefreshKind, Networks, RefreshKind, System,
};
use tokio::sync::mpsc;

/// `[host]` section: what the host source collects.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Collect host metrics at all.
    pub enabled: bool,
    /// Time between collections.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Target id of this host in the inventory; defaults to the system host name.
    pub target: Option<String>,
    /// Filesystem types not reported (pseudo and memory filesystems).
    pub exclude_fs_types: Vec<String>,
    /// Interfaces not reported (exact names).
    pub exclude_interfaces: Vec<String>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(15),
            target: None,
            exclude_fs_types: [
                "tmpfs", "devtmpfs", "overlay", "squashfs", "proc", "sysfs", "ramfs",
            ]
            .map(String::from)
            .to_vec(),
            exclude_interfaces: vec![],
        }
    }
}

/// Help text of every series the host source produces, sent to the collector with them.
pub const HELP: [(&str, &str); 22] = [
    (
        "faultline_host_cpu_usage_ratio",
        "CPU busy share (0–1), per core and `cpu=\"total\"`.",
    ),
    (
        "faultline_host_memory_total_bytes",
        "Physical memory installed.",
    ),
    (
        "faultline_host_memory_used_bytes",
        "Physical memory in use.",
    ),
    (
        "faultline_host_memory_available_bytes",
        "Physical memory available to new processes without swapping.",
    ),
    ("faultline_host_swap_total_bytes", "Swap space configured."),
    ("faultline_host_swap_used_bytes", "Swap space in use."),
    ("faultline_host_load1", "Load average over 1 minute."),
    ("faultline_host_load5", "Load average over 5 minutes."),
    ("faultline_host_load15", "Load average over 15 minutes."),
    (
        "faultline_host_uptime_seconds",
        "Time since the host booted.",
    ),
    (
        "faultline_host_filesystem_size_bytes",
        "Filesystem size, per mount point.",
    ),
    (
        "faultline_host_filesystem_avail_bytes",
        "Filesystem space available to unprivileged users, per mount point.",
    ),
    (
        "faultline_host_filesystem_readonly",
        "1 when the filesystem is mounted read-only.",
    ),
    (
        "faultline_host_network_receive_bytes",
        "Bytes received, per network interface.",
    ),
    (
        "faultline_host_network_transmit_bytes",
        "Bytes sent, per network interface.",
    ),
    (
        "faultline_host_network_receive_packets",
        "Packets received, per network interface.",
    ),
    (
        "faultline_host_network_transmit_packets",
        "Packets sent, per network interface.",
    ),
    (
        "faultline_host_network_receive_errors",
        "Receive errors, per network interface.",
    ),
    (
        "faultline_host_network_transmit_errors",
        "Transmit errors, per network interface.",
    ),
    (
        "faultline_host_network_receive_drops",
        "Received packets dropped (/proc/net/dev), per network interface.",
    ),
    (
        "faultline_host_network_transmit_drops",
        "Packets dropped on sending (/proc/net/dev), per network interface.",
    ),
    (
        "faultline_host_temperature_celsius",
        "Hardware sensor temperature (hwmon), per sensor.",
    ),
];

/// Reads hardware temperature sensors; injectable because many VMs have none.
pub trait TemperatureReader: Send {
    /// Current readings as (sensor name, degrees Celsius).
    fn read(&mut self) -> Vec<(String, f64)>;
}

/// Temperatures from `sysinfo` components (hwmon on Linux).
pub struct SysinfoTemperatures(Option<Components>);

impl SysinfoTemperatures {
    /// Opens the component list; a machine without sensors yields no readings.
    pub fn new() -> Self {
        Self(Components::new_with_refreshed_list().ok())
    }
}

impl Default for SysinfoTemperatures {
    fn default() -> Self {
        Self::new()
    }
}

impl TemperatureReader for SysinfoTemperatures {
    fn read(&mut self) -> Vec<(String, f64)> {
        let Some(components) = self.0.as_mut() else {
            return vec![];
        };
        components.refresh(true);
        components
            .iter()
            .filter_map(|c| Some((c.label().to_string(), f64::from(c.temperature()?))))
            .filter(|(_, t)| t.is_finite())
            .collect()
    }
}

/// Collects host samples; holds the `sysinfo` state that CPU usage needs between calls.
pub struct HostSource {
    config: HostConfig,
    target: String,
    system: Option<System>,
    networks: Option<Networks>,
    disks: Option<Disks>,
    temperatures: Box<dyn TemperatureReader>,
}

/// One samples builder for a collection: fills target and time.
struct Builder<'a> {
    target: &'a str,
    ts_ms: i64,
    out: Collection,
}

impl Builder<'_> {
    fn push(&mut self, metric: &str, kind: SampleKind, value: f64, extra: &[(&str, &str)]) {
        let labels = extra
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        self.out.push(Sample {
            metric: metric.to_string(),
            target: self.target.to_string(),
            labels,
            value,
            ts_ms: self.ts_ms,
            kind,
        });
    }
}

impl HostSource {
    /// Builds the source; `sysinfo` failures leave that part empty rather than failing the agent.
    pub fn new(config: HostConfig, temperatures: Box<dyn TemperatureReader>) -> Self {
        let target = config
            .target
            .clone()
            .or_else(|| System::host_name().ok())
            .unwrap_or_else(|| "localhost".to_string());
        let refresh = RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing().with_usage())
            .with_memory(MemoryRefreshKind::everything());
        let system = System::new_with_specifics(refresh).ok();
        Self {
            config,
            target,
            system,
            networks: Networks::new_with_refreshed_list().ok(),
            disks: Disks::new_with_refreshed_list().ok(),
            temperatures,
        }
    }

    /// The target id host samples carry.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Takes one collection.
    pub fn collect(&mut self) -> Collection {
        let mut b = Builder {
            target: &self.target,
            ts_ms: now_ms(),
            out: Vec::with_capacity(128),
        };
        if let Some(system) = self.system.as_mut() {
            system.refresh_cpu_usage();
            system.refresh_memory();
            let cpus = system.cpus();
            if !cpus.is_empty() {
                b.push(
                    "faultline_host_cpu_usage_ratio",
                    SampleKind::Gauge,
                    f64::from(system.global_cpu_usage()) / 100.0,
                    &[("cpu", "total")],
                );
                for (i, cpu) in cpus.iter().enumerate() {
                    b.push(
                        "faultline_host_cpu_usage_ratio",
                        SampleKind::Gauge,
                        f64::from(cpu.usage()) / 100.0,
                        &[("cpu", &i.to_string())],
                    );
                }
            }
            b.push(
                "faultline_host_memory_total_bytes",
                SampleKind::Gauge,
                system.total_memory() as f64,
                &[],
            );
            b.push(
                "faultline_host_memory_used_bytes",
                SampleKind::Gauge,
                system.used_memory() as f64,
                &[],
            );
            b.push(
                "faultline_host_memory_available_bytes",
                SampleKind::Gauge,
                system.available_memory() as f64,
                &[],
            );
            b.push(
                "faultline_host_swap_total_bytes",
                SampleKind::Gauge,
                system.total_swap() as f64,
                &[],
            );
            b.push(
                "faultline_host_swap_used_bytes",
                SampleKind::Gauge,
                system.used_swap() as f64,
                &[],
            );
        }
        if let Ok(load) = System::load_average() {
            b.push("faultline_host_load1", SampleKind::Gauge, load.one, &[]);
            b.push("faultline_host_load5", SampleKind::Gauge, load.five, &[]);
            b.push(
                "faultline_host_load15",
                SampleKind::Gauge,
                load.fifteen,
                &[],
            );
        }
        if let Ok(uptime) = System::uptime() {
            b.push(
                "faultline_host_uptime_seconds",
                SampleKind::Gauge,
                uptime as f64,
                &[],
            );
        }
        if let Some(disks) = self.disks.as_mut() {
            disks.refresh(true);
            for disk in disks.iter() {
                let fs_type = disk.file_system().to_string_lossy();
                if self.config.exclude_fs_types.iter().any(|x| *x == fs_type) {
                    continue;
                }
                let mount = disk.mount_point().to_string_lossy();
                let device = disk.name().to_string_lossy();
                let labels = [
                    ("mountpoint", &*mount),
                    ("device", &*device),
                    ("fstype", &*fs_type),
                ];
                b.push(
                    "faultline_host_filesystem_size_bytes",
                    SampleKind::Gauge,
                    disk.total_space() as f64,
                    &labels,
                );
                b.push(
                    "faultline_host_filesystem_avail_bytes",
                    SampleKind::Gauge,
                    disk.available_space() as f64,
                    &labels,
                );
                b.push(
                    "faultline_host_filesystem_readonly",
                    SampleKind::State,
                    f64::from(u8::from(disk.is_read_only())),
                    &labels,
                );
            }
        }
        if let Some(networks) = self.networks.as_mut() {
            networks.refresh(true);
            let drops = read_proc_net_drops();
            let mut names: Vec<_> = networks.keys().collect();
            names.sort();
            for os_name in names {
                let name = os_name.to_string_lossy();
                if self.config.exclude_interfaces.iter().any(|x| *x == name) {
                    continue;
                }
                let Some(data) = networks.get(os_name) else {
                    continue;
                };
                let labels = [("interface", &*name)];
                let counters = [
                    (
                        "faultline_host_network_receive_bytes",
                        data.total_received(),
                    ),
                    (
                        "faultline_host_network_transmit_bytes",
                        data.total_transmitted(),
                    ),
                    (
                        "faultline_host_network_receive_packets",
                        data.total_packets_received(),
                    ),
                    (
                        "faultline_host_network_transmit_packets",
                        data.total_packets_transmitted(),
                    ),
                    (
                        "faultline_host_network_receive_errors",
                        data.total_errors_on_received(),
                    ),
                    (
                        "faultline_host_network_transmit_errors",
                        data.total_errors_on_transmitted(),
                    ),
                ];
                for (metric, value) in counters {
                    b.push(metric, SampleKind::Counter, value as f64, &labels);
                }
                if let Some(d) = drops.get(&*name) {
                    b.push(
                        "faultline_host_network_receive_drops",
                        SampleKind::Counter,
                        d.receive as f64,
                        &labels,
                    );
                    b.push(
                        "faultline_host_network_transmit_drops",
                        SampleKind::Counter,
                        d.transmit as f64,
                        &labels,
                    );
                }
            }
        }
        for (sensor, celsius) in self.temperatures.read() {
            b.push(
                "faultline_host_temperature_celsius",
                SampleKind::Gauge,
                celsius,
                &[("sensor", &sensor)],
            );
        }
        b.out
    }

    /// Runs the source as a task: one collection per interval into `out`, until the batcher is gone.
    pub async fn run(mut self, out: mpsc::Sender<Collection>) {
        let mut tick = tokio::time::interval(self.config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (source, samples) = match tokio::task::spawn_blocking(move || {
                let samples = self.collect();
                (self, samples)
            })
            .await
            {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(error = %e, "host collection panicked; host source stopped");
                    return;
                }
            };
            self = source;
            tracing::debug!(samples = samples.len(), target = %self.target, "host collection");
            if out.send(samples).await.is_err() {
                return;
            }
        }
    }
}

/// Receive and transmit drop counters of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceDrops {
    /// Packets dropped on receive.
    pub receive: u64,
    /// Packets dropped on transmit.
    pub transmit: u64,
}

fn read_proc_net_drops() -> BTreeMap<String, InterfaceDrops> {
    std::fs::read_to_string("/proc/net/dev")
        .map(|text| parse_proc_net_dev(&text))
        .unwrap_or_default()
}

/// Parses the drop columns of Linux `/proc/net/dev`; malformed lines are skipped.
pub fn parse_proc_net_dev(text: &str) -> BTreeMap<String, InterfaceDrops> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let fields: Vec<u64> = rest
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            // rx: bytes packets errs drop fifo frame compressed multicast | tx: bytes packets errs drop …
            let receive = *fields.get(3)?;
            let transmit = *fields.get(11)?;
            Some((
                name.trim().to_string(),
                InterfaceDrops { receive, transmit },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FixedTemps;
    impl TemperatureReader for FixedTemps {
        fn read(&mut self) -> Vec<(String, f64)> {
            vec![("Package id 0".into(), 47.5)]
        }
    }

    #[test]
    fn proc_net_dev() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n  eth0: 5000 50 1 7 0 0 0 0 6000 60 2 9 0 0 0 0\nbroken: 1 2\n";
        let drops = parse_proc_net_dev(text);
        assert_eq!(drops.len(), 2);
        assert_eq!(
            drops["eth0"],
            InterfaceDrops {
                receive: 7,
                transmit: 9
            }
        );
        assert_eq!(
            drops["lo"],
            InterfaceDrops {
                receive: 0,
                transmit: 0
            }
        );
    }

    #[test]
    fn collects_this_host() {
        let mut source = HostSource::new(HostConfig::default(), Box::new(FixedTemps));
        let samples = source.collect();
        let has = |m: &str| samples.iter().any(|s| s.metric == m);
        for metric in [
            "faultline_host_cpu_usage_ratio",
            "faultline_host_memory_total_bytes",
            "faultline_host_load1",
            "faultline_host_uptime_seconds",
            "faultline_host_filesystem_size_bytes",
            "faultline_host_network_receive_bytes",
            "faultline_host_network_receive_drops",
        ] {
            assert!(has(metric), "missing {metric}");
        }
        for s in &samples {
            assert!(
                HELP.iter().any(|(m, _)| *m == s.metric),
                "{} has no help",
                s.metric
            );
        }
        let temp = samples
            .iter()
            .find(|s| s.metric == "faultline_host_temperature_celsius")
            .expect("temperature sample");
        assert_eq!(temp.value, 47.5);
        assert_eq!(temp.labels["sensor"], "Package id 0");
        let limits = faultline_wire::Limits::default();
        for s in &samples {
            assert_eq!(s.target, source.target());
            limits
                .check_sample(s)
                .unwrap_or_else(|e| panic!("{s:?}: {e}"));
        }
        let mem = samples
            .iter()
            .find(|s| s.metric == "faultline_host_memory_total_bytes")
            .unwrap();
        assert!(mem.value > 0.0);
        let counter = samples
            .iter()
            .find(|s| s.metric == "faultline_host_network_receive_bytes")
            .unwrap();
        assert_eq!(counter.kind, SampleKind::Counter);
    }
}
