//! Per-device SNMP settings as the agent's config file holds them (`[[snmp.devices]]`), and their
//! checks, including the weak-crypto warnings `check-config` shows.
//!
//! Read by the agent at start; each [`DeviceConfig`] drives one device task
//! ([`crate::poller::run_device`]). Pure: no I/O.

use crate::catalog::ProfileCatalog;
/// Passwords and communities: the workspace's redacted credential type.
pub use faultline_wire::config_file::Secret;
use faultline_wire::validate::{RESERVED_LABELS, is_label_name};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// One SNMP device to poll.
///
/// ```toml
/// [[snmp.devices]]
/// id = "ups-room1"            # target id, as in the inventory
/// address = "10.0.0.5"        # host or host:port (default port 161)
/// version = "v2c"             # v1 | v2c | v3
/// community = "public"
/// profiles = ["ups-mib"]      # plus profiles detected from sysObjectID
/// interval = "30s"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Target id of the device (the inventory's id); every sample carries it as `target`.
    pub id: String,
    /// `host` or `host:port` (IPv6 as `[addr]:port`); port 161 when not given.
    pub address: String,
    /// SNMP version: `v1`, `v2c` (default) or `v3`.
    #[serde(default)]
    pub version: SnmpVersion,
    /// Community string for v1 and v2c. Default `public`.
    #[serde(default = "default_community")]
    pub community: Secret,
    /// v3 user-based security; required when `version = "v3"`.
    #[serde(default)]
    pub v3: Option<UsmConfig>,
    /// Profiles to apply by name, in addition to those detected.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Also apply every profile whose `sys_object_id` prefix matches the device's sysObjectID.
    /// Default true.
    #[serde(default = "yes")]
    pub detect_profiles: bool,
    /// Time between polls (humantime: `30s`, `1m`). Default 60 s.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Time to wait for each response before retrying. Default 2 s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Retries after a timeout, per request. Default 2.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// GETBULK max-repetitions (rows per column per request). Halved automatically when the
    /// device answers tooBig or drops large responses, doubled back towards this value after 10
    /// walks in a row without that. Default 25.
    #[serde(default = "default_max_repetitions")]
    pub max_repetitions: u32,
    /// Walk tables with GETBULK (v2c/v3). `false` walks with GETNEXT, for agents whose GETBULK
    /// is broken. Default true.
    #[serde(default = "yes")]
    pub getbulk: bool,
    /// Tables walked at once, each over its own session. Default 1 (one request in flight);
    /// raise it for big devices (a 20,000-interface switch) that answer in parallel.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Most OIDs per GET request. Default 32.
    #[serde(default = "default_max_oids")]
    pub max_oids_per_request: usize,
    /// How often label columns (ifName, ifAlias, sensor names) are re-read. Default 15 min.
    #[serde(default = "default_lookup_refresh", with = "humantime_serde")]
    pub lookup_refresh: Duration,
    /// Labels added to every sample of this device, e.g. `{ room = "hall-b", rack = "A12" }` for
    /// a device that stands in another room than the agent's `[agent] room`. A label the profile
    /// sets itself is kept; `agent` and `target` are the collector's.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_community() -> Secret {
    Secret::new("public")
}
fn yes() -> bool {
    true
}
fn default_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_retries() -> u32 {
    2
}
fn default_max_repetitions() -> u32 {
    25
}
fn default_concurrency() -> usize {
    1
}
fn default_max_oids() -> usize {
    32
}
fn default_lookup_refresh() -> Duration {
    Duration::from_secs(15 * 60)
}

impl DeviceConfig {
    /// A v2c device with every default, for tests and examples.
    pub fn v2c(id: &str, address: &str, community: &str) -> Self {
        Self {
            id: id.into(),
            address: address.into(),
            version: SnmpVersion::V2c,
            community: Secret::new(community),
            v3: None,
            profiles: Vec::new(),
            detect_profiles: true,
            interval: default_interval(),
            timeout: default_timeout(),
            retries: default_retries(),
            max_repetitions: default_max_repetitions(),
            concurrency: default_concurrency(),
            getbulk: true,
            max_oids_per_request: default_max_oids(),
            lookup_refresh: default_lookup_refresh(),
            labels: BTreeMap::new(),
        }
    }

