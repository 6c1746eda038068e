//! The agent's config file (TOML, the format the collector shares). The doc comments on these
//! structs are the user documentation of each field; `examples/agent.toml` shows them all.
//!
//! Loading is pure: [`load`] parses and [`AgentConfig::validate`] checks, with every error naming
//! the file, line and field. Nothing here opens sockets or files other than the config itself.

use crate::source::host::HostConfig;
use faultline_wire::config_file::{ConfigError, ConfigSource, Secret};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole agent config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Who this agent is and where it stands.
    pub agent: IdentityConfig,
    /// Where and how batches are pushed.
    pub push: PushConfig,
    /// How samples are grouped into batches.
    #[serde(default)]
    pub batch: BatchConfig,
    /// The on-disk buffer that survives collector outages and agent restarts (default: in the
    /// packaged unit's state directory, `/var/lib/faultline/agent/outbox`).
    #[serde(default)]
    pub outbox: OutboxConfig,
    /// This host's own metrics.
    #[serde(default)]
    pub host: HostConfig,
    /// SNMP devices polled by this agent, and the trap listener.
    #[serde(default)]
    pub snmp: SnmpConfig,
    /// MQTT sensor sources: one broker connection each, with its topic mappings
    /// (see `source::mqtt::config`).
    #[serde(default)]
    pub mqtt: Vec<crate::source::mqtt::config::MqttSourceConfig>,
    /// Modbus TCP and RTU devices and extra register maps (see `source::modbus::config`).
    #[serde(default)]
    pub modbus: crate::source::modbus::config::ModbusConfig,
    /// Network path probes: ICMP echo, TCP connect, HTTP(S) (see `source::probe::config`).
    #[serde(default)]
    pub probes: Vec<crate::source::probe::config::ProbeConfig>,
}

/// `[snmp]`: devices (`[[snmp.devices]]`, one task each) and traps (`[snmp.traps]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnmpConfig {
    /// Directory of extra device profiles (`*.toml`), added to the built-in ones; a file with a
    /// built-in profile's name replaces it.
    pub profiles_dir: Option<PathBuf>,
    /// Most devices polled at the same moment (bounds sockets and memory on large sites).
    pub max_concurrent_polls: usize,
    /// The devices; see `faultline_snmp::DeviceConfig` for every field.
    pub devices: Vec<faultline_snmp::DeviceConfig>,
    /// Trap and inform listener; off when absent.
    pub traps: Option<faultline_snmp::TrapConfig>,
}

impl Default for SnmpConfig {
    fn default() -> Self {
        Self {
            profiles_dir: None,
            max_concurrent_polls: 64,
            devices: Vec::new(),
            traps: None,
        }
    }
}

/// `[agent]`: identity and placement.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// Agent id; must match an `[[agents]]` entry in the collector's config.
    pub id: String,
    /// Site label put on every sample (e.g. a data-centre code).
    #[serde(default)]
    pub site: Option<String>,
    /// Machine-room label put on every sample.
    #[serde(default)]
    pub room: Option<String>,
}

/// `[push]`: the collector endpoint and retry policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// Collector base URL, `http://host:port` or `https://host:port`; leave out when pushing
    /// through an MQTT broker (`[push.mqtt]`).
    #[serde(default)]
    pub url: String,
    /// Bearer token of this agent (prefer `token_file` in production).
    #[serde(default)]
    pub token: Option<Secret>,
    /// File whose first line is the bearer token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate(s) that the collector's certificate must chain to; when set, the
    /// system roots are not trusted.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key for `client_cert_file`.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// Time limit of one push request.
    #[serde(default = "default_push_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// First retry delay after a failed push.
    #[serde(default = "default_min_backoff", with = "humantime_serde")]
    pub min_backoff: Duration,
    /// Longest retry delay; the delay doubles up to this, each one spread ±50 % at random.
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Push through an MQTT broker instead of HTTP (`[push.mqtt]`: address, credentials, TLS),
    /// for gateways behind NAT or on unreliable links: batches leave the same outbox with QoS 1
    /// on a persistent session, to `faultline/v1/agents/<agent.id>/batches`; the collector
    /// subscribes to them. The token still authenticates each batch at the collector.
    #[serde(default)]
    pub mqtt: Option<faultline_daemon::mqtt::BrokerConfig>,
}

