//! The pure core of one poll: varbinds fetched from a device → `Vec<Sample>` for its profiles.
//!
//! The device task ([`crate::poller`]) asks [`FetchPlan`] what to GET and walk, fetches it into
//! a [`VarbindMap`], then calls [`build_samples`] for each profile; the samples go on to the
//! agent's batcher. No I/O, no clock: the caller passes the timestamp.

use crate::Oid;
use crate::counters::{CounterTracker, label_hash, series_key};
use crate::profile::{IndexKind, IndexPart, Metric, Profile, Table};
use crate::row_scale::{RowScaleError, scale_by_row};
use crate::value::{DecodeError, Decoded, SnmpValue, decode};
use faultline_wire::Sample;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// Varbinds of one device, keyed by full OID (in walk order).
pub type VarbindMap = BTreeMap<Oid, SnmpValue>;

/// What a set of profiles needs fetched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchPlan {
    /// Scalar instances to GET.
    pub scalars: Vec<Oid>,
    /// Tables to walk each poll: table name and its column OIDs.
    pub tables: Vec<(String, Vec<Oid>)>,
    /// Label columns to walk on the slower lookup schedule: table name and column OIDs.
    pub lookups: Vec<(String, Vec<Oid>)>,
}

impl FetchPlan {
    /// The plan for `profiles`; an OID needed twice on one schedule is fetched once. A table
    /// walks its columns and the columns they are scaled by (`scale_by`), metrics or not.
    pub fn new(profiles: &[Arc<Profile>]) -> Self {
        let mut plan = Self::default();
        // Each poll's data and the cached lookups are separate maps: dedupe within each.
        let (mut seen, mut seen_lookups) = (BTreeSet::new(), BTreeSet::new());
        let mut fresh = |oid: &Oid| seen.insert(oid.clone());
        for profile in profiles {
            plan.scalars.extend(
                profile
                    .scalars
                    .iter()
                    .map(|m| m.oid.clone())
                    .filter(&mut fresh),
            );
            for table in &profile.tables {
                let needed = table.columns.iter().flat_map(|m| {
                    let factors = m.scale_by.iter().map(|f| &f.oid);
                    std::iter::once(&m.oid).chain(factors)
                });
                let columns: Vec<Oid> = needed.filter(|oid| fresh(oid)).cloned().collect();
                if !columns.is_empty() {
                    plan.tables.push((table.name.clone(), columns));
                }
                let lookups: Vec<Oid> = table
                    .lookups
                    .iter()
                    .map(|l| l.oid.clone())
                    .filter(|oid| seen_lookups.insert(oid.clone()))
                    .collect();
                if !lookups.is_empty() {
                    plan.lookups.push((table.name.clone(), lookups));
                }
            }
        }
        plan
    }
}

/// A value that could not become a sample; the device task adds the device id.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectError {
    /// Profile name.
    pub profile: String,
    /// Table name, for table columns.
    pub table: Option<String>,
    /// Metric name.
    pub metric: String,
    /// The varbind's OID.
    pub oid: Oid,
    /// What went wrong.
    pub problem: CollectProblem,
}

/// Kinds of [`CollectError`].
#[derive(Debug, Clone, PartialEq)]
pub enum CollectProblem {
    /// The value did not decode.
    Decode(DecodeError),
    /// The index after the column OID does not fit the table's index parts.
    BadIndex,
    /// A scalar was not in the response at all.
    NotReturned,
    /// The row's `scale_by` columns could not scale the value (missing, not a number, out of
    /// range); the sample is skipped rather than sent unscaled.
    RowScale(RowScaleError),
}

