//! Device profiles as data: which OIDs to poll, how to turn them into samples, and which devices
//! they fit. Profiles are TOML files (one profile per file), shipped in `snmp/profiles/` and
//! embedded in the binary, plus any files the user puts in a profile directory; the set of them
//! is a [`crate::catalog::ProfileCatalog`].
//!
//! Loaded once at agent start; the device tasks ([`crate::poller`]) read them, the pure core
//! ([`crate::collect`]) applies them to fetched varbinds. Every load error names the file, line
//! and field (via [`faultline_wire::config_file::ConfigSource`]).

use crate::Oid;
use crate::state_map::StateRemap;
use faultline_wire::config_file::{ConfigError, ConfigSource};
use faultline_wire::validate::{RESERVED_LABELS, is_label_name, is_metric_name};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Prefix every metric produced by this source carries.
pub const METRIC_PREFIX: &str = "faultline_snmp_";

/// One device profile, in the spirit of an snmp_exporter module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Unique name, used in device configs (`profiles = ["if-mib"]`) and error messages.
    pub name: String,
    /// What the profile covers (MIB, vendor, models).
    #[serde(default)]
    pub description: String,
    /// sysObjectID prefixes this profile fits; a device whose sysObjectID starts with one of
    /// them gets the profile automatically. Empty: only when named in a device config.
    #[serde(default)]
    pub sys_object_id: Vec<Oid>,
    /// Single-instance objects, fetched with GET (OIDs end in `.0`).
    #[serde(default)]
    pub scalars: Vec<Metric>,
    /// Tables (or groups of columns sharing one index), walked with GETBULK.
    #[serde(default)]
    pub tables: Vec<Table>,
}

/// How one OID becomes one sample (per row for table columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// Metric name, `faultline_snmp_…`, in base units; counters without `_total`.
    pub metric: String,
    /// Numeric OID: the instance for scalars, the column for tables.
    pub oid: Oid,
    /// How the value is read.
    pub kind: ValueKind,
    /// Factor applied to gauges and states (0.1 for tenths of a degree). Counters are sent raw.
    #[serde(default = "one")]
    pub scale: f64,
    /// For `state`: state name → number, from the MIB's enumeration. A state sent as text
    /// (some vendors do) is mapped to its number through these names.
    #[serde(default)]
    pub states: BTreeMap<String, i64>,
    /// For `state`: the device's numbers mapped onto the numbers sent (`{ 4 = 1, 3 = 2 }`), so
    /// that one rule fits every vendor's enumeration (HA role). Unmapped numbers are refused.
    #[serde(default, skip_serializing_if = "StateRemap::is_empty")]
    pub remap: StateRemap,
    /// Table gauges only: factors read from other columns of the same row, applied after
    /// `scale` (`hrStorageSize × hrStorageAllocationUnits`, an ENTITY-SENSOR reading × its SI
    /// prefix ÷ its decimal places). The referenced columns are walked with the table even when
    /// they are not metrics themselves.
    #[serde(default)]
    pub scale_by: Vec<RowFactor>,
    /// Fixed labels added to this metric's samples (`direction = "input"`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// One line of help text for dashboards and docs.
    #[serde(default)]
    pub help: String,
}

fn one() -> f64 {
    1.0
}

/// One factor of [`Metric::scale_by`]: a column of the same table row whose value (at the same
/// index) multiplies or divides the reading, directly or as a power. Device support stays data:
/// `{ oid = "…25.2.3.1.4" }` is "× hrStorageAllocationUnits",
/// `{ oid = "…99.1.1.1.2", power_of = 1000, offset = -9 }` is "× 1000^(entPhySensorScale − 9)".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowFactor {
    /// Column OID (no index) of the same row; one of the MIB tables the profile table walks.
    pub oid: Oid,
    /// Absent: the factor is the column's value. Set: the factor is `power_of^(value + offset)`
    /// and the column must hold an integer.
    #[serde(default)]
    pub power_of: Option<u32>,
    /// Added to the column's value to get the exponent (`power_of` only).
    #[serde(default)]
    pub offset: i64,
    /// Divide by the factor instead of multiplying (`÷ 10^entPhySensorPrecision`).
    #[serde(default)]
    pub divide: bool,
    /// A negative column value counts as 0 (`power_of` only). RFC 3433: a negative
    /// entPhySensorPrecision counts accurate digits; it does not move the decimal point.
    #[serde(default)]
    pub negative_as_zero: bool,
    /// Inclusive range the column's value must lie in (the MIB's SYNTAX range); a row outside
    /// it is skipped with an error instead of sending a wildly scaled value.
    #[serde(default)]
    pub range: Option<[i64; 2]>,
}

