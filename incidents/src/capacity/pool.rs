//! Resource pools as inventory entries (config → **inventory** → capacity watch): a `[[pools]]`
//! entry names what it is (`kind`), how much it holds (`capacity`, `unit`), which targets consume
//! it (`members`) and through which ingested metric (`metric`, summed over the members' series),
//! optional department shares and its planning thresholds. Validated with the inventory, naming
//! file, line and field like every other inventory error.
//!
//! ```toml
//! [[pools]]
//! id = "san-a"
//! kind = "storage"                 # compute | storage | bandwidth
//! capacity = 500e12                # in `unit`, the unit of the metric's values (a rate's for a counter)
//! unit = "bytes"
//! members = ["vm-1", "vm-2"]       # inventory targets whose samples make up its usage
//! metric = "faultline_snmp_host_storage_used_bytes"   # ingested gauge, summed over members
//! labels = { storage_descr = "/data" }   # only series with these labels (optional)
//! shares = { finance = 0.3, tax = 0.2 }   # departments' planned shares (optional)
//! plan_ratio = 0.70                # planning ticket from this usage ratio (default 0.70)
//! expand_ratio = 0.85              # "expand now" from this ratio (default 0.85)
//! full_within_days = 90            # … or when the forecast says full within this (default 90)
//! forecast_window = "30d"          # history the forecast fits (default 30d)
//! ```
//!
//! A counted metric is used at its per-second rate ([`super::rate`]): an uplink's bandwidth
//! pool names the interface's octet counter and states its capacity in bytes per second
//! (1 Gbit/s = 125e6):
//!
//! ```toml
//! [[pools]]
//! id = "uplink-telecom"
//! kind = "bandwidth"
//! capacity = 125e6
//! unit = "bytes/s"
//! members = ["border-1"]
//! metric = "faultline_snmp_if_transmitted_bytes"
//! labels = { ifname = "xe-0/0/1" }
//! ```

use crate::inventory::{Inventory, check_id};
use faultline_wire::config_file::{ConfigError, ConfigSource};
use faultline_wire::validate::{is_label_name, is_metric_name};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

/// What a pool holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    /// A compute cluster's hosts (cores, memory).
    Compute,
    /// A storage pool's volumes (bytes).
    Storage,
    /// An uplink's bandwidth (bits per second).
    Bandwidth,
}

impl PoolKind {
    /// The name used in files and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolKind::Compute => "compute",
            PoolKind::Storage => "storage",
            PoolKind::Bandwidth => "bandwidth",
        }
    }
}

impl fmt::Display for PoolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default usage ratio from which a pool needs planning.
pub const DEFAULT_PLAN_RATIO: f64 = 0.70;
/// Default usage ratio from which a pool needs expanding.
pub const DEFAULT_EXPAND_RATIO: f64 = 0.85;
/// Default forecast horizon (days) within which a pool filling up needs planning.
pub const DEFAULT_FULL_WITHIN_DAYS: f64 = 90.0;
/// Default history the forecast fits.
pub const DEFAULT_FORECAST_WINDOW: Duration = Duration::from_secs(30 * 86_400);
/// Shortest forecast window: a fit needs hourly points from more than one hour.
pub const MIN_FORECAST_WINDOW: Duration = Duration::from_secs(2 * 3600);

fn default_plan_ratio() -> f64 {
    DEFAULT_PLAN_RATIO
}

fn default_expand_ratio() -> f64 {
    DEFAULT_EXPAND_RATIO
}

fn default_full_within_days() -> f64 {
    DEFAULT_FULL_WITHIN_DAYS
}

fn default_forecast_window() -> Duration {
    DEFAULT_FORECAST_WINDOW
}

/// A resource pool as written in the inventory file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// Unique id among pools; its planning ticket's target is `pool:<id>`.
    pub id: String,
    /// What it holds.
    pub kind: PoolKind,
    /// How much it holds, in `unit` (the unit of the metric's values).
    pub capacity: f64,
    /// The unit of `capacity` and of the metric (for people: tickets and the README).
    #[serde(default)]
    pub unit: String,
    /// Inventory targets whose samples of `metric` make up the pool's usage.
    pub members: Vec<String>,
    /// The ingested metric summed over the members' series: a gauge of usage, or a counter
    /// whose per-second rate is the usage.
    pub metric: String,
    /// Only the metric's series with these labels count (`{ cpu = "total" }` leaves out the
    /// per-core series; `{ storage_descr = "/data" }` one volume of several).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Planned shares of customer departments (0 < share <= 1, at most 1 in total).
    #[serde(default)]
    pub shares: BTreeMap<String, f64>,
    /// Usage ratio from which the pool needs planning.
    #[serde(default = "default_plan_ratio")]
    pub plan_ratio: f64,
    /// Usage ratio from which the pool needs expanding.
    #[serde(default = "default_expand_ratio")]
    pub expand_ratio: f64,
    /// A forecast of full within this many days needs planning.
    #[serde(default = "default_full_within_days")]
    pub full_within_days: f64,
    /// How much history the forecast fits.
    #[serde(default = "default_forecast_window", with = "humantime_serde")]
    pub forecast_window: Duration,
}