    /// Checks the settings against the known profiles; returns every problem, each with the
    /// field (relative to this device) and whether it is an error or only a weak (legacy)
    /// setting to warn about.
    pub fn validate(&self, catalog: &ProfileCatalog) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut error = |field: &str, message: String| {
            issues.push(ConfigIssue {
                field: field.into(),
                severity: Severity::Error,
                message,
            })
        };
        if self.id.is_empty() {
            error("id", "must not be empty".into());
        }
        if self.address.is_empty() {
            error("address", "must not be empty".into());
        }
        if self.interval < Duration::from_secs(1) {
            error("interval", "must be at least 1s".into());
        }
        for name in self.labels.keys() {
            if !is_label_name(name) || RESERVED_LABELS.contains(&name.as_str()) {
                error(
                    "labels",
                    format!(
                        "`{name}` is not a label a device can set (letters, digits, `_`; not `agent` or `target`)"
                    ),
                );
            }
        }
        if self.timeout.is_zero() {
            error("timeout", "must be more than 0".into());
        }
        if self.timeout * (self.retries + 1) > self.interval {
            error(
                "timeout",
                format!(
                    "timeout × (retries + 1) = {:?} exceeds the interval {:?}; one dead device would overlap its own polls",
                    self.timeout * (self.retries + 1),
                    self.interval
                ),
            );
        }
        if self.max_repetitions == 0 {
            error("max_repetitions", "must be at least 1".into());
        }
        if !(1..=16).contains(&self.concurrency) {
            error("concurrency", "must be between 1 and 16".into());
        }
        if self.max_oids_per_request == 0 {
            error("max_oids_per_request", "must be at least 1".into());
        }
        for (i, name) in self.profiles.iter().enumerate() {
            if catalog.get(name).is_none() {
                let known: Vec<&str> = catalog.iter().map(|p| p.name.as_str()).collect();
                error(
                    &format!("profiles[{i}]"),
                    format!("unknown profile `{name}`; known: {}", known.join(", ")),
                );
            }
        }
        match (self.version, &self.v3) {
            (SnmpVersion::V3, None) => error(
                "v3",
                "`version = \"v3\"` needs a `v3` table (user, level, …)".into(),
            ),
            (SnmpVersion::V3, Some(usm)) => usm.check(&mut issues),
            (_, Some(_)) => error("v3", "only used with `version = \"v3\"`".into()),
            (_, None) => {}
        }
        issues
    }
}

/// Checks every device of `[[snmp.devices]]`: each one's [`DeviceConfig::validate`], plus
/// unique ids. Fields are relative to the `snmp` table (`devices[2].v3.auth_protocol`).
pub fn validate_devices(devices: &[DeviceConfig], catalog: &ProfileCatalog) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for (i, device) in devices.iter().enumerate() {
        if !ids.insert(device.id.as_str()) {
            issues.push(ConfigIssue {
                field: format!("devices[{i}].id"),
                severity: Severity::Error,
                message: format!("device id `{}` is used twice", device.id),
            });
        }
        issues.extend(
            device
                .validate(catalog)
                .into_iter()
                .map(|issue| ConfigIssue {
                    field: format!("devices[{i}].{}", issue.field),
                    ..issue
                }),
        );
    }
    issues
}

/// SNMP protocol version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnmpVersion {
    /// SNMPv1 (no GETBULK, no Counter64).
    V1,
    /// SNMPv2c.
    #[default]
    V2c,
    /// SNMPv3 with USM.
    V3,
}

