//! The collector's config file (TOML, the format the agent shares). The doc comments on these
//! structs are the user documentation of each field; `examples/collector.toml` shows them all.
//!
//! [`load`] parses and [`CollectorConfig::validate`] checks without side effects; every error names
//! the file, line and field.

use faultline_incidents::Owner;
use faultline_wire::Limits;
use faultline_wire::config_file::{ConfigError, ConfigSource, Secret};
use serde::Deserialize;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole collector config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// The HTTP(S) listener for pushes, `/metrics` and `/healthz`.
    pub listen: ListenConfig,
    /// Durable state (agent sequence cursors; tickets later).
    pub storage: StorageConfig,
    /// The ticket store (`[store]`, see `faultline_collector::store::StoreConfig`): the embedded
    /// SQLite file (default) or a PostgreSQL server.
    #[serde(default)]
    pub store: crate::store::StoreConfig,
    /// Limits that protect the collector from bad or excessive input.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// How long series live without new samples.
    #[serde(default)]
    pub series: SeriesConfig,
    /// The agents allowed to push, each with its bearer token.
    #[serde(default)]
    pub agents: Vec<AgentEntry>,
    /// Rules, attribution and tickets; absent: the collector only ingests and exports.
    #[serde(default)]
    pub incidents: Option<IncidentsConfig>,
    /// The ticket REST API (`/api/v1/tickets`, `/api/v1/followups`).
    #[serde(default)]
    pub api: ApiConfig,
    /// Outgoing notifications of ticket events (`[notify]`: retry policy and
    /// `[[notify.channels]]`); no channels (the default): nothing is sent. Needs `[incidents]`.
    #[serde(default)]
    pub notify: faultline_notify::NotifyConfig,
    /// Also receive agents' batches from an MQTT broker (`[mqtt]`, see
    /// `faultline_collector::mqtt::MqttIngestConfig`); absent: HTTP only.
    #[serde(default)]
    pub mqtt: Option<crate::mqtt::MqttIngestConfig>,
    /// The scheduled management report mail (`[reports]`, see
    /// `faultline_collector::reports::ReportsConfig`); absent: none is sent.
    #[serde(default)]
    pub reports: Option<crate::reports::ReportsConfig>,
    /// The repair mailbox (`[mailbox]`, see
    /// `faultline_collector::mailbox::config::MailboxConfig`); absent: no mail is read.
    #[serde(default)]
    pub mailbox: Option<crate::mailbox::config::MailboxConfig>,
    /// Serve the Prometheus remote-write receiver `POST /api/v1/write` (`[remote_write]`, see
    /// `faultline_collector::remote_write::RemoteWriteConfig`); absent: not served.
    #[serde(default)]
    pub remote_write: Option<crate::remote_write::RemoteWriteConfig>,
    /// Forward every accepted sample to a Prometheus-compatible store (`[remote_write_out]`, see
    /// `faultline_collector::remote_write_out::RemoteWriteOutConfig`); absent: not forwarded.
    #[serde(default)]
    pub remote_write_out: Option<crate::remote_write_out::RemoteWriteOutConfig>,
}