/// How a value is read and which sample kind it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    /// Any number (INTEGER, Gauge32, TimeTicks, or a number sent as text); scaled.
    Gauge,
    /// Counter32; wraps at 2^32 are smoothed by the agent.
    Counter32,
    /// Counter64 (Counter32 accepted for agents without HC counters).
    Counter64,
    /// An enumeration (oper status, HA role), sent as its number.
    State,
}

impl ValueKind {
    /// The kind's name as written in profiles.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gauge => "gauge",
            Self::Counter32 => "counter32",
            Self::Counter64 => "counter64",
            Self::State => "state",
        }
    }

    /// The wire sample kind.
    pub fn sample_kind(self) -> faultline_wire::SampleKind {
        match self {
            Self::Gauge => faultline_wire::SampleKind::Gauge,
            Self::Counter32 | Self::Counter64 => faultline_wire::SampleKind::Counter,
            Self::State => faultline_wire::SampleKind::State,
        }
    }
}

/// Columns that share one index, walked together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Name used in error messages (`ifTable`).
    pub name: String,
    /// How the index (the OID arcs after a column OID) turns into labels, in order.
    pub index: Vec<IndexPart>,
    /// The columns that become metrics.
    pub columns: Vec<Metric>,
    /// Columns (of this or another table with the same index) whose values become labels;
    /// cached between polls and refreshed on the device's slower `lookup_refresh` schedule.
    #[serde(default)]
    pub lookups: Vec<Lookup>,
}

/// One part of a table index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexPart {
    /// Label name the part becomes.
    pub label: String,
    /// How many arcs it takes and how they read.
    pub kind: IndexKind,
}

/// Encodings of a table index part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexKind {
    /// One arc, as a decimal number.
    Integer,
    /// Four arcs, as a dotted IPv4 address.
    Ipv4,
    /// A length arc followed by that many byte arcs, as text.
    String,
    /// All remaining arcs, dotted (must be last).
    Rest,
}

/// A label taken from another column with the same index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    /// Label name.
    pub label: String,
    /// Column OID whose value (at the same index) becomes the label value.
    pub oid: Oid,
    /// For enumerated columns: state name → number; the label gets the name.
    #[serde(default)]
    pub states: BTreeMap<String, i64>,
    /// Label value → the label value sent, e.g. a well-known sensor OID → `supply_air`; values
    /// not named are sent as they are.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
}

impl Profile {
    /// Parses and validates one profile file's text.
    pub fn parse(source: &ConfigSource) -> Result<Profile, ConfigError> {
        let profile: Profile = source.parse()?;
        profile
            .check()
            .map_err(|(field, message)| source.error(&field, message))?;
        Ok(profile)
    }

    /// True when the device's sysObjectID starts with one of this profile's prefixes.
    pub fn matches(&self, sys_object_id: &Oid) -> bool {
        self.sys_object_id
            .iter()
            .any(|p| sys_object_id.starts_with(p))
    }