fn default_push_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_min_backoff() -> Duration {
    Duration::from_millis(100)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}

/// `[batch]`: grouping of samples before they are written to the outbox.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// A batch is closed once it holds this many samples.
    pub max_samples: usize,
    /// A batch is closed at the latest this long after its first sample.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_samples: 10_000,
            flush_interval: Duration::from_secs(1),
        }
    }
}

/// `[outbox]`: the durable buffer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Directory of the outbox files (created if missing; default
    /// `/var/lib/faultline/agent/outbox`, the packaged unit's `StateDirectory`).
    #[serde(default = "default_outbox_dir")]
    pub dir: PathBuf,
    /// Upper bound of the outbox on disk, in bytes; the oldest data is dropped (and counted) past it.
    #[serde(default = "default_outbox_bytes")]
    pub max_bytes: u64,
    /// fsync every write; turn off only where losing the last seconds on power loss is acceptable.
    #[serde(default = "default_true")]
    pub fsync: bool,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            dir: default_outbox_dir(),
            max_bytes: default_outbox_bytes(),
            fsync: true,
        }
    }
}

fn default_outbox_dir() -> PathBuf {
    PathBuf::from("/var/lib/faultline/agent/outbox")
}
fn default_outbox_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_true() -> bool {
    true
}

/// A config that passed every check, with what it refers to already loaded.
#[derive(Debug)]
pub struct Loaded {
    /// The config.
    pub config: AgentConfig,
    /// Built-in SNMP profiles plus those of `snmp.profiles_dir`.
    pub profiles: std::sync::Arc<faultline_snmp::ProfileCatalog>,
    /// Settings that work but are weak (legacy SNMP crypto), placed in the file.
    pub warnings: Vec<ConfigError>,
    /// Built-in Modbus register maps plus those of `modbus.maps_dir`.
    pub modbus_maps: std::sync::Arc<crate::source::modbus::registers::MapCatalog>,
}

/// Reads and validates an agent config file and the SNMP profiles it uses.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let source = ConfigSource::read(path)?;
    let config: AgentConfig = source.parse()?;
    config.validate(&source)?;
    let profiles = match &config.snmp.profiles_dir {
        Some(dir) => faultline_snmp::ProfileCatalog::with_user_dir(dir)?,
        None => faultline_snmp::ProfileCatalog::builtin()?,
    };
    let modbus_maps = match &config.modbus.maps_dir {
        Some(dir) => crate::source::modbus::registers::MapCatalog::with_user_dir(dir)?,
        None => crate::source::modbus::registers::MapCatalog::builtin()?,
    };
    for (i, device) in config.modbus.devices.iter().enumerate() {
        if modbus_maps.get(&device.map).is_none() {
            return Err(source.error(
                &format!("modbus.devices[{i}].map"),
                format!(
                    "unknown register map `{}` (known: {})",
                    device.map,
                    modbus_maps.names().join(", ")
                ),
            ));
        }
    }
    let mut warnings = Vec::new();
    for issue in faultline_snmp::validate_devices(&config.snmp.devices, &profiles) {
        let error = source.error(&format!("snmp.{}", issue.field), issue.message);
        match issue.severity {
            faultline_snmp::Severity::Error => return Err(error),
            faultline_snmp::Severity::Weak => warnings.push(error),
        }
    }
    Ok(Loaded {
        config,
        profiles: std::sync::Arc::new(profiles),
        warnings,
        modbus_maps: std::sync::Arc::new(modbus_maps),
    })
}