/// `[incidents]`: the rules → incidents stage. File paths are used as given (relative to the
/// working directory, like `storage.path`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentsConfig {
    /// Rule files; empty (the default): the rule set built into the binary (the machine-room
    /// defaults shipped as `incidents/rules/default.toml`).
    #[serde(default)]
    pub rule_files: Vec<PathBuf>,
    /// Inventory (sites, rooms, targets, owners, departments, dependencies); absent: empty, so
    /// every incident is a root tagged `platform`.
    #[serde(default)]
    pub inventory_file: Option<PathBuf>,
    /// On-call schedules and escalation policies (validated at load).
    #[serde(default)]
    pub oncall_file: Option<PathBuf>,
    /// Maintenance windows that hold back ticket creation and paging.
    #[serde(default)]
    pub maintenance_file: Option<PathBuf>,
    /// Ticket database (SQLite, WAL). Default: `tickets.db` next to `storage.path`. It must be
    /// another file than `storage.path`: both keep their schema version in `PRAGMA user_version`.
    #[serde(default)]
    pub database: Option<PathBuf>,
    /// Incidents on dependent targets within this time of each other are one fault.
    #[serde(default = "default_correlation_window", with = "humantime_serde")]
    pub correlation_window: Duration,
    /// Ticket timers: SLA per severity, ack timeout, progress interval, re-open window, call-back.
    #[serde(default)]
    pub tickets: faultline_incidents::TicketPolicy,
    /// Which escalation policy of `oncall_file` pages for a ticket, by its tag; its levels' `after`
    /// also time the ticket's escalations (`tickets.ack_timeout` only for tags without a policy).
    #[serde(default)]
    pub escalation: EscalationConfig,
    /// Customer follow-ups, created as tasks when due and sent to the notification channels.
    #[serde(default)]
    pub followups: FollowUpsConfig,
    /// How long a new root incident waits for the targets upstream of it to report before it
    /// opens a ticket and pages, so that the same faults give the same tickets whatever order
    /// their samples arrive in:
    ///
    /// ```toml
    /// [incidents.settle]
    /// margin = "5s"            # added to an upstream target's poll interval (the default)
    /// max_wait = "5m"          # the longest any incident waits (the default)
    /// default_interval = "1m"  # poll interval assumed for a target seen only once (the default)
    /// ```
    #[serde(default)]
    pub settle: faultline_incidents::settle::SettlePolicy,
}

/// `[incidents.followups]`: scheduled customer follow-ups. A department's clock starts when a
/// sample of one of its inventory targets (`department = …`) first reaches the collector; then a
/// new-customer follow-up task is created at each `new_customer_after`, and one every `vip_every`
/// while the department is VIP (by hand, or automatically with more than 4 cloud hosts). Each
/// task is stored once in the ticket database (a restart never duplicates it), announced to the
/// `[[notify.channels]]` (kind `follow_up`: the department, the kind and the due time, with the
/// department's contacts), listed by `GET /api/v1/followups?state=pending` and closed by
/// `POST /api/v1/followups/{key}/done` with a note. Durations go down to seconds:
///
/// ```toml
/// [incidents.followups]
/// new_customer_after = ["3 days", "8 days", "15 days"]   # the default; [] for none
/// vip_every = "30 days"                                   # the default
/// ```
pub type FollowUpsConfig = faultline_incidents::followup::FollowUpPolicy;

/// `[incidents.escalation]`: the escalation policy (an `[[escalations]]` id of `oncall_file`)
/// whose on-call people a ticket's pages go to, by the ticket's responsibility tag. A tag without
/// its own policy uses `default`; with neither, pages name nobody (channels still get them).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationConfig {
    /// Policy for `platform` tickets.
    pub platform: Option<String>,
    /// Policy for `carrier` tickets.
    pub carrier: Option<String>,
    /// Policy for `customer` tickets.
    pub customer: Option<String>,
    /// Policy for tags without their own.
    pub default: Option<String>,
}

impl EscalationConfig {
    /// The policy for tickets tagged `tag`; an untagged ticket (a mail waiting for triage) pages
    /// along the `default` policy, the service desk's path, like any tag without its own.
    pub fn policy(&self, tag: Option<Owner>) -> Option<&str> {
        match tag {
            Some(Owner::Platform) => self.platform.as_deref(),
            Some(Owner::Carrier) => self.carrier.as_deref(),
            Some(Owner::Customer) => self.customer.as_deref(),
            None => None,
        }
        .or(self.default.as_deref())
    }

    /// Every policy named, with its field name.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("platform", &self.platform),
            ("carrier", &self.carrier),
            ("customer", &self.customer),
            ("default", &self.default),
        ]
        .into_iter()
        .filter_map(|(field, policy)| policy.as_deref().map(|p| (field, p)))
    }
}

fn default_correlation_window() -> Duration {
    Duration::from_secs(300)
}

impl IncidentsConfig {
    /// The ticket database file.
    pub fn database_path(&self, storage: &StorageConfig) -> PathBuf {
        self.database.clone().unwrap_or_else(|| {
            storage
                .path
                .parent()
                .unwrap_or(Path::new(""))
                .join("tickets.db")
        })
    }
}