    /// Checks the rules serde cannot express; returns the field path and the problem.
    fn check(&self) -> Result<(), (String, String)> {
        let valid_name = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid_name {
            return Err((
                "name".into(),
                "use lowercase letters, digits, `-` and `_`".into(),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, metric) in self.scalars.iter().enumerate() {
            if !metric.scale_by.is_empty() {
                return Err((
                    format!("scalars[{i}].scale_by"),
                    "only table columns can be scaled by other columns of their row".into(),
                ));
            }
            metric
                .check(&BTreeSet::new(), &mut seen)
                .map_err(|(f, m)| (format!("scalars[{i}].{f}"), m))?;
        }
        for (t, table) in self.tables.iter().enumerate() {
            table
                .check(&mut seen)
                .map_err(|(f, m)| (format!("tables[{t}].{f}"), m))?;
        }
        if self.scalars.is_empty() && self.tables.is_empty() {
            return Err((String::new(), "a profile needs scalars or tables".into()));
        }
        Ok(())
    }
}

type Problem = (String, String);

fn check_label(name: &str, field: String) -> Result<(), Problem> {
    if !is_label_name(name) {
        return Err((field, format!("`{name}` is not a valid label name")));
    }
    if RESERVED_LABELS.contains(&name) {
        return Err((
            field,
            format!("`{name}` is reserved: the collector sets it"),
        ));
    }
    Ok(())
}

impl Metric {
    /// `row_labels`: labels the table adds (index and lookups); `seen`: series already defined.
    fn check(
        &self,
        row_labels: &BTreeSet<String>,
        seen: &mut BTreeSet<(String, Vec<(String, String)>)>,
    ) -> Result<(), Problem> {
        if !is_metric_name(&self.metric) || !self.metric.starts_with(METRIC_PREFIX) {
            return Err((
                "metric".into(),
                format!(
                    "`{}` must be a metric name starting with `{METRIC_PREFIX}`",
                    self.metric
                ),
            ));
        }
        let counter = matches!(self.kind, ValueKind::Counter32 | ValueKind::Counter64);
        if counter && self.metric.ends_with("_total") {
            return Err((
                "metric".into(),
                "counters carry no `_total`: the exporter adds it".into(),
            ));
        }
        if counter && self.scale != 1.0 {
            return Err((
                "scale".into(),
                "counters are sent raw: remove `scale`".into(),
            ));
        }
        if !self.scale.is_finite() || self.scale == 0.0 {
            return Err(("scale".into(), "must be a finite, non-zero number".into()));
        }
        if !self.scale_by.is_empty() && self.kind != ValueKind::Gauge {
            return Err((
                "scale_by".into(),
                format!(
                    "only gauges are scaled by other columns; {} values are sent raw",
                    self.kind.name()
                ),
            ));
        }
        for (i, factor) in self.scale_by.iter().enumerate() {
            factor
                .check()
                .map_err(|(f, m)| (format!("scale_by[{i}].{f}"), m))?;
        }
        match (self.kind, self.states.is_empty()) {
            (ValueKind::State, true) => {
                return Err((
                    "states".into(),
                    "a `state` metric needs its state names".into(),
                ));
            }
            (ValueKind::State, false) => {}
            (_, false) => return Err(("states".into(), "only `state` metrics have states".into())),
            (_, true) => {}
        }
        if !self.remap.is_empty() && self.kind != ValueKind::State {
            return Err(("remap".into(), "only `state` metrics are remapped".into()));
        }
        for name in self.labels.keys() {
            check_label(name, format!("labels.{name}"))?;
            if row_labels.contains(name) {
                return Err((
                    format!("labels.{name}"),
                    "also set by the table's index or lookups".into(),
                ));
            }
        }
        let key = (
            self.metric.clone(),
            self.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        if !seen.insert(key) {
            return Err((
                "metric".into(),
                format!("`{}` is defined twice with the same labels", self.metric),
            ));
        }
        Ok(())
    }
}

impl RowFactor {
    /// The rules of one factor on its own; [`Table::check_row_references`] checks the column.
    fn check(&self) -> Result<(), Problem> {
        match self.power_of {
            Some(base) if base < 2 => {
                return Err(("power_of".into(), "must be 2 or more".into()));
            }
            Some(_) => {}
            None if self.offset != 0 => {
                return Err(("offset".into(), "only with `power_of`".into()));
            }
            None if self.negative_as_zero => {
                return Err(("negative_as_zero".into(), "only with `power_of`".into()));
            }
            None => {}
        }
        if let Some([min, max]) = self.range
            && min > max
        {
            return Err((
                "range".into(),
                format!("[{min}, {max}]: the first bound must not exceed the second"),
            ));
        }
        Ok(())
    }
}

/// The conceptual row (`…Entry`) OID of a column OID: the column without its last arc.
fn entry_of(column: &Oid) -> &[u32] {
    let arcs = column.arcs();
    &arcs[..arcs.len().saturating_sub(1)]
}

impl Table {
    /// Each `scale_by` column must be a column of one of the MIB tables (entries) this table
    /// walks, not the scaled column itself and not a counter.
    fn check_row_references(&self) -> Result<(), Problem> {
        let entries: BTreeSet<&[u32]> = self
            .columns
            .iter()
            .map(|c| &c.oid)
            .chain(self.lookups.iter().map(|l| &l.oid))
            .map(entry_of)
            .collect();
        for (c, column) in self.columns.iter().enumerate() {
            for (f, factor) in column.scale_by.iter().enumerate() {
                let field = format!("columns[{c}].scale_by[{f}].oid");
                if !entries.contains(entry_of(&factor.oid)) {
                    return Err((
                        field,
                        format!(
                            "{} is not a column of a table `{}` walks (its entries: {})",
                            factor.oid,
                            self.name,
                            entries
                                .iter()
                                .map(|e| Oid::new(e.to_vec()).to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                if factor.oid == column.oid {
                    return Err((field, "a column cannot scale itself".into()));
                }
                if let Some(counter) = self.columns.iter().find(|m| {
                    m.oid == factor.oid
                        && matches!(m.kind, ValueKind::Counter32 | ValueKind::Counter64)
                }) {
                    return Err((
                        field,
                        format!(
                            "{} is the counter `{}`: counters cannot scale other columns",
                            factor.oid, counter.metric
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check(&self, seen: &mut BTreeSet<(String, Vec<(String, String)>)>) -> Result<(), Problem> {
        if self.name.is_empty() {
            return Err(("name".into(), "must not be empty".into()));
        }
        if self.index.is_empty() {
            return Err((
                "index".into(),
                "a table needs at least one index part".into(),
            ));
        }
        if self.columns.is_empty() {
            return Err(("columns".into(), "a table needs at least one column".into()));
        }
        let mut labels = BTreeSet::new();
        for (i, part) in self.index.iter().enumerate() {
            check_label(&part.label, format!("index[{i}].label"))?;
            if part.kind == IndexKind::Rest && i + 1 != self.index.len() {
                return Err((
                    format!("index[{i}].kind"),
                    "`rest` must be the last index part".into(),
                ));
            }
            if !labels.insert(part.label.clone()) {
                return Err((
                    format!("index[{i}].label"),
                    format!("`{}` used twice", part.label),
                ));
            }
        }
        for (i, lookup) in self.lookups.iter().enumerate() {
            check_label(&lookup.label, format!("lookups[{i}].label"))?;
            if !labels.insert(lookup.label.clone()) {
                return Err((
                    format!("lookups[{i}].label"),
                    format!("`{}` used twice", lookup.label),
                ));
            }
        }
        for (i, column) in self.columns.iter().enumerate() {
            column
                .check(&labels, seen)
                .map_err(|(f, m)| (format!("columns[{i}].{f}"), m))?;
        }
        self.check_row_references()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<Profile, ConfigError> {
        Profile::parse(&ConfigSource::from_text(
            Path::new("p.toml"),
            text.to_string(),
        ))
    }

    /// A valid profile, the base of the error cases here and in [`crate::catalog`].
    pub(crate) const GOOD: &str = r#"
name = "t"
sys_object_id = ["1.3.6.1.4.1.8072"]

[[scalars]]
metric = "faultline_snmp_t_uptime_seconds"
oid = "1.3.6.1.2.1.1.3.0"
kind = "gauge"
scale = 0.01

[[tables]]
name = "ifTable"
index = [{ label = "ifindex", kind = "integer" }]
lookups = [{ label = "ifname", oid = "1.3.6.1.2.1.31.1.1.1.1" }]

[[tables.columns]]
metric = "faultline_snmp_t_if_in_octets"
oid = "1.3.6.1.2.1.31.1.1.1.6"
kind = "counter64"
"#;

    #[test]
    fn good_profile_parses_and_matches() {
        let p = parse(GOOD).unwrap();
        assert!(p.matches(&"1.3.6.1.4.1.8072.3.2.10".parse().unwrap()));
        assert!(!p.matches(&"1.3.6.1.4.1.9.1".parse().unwrap()));
    }

    /// Each bad edit must fail at the named field and line.
    #[test]
    fn errors_name_field_and_line() {
        let cases: [(&str, &str, &str, usize); 9] = [
            (
                "kind = \"counter64\"",
                "kind = \"counter65\"",
                "tables[0].columns[0].kind",
                19,
            ),
            (
                "oid = \"1.3.6.1.2.1.1.3.0\"",
                "oid = \"1.3.x\"",
                "scalars[0].oid",
                7,
            ),
            (
                "faultline_snmp_t_uptime_seconds",
                "t_uptime",
                "scalars[0].metric",
                6,
            ),
            (
                "faultline_snmp_t_if_in_octets",
                "faultline_snmp_t_if_in_octets_total",
                "tables[0].columns[0].metric",
                17,
            ),
            (
                "label = \"ifname\"",
                "label = \"target\"",
                "tables[0].lookups[0].label",
                14,
            ),
            (
                "label = \"ifname\"",
                "label = \"ifindex\"",
                "tables[0].lookups[0].label",
                14,
            ),
            ("scale = 0.01", "scale = 0.0", "scalars[0].scale", 9),
            (
                "kind = \"gauge\"",
                "kind = \"state\"",
                "scalars[0].states",
                5,
            ),
            ("name = \"t\"", "name = \"T t\"", "name", 2),
        ];
        for (from, to, field, line) in cases {
            let text = GOOD.replacen(from, to, 1);
            let err = parse(&text).unwrap_err();
            assert_eq!(err.field, field, "{to}: {err}");
            assert_eq!(err.position.map(|p| p.0), Some(line), "{to}: {err}");
        }
    }

    /// `GOOD` plus a gauge column scaled by another column of its row (line 25).
    fn scaled(factor: &str) -> String {
        format!(
            "{GOOD}\n[[tables.columns]]\nmetric = \"faultline_snmp_t_if_speed_bits_per_second\"\n\
             oid = \"1.3.6.1.2.1.31.1.1.1.15\"\nkind = \"gauge\"\nscale_by = [{factor}]\n"
        )
    }

    #[test]
    fn scale_by_parses() {
        let p = parse(&scaled(
            "{ oid = \"1.3.6.1.2.1.31.1.1.1.14\", power_of = 10, offset = 6, range = [0, 3] }",
        ))
        .unwrap();
        let factor = &p.tables[0].columns[1].scale_by[0];
        assert_eq!(
            (factor.power_of, factor.offset, factor.range, factor.divide),
            (Some(10), 6, Some([0, 3]), false)
        );
        // A lookup column's entry (ifXEntry) counts, and so does a plain multiplier.
        parse(&scaled(
            "{ oid = \"1.3.6.1.2.1.31.1.1.1.1\", divide = true }",
        ))
        .unwrap();
    }

    /// Each bad `scale_by` must fail at the named field and line.
    #[test]
    fn scale_by_errors_name_field_and_line() {
        let at = "tables[0].columns[1].scale_by[0]";
        let cases: [(String, String, &str); 10] = [
            // Not a column of the entries the table walks (hrStorageAllocationUnits).
            (
                scaled("{ oid = \"1.3.6.1.2.1.25.2.3.1.4\" }"),
                format!("{at}.oid"),
                "not a column of a table `ifTable` walks (its entries: 1.3.6.1.2.1.31.1.1.1)",
            ),
            // A scalar instance, not a column.
            (
                scaled("{ oid = \"1.3.6.1.2.1.1.3.0\" }"),
                format!("{at}.oid"),
                "not a column",
            ),
            (
                scaled("{ oid = \"1.3.6.1.2.1.31.1.1.1.6\" }"),
                format!("{at}.oid"),
                "the counter `faultline_snmp_t_if_in_octets`",
            ),
            (
                scaled("{ oid = \"1.3.6.1.2.1.31.1.1.1.15\" }"),
                format!("{at}.oid"),
                "cannot scale itself",
            ),
            (
                scaled("{ power_of = 10 }"),
                at.to_string(),
                "missing field `oid`",
            ),
            (
                scaled("{ oid = \"1.3.6.1.2.1.31.1.1.1.14\", times = 2 }"),
                format!("{at}.times"),
                "unknown field `times`",
            ),
            (
                scaled("{ oid = \"1.3.6.1.2.1.31.1.1.1.14\", power_of = 1 }"),
                format!("{at}.power_of"),
                "must be 2 or more",
            ),
            (
                scaled("{ oid = \"1.3.6.1.2.1.31.1.1.1.14\", offset = -9 }"),
                format!("{at}.offset"),
                "only with `power_of`",
            ),
            (
                scaled("{ oid = \"1.3.6.1.2.1.31.1.1.1.14\", range = [9, 1] }"),
                format!("{at}.range"),
                "must not exceed",
            ),
            (
                scaled("{ oid = \"1.3.6.1.2.1.31.1.1.1.14\" }").replacen(
                    "kind = \"gauge\"\nscale_by",
                    "kind = \"counter64\"\nscale_by",
                    1,
                ),
                "tables[0].columns[1].scale_by".to_string(),
                "counter64 values are sent raw",
            ),
        ];
        for (text, field, message) in cases {
            let err = parse(&text).unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert_eq!(err.position.map(|p| p.0), Some(25), "{err}");
            assert!(err.message.contains(message), "{err}");
        }
        let scalar = GOOD.replacen(
            "scale = 0.01",
            "scale = 0.01\nscale_by = [{ oid = \"1.3.6.1.2.1.1.3\" }]",
            1,
        );
        let err = parse(&scalar).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.position.map(|p| p.0)),
            ("scalars[0].scale_by", Some(10)),
            "{err}"
        );
    }

    /// `remap` belongs to state metrics and its keys are state numbers; both mistakes are named
    /// at the field and line.
    #[test]
    fn remap_errors_name_field_and_line() {
        let on_gauge = GOOD.replacen("scale = 0.01", "scale = 0.01\nremap = { 1 = 2 }", 1);
        let state = GOOD.replacen(
            "kind = \"gauge\"\nscale = 0.01",
            "kind = \"state\"\nstates = { up = 1 }\nremap = { up = 2 }",
            1,
        );
        for (text, message) in [
            (on_gauge, "only `state`"),
            (state, "`up` is not a state number"),
        ] {
            let err = parse(&text).unwrap_err();
            assert_eq!(
                (err.field.as_str(), err.position.map(|p| p.0)),
                ("scalars[0].remap", Some(10)),
                "{err}"
            );
            assert!(err.message.contains(message), "{err}");
        }
    }

    /// The profile example in the crate README is a valid profile.
    #[test]
    fn readme_profile_example_parses() {
        let readme = include_str!("../README.md");
        let example = readme
            .split("```toml\n")
            .filter_map(|block| block.split("```").next())
            .find(|block| block.contains("name = \"my-pdu\""))
            .unwrap();
        let p = parse(example).unwrap();
        assert_eq!(p.tables[0].columns[1].scale_by.len(), 2);
    }
}