/// SNMPv3 user-based security (USM).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsmConfig {
    /// USM user name.
    pub user: String,
    /// `no_auth_no_priv`, `auth_no_priv` or `auth_priv` (recommended).
    pub level: SecurityLevel,
    /// `sha256` (recommended), `sha224`, `sha384`, `sha512`; `md5` and `sha1` only for legacy
    /// devices (reported as weak). Default sha256.
    #[serde(default)]
    pub auth_protocol: AuthProtocol,
    /// Authentication passphrase (at least 8 characters).
    #[serde(default)]
    pub auth_password: Secret,
    /// `aes128` (recommended), `aes192`, `aes256`; `des` only for legacy devices (weak).
    /// Default aes128.
    #[serde(default)]
    pub priv_protocol: PrivProtocol,
    /// Privacy passphrase (at least 8 characters).
    #[serde(default)]
    pub priv_password: Secret,
    /// SNMPv3 context name, if the device needs one.
    #[serde(default)]
    pub context: String,
}

impl UsmConfig {
    fn check(&self, issues: &mut Vec<ConfigIssue>) {
        let mut push = |field: &str, severity, message: String| {
            issues.push(ConfigIssue {
                field: format!("v3.{field}"),
                severity,
                message,
            })
        };
        if self.user.is_empty() {
            push("user", Severity::Error, "must not be empty".into());
        }
        let auth = self.level != SecurityLevel::NoAuthNoPriv;
        let privacy = self.level == SecurityLevel::AuthPriv;
        if !privacy {
            push(
                "level",
                Severity::Weak,
                "without `auth_priv` the traffic is not encrypted".into(),
            );
        }
        if auth {
            if self.auth_password.expose().len() < 8 {
                push(
                    "auth_password",
                    Severity::Error,
                    "must have at least 8 characters (RFC 3414)".into(),
                );
            }
            if matches!(self.auth_protocol, AuthProtocol::Md5 | AuthProtocol::Sha1) {
                push(
                    "auth_protocol",
                    Severity::Weak,
                    format!(
                        "{:?} is a legacy algorithm; use sha256 where the device supports it",
                        self.auth_protocol
                    ),
                );
            }
        }
        if privacy {
            if self.priv_password.expose().len() < 8 {
                push(
                    "priv_password",
                    Severity::Error,
                    "must have at least 8 characters (RFC 3414)".into(),
                );
            }
            if self.priv_protocol == PrivProtocol::Des {
                push(
                    "priv_protocol",
                    Severity::Weak,
                    "DES is a legacy cipher; use aes128 or stronger where the device supports it"
                        .into(),
                );
            }
        }
    }
}

/// USM security level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityLevel {
    /// No authentication, no privacy.
    NoAuthNoPriv,
    /// Authentication only.
    AuthNoPriv,
    /// Authentication and encryption.
    AuthPriv,
}

/// USM authentication protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthProtocol {
    /// HMAC-MD5-96 (legacy, weak).
    Md5,
    /// HMAC-SHA-96 (legacy, weak).
    Sha1,
    /// HMAC-SHA-224.
    Sha224,
    /// HMAC-SHA-256 (recommended).
    #[default]
    Sha256,
    /// HMAC-SHA-384.
    Sha384,
    /// HMAC-SHA-512.
    Sha512,
}

/// USM privacy protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrivProtocol {
    /// CBC-DES (legacy, weak).
    Des,
    /// CFB-AES-128 (recommended).
    #[default]
    Aes128,
    /// CFB-AES-192 (Blumenthal key extension).
    Aes192,
    /// CFB-AES-256 (Blumenthal key extension).
    Aes256,
}

/// How serious a [`ConfigIssue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The device cannot be polled like this.
    Error,
    /// Works, but is weak security (legacy crypto, no encryption); `check-config` warns.
    Weak,
}