/// `[api]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Bearer tokens of the people and systems allowed to use the ticket API (and to log in to the
    /// console with the same role).
    pub tokens: Vec<ApiToken>,
    /// `[[api.departments]]`: console logins of customer departments, each seeing only its own
    /// tickets, their customer-facing updates and call-backs, read-only. Not accepted by the API.
    pub departments: Vec<DepartmentLogin>,
    /// The IANA time zone the console shows times in (`Asia/Shanghai`); default: UTC.
    pub time_zone: Option<String>,
    /// File holding the key that signs acknowledge links in pages (at least 32 bytes, e.g.
    /// `head -c 32 /dev/urandom | base64`); unset, pages carry no link.
    pub ack_link_key_file: Option<PathBuf>,
    /// The collector's URL as the on-call's phone reaches it (`https://faultline.example.com`);
    /// acknowledge links start with it. Required with `ack_link_key_file`.
    pub public_url: Option<String>,
    /// How long an acknowledge link is valid (default 24h).
    #[serde(default, with = "humantime_serde")]
    pub ack_link_ttl: Option<Duration>,
}

/// `[[api.departments]]`: the console login of one customer department.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentLogin {
    /// The department id, as in the inventory's `[[departments]]`.
    pub department: String,
    /// The login token (prefer `token_file`).
    #[serde(default)]
    pub token: Option<Secret>,
    /// File whose first line is the login token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// What an API token may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read tickets.
    Viewer,
    /// Work tickets: acknowledge, assign, comment, re-tag, resolve, call back, close, create.
    Engineer,
    /// Everything an engineer does (reserved for administrative endpoints).
    Admin,
}

/// `[[api.tokens]]`: one API user.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who uses it; recorded as the author of every change made with it.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The bearer token (prefer `token_file`).
    #[serde(default)]
    pub token: Option<Secret>,
    /// File whose first line is the bearer token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// `[listen]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Address and port, e.g. `127.0.0.1:9410`.
    pub address: String,
    /// Serve TLS with this PEM certificate chain (needs `key_file`).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Require client certificates signed by this PEM CA (mutual TLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Most connections served at once; further clients wait in the kernel's backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_max_connections() -> usize {
    1024
}

/// `[storage]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// SQLite database file (created if missing; WAL mode).
    pub path: PathBuf,
}

/// `[ingest]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest accepted request body (compressed), in bytes; larger gets 413.
    pub max_body_bytes: usize,
    /// Largest accepted body after decompression, in bytes; larger gets 413.
    pub max_decoded_bytes: usize,
    /// Pushes processed at once; beyond this a push gets 429 with `Retry-After`.
    pub max_concurrent_pushes: usize,
    /// Limits on batch contents. Samples per batch and metric/target name length: breaking one
    /// gets 400. Labels per sample, label name and value length: a sample over them is refused
    /// alone (reasons `too_many_labels`, `label_too_long`), the rest of the batch applied.
    pub limits: Limits,
    /// A sample dated further ahead of the collector's clock is refused alone (reason
    /// `too_far_ahead`; the batch is still acknowledged). Default 5 minutes.
    #[serde(with = "humantime_serde")]
    pub max_ahead: Duration,
    /// A sample dated further behind the collector's clock is refused alone (reason `too_old`).
    /// Keep it at least as long as an agent's outbox can hold a backlog. Default 7 days.
    #[serde(with = "humantime_serde")]
    pub max_behind: Duration,
    /// Most series held in memory in total; a sample that would start another series is refused
    /// (reason `series_limit_total`), existing series keep updating. Default 500,000: about
    /// 450 MB of memory and a 60 MB `/metrics` response (≈900 B and ≈120 B per series, README
    /// "Limits").
    pub max_series: usize,
    /// Most series held for one agent (reason `series_limit_agent`). Default 100,000.
    pub max_series_per_agent: usize,
    /// An agent whose clock differs from the collector's by more than this is warned about (at
    /// most once a minute per agent); the offset is exported as
    /// `faultline_agent_clock_offset_seconds`. Default 30 seconds.
    #[serde(with = "humantime_serde")]
    pub clock_offset_warn: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            max_decoded_bytes: 64 * 1024 * 1024,
            max_concurrent_pushes: 8,
            limits: Limits::default(),
            max_ahead: Duration::from_secs(300),
            max_behind: Duration::from_secs(7 * 86_400),
            max_series: 500_000,
            max_series_per_agent: 100_000,
            clock_offset_warn: Duration::from_secs(30),
        }
    }
}