impl AgentConfig {
    /// Checks values that parse but cannot work; pure, no I/O.
    pub fn validate(&self, source: &ConfigSource) -> Result<(), ConfigError> {
        if self.agent.id.trim().is_empty() {
            return Err(source.error("agent.id", "must not be empty"));
        }
        let url = self.push.url.as_str();
        if let Some(broker) = &self.push.mqtt {
            if !url.is_empty() {
                return Err(source.error("push.url", "set `url` or `[push.mqtt]`, not both"));
            }
            if let Err(e) = broker.validate() {
                return Err(source.error(&e.field_in("push.mqtt"), e.to_string()));
            }
        } else {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(source.error("push.url", "must start with http:// or https://"));
            }
            if reqwest::Url::parse(url).is_err() {
                return Err(source.error("push.url", format!("`{url}` is not a valid URL")));
            }
        }
        match (&self.push.token, &self.push.token_file) {
            (None, None) => return Err(source.error("push", "set `token` or `token_file`")),
            (Some(_), Some(_)) => {
                return Err(source.error("push.token", "set only one of `token` and `token_file`"));
            }
            (Some(t), None) if t.expose().trim().is_empty() => {
                return Err(source.error("push.token", "must not be empty"));
            }
            _ => {}
        }
        if self.push.client_cert_file.is_some() != self.push.client_key_file.is_some() {
            return Err(source.error(
                "push.client_cert_file",
                "client_cert_file and client_key_file go together",
            ));
        }
        if self.push.min_backoff.is_zero() || self.push.min_backoff > self.push.max_backoff {
            return Err(source.error(
                "push.min_backoff",
                "must be above zero and not above max_backoff",
            ));
        }
        if self.batch.max_samples == 0 {
            return Err(source.error("batch.max_samples", "must be at least 1"));
        }
        if self.outbox.max_bytes < 1024 * 1024 {
            return Err(source.error("outbox.max_bytes", "must be at least 1 MiB"));
        }
        if self.host.interval < Duration::from_millis(200) {
            return Err(source.error("host.interval", "must be at least 200ms"));
        }
        if self.snmp.max_concurrent_polls == 0 {
            return Err(source.error("snmp.max_concurrent_polls", "must be at least 1"));
        }
        if let Some(traps) = &self.snmp.traps
            && traps.listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(source.error(
                "snmp.traps.listen",
                format!("`{}` is not an address:port", traps.listen),
            ));
        }
        check_entries(
            source,
            "modbus.devices",
            &self.modbus.devices,
            |d| &d.id,
            |d| {
                d.validate()
                    .map_err(|(field, message)| (field.to_string(), message))
            },
        )?;
        check_entries(
            source,
            "probes",
            &self.probes,
            |p| &p.id,
            |p| {
                p.validate()
                    .map_err(|(field, message)| (field.to_string(), message))
            },
        )?;
        check_entries(
            source,
            "mqtt",
            &self.mqtt,
            |m| &m.id,
            |m| match crate::source::mqtt::compile(m) {
                Ok(_) => Ok(()),
                Err(crate::source::mqtt::SetupError::Invalid { field, message }) => {
                    Err((field, message))
                }
                Err(e) => Err((String::new(), e.to_string())),
            },
        )?;
        Ok(())
    }

    /// Labels every sample carries: site and room, where configured.
    pub fn base_labels(&self) -> crate::source::BaseLabels {
        let mut labels = crate::source::BaseLabels::new();
        if let Some(site) = &self.agent.site {
            labels.insert("site".into(), site.clone());
        }
        if let Some(room) = &self.agent.room {
            labels.insert("room".into(), room.clone());
        }
        labels
    }
}