/// One problem in a device config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Field path relative to the device (`v3.auth_protocol`); prefix it with
    /// `snmp.devices[N].` to place it with `ConfigSource::error`.
    pub field: String,
    /// Error or weak setting.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(toml_text: &str) -> DeviceConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn defaults_and_durations() {
        let d = device("id = \"a\"\naddress = \"127.0.0.1:1161\"\ninterval = \"30s\"\n");
        assert_eq!(d.version, SnmpVersion::V2c);
        assert_eq!(d.interval, Duration::from_secs(30));
        assert_eq!(d.timeout, Duration::from_secs(2));
        assert_eq!(d.community.expose(), "public");
        let catalog = ProfileCatalog::builtin().unwrap();
        assert!(
            d.validate(&catalog).is_empty(),
            "{:?}",
            d.validate(&catalog)
        );
        assert!(
            !format!("{d:?}").contains("public"),
            "secrets are not printed"
        );
    }

    #[test]
    fn validate_table() {
        let catalog = ProfileCatalog::builtin().unwrap();
        let base = "id = \"a\"\naddress = \"h\"\n";
        let v3 = |rest: &str| format!("{base}version = \"v3\"\n[v3]\nuser = \"u\"\n{rest}");
        let cases: Vec<(String, Vec<(&str, Severity)>)> = vec![
            (
                v3(
                    "level = \"auth_priv\"\nauth_password = \"12345678\"\npriv_password = \"12345678\"\n",
                ),
                vec![],
            ),
            (
                v3(
                    "level = \"auth_priv\"\nauth_protocol = \"md5\"\npriv_protocol = \"des\"\nauth_password = \"12345678\"\npriv_password = \"12345678\"\n",
                ),
                vec![
                    ("v3.auth_protocol", Severity::Weak),
                    ("v3.priv_protocol", Severity::Weak),
                ],
            ),
            (
                v3(
                    "level = \"auth_no_priv\"\nauth_protocol = \"sha1\"\nauth_password = \"short\"\n",
                ),
                vec![
                    ("v3.level", Severity::Weak),
                    ("v3.auth_password", Severity::Error),
                    ("v3.auth_protocol", Severity::Weak),
                ],
            ),
            (
                v3("level = \"no_auth_no_priv\"\n"),
                vec![("v3.level", Severity::Weak)],
            ),
            (
                format!("{base}version = \"v3\"\n"),
                vec![("v3", Severity::Error)],
            ),
            (
                format!("{base}interval = \"5s\"\ntimeout = \"2s\"\n"),
                vec![("timeout", Severity::Error)],
            ),
            (
                format!("{base}max_repetitions = 0\n"),
                vec![("max_repetitions", Severity::Error)],
            ),
            (
                format!("{base}concurrency = 0\n"),
                vec![("concurrency", Severity::Error)],
            ),
            (
                format!("{base}profiles = [\"if-mib\", \"nope\"]\n"),
                vec![("profiles[1]", Severity::Error)],
            ),
            (
                format!("{base}labels = {{ room = \"hall-b\", rack_row = \"A\" }}\n"),
                vec![],
            ),
            (
                format!("{base}labels = {{ target = \"x\" }}\n"),
                vec![("labels", Severity::Error)],
            ),
            (
                format!("{base}labels = {{ \"rack-row\" = \"A\" }}\n"),
                vec![("labels", Severity::Error)],
            ),
        ];
        for (text, want) in cases {
            let got: Vec<(String, Severity)> = device(&text)
                .validate(&catalog)
                .into_iter()
                .map(|i| (i.field, i.severity))
                .collect();
            let want: Vec<(String, Severity)> =
                want.into_iter().map(|(f, s)| (f.to_string(), s)).collect();
            assert_eq!(got, want, "{text}");
        }
    }
}

#[cfg(test)]
mod device_list_tests {
    use super::*;

    #[test]
    fn duplicate_ids_and_nested_fields() {
        #[derive(Deserialize)]
        struct Snmp {
            devices: Vec<DeviceConfig>,
        }
        let text = "[[devices]]\nid = \"a\"\naddress = \"h1\"\n[[devices]]\nid = \"a\"\naddress = \"h2\"\nversion = \"v3\"\n[devices.v3]\nuser = \"u\"\nlevel = \"auth_priv\"\nauth_protocol = \"md5\"\nauth_password = \"12345678\"\npriv_password = \"12345678\"\n";
        let snmp: Snmp = toml::from_str(text).unwrap();
        let catalog = ProfileCatalog::builtin().unwrap();
        let fields: Vec<String> = validate_devices(&snmp.devices, &catalog)
            .into_iter()
            .map(|i| i.field)
            .collect();
        assert_eq!(fields, ["devices[1].id", "devices[1].v3.auth_protocol"]);
    }
}