impl IngestConfig {
    /// The timestamp acceptance window.
    pub fn time_window(&self) -> faultline_wire::TimeWindow {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        faultline_wire::TimeWindow {
            max_ahead_ms: ms(self.max_ahead),
            max_behind_ms: ms(self.max_behind),
        }
    }
}

/// `[series]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeriesConfig {
    /// A series whose newest sample is older than this disappears from `/metrics`, and an agent
    /// not heard from for this long is reported down.
    #[serde(with = "humantime_serde")]
    pub stale_after: Duration,
}

impl Default for SeriesConfig {
    fn default() -> Self {
        Self {
            stale_after: Duration::from_secs(300),
        }
    }
}

/// `[[agents]]`: one agent allowed to push.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    /// The agent's id (its `agent.id`).
    pub id: String,
    /// Its bearer token (prefer `token_file`).
    #[serde(default)]
    pub token: Option<Secret>,
    /// File whose first line is its bearer token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// Reads and validates a collector config file.
pub fn load(path: &Path) -> Result<CollectorConfig, ConfigError> {
    let source = ConfigSource::read(path)?;
    let config: CollectorConfig = source.parse()?;
    config.validate(&source)?;
    config.check_named_files(&source)?;
    Ok(config)
}

impl CollectorConfig {
    /// Checks that every file `[incidents]` names (rule, inventory, on-call, maintenance) can be
    /// opened, so a missing one is reported at the line of this config that names it; the
    /// incident stage parses them later with errors placed in their own files.
    pub fn check_named_files(&self, source: &ConfigSource) -> Result<(), ConfigError> {
        let Some(incidents) = &self.incidents else {
            return Ok(());
        };
        let singles = [
            ("inventory_file", &incidents.inventory_file),
            ("oncall_file", &incidents.oncall_file),
            ("maintenance_file", &incidents.maintenance_file),
        ];
        let named = (incidents.rule_files.iter().enumerate())
            .map(|(i, path)| (format!("incidents.rule_files[{i}]"), path))
            .chain(singles.into_iter().filter_map(|(field, path)| {
                path.as_ref()
                    .map(|path| (format!("incidents.{field}"), path))
            }));
        for (field, path) in named {
            if let Err(e) = std::fs::File::open(path) {
                return Err(source.error(&field, format!("cannot read {}: {e}", path.display())));
            }
        }
        Ok(())
    }

