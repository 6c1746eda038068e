//! `[[probes]]` config of the network path probes (source stage of the agent's flow): ICMP echo,
//! TCP connect and HTTP(S) checks of carrier links and customer services. The doc comments are
//! the user docs.
//!
//! ```toml
//! [[probes]]                      # the carrier's hand-off, seen from our edge
//! id = "acme-sh-0042-handoff"     # target id of the samples (an inventory target)
//! kind = "icmp"
//! address = "203.0.113.1"
//! count = 5                       # echoes per round; loss = lost / count
//! interval = "10s"
//!
//! [[probes]]
//! id = "portal-https"
//! kind = "http"
//! address = "https://portal.example.com/health"
//! expect_status = [200]
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The kind of check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// ICMP echo: `address` is a host name or IP address.
    Icmp,
    /// TCP connect: `address` is `host:port`.
    Tcp,
    /// HTTP(S) GET: `address` is an `http://` or `https://` URL.
    Http,
}

impl ProbeKind {
    /// The `probe` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Icmp => "icmp",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Http => "http",
        }
    }
}

/// One probe: a target checked on its own schedule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Target id of the samples; for a carrier circuit, the inventory target the collector
    /// attributes by (our edge, the carrier's hand-off, a target beyond).
    pub id: String,
    /// `icmp`, `tcp` or `http`.
    pub kind: ProbeKind,
    /// What is probed: a host (icmp), `host:port` (tcp) or a URL (http).
    pub address: String,
    /// Attempts per round (echoes, connects or requests); loss is the share that failed.
    #[serde(default = "default_count")]
    pub count: u32,
    /// Time between rounds.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Time limit of one attempt.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// HTTP statuses that count as success (default: any below 400).
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// Fixed labels added to every sample of the probe.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_count() -> u32 {
    3
}
fn default_interval() -> Duration {
    Duration::from_secs(15)
}
fn default_timeout() -> Duration {
    Duration::from_secs(2)
}

impl ProbeConfig {
    /// Checks values that parse but cannot work; errors are `(field relative to the probe,
    /// message)`. Pure: names are resolved when the probe runs.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.id.trim().is_empty() {
            return Err(("id", "must not be empty".into()));
        }
        let address = self.address.as_str();
        let ok = match self.kind {
            ProbeKind::Icmp => !address.is_empty() && !address.contains(['/', ' ']),
            ProbeKind::Tcp => address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok()),
            ProbeKind::Http => {
                (address.starts_with("http://") || address.starts_with("https://"))
                    && reqwest::Url::parse(address).is_ok()
            }
        };
        if !ok {
            let want = match self.kind {
                ProbeKind::Icmp => "a host name or IP address",
                ProbeKind::Tcp => "host:port",
                ProbeKind::Http => "an http:// or https:// URL",
            };
            return Err(("address", format!("`{address}` is not {want}")));
        }
        if self.count == 0 || self.count > 100 {
            return Err(("count", "must be 1 to 100".into()));
        }
        if self.timeout.is_zero() {
            return Err(("timeout", "must be above zero".into()));
        }
        if self.interval < Duration::from_millis(100) {
            return Err(("interval", "must be at least 100ms".into()));
        }
        if !self.expect_status.is_empty() && self.kind != ProbeKind::Http {
            return Err(("expect_status", "only `http` probes have a status".into()));
        }
        if self.labels.contains_key("agent") || self.labels.contains_key("target") {
            return Err(("labels", "`agent` and `target` are reserved".into()));
        }
        Ok(())
    }
}