/// Checks the entries of a source list (`section[i]`): unique ids, then each entry's own check,
/// whose error is (field within the entry, message).
fn check_entries<T>(
    source: &ConfigSource,
    section: &str,
    entries: &[T],
    id: impl Fn(&T) -> &String,
    check: impl Fn(&T) -> Result<(), (String, String)>,
) -> Result<(), ConfigError> {
    let mut ids = std::collections::BTreeSet::new();
    for (i, entry) in entries.iter().enumerate() {
        if !ids.insert(id(entry)) {
            return Err(source.error(
                &format!("{section}[{i}].id"),
                format!("duplicate id `{}`", id(entry)),
            ));
        }
        if let Err((field, message)) = check(entry) {
            let at = if field.is_empty() {
                format!("{section}[{i}]")
            } else {
                format!("{section}[{i}].{field}")
            };
            return Err(source.error(&at, message));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        let source = ConfigSource::from_text(Path::new("agent.toml"), text.to_string());
        let config: AgentConfig = source.parse()?;
        config.validate(&source)?;
        Ok(config)
    }

    const GOOD: &str = r#"
[agent]
id = "a1"
site = "bj1"

[push]
url = "http://127.0.0.1:9410"
token = "secret"

[outbox]
dir = "/tmp/x"
"#;

    #[test]
    fn good_config_and_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.batch, BatchConfig::default());
        assert_eq!(c.outbox.dir, Path::new("/tmp/x"));
        let without = parse(&GOOD.replace("[outbox]\ndir = \"/tmp/x\"\n", "")).unwrap();
        assert_eq!(without.outbox, OutboxConfig::default());
        assert_eq!(
            without.outbox.dir,
            Path::new("/var/lib/faultline/agent/outbox")
        );
        assert_eq!(c.host.interval, Duration::from_secs(15));
        assert_eq!(c.base_labels().get("site").map(String::as_str), Some("bj1"));
    }

    #[test]
    fn trap_listener_engine_id() {
        let c = parse(&format!(
            "{GOOD}\n[snmp.traps]\nengine_id = \"0x80001F8805A1B2C3D4E5F60718\"\n"
        ))
        .unwrap();
        let traps = c.snmp.traps.unwrap();
        assert_eq!(
            traps.engine_id.map(|id| id.to_string()).as_deref(),
            Some("80001f8805a1b2c3d4e5f60718")
        );
    }

    #[test]
    fn errors_name_line_and_field() {
        let cases = [
            (GOOD.replace("http://127", "ftp://127"), "push.url", 7),
            (GOOD.replace("token = \"secret\"", ""), "push", 6),
            (GOOD.replace("id = \"a1\"", "id = 5"), "agent.id", 3),
            (
                format!("{GOOD}\n[host]\ninterval = \"10ms\"\n"),
                "host.interval",
                14,
            ),
            (
                format!("{GOOD}\n[batch]\nmax_samples = 0\n"),
                "batch.max_samples",
                14,
            ),
            (
                format!(
                    "{GOOD}\n[snmp.traps]\nlisten = \"127.0.0.1:1162\"\nengine_id = \"80001f88zz\"\n"
                ),
                "snmp.traps.engine_id",
                15,
            ),
            (
                format!("{GOOD}\n[snmp.traps]\nengine_id = \"8000\"\n"),
                "snmp.traps.engine_id",
                14,
            ),
            (
                format!("{GOOD}\n[[probes]]\nid = \"p\"\nkind = \"tcp\"\naddress = \"nohost\"\n"),
                "probes[0].address",
                16,
            ),
            (
                format!(
                    "{GOOD}\n[[modbus.devices]]\nid = \"m\"\naddress = \"127.0.0.1:502\"\nmap = \"xy-md02\"\ntimeout = \"1m\"\n"
                ),
                "modbus.devices[0].timeout",
                17,
            ),
            (
                format!(
                    "{GOOD}\n[[mqtt]]\nid = \"b\"\n[mqtt.broker]\naddress = \"h:1\"\n[[mqtt.topics]]\ntopic = \"a/{{s}}\"\ntarget = \"{{t}}\"\nvalues = [{{ metric = \"m\" }}]\n"
                ),
                "mqtt[0].topics[0].target",
                19,
            ),
            (
                format!(
                    "{GOOD}\n[[mqtt]]\nid = \"b\"\ntopics = []\n[mqtt.broker]\naddress = \"nohost\"\n"
                ),
                "mqtt[0].broker.address",
                17,
            ),
        ];
        for (text, field, line) in cases {
            let err = parse(&text).unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert_eq!(err.position.map(|p| p.0), Some(line), "{err}");
        }
    }
}