    /// Checks values that parse but cannot work; pure, no I/O.
    pub fn validate(&self, source: &ConfigSource) -> Result<(), ConfigError> {
        if self.listen.address.parse::<SocketAddr>().is_err() {
            return Err(source.error(
                "listen.address",
                format!("`{}` is not an address:port", self.listen.address),
            ));
        }
        if self.listen.cert_file.is_some() != self.listen.key_file.is_some() {
            return Err(source.error("listen.cert_file", "cert_file and key_file go together"));
        }
        if self.listen.client_ca_file.is_some() && self.listen.cert_file.is_none() {
            return Err(source.error(
                "listen.client_ca_file",
                "mutual TLS needs cert_file and key_file",
            ));
        }
        let remote_write = [
            self.remote_write.as_ref().map(|r| r.validate()),
            self.remote_write_out.as_ref().map(|r| r.validate()),
        ];
        if let Some(Err((field, problem))) = remote_write.into_iter().flatten().find(Result::is_err)
        {
            return Err(source.error(&field, problem));
        }
        if let Some(mqtt) = &self.mqtt {
            if let Err(e) = mqtt.broker.validate() {
                return Err(source.error(&e.field_in("mqtt.broker"), e.to_string()));
            }
            if mqtt
                .shared_group
                .as_deref()
                .is_some_and(|g| g.is_empty() || g.contains(['/', '+', '#']))
            {
                return Err(source.error(
                    "mqtt.shared_group",
                    "a non-empty name without `/`, `+` or `#`",
                ));
            }
            if mqtt.shared_group.is_some() && mqtt.broker.client_id.is_none() {
                return Err(source.error(
                    "mqtt.broker.client_id",
                    "collectors sharing a group each need their own client_id (one persistent \
                     session per collector; the same id would take over the other's session)",
                ));
            }
        }
        if self.api.ack_link_key_file.is_some() {
            let url = self.api.public_url.as_deref().unwrap_or_default();
            let http = url.starts_with("http://") || url.starts_with("https://");
            if !http || url.len() <= "https://".len() {
                return Err(source.error(
                    "api.public_url",
                    "acknowledge links need the collector's http(s) URL as the on-call reaches it",
                ));
            }
        }
        if self
            .api
            .ack_link_ttl
            .is_some_and(|t| t < Duration::from_secs(60))
        {
            return Err(source.error("api.ack_link_ttl", "must be at least 1m"));
        }
        if self.listen.max_connections == 0 {
            return Err(source.error("listen.max_connections", "must be at least 1"));
        }
        if self.ingest.max_concurrent_pushes == 0 {
            return Err(source.error("ingest.max_concurrent_pushes", "must be at least 1"));
        }
        if self.ingest.max_body_bytes == 0
            || self.ingest.max_decoded_bytes < self.ingest.max_body_bytes
        {
            return Err(source.error(
                "ingest.max_decoded_bytes",
                "must be at least max_body_bytes, and both above zero",
            ));
        }
        if self.ingest.max_behind < Duration::from_secs(60) {
            return Err(source.error(
                "ingest.max_behind",
                "must be at least 1m (an agent's backlog after an outage is older than that)",
            ));
        }
        if self.ingest.max_series == 0 || self.ingest.max_series_per_agent == 0 {
            return Err(source.error(
                "ingest.max_series",
                "max_series and max_series_per_agent must be at least 1",
            ));
        }
        if self.series.stale_after < Duration::from_secs(1) {
            return Err(source.error("series.stale_after", "must be at least 1s"));
        }
        let mut ids = HashSet::new();
        for (i, agent) in self.agents.iter().enumerate() {
            let at = format!("agents[{i}]");
            check_name(source, &at, "id", &agent.id, &mut ids)?;
            check_token(source, &at, agent.token.as_ref(), agent.token_file.as_ref())?;
        }
        let mut names = HashSet::new();
        for (i, entry) in self.api.tokens.iter().enumerate() {
            let at = format!("api.tokens[{i}]");
            check_name(source, &at, "name", &entry.name, &mut names)?;
            check_token(source, &at, entry.token.as_ref(), entry.token_file.as_ref())?;
        }
        if let Some(incidents) = &self.incidents {
            if incidents.database_path(&self.storage) == self.storage.path {
                return Err(source.error(
                    "incidents.database",
                    "must be another file than storage.path (each keeps its own schema version)",
                ));
            }
            incidents.tickets.validate(source, "incidents.tickets")?;
            incidents
                .followups
                .validate(source, "incidents.followups")?;
            if incidents.oncall_file.is_none()
                && let Some((field, _)) = incidents.escalation.named().next()
            {
                return Err(source.error(
                    &format!("incidents.escalation.{field}"),
                    "names an escalation policy but `incidents.oncall_file` is not set",
                ));
            }
        }
        self.store.validate(source, "store")?;
        self.notify.validate(source, "notify")?;
        if let Some(reports) = &self.reports {
            reports.validate(source, &self.notify, self.incidents.is_some())?;
        }
        if let Some(mailbox) = &self.mailbox {
            mailbox.validate(source, self.incidents.is_some())?;
        }
        if self.incidents.is_none() && !self.notify.channels.is_empty() {
            return Err(source.error(
                "notify.channels",
                "notifications come from tickets: add an `[incidents]` section",
            ));
        }
        Ok(())
    }
}