impl fmt::Display for CollectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "profile {}", self.profile)?;
        if let Some(table) = &self.table {
            write!(f, " table {table}")?;
        }
        write!(f, " metric {} OID {}: ", self.metric, self.oid)?;
        match &self.problem {
            CollectProblem::Decode(e) => write!(f, "{e}"),
            CollectProblem::BadIndex => f.write_str("index does not match the table's index parts"),
            CollectProblem::NotReturned => f.write_str("not in the device's response"),
            CollectProblem::RowScale(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CollectError {}

/// Who and when: fixed for one poll.
#[derive(Debug, Clone, Copy)]
pub struct PollStamp<'a> {
    /// Target id of the device.
    pub target: &'a str,
    /// Timestamp of every sample of the poll, ms since the epoch.
    pub ts_ms: i64,
}

/// Turns one profile's varbinds into samples. `data` holds this poll's scalars and table
/// columns, `lookups` the cached label columns. Counters go through `counters`.
pub fn build_samples(
    profile: &Profile,
    data: &VarbindMap,
    lookups: &VarbindMap,
    stamp: PollStamp<'_>,
    counters: &mut CounterTracker,
    out: &mut Vec<Sample>,
    errors: &mut Vec<CollectError>,
) {
    let no_labels = RowLabels::new(BTreeMap::new());
    for metric in &profile.scalars {
        let error = |problem| CollectError {
            profile: profile.name.clone(),
            table: None,
            metric: metric.metric.clone(),
            oid: metric.oid.clone(),
            problem,
        };
        match data.get(&metric.oid) {
            None => errors.push(error(CollectProblem::NotReturned)),
            Some(value) => match decode_metric(metric, value) {
                Ok(decoded) => out.push(sample(metric, decoded, &no_labels, stamp, counters)),
                Err(e) => errors.push(error(CollectProblem::Decode(e))),
            },
        }
    }
    for table in &profile.tables {
        table_samples(profile, table, data, lookups, stamp, counters, out, errors);
    }
}

/// The labels of one table row (index parts and lookups), worked out once and shared by all
/// of the row's columns, with their hash for the counters' series keys.
struct RowLabels {
    labels: BTreeMap<String, String>,
    hash: u64,
}

impl RowLabels {
    fn new(labels: BTreeMap<String, String>) -> Self {
        let hash = label_hash(&labels);
        Self { labels, hash }
    }
}

#[allow(clippy::too_many_arguments)]
fn table_samples<'a>(
    profile: &Profile,
    table: &'a Table,
    data: &'a VarbindMap,
    lookups: &VarbindMap,
    stamp: PollStamp<'_>,
    counters: &mut CounterTracker,
    out: &mut Vec<Sample>,
    errors: &mut Vec<CollectError>,
) {
    let column = |metric: &'a Metric| {
        data.range(&metric.oid..)
            .take_while(|(o, _)| o.starts_with(&metric.oid))
    };
    // Room for every column's samples, sized by the first column's rows.
    if let Some(first) = table.columns.first() {
        out.reserve(table.columns.len() * column(first).count());
    }
    let mut rows: BTreeMap<&[u32], Option<RowLabels>> = BTreeMap::new();
    for metric in &table.columns {
        for (oid, value) in column(metric) {
            let error = |problem| CollectError {
                profile: profile.name.clone(),
                table: Some(table.name.clone()),
                metric: metric.metric.clone(),
                oid: oid.clone(),
                problem,
            };
            let index = oid.suffix_after(&metric.oid).unwrap_or_default();
            let row = rows
                .entry(index)
                .or_insert_with(|| row_labels(table, index, lookups).map(RowLabels::new));
            let Some(row) = row else {
                errors.push(error(CollectProblem::BadIndex));
                continue;
            };
            match cell_value(metric, value, data, index) {
                Ok(decoded) => out.push(sample(metric, decoded, row, stamp, counters)),
                Err(problem) => errors.push(error(problem)),
            }
        }
    }
}

/// The labels of one table row: its index parts and its lookups; `None` for a bad index.
fn row_labels(
    table: &Table,
    index: &[u32],
    lookups: &VarbindMap,
) -> Option<BTreeMap<String, String>> {
    let mut labels = index_labels(&table.index, index)?;
    for lookup in &table.lookups {
        let text = lookups.get(&lookup.oid.child(index)).and_then(|v| match v {
            SnmpValue::Integer(n) => Some(
                lookup
                    .states
                    .iter()
                    .find(|(_, s)| *s == n)
                    .map_or_else(|| n.to_string(), |(name, _)| name.clone()),
            ),
            other => other.label_text(),
        });
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            let text = lookup.names.get(&text).cloned().unwrap_or(text);
            labels.insert(lookup.label.clone(), text);
        }
    }
    Some(labels)
}