impl Pool {
    /// A pool with the default thresholds and forecast window, no shares and no label filter.
    pub fn new(id: &str, kind: PoolKind, capacity: f64, metric: &str, members: &[&str]) -> Self {
        Self {
            id: id.to_string(),
            kind,
            capacity,
            unit: String::new(),
            members: members.iter().map(|m| m.to_string()).collect(),
            metric: metric.to_string(),
            labels: BTreeMap::new(),
            shares: BTreeMap::new(),
            plan_ratio: DEFAULT_PLAN_RATIO,
            expand_ratio: DEFAULT_EXPAND_RATIO,
            full_within_days: DEFAULT_FULL_WITHIN_DAYS,
            forecast_window: DEFAULT_FORECAST_WINDOW,
        }
    }

    /// The target its planning ticket carries (`pool:<id>`).
    pub fn ticket_target(&self) -> String {
        format!("{POOL_TARGET_PREFIX}{}", self.id)
    }
}

/// Prefix of a planning ticket's target: `pool:<id>` never collides with an inventory target.
pub const POOL_TARGET_PREFIX: &str = "pool:";

/// Validates the `[[pools]]` of an inventory whose targets and departments are already known;
/// returns them by id.
pub(crate) fn validate_pools(
    source: &ConfigSource,
    pools: Vec<Pool>,
    inventory: &Inventory,
) -> Result<BTreeMap<String, Pool>, ConfigError> {
    let mut out = BTreeMap::new();
    for (i, pool) in pools.into_iter().enumerate() {
        let field = |f: &str| format!("pools[{i}].{f}");
        check_id(source, &field("id"), &pool.id, out.contains_key(&pool.id))?;
        if !(pool.capacity.is_finite() && pool.capacity > 0.0) {
            return Err(source.error(&field("capacity"), "must be a positive number"));
        }
        if pool.members.is_empty() {
            return Err(source.error(&field("members"), "a pool needs at least one member"));
        }
        let mut seen = BTreeSet::new();
        for (j, member) in pool.members.iter().enumerate() {
            let at = field(&format!("members[{j}]"));
            if inventory.target(member).is_none() {
                return Err(source.error(&at, format!("unknown target `{member}`")));
            }
            if !seen.insert(member) {
                return Err(source.error(&at, format!("`{member}` is listed twice")));
            }
        }
        if !is_metric_name(&pool.metric) {
            return Err(source.error(
                &field("metric"),
                format!("`{}` is not a metric name", pool.metric),
            ));
        }
        for name in pool.labels.keys() {
            if !is_label_name(name) {
                return Err(source.error(
                    &field(&format!("labels.{name}")),
                    format!("`{name}` is not a label name"),
                ));
            }
        }
        let mut total = 0.0;
        for (department, share) in &pool.shares {
            let at = field(&format!("shares.{department}"));
            if inventory.department(department).is_none() {
                return Err(source.error(&at, format!("unknown department `{department}`")));
            }
            if !(share.is_finite() && *share > 0.0 && *share <= 1.0) {
                return Err(source.error(&at, "a share is a fraction: 0 < share <= 1"));
            }
            total += share;
        }
        if total > 1.0 + 1e-9 {
            return Err(source.error(
                &field("shares"),
                format!("shares add up to {total:.3}, more than the whole pool"),
            ));
        }
        for (name, ratio) in [
            ("plan_ratio", pool.plan_ratio),
            ("expand_ratio", pool.expand_ratio),
        ] {
            if !(ratio.is_finite() && ratio > 0.0 && ratio <= 1.0) {
                return Err(source.error(&field(name), "a ratio: 0 < ratio <= 1"));
            }
        }
        if pool.expand_ratio < pool.plan_ratio {
            return Err(source.error(
                &field("expand_ratio"),
                format!(
                    "{} is below plan_ratio {}: expanding comes after planning",
                    pool.expand_ratio, pool.plan_ratio
                ),
            ));
        }
        if !(pool.full_within_days.is_finite() && pool.full_within_days > 0.0) {
            return Err(source.error(&field("full_within_days"), "must be a positive number"));
        }
        if pool.forecast_window < MIN_FORECAST_WINDOW
            || pool.forecast_window > super::history::RETENTION
        {
            return Err(source.error(
                &field("forecast_window"),
                "between 2h and the history kept (365d)",
            ));
        }
        out.insert(pool.id.clone(), pool);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::inventory::Inventory;
    use faultline_wire::config_file::{ConfigError, ConfigSource};
    use std::path::Path;

    const BASE: &str = r#"[[departments]]
id = "finance"

[[departments]]
id = "tax"

[[targets]]
id = "vm-1"
kind = "vm"
owner = "customer"
department = "finance"

[[targets]]
id = "vm-2"
kind = "vm"
owner = "customer"
department = "tax"

[[pools]]
id = "san-a"
kind = "storage"
capacity = 1000.0
unit = "bytes"
members = ["vm-1", "vm-2"]
metric = "storage_used_bytes"
shares = { finance = 0.3, tax = 0.2 }
"#;

    fn load(text: &str) -> Result<Inventory, ConfigError> {
        Inventory::load(&ConfigSource::from_text(
            Path::new("inv.toml"),
            text.to_string(),
        ))
    }

    #[test]
    fn a_pool_loads_with_its_defaults() {
        let inv = load(BASE).unwrap();
        let pool = &inv.pools()["san-a"];
        assert_eq!(pool.kind, super::PoolKind::Storage);
        assert_eq!(pool.members, ["vm-1", "vm-2"]);
        assert_eq!(pool.shares["tax"], 0.2);
        assert_eq!(
            (pool.plan_ratio, pool.expand_ratio, pool.full_within_days),
            (0.70, 0.85, 90.0)
        );
        assert_eq!(pool.forecast_window, super::DEFAULT_FORECAST_WINDOW);
        assert_eq!(pool.ticket_target(), "pool:san-a");
    }

    #[test]
    fn invalid_pools_name_file_line_and_field() {
        // (replace, with, field, line, message part)
        let cases = [
            (
                "tax = 0.2",
                "audit = 0.2",
                "pools[0].shares.audit",
                26,
                "unknown department `audit`",
            ),
            (
                "\"vm-2\"]",
                "\"vm-9\"]",
                "pools[0].members[1]",
                24,
                "unknown target `vm-9`",
            ),
            (
                "\"vm-2\"]",
                "\"vm-1\"]",
                "pools[0].members[1]",
                24,
                "listed twice",
            ),
            (
                "capacity = 1000.0",
                "capacity = 0.0",
                "pools[0].capacity",
                22,
                "positive",
            ),
            (
                "metric = \"storage_used_bytes\"",
                "metric = \"used bytes\"",
                "pools[0].metric",
                25,
                "not a metric name",
            ),
            (
                "tax = 0.2 }",
                "tax = 0.2 }\nexpand_ratio = 0.6",
                "pools[0].expand_ratio",
                27,
                "below plan_ratio",
            ),
            (
                "tax = 0.2 }",
                "tax = 0.8 }",
                "pools[0].shares",
                26,
                "add up to 1.100",
            ),
            (
                "tax = 0.2 }",
                "tax = 0.2 }\nforecast_window = \"30m\"",
                "pools[0].forecast_window",
                27,
                "between 2h",
            ),
            (
                "tax = 0.2 }",
                "tax = 0.2 }\nlabels = { \"cpu-id\" = \"total\" }",
                "pools[0].labels.cpu-id",
                27,
                "not a label name",
            ),
            (
                "members = [\"vm-1\", \"vm-2\"]",
                "members = []",
                "pools[0].members",
                24,
                "at least one member",
            ),
        ];
        for (from, to, field, line, message) in cases {
            let text = BASE.replace(from, to);
            assert_ne!(text, BASE, "{field}: case edits the file");
            let err = load(&text).unwrap_err();
            let shown = err.to_string();
            assert_eq!(err.field, field, "{shown}");
            assert!(shown.starts_with(&format!("inv.toml:{line}:")), "{shown}");
            assert!(shown.contains(message), "{shown}");
        }
    }
}