/// A non-empty name, unique among `seen`.
fn check_name<'a>(
    source: &ConfigSource,
    at: &str,
    field: &str,
    name: &'a str,
    seen: &mut HashSet<&'a str>,
) -> Result<(), ConfigError> {
    if name.trim().is_empty() {
        return Err(source.error(&format!("{at}.{field}"), "must not be empty"));
    }
    if !seen.insert(name) {
        return Err(source.error(
            &format!("{at}.{field}"),
            format!("`{name}` is listed twice"),
        ));
    }
    Ok(())
}

/// Exactly one of `token` (at least 16 characters) and `token_file`.
fn check_token(
    source: &ConfigSource,
    at: &str,
    token: Option<&Secret>,
    token_file: Option<&PathBuf>,
) -> Result<(), ConfigError> {
    match (token, token_file) {
        (None, None) => Err(source.error(at, "set `token` or `token_file`")),
        (Some(_), Some(_)) => Err(source.error(
            &format!("{at}.token"),
            "set only one of `token` and `token_file`",
        )),
        (Some(t), None) if t.expose().len() < 16 => {
            Err(source.error(&format!("{at}.token"), "must be at least 16 characters"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CollectorConfig, ConfigError> {
        let source = ConfigSource::from_text(Path::new("collector.toml"), text.to_string());
        let config: CollectorConfig = source.parse()?;
        config.validate(&source)?;
        Ok(config)
    }

    const GOOD: &str = r#"
[listen]
address = "127.0.0.1:9410"

[storage]
path = "/tmp/f.db"

[[agents]]
id = "a1"
token = "0123456789abcdef"
"#;

    #[test]
    fn a_missing_incident_file_is_reported_at_the_line_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules.toml");
        std::fs::write(&rules, "").unwrap();
        let missing = dir.path().join("missing.toml");
        let (r, m) = (rules.display(), missing.display());
        // (the [incidents] section, the field, its line)
        let cases = [
            (
                format!("rule_files = [\n  \"{r}\",\n  \"{m}\",\n]\n"),
                "incidents.rule_files[1]",
                15,
            ),
            (
                format!("rule_files = [\"{r}\"]\ninventory_file = \"{m}\"\n"),
                "incidents.inventory_file",
                14,
            ),
            (
                format!("oncall_file = \"{m}\"\n"),
                "incidents.oncall_file",
                13,
            ),
            (
                format!("maintenance_file = \"{m}\"\n"),
                "incidents.maintenance_file",
                13,
            ),
        ];
        for (section, field, line) in cases {
            let text = format!("{GOOD}\n[incidents]\n{section}");
            let source = ConfigSource::from_text(Path::new("collector.toml"), text.clone());
            let config: CollectorConfig = source.parse().unwrap();
            let err = config.check_named_files(&source).unwrap_err();
            assert_eq!(err.field, field, "{text}");
            assert_eq!(err.position.map(|p| p.0), Some(line), "{err}");
            assert!(err.message.contains("missing.toml"), "{err}");
        }
        let text = format!("{GOOD}\n[incidents]\nrule_files = [\"{r}\"]\n");
        let source = ConfigSource::from_text(Path::new("collector.toml"), text);
        let config: CollectorConfig = source.parse().unwrap();
        assert!(config.check_named_files(&source).is_ok());
    }

    #[test]
    fn ack_links_need_a_public_url_and_a_sane_lifetime() {
        // ([api] section, the field refused; None = accepted)
        let cases = [
            (
                "ack_link_key_file = \"/k\"\npublic_url = \"https://f.example\"\n",
                None,
            ),
            ("ack_link_key_file = \"/k\"\n", Some("api.public_url")),
            (
                "ack_link_key_file = \"/k\"\npublic_url = \"f.example\"\n",
                Some("api.public_url"),
            ),
            ("ack_link_ttl = \"10s\"\n", Some("api.ack_link_ttl")),
            ("ack_link_ttl = \"2h\"\n", None),
        ];
        for (section, refused) in cases {
            let text = format!("{GOOD}\n[api]\n{section}");
            let got = parse(&text).err().map(|e| e.field);
            assert_eq!(got.as_deref(), refused, "{text}");
        }
    }

    #[test]
    fn good_config_and_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.ingest, IngestConfig::default());
        assert_eq!(c.agents.len(), 1);
        assert_eq!(c.incidents, None);
        let with = parse(&format!("{GOOD}\n[incidents]\n")).unwrap();
        let incidents = with.incidents.unwrap();
        assert_eq!(
            incidents.database_path(&with.storage),
            Path::new("/tmp/tickets.db")
        );
        assert!(incidents.rule_files.is_empty(), "built-in rules by default");
        assert_eq!(
            incidents.followups,
            FollowUpsConfig::default(),
            "days 3, 8 and 15; VIP every 30 days"
        );
        let seconds = parse(&format!(
            "{GOOD}\n[incidents.followups]\nnew_customer_after = [\"2s\", \"4s\"]\nvip_every = \"1m\"\n"
        ))
        .unwrap();
        let followups = seconds.incidents.unwrap().followups;
        assert_eq!(
            followups.new_customer_after,
            [Duration::from_secs(2), Duration::from_secs(4)]
        );
        assert_eq!(followups.vip_every, Duration::from_secs(60));
        assert!(
            !format!("{c:?}").contains("0123456789abcdef"),
            "token leaked into Debug"
        );
    }

    #[test]
    fn errors_name_line_and_field() {
        let cases = [
            (
                GOOD.replace("127.0.0.1:9410", "localhost"),
                "listen.address",
                3,
            ),
            (
                GOOD.replace("0123456789abcdef", "short"),
                "agents[0].token",
                10,
            ),
            (
                format!("{GOOD}\n[[agents]]\nid = \"a1\"\ntoken = \"0123456789abcdef\"\n"),
                "agents[1].id",
                13,
            ),
            (
                format!("{GOOD}\n[series]\nstale_after = \"10ms\"\n"),
                "series.stale_after",
                13,
            ),
            (
                format!("{GOOD}\n[ingest]\nmax_body_bytes = -1\n"),
                "ingest.max_body_bytes",
                13,
            ),
            (
                format!("{GOOD}\n[ingest]\nmax_behind = \"10s\"\n"),
                "ingest.max_behind",
                13,
            ),
            (
                format!("{GOOD}\n[ingest]\nmax_series = 0\n"),
                "ingest.max_series",
                13,
            ),
            (
                format!("{GOOD}\n[incidents]\ndatabase = \"/tmp/f.db\"\n"),
                "incidents.database",
                13,
            ),
            (
                format!("{GOOD}\n[incidents.tickets]\nack_timeout = \"0s\"\n"),
                "incidents.tickets.ack_timeout",
                13,
            ),
            (
                format!(
                    "{GOOD}\n[[api.tokens]]\nname = \"n\"\nrole = \"engineer\"\ntoken = \"short\"\n"
                ),
                "api.tokens[0].token",
                15,
            ),
            (
                format!(
                    "{GOOD}\n[[api.tokens]]\nname = \"n\"\nrole = \"boss\"\ntoken_file = \"/t\"\n"
                ),
                "api.tokens[0].role",
                14,
            ),
            (
                format!(
                    "{GOOD}\n[mqtt]\nshared_group = \"c\"\n[mqtt.broker]\naddress = \"127.0.0.1:1883\"\n"
                ),
                "mqtt.broker.client_id",
                14,
            ),
            (
                format!("{GOOD}\n[incidents.escalation]\ncarrier = \"noc\"\n"),
                "incidents.escalation.carrier",
                13,
            ),
            (
                format!("{GOOD}\n[incidents.followups]\nnew_customer_after = [\"0s\"]\n"),
                "incidents.followups.new_customer_after[0]",
                13,
            ),
            (
                format!("{GOOD}\n[incidents.followups]\nvip_every = \"monthly\"\n"),
                "incidents.followups.vip_every",
                13,
            ),
            (
                format!(
                    "{GOOD}\n[[notify.channels]]\nname = \"hook\"\n[notify.channels.webhook]\nurl = \"http://h/\"\n"
                ),
                "notify.channels",
                12,
            ),
            (
                format!(
                    "{GOOD}\n[incidents]\n\n[[notify.channels]]\nname = \"hook\"\n[notify.channels.webhook]\nurl = \"ftp://h/\"\n"
                ),
                "notify.channels[0].webhook.url",
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