/// `value` decoded as `metric` declares, a state remapped onto the profile's numbering.
fn decode_metric(metric: &Metric, value: &SnmpValue) -> Result<Decoded, DecodeError> {
    match decode(value, metric.kind, metric.scale, &metric.states)? {
        Decoded::Value(v) => metric.remap.apply(v).map(Decoded::Value),
        counter => Ok(counter),
    }
}

/// A table cell decoded as `metric` declares, then scaled by the row's `scale_by` columns.
fn cell_value(
    metric: &Metric,
    value: &SnmpValue,
    data: &VarbindMap,
    index: &[u32],
) -> Result<Decoded, CollectProblem> {
    let decoded = decode_metric(metric, value).map_err(CollectProblem::Decode)?;
    match decoded {
        // The profile check allows `scale_by` on gauges only: counters stay raw.
        Decoded::Value(v) if !metric.scale_by.is_empty() => {
            scale_by_row(v, &metric.scale_by, data, index)
                .map(Decoded::Value)
                .map_err(CollectProblem::RowScale)
        }
        other => Ok(other),
    }
}

/// One sample of `metric` in the row `row`, from its decoded value; labels are cloned only
/// here, for a value that decoded.
fn sample(
    metric: &Metric,
    decoded: Decoded,
    row: &RowLabels,
    stamp: PollStamp<'_>,
    counters: &mut CounterTracker,
) -> Sample {
    let mut labels = row.labels.clone();
    let label_hash = if metric.labels.is_empty() {
        row.hash
    } else {
        labels.extend(metric.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        label_hash(&labels)
    };
    let value = match decoded {
        Decoded::Value(v) => v,
        Decoded::Counter { raw, bits } => {
            counters.adjust(series_key(&metric.metric, label_hash), raw, bits)
        }
    };
    Sample {
        metric: metric.metric.clone(),
        target: stamp.target.to_string(),
        labels,
        value,
        ts_ms: stamp.ts_ms,
        kind: metric.kind.sample_kind(),
    }
}

/// Splits a row index into labels; `None` when the arcs do not fit the parts exactly.
pub fn index_labels(parts: &[IndexPart], mut arcs: &[u32]) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for part in parts {
        let (text, rest) = match part.kind {
            IndexKind::Integer => {
                let (first, rest) = arcs.split_first()?;
                (first.to_string(), rest)
            }
            IndexKind::Ipv4 => {
                if arcs.len() < 4 || arcs[..4].iter().any(|&a| a > 255) {
                    return None;
                }
                let (ip, rest) = arcs.split_at(4);
                (format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]), rest)
            }
            IndexKind::String => {
                let (len, rest) = arcs.split_first()?;
                let len = usize::try_from(*len).ok()?;
                if rest.len() < len {
                    return None;
                }
                let (bytes, rest) = rest.split_at(len);
                let bytes = bytes
                    .iter()
                    .map(|&a| u8::try_from(a).ok())
                    .collect::<Option<Vec<u8>>>()?;
                (SnmpValue::OctetString(bytes).label_text()?, rest)
            }
            IndexKind::Rest => {
                let text = arcs
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(".");
                (text, &[][..])
            }
        };
        labels.insert(part.label.clone(), text);
        arcs = rest;
    }
    arcs.is_empty().then_some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ProfileCatalog;
    use faultline_wire::{Limits, SampleKind};

    fn oid(s: &str) -> Oid {
        s.parse().unwrap()
    }

    fn part(label: &str, kind: IndexKind) -> IndexPart {
        IndexPart {
            label: label.into(),
            kind,
        }
    }

    #[test]
    fn index_table() {
        type Case = (
            Vec<IndexPart>,
            Vec<u32>,
            Option<Vec<(&'static str, &'static str)>>,
        );
        let cases: Vec<Case> = vec![
            (
                vec![part("i", IndexKind::Integer)],
                vec![7],
                Some(vec![("i", "7")]),
            ),
            (vec![part("i", IndexKind::Integer)], vec![7, 8], None),
            (vec![part("i", IndexKind::Integer)], vec![], None),
            (
                vec![part("ip", IndexKind::Ipv4), part("p", IndexKind::Integer)],
                vec![10, 0, 0, 1, 161],
                Some(vec![("ip", "10.0.0.1"), ("p", "161")]),
            ),
            (vec![part("ip", IndexKind::Ipv4)], vec![10, 0, 256, 1], None),
            (
                vec![part("s", IndexKind::String)],
                vec![3, 97, 98, 99],
                Some(vec![("s", "abc")]),
            ),
            (vec![part("s", IndexKind::String)], vec![4, 97], None),
            (
                vec![part("a", IndexKind::Integer), part("r", IndexKind::Rest)],
                vec![1, 2, 3],
                Some(vec![("a", "1"), ("r", "2.3")]),
            ),
        ];
        for (parts, arcs, want) in cases {
            let want = want.map(|v| {
                v.into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            });
            assert_eq!(index_labels(&parts, &arcs), want, "{arcs:?}");
        }
    }

    fn if_mib() -> Arc<Profile> {
        ProfileCatalog::builtin()
            .unwrap()
            .get("if-mib")
            .unwrap()
            .clone()
    }

    #[test]
    fn table_with_lookups_counters_and_exceptions() {
        let profile = if_mib();
        let mut data = VarbindMap::new();
        data.insert(oid("1.3.6.1.2.1.2.2.1.8.1"), SnmpValue::Integer(1));
        data.insert(oid("1.3.6.1.2.1.2.2.1.8.2"), SnmpValue::Integer(2));
        data.insert(oid("1.3.6.1.2.1.31.1.1.1.6.1"), SnmpValue::Counter64(1000));
        // A device answering noSuchInstance in the middle of a column: one error, others fine.
        data.insert(oid("1.3.6.1.2.1.31.1.1.1.6.2"), SnmpValue::NoSuchInstance);
        data.insert(oid("1.3.6.1.2.1.31.1.1.1.15.1"), SnmpValue::Gauge32(1000));
        let mut lookups = VarbindMap::new();
        lookups.insert(
            oid("1.3.6.1.2.1.31.1.1.1.1.1"),
            SnmpValue::OctetString(b"eth0".to_vec()),
        );
        lookups.insert(
            oid("1.3.6.1.2.1.31.1.1.1.18.1"),
            SnmpValue::OctetString(b"".to_vec()),
        );
        let (mut out, mut errors, mut counters) =
            (Vec::new(), Vec::new(), CounterTracker::default());
        let stamp = PollStamp {
            target: "sw1",
            ts_ms: 42,
        };
        build_samples(
            &profile,
            &data,
            &lookups,
            stamp,
            &mut counters,
            &mut out,
            &mut errors,
        );
        assert_eq!(out.len(), 4, "{out:#?}");
        let oper1 = out
            .iter()
            .find(|s| s.metric == "faultline_snmp_if_oper_status" && s.labels["ifindex"] == "1")
            .unwrap();
        assert_eq!(
            (oper1.value, oper1.kind, oper1.labels["ifname"].as_str()),
            (1.0, SampleKind::State, "eth0")
        );
        assert!(
            !oper1.labels.contains_key("ifalias"),
            "empty lookups are left out"
        );
        let oper2 = out
            .iter()
            .find(|s| s.metric == "faultline_snmp_if_oper_status" && s.labels["ifindex"] == "2")
            .unwrap();
        assert!(
            !oper2.labels.contains_key("ifname"),
            "no lookup value for row 2"
        );
        let speed = out
            .iter()
            .find(|s| s.metric == "faultline_snmp_if_speed_bytes_per_second")
            .unwrap();
        assert_eq!(speed.value, 1e9 / 8.0, "1000 Mbit/s in bytes/s");
        let octets = out
            .iter()
            .find(|s| s.metric == "faultline_snmp_if_received_bytes")
            .unwrap();
        assert_eq!(
            (
                octets.kind,
                octets.value,
                octets.ts_ms,
                octets.target.as_str()
            ),
            (SampleKind::Counter, 1000.0, 42, "sw1")
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "profile if-mib table ifTable metric faultline_snmp_if_received_bytes OID 1.3.6.1.2.1.31.1.1.1.6.2: not present on the device (noSuchInstance)"
        );
        for s in &out {
            Limits::default().check_sample(s).unwrap();
        }
    }

    #[test]
    fn scalars_states_and_missing() {
        let catalog = ProfileCatalog::builtin().unwrap();
        let ups = catalog.get("ups-mib").unwrap();
        let mut data = VarbindMap::new();
        data.insert(oid("1.3.6.1.2.1.33.1.2.5.0"), SnmpValue::Integer(410));
        data.insert(oid("1.3.6.1.2.1.33.1.4.1.0"), SnmpValue::Integer(5));
        data.insert(oid("1.3.6.1.2.1.33.1.2.1.0"), SnmpValue::NoSuchObject);
        let (mut out, mut errors, mut counters) =
            (Vec::new(), Vec::new(), CounterTracker::default());
        build_samples(
            ups,
            &data,
            &VarbindMap::new(),
            PollStamp {
                target: "ups1",
                ts_ms: 1,
            },
            &mut counters,
            &mut out,
            &mut errors,
        );
        let volts = out
            .iter()
            .find(|s| s.metric == "faultline_snmp_ups_battery_voltage_volts")
            .unwrap();
        assert!((volts.value - 41.0).abs() < 1e-9);
        let source = out
            .iter()
            .find(|s| s.metric == "faultline_snmp_ups_output_source")
            .unwrap();
        assert_eq!((source.value, source.kind), (5.0, SampleKind::State));
        assert_eq!(out.len(), 2);
        assert_eq!(errors.len(), ups.scalars.len() - 2);
        assert!(
            errors
                .iter()
                .any(|e| matches!(e.problem, CollectProblem::Decode(DecodeError::Missing(_))))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.problem == CollectProblem::NotReturned)
        );
    }

    #[test]
    fn lookup_state_names_and_plan() {
        let catalog = ProfileCatalog::builtin().unwrap();
        let sensors = catalog.get("entity-sensor").unwrap();
        let mut data = VarbindMap::new();
        data.insert(oid("1.3.6.1.2.1.99.1.1.1.4.12"), SnmpValue::Integer(235));
        data.insert(oid("1.3.6.1.2.1.99.1.1.1.2.12"), SnmpValue::Integer(9));
        data.insert(oid("1.3.6.1.2.1.99.1.1.1.3.12"), SnmpValue::Integer(1));
        let mut lookups = VarbindMap::new();
        lookups.insert(oid("1.3.6.1.2.1.99.1.1.1.1.12"), SnmpValue::Integer(8));
        lookups.insert(
            oid("1.3.6.1.2.1.47.1.1.1.1.7.12"),
            SnmpValue::OctetString(b"Temperature @ 10G Phys".to_vec()),
        );
        let (mut out, mut errors, mut counters) =
            (Vec::new(), Vec::new(), CounterTracker::default());
        build_samples(
            sensors,
            &data,
            &lookups,
            PollStamp {
                target: "fw",
                ts_ms: 1,
            },
            &mut counters,
            &mut out,
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(out[0].labels["sensor_type"], "celsius");
        assert_eq!(out[0].labels["sensor"], "Temperature @ 10G Phys");
        assert_eq!(out[0].value, 23.5, "235 at precision 1");

        let plan = FetchPlan::new(&[sensors.clone(), sensors.clone()]);
        assert_eq!(plan.tables.len(), 1, "duplicates fetched once");
        let columns: Vec<String> = plan.tables[0].1.iter().map(Oid::to_string).collect();
        assert_eq!(
            columns,
            [
                "1.3.6.1.2.1.99.1.1.1.4",
                "1.3.6.1.2.1.99.1.1.1.2",
                "1.3.6.1.2.1.99.1.1.1.3",
                "1.3.6.1.2.1.99.1.1.1.5"
            ],
            "scale and precision walked with the values although not metrics"
        );
        assert_eq!(plan.lookups[0].1.len(), 2);
    }

    /// A column one profile uses as a label and another as a factor is walked on both
    /// schedules: the factor must be in every poll's data, the label in the lookups.
    #[test]
    fn factor_column_also_a_lookup_is_walked_for_both() {
        let labels = Profile::parse(&faultline_wire::config_file::ConfigSource::from_text(
            std::path::Path::new("units.toml"),
            r#"
name = "units-as-label"
[[tables]]
name = "hrStorageTable"
index = [{ label = "storage", kind = "integer" }]
lookups = [{ label = "unit", oid = "1.3.6.1.2.1.25.2.3.1.4" }]
[[tables.columns]]
metric = "faultline_snmp_t_storage_used_units"
oid = "1.3.6.1.2.1.25.2.3.1.6"
kind = "gauge"
"#
            .to_string(),
        ))
        .unwrap();
        let catalog = ProfileCatalog::builtin().unwrap();
        let host = catalog.get("host-resources").unwrap().clone();
        let units = oid("1.3.6.1.2.1.25.2.3.1.4");
        let plan = FetchPlan::new(&[Arc::new(labels), host]);
        assert!(plan.lookups.iter().any(|(_, c)| c.contains(&units)));
        assert!(plan.tables.iter().any(|(_, c)| c.contains(&units)));
    }

    /// hrStorageTable in bytes; a row without its allocation units is skipped with an error
    /// naming the table and both OIDs, the other rows are unaffected.
    #[test]
    fn storage_bytes_and_missing_scale_column() {
        let catalog = ProfileCatalog::builtin().unwrap();
        let host = catalog.get("host-resources").unwrap();
        let mut data = VarbindMap::new();
        for (column, row, value) in [(4, 1, 1024), (5, 1, 3_956_120), (6, 1, 3_132_868)] {
            data.insert(
                oid(&format!("1.3.6.1.2.1.25.2.3.1.{column}.{row}")),
                SnmpValue::Integer(value),
            );
        }
        // Row 2: units missing; row 3: units not a number.
        data.insert(oid("1.3.6.1.2.1.25.2.3.1.5.2"), SnmpValue::Integer(10));
        data.insert(oid("1.3.6.1.2.1.25.2.3.1.4.3"), SnmpValue::Null);
        data.insert(oid("1.3.6.1.2.1.25.2.3.1.6.3"), SnmpValue::Integer(10));
        let plan = FetchPlan::new(std::slice::from_ref(host));
        let storage = &plan
            .tables
            .iter()
            .find(|t| t.0 == "hrStorageTable")
            .unwrap()
            .1;
        assert!(
            storage.contains(&oid("1.3.6.1.2.1.25.2.3.1.4")),
            "{storage:?}"
        );
        assert_eq!(storage.len(), 3, "units walked once for both columns");
        let (mut out, mut errors, mut counters) =
            (Vec::new(), Vec::new(), CounterTracker::default());
        build_samples(
            host,
            &data,
            &VarbindMap::new(),
            PollStamp {
                target: "srv",
                ts_ms: 1,
            },
            &mut counters,
            &mut out,
            &mut errors,
        );
        let bytes = |metric: &str| {
            out.iter()
                .filter(|s| s.metric == metric)
                .map(|s| (s.labels["storage"].as_str(), s.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            bytes("faultline_snmp_host_storage_size_bytes"),
            [("1", 3_956_120.0 * 1024.0)]
        );
        assert_eq!(
            bytes("faultline_snmp_host_storage_used_bytes"),
            [("1", 3_132_868.0 * 1024.0)]
        );
        let errors: Vec<String> = errors
            .iter()
            .filter(|e| e.table.is_some())
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "profile host-resources table hrStorageTable metric faultline_snmp_host_storage_size_bytes OID 1.3.6.1.2.1.25.2.3.1.5.2: scale column 1.3.6.1.2.1.25.2.3.1.4.2 was not returned for this row",
                "profile host-resources table hrStorageTable metric faultline_snmp_host_storage_used_bytes OID 1.3.6.1.2.1.25.2.3.1.6.3: scale column 1.3.6.1.2.1.25.2.3.1.4.3 is not a number: NULL",
            ]
        );
    }
}
