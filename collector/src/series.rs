//! The series store: the latest value of every ingested series, read by the Prometheus export.
//!
//! Flow: `ingest → series store → /metrics`. Ingest applies each accepted batch here; a scrape
//! encodes the store through [`SeriesCollector`] at scrape time (prometheus-client's `Collector`),
//! so there is no copy of the data in a registry. Series whose newest sample is older than
//! `stale_after` are skipped at scrape time and swept from memory. The number of series is
//! bounded in total and per agent ([`SeriesLimits`]): a sample that would start a series past a
//! limit is refused, and existing series keep updating. Each family keeps the help line its
//! source sent with the batches ([`SeriesStore::describe`]); a family never described gets
//! [`DEFAULT_HELP`].

use faultline_wire::{RejectReason, RejectedSample, Sample, SampleKind};
use hashbrown::HashTable;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, LabelSetEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, RwLock};

/// Identity of one series within a metric family.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SeriesKey {
    agent: Arc<str>,
    target: String,
    labels: BTreeMap<String, String>,
}

impl SeriesKey {
    fn matches(&self, agent: &str, target: &str, labels: &BTreeMap<String, String>) -> bool {
        *self.agent == *agent && self.target == target && self.labels == *labels
    }
}

#[derive(Debug, Clone, Copy)]
struct Point {
    value: f64,
    ts_ms: i64,
}

#[derive(Debug)]
struct Series {
    hash: u64,
    key: SeriesKey,
    point: Point,
}

/// Help of a family whose source sent none (an agent older than help on the wire, a source
/// without descriptions).
pub const DEFAULT_HELP: &str = "Ingested from Faultline agents (its source gave no help text)";

/// One metric's series, found by a hash of their identity so that a known series is updated
/// from a borrowed sample without allocating.
#[derive(Debug)]
struct Family {
    kind: SampleKind,
    help: Option<String>,
    series: HashTable<Series>,
}

/// Fixed-key hasher for series identities (process-local, never persisted).
type IdentityHasher = std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

fn identity_hash(agent: &str, target: &str, labels: &BTreeMap<String, String>) -> u64 {
    let mut h = IdentityHasher::default().build_hasher();
    h.write(agent.as_bytes());
    h.write_u8(0xff);
    h.write(target.as_bytes());
    for (k, v) in labels {
        h.write_u8(0xff);
        h.write(k.as_bytes());
        h.write_u8(0xfe);
        h.write(v.as_bytes());
    }
    h.finish()
}

/// Bounds on the number of series held (`ingest.max_series`, `ingest.max_series_per_agent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesLimits {
    /// Most series in total.
    pub total: usize,
    /// Most series of one agent.
    pub per_agent: usize,
}

impl SeriesLimits {
    /// No practical bound (tests and benches).
    pub const UNBOUNDED: SeriesLimits = SeriesLimits {
        total: usize::MAX,
        per_agent: usize::MAX,
    };
}

/// What applying one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Samples that became (or confirmed) the latest value of their series.
    pub applied: u64,
    /// Samples older than the value already held (a backlog arriving late); kept out of the latest
    /// value but not an error.
    pub superseded: u64,
    /// Samples whose kind differs from their metric family's (gauge vs counter); dropped.
    pub kind_conflicts: u64,
    /// Samples refused by a series limit (listed with their reason by [`SeriesStore::apply`]).
    pub refused: u64,
}

/// One target's latest values of a metric, summed over its selected series
/// ([`SeriesStore::target_sums`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetSum {
    /// The sum.
    pub value: f64,
    /// The newest sample time among the summed series.
    pub ts_ms: i64,
}

/// Latest value per series.
#[derive(Debug)]
pub struct SeriesStore {
    families: HashMap<String, Family>,
    stale_after_ms: i64,
    limits: SeriesLimits,
    total: usize,
    per_agent: HashMap<Arc<str>, usize>,
}

impl SeriesStore {
    /// An empty store whose series go stale after `stale_after_ms` without a newer sample, holding
    /// at most `limits` series.
    pub fn new(stale_after_ms: i64, limits: SeriesLimits) -> Self {
        Self {
            families: HashMap::new(),
            stale_after_ms,
            limits,
            total: 0,
            per_agent: HashMap::new(),
        }
    }

    /// Applies `samples` pushed by `agent` at collector time `now_ms`. `rejected` holds, in index
    /// order, the samples already refused (skipped here); the samples a series limit refuses are
    /// added to it, and it stays in index order.
    ///
    /// A sample older than the held value does not replace it, unless the held value is dated
    /// after `now_ms`: a sample from the future (within `ingest.max_ahead`) never freezes its
    /// series. Only a series seen for the first time copies its identity.
    pub fn apply(
        &mut self,
        agent: &Arc<str>,
        samples: &[Sample],
        now_ms: i64,
        rejected: &mut Vec<RejectedSample>,
    ) -> ApplyOutcome {
        let mut outcome = ApplyOutcome::default();
        let skipped = rejected.len();
        let mut skip = 0;
        let mut agent_series = self.per_agent.get(agent).copied().unwrap_or(0);
        for (index, sample) in samples.iter().enumerate() {
            if rejected[..skipped]
                .get(skip)
                .is_some_and(|r| r.index as usize == index)
            {
                skip += 1;
                continue;
            }
            let family = match self.families.get_mut(sample.metric.as_str()) {
                Some(family) => family,
                None => self
                    .families
                    .entry(sample.metric.clone())
                    .or_insert_with(|| Family {
                        kind: sample.kind,
                        help: None,
                        series: HashTable::new(),
                    }),
            };
            if family.kind != sample.kind {
                outcome.kind_conflicts += 1;
                continue;
            }
            let point = Point {
                value: sample.value,
                ts_ms: sample.ts_ms,
            };
            let hash = identity_hash(agent, &sample.target, &sample.labels);
            let held = family.series.find_mut(hash, |s| {
                s.hash == hash && s.key.matches(agent, &sample.target, &sample.labels)
            });
            match held {
                Some(held) if held.point.ts_ms <= point.ts_ms || held.point.ts_ms > now_ms => {
                    held.point = point;
                    outcome.applied += 1;
                }
                Some(_) => outcome.superseded += 1,
                None => {
                    let refusal = if agent_series >= self.limits.per_agent {
                        Some(RejectReason::SeriesLimitAgent)
                    } else if self.total >= self.limits.total {
                        Some(RejectReason::SeriesLimitTotal)
                    } else {
                        None
                    };
                    if let Some(reason) = refusal {
                        rejected.push(RejectedSample {
                            index: u32::try_from(index).unwrap_or(u32::MAX),
                            reason,
                        });
                        outcome.refused += 1;
                        continue;
                    }
                    agent_series += 1;
                    self.total += 1;
                    let key = SeriesKey {
                        agent: agent.clone(),
                        target: sample.target.clone(),
                        labels: sample.labels.clone(),
                    };
                    family
                        .series
                        .insert_unique(hash, Series { hash, key, point }, |s| s.hash);
                    outcome.applied += 1;
                }
            }
        }
        if agent_series > 0 {
            match self.per_agent.get_mut(agent) {
                Some(count) => *count = agent_series,
                None => {
                    self.per_agent.insert(agent.clone(), agent_series);
                }
            }
        }
        if skipped > 0 && rejected.len() > skipped {
            rejected.sort_unstable_by_key(|r| r.index);
        }
        outcome
    }

    /// Records the help lines a batch carried for families this store holds (the newest line
    /// wins; families not held are ignored, so help never creates a family).
    pub fn describe(&mut self, help: &BTreeMap<String, String>) {
        for (metric, text) in help {
            if let Some(family) = self.families.get_mut(metric.as_str())
                && family.help.as_deref() != Some(text.as_str())
            {
                family.help = Some(text.clone());
            }
        }
    }

    /// Removes series that went stale by `now_ms` and families left empty; returns how many series.
    pub fn sweep(&mut self, now_ms: i64) -> usize {
        let horizon = now_ms - self.stale_after_ms;
        let mut removed = 0;
        let per_agent = &mut self.per_agent;
        self.families.retain(|_, family| {
            family.series.retain(|s| {
                let fresh = s.point.ts_ms >= horizon;
                if !fresh {
                    removed += 1;
                    if let Some(count) = per_agent.get_mut(&s.key.agent) {
                        *count = count.saturating_sub(1);
                    }
                }
                fresh
            });
            !family.series.is_empty()
        });
        per_agent.retain(|_, count| *count > 0);
        self.total -= removed;
        removed
    }

    /// Number of series held (including stale ones not yet swept).
    pub fn len(&self) -> usize {
        self.total
    }

    /// Number of series held for `agent`.
    pub fn agent_len(&self, agent: &str) -> usize {
        self.per_agent.get(agent).copied().unwrap_or(0)
    }

    /// True when no series is held.
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// The latest value of one series, if held (for tests and diagnostics).
    pub fn latest(
        &self,
        metric: &str,
        agent: &str,
        target: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<f64> {
        let hash = identity_hash(agent, target, labels);
        self.families
            .get(metric)?
            .series
            .find(hash, |s| s.key.matches(agent, target, labels))
            .map(|s| s.point.value)
    }

    /// The kind of `metric` and its latest values summed per target over its series fresh at
    /// `now_ms` that carry `labels` (every agent): what each target uses of a resource pool
    /// (capacity watch; a counter's sum is turned into a rate there). `None` when the metric is
    /// not held.
    pub fn target_sums(
        &self,
        metric: &str,
        labels: &BTreeMap<String, String>,
        now_ms: i64,
    ) -> Option<(SampleKind, HashMap<&str, TargetSum>)> {
        let horizon = now_ms - self.stale_after_ms;
        let family = self.families.get(metric)?;
        let mut out: HashMap<&str, TargetSum> = HashMap::new();
        let selected = |key: &SeriesKey| labels.iter().all(|(k, v)| key.labels.get(k) == Some(v));
        for s in family
            .series
            .iter()
            .filter(|s| s.point.ts_ms >= horizon && selected(&s.key))
        {
            let sum = out.entry(s.key.target.as_str()).or_insert(TargetSum {
                value: 0.0,
                ts_ms: s.point.ts_ms,
            });
            sum.value += s.point.value;
            sum.ts_ms = sum.ts_ms.max(s.point.ts_ms);
        }
        Some((family.kind, out))
    }

    fn encode(&self, mut encoder: DescriptorEncoder, now_ms: i64) -> Result<(), std::fmt::Error> {
        let horizon = now_ms - self.stale_after_ms;
        let mut names: Vec<&String> = self.families.keys().collect();
        names.sort_unstable();
        for name in names {
            let Some(family) = self.families.get(name) else {
                continue;
            };
            if !family.series.iter().any(|s| s.point.ts_ms >= horizon) {
                continue;
            }
            let metric_type = match family.kind {
                SampleKind::Counter => MetricType::Counter,
                SampleKind::Gauge | SampleKind::State => MetricType::Gauge,
            };
            let help = family.help.as_deref().unwrap_or(DEFAULT_HELP);
            let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
            for Series { key, point, .. } in &family.series {
                if point.ts_ms < horizon {
                    continue;
                }
                let labels = ExportLabels(key);
                let mut series = metric.encode_family(&labels)?;
                match family.kind {
                    SampleKind::Counter => {
                        series.encode_counter::<NoLabelSet, f64, f64>(&point.value, None)?
                    }
                    SampleKind::Gauge | SampleKind::State => series.encode_gauge(&point.value)?,
                }
            }
        }
        Ok(())
    }
}

/// `agent`, `target`, then the sample's own labels.
struct ExportLabels<'a>(&'a SeriesKey);

impl EncodeLabelSet for ExportLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("agent", &*self.0.agent).encode(encoder.encode_label())?;
        ("target", self.0.target.as_str()).encode(encoder.encode_label())?;
        for (name, value) in &self.0.labels {
            (name.as_str(), value.as_str()).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// The store as shared between ingest (writer) and scrapes (readers).
pub type SharedSeries = Arc<RwLock<SeriesStore>>;

/// Encodes the series store at scrape time.
#[derive(Debug)]
pub struct SeriesCollector(pub SharedSeries);

impl Collector for SeriesCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let store = self
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        store.encode(encoder, faultline_wire::now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    fn sample(metric: &str, target: &str, value: f64, ts_ms: i64, kind: SampleKind) -> Sample {
        Sample {
            metric: metric.into(),
            target: target.into(),
            labels: [("site".to_string(), "bj1".to_string())].into(),
            value,
            ts_ms,
            kind,
        }
    }

    /// Applies with the clock far ahead of every sample and nothing refused beforehand.
    fn put(store: &mut SeriesStore, agent: &Arc<str>, samples: &[Sample]) -> ApplyOutcome {
        let mut rejected = Vec::new();
        let outcome = store.apply(agent, samples, i64::MAX, &mut rejected);
        assert_eq!(rejected.len() as u64, outcome.refused);
        outcome
    }

    fn labels() -> BTreeMap<String, String> {
        [("site".to_string(), "bj1".to_string())].into()
    }

    #[test]
    fn latest_wins_and_late_samples_do_not_regress() {
        let mut store = SeriesStore::new(60_000, SeriesLimits::UNBOUNDED);
        let a: Arc<str> = Arc::from("a1");
        let out = put(
            &mut store,
            &a,
            &[sample("m", "h1", 1.0, 1000, SampleKind::Gauge)],
        );
        assert_eq!(out.applied, 1);
        put(
            &mut store,
            &a,
            &[sample("m", "h1", 2.0, 3000, SampleKind::Gauge)],
        );
        let out = put(
            &mut store,
            &a,
            &[sample("m", "h1", 9.0, 2000, SampleKind::Gauge)],
        );
        assert_eq!(out.superseded, 1);
        assert_eq!(store.latest("m", "a1", "h1", &labels()), Some(2.0));
        let out = put(
            &mut store,
            &a,
            &[sample("m", "h1", 1.0, 4000, SampleKind::Counter)],
        );
        assert_eq!(out.kind_conflicts, 1);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn target_sums_add_a_targets_fresh_series_of_one_metric() {
        let mut store = SeriesStore::new(60_000, SeriesLimits::UNBOUNDED);
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a1"), Arc::from("a2"));
        let mount = |m: &str| {
            let mut s = sample("used", "vm-1", 10.0, 100_000, SampleKind::Gauge);
            s.labels.insert("mount".into(), m.into());
            s
        };
        put(&mut store, &a, &[mount("/"), mount("/data")]);
        put(
            &mut store,
            &b,
            &[
                sample("used", "vm-1", 5.0, 100_000, SampleKind::Gauge),
                sample("used", "vm-2", 7.0, 100_000, SampleKind::Gauge),
                sample("used", "vm-3", 9.0, 10_000, SampleKind::Gauge),
                sample("other", "vm-2", 1.0, 100_000, SampleKind::Gauge),
            ],
        );
        let sums = |labels: &[(&str, &str)]| {
            let labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let (kind, sums) = store.target_sums("used", &labels, 100_000).unwrap();
            assert_eq!(kind, SampleKind::Gauge);
            let mut got: Vec<(String, f64)> = sums
                .into_iter()
                .map(|(t, sum)| (t.to_string(), sum.value))
                .collect();
            got.sort_by(|x, y| x.0.cmp(&y.0));
            got
        };
        let want = |pairs: &[(&str, f64)]| -> Vec<(String, f64)> {
            pairs.iter().map(|(t, v)| (t.to_string(), *v)).collect()
        };
        assert_eq!(
            sums(&[]),
            want(&[("vm-1", 25.0), ("vm-2", 7.0)]),
            "vm-3 is stale"
        );
        assert_eq!(sums(&[("mount", "/data")]), want(&[("vm-1", 10.0)]));
        assert_eq!(sums(&[("site", "bj1"), ("mount", "/x")]), want(&[]));
        assert!(
            store
                .target_sums("missing", &BTreeMap::new(), 100_000)
                .is_none()
        );
    }

    #[test]
    fn a_future_sample_does_not_freeze_its_series() {
        let mut store = SeriesStore::new(60_000, SeriesLimits::UNBOUNDED);
        let a: Arc<str> = Arc::from("a1");
        let now = 1_000_000;
        let mut rejected = Vec::new();
        let at = |value, ts| [sample("m", "h1", value, ts, SampleKind::Gauge)];
        store.apply(&a, &at(1.0, now - 10), now, &mut rejected);
        // 4 minutes ahead: inside the window, becomes the latest value...
        store.apply(&a, &at(2.0, now + 240_000), now, &mut rejected);
        assert_eq!(store.latest("m", "a1", "h1", &labels()), Some(2.0));
        // ...but the next sample with a sane date replaces it, and later ones keep coming in.
        let out = store.apply(&a, &at(3.0, now + 1_000), now + 1_000, &mut rejected);
        assert_eq!(out.applied, 1);
        store.apply(&a, &at(4.0, now + 2_000), now + 2_000, &mut rejected);
        assert_eq!(store.latest("m", "a1", "h1", &labels()), Some(4.0));
        // A late sample (behind the held one, which is not in the future) still does not regress.
        let out = store.apply(&a, &at(9.0, now + 1_500), now + 3_000, &mut rejected);
        assert_eq!(out.superseded, 1);
        assert_eq!(store.latest("m", "a1", "h1", &labels()), Some(4.0));
        assert!(rejected.is_empty());
    }

    #[test]
    fn series_limits_refuse_new_series_only() {
        // (name, limits, pushes as (agent, targets), expected refusals per push)
        let one = |t: &str| sample("m", t, 1.0, 1000, SampleKind::Gauge);
        type Push = (&'static str, &'static [&'static str]);
        type Refusals = &'static [(u32, RejectReason)];
        let cases: [(&str, SeriesLimits, &[Push], &[Refusals]); 4] = [
            (
                "under the limits",
                SeriesLimits {
                    total: 4,
                    per_agent: 2,
                },
                &[("a", &["t1", "t2"]), ("b", &["t1"])],
                &[&[], &[]],
            ),
            (
                "per agent",
                SeriesLimits {
                    total: 10,
                    per_agent: 2,
                },
                &[
                    ("a", &["t1", "t2", "t3"]),
                    ("a", &["t1", "t4", "t2"]),
                    ("b", &["t1", "t2"]),
                ],
                &[
                    &[(2, RejectReason::SeriesLimitAgent)],
                    &[(1, RejectReason::SeriesLimitAgent)],
                    &[],
                ],
            ),
            (
                "total",
                SeriesLimits {
                    total: 3,
                    per_agent: 2,
                },
                &[("a", &["t1", "t2"]), ("b", &["t1", "t2"]), ("b", &["t1"])],
                &[&[], &[(1, RejectReason::SeriesLimitTotal)], &[]],
            ),
            (
                "per agent checked first",
                SeriesLimits {
                    total: 2,
                    per_agent: 2,
                },
                &[("a", &["t1", "t2", "t3"])],
                &[&[(2, RejectReason::SeriesLimitAgent)]],
            ),
        ];
        for (name, limits, pushes, want) in cases {
            let mut store = SeriesStore::new(60_000, limits);
            for ((agent, targets), want) in pushes.iter().zip(want) {
                let agent: Arc<str> = Arc::from(*agent);
                let samples: Vec<Sample> = targets.iter().map(|t| one(t)).collect();
                let mut rejected = Vec::new();
                let out = store.apply(&agent, &samples, 2000, &mut rejected);
                let got: Vec<(u32, RejectReason)> =
                    rejected.iter().map(|r| (r.index, r.reason)).collect();
                assert_eq!(got, *want, "case {name}, push {agent} {targets:?}");
                assert_eq!(out.refused as usize, want.len(), "case {name}");
                assert_eq!(
                    out.applied as usize,
                    targets.len() - want.len(),
                    "case {name}"
                );
                assert!(store.len() <= limits.total, "case {name}");
                assert!(store.agent_len(&agent) <= limits.per_agent, "case {name}");
            }
        }
    }

    #[test]
    fn samples_refused_before_are_skipped_and_the_order_kept() {
        let mut store = SeriesStore::new(
            60_000,
            SeriesLimits {
                total: 2,
                per_agent: 2,
            },
        );
        let a: Arc<str> = Arc::from("a1");
        let samples: Vec<Sample> = ["t0", "t1", "t2", "t3"]
            .iter()
            .map(|t| sample("m", t, 1.0, 1000, SampleKind::Gauge))
            .collect();
        let mut rejected = vec![RejectedSample {
            index: 1,
            reason: RejectReason::TooOld,
        }];
        let out = store.apply(&a, &samples, 2000, &mut rejected);
        let got: Vec<(u32, RejectReason)> = rejected.iter().map(|r| (r.index, r.reason)).collect();
        assert_eq!(
            got,
            [
                (1, RejectReason::TooOld),
                (3, RejectReason::SeriesLimitAgent)
            ]
        );
        assert_eq!((out.applied, out.refused), (2, 1));
        assert_eq!(store.latest("m", "a1", "t1", &labels()), None);
    }

    #[test]
    fn sweeping_frees_room_under_the_limits() {
        let limits = SeriesLimits {
            total: 2,
            per_agent: 2,
        };
        let mut store = SeriesStore::new(1000, limits);
        let a: Arc<str> = Arc::from("a1");
        let at = |t: &str, ts| sample("m", t, 1.0, ts, SampleKind::Gauge);
        put(&mut store, &a, &[at("old", 1000), at("new", 5000)]);
        assert_eq!(put(&mut store, &a, &[at("third", 5000)]).refused, 1);
        assert_eq!(store.sweep(5500), 1);
        assert_eq!((store.len(), store.agent_len("a1")), (1, 1));
        assert_eq!(put(&mut store, &a, &[at("third", 5000)]).refused, 0);
        assert_eq!(store.sweep(100_000), 2);
        assert_eq!((store.len(), store.agent_len("a1")), (0, 0));
    }

    #[test]
    fn stale_series_are_swept() {
        let mut store = SeriesStore::new(1000, SeriesLimits::UNBOUNDED);
        let a: Arc<str> = Arc::from("a1");
        put(
            &mut store,
            &a,
            &[
                sample("m", "old", 1.0, 1000, SampleKind::Gauge),
                sample("m", "new", 1.0, 5000, SampleKind::Gauge),
            ],
        );
        assert_eq!(store.sweep(5500), 1);
        assert_eq!(store.len(), 1);
        assert_eq!(store.sweep(10_000), 1);
        assert!(store.is_empty());
    }

    #[test]
    fn exports_openmetrics_with_agent_and_target_labels() {
        let now = faultline_wire::now_ms();
        let shared: SharedSeries = Arc::new(RwLock::new(SeriesStore::new(
            60_000,
            SeriesLimits::UNBOUNDED,
        )));
        let a: Arc<str> = Arc::from("a1");
        {
            let mut store = shared.write().unwrap();
            put(
                &mut store,
                &a,
                &[
                    sample("faultline_host_load1", "h1", 0.25, now, SampleKind::Gauge),
                    sample(
                        "faultline_host_network_receive_bytes",
                        "h1",
                        42.0,
                        now,
                        SampleKind::Counter,
                    ),
                    sample(
                        "faultline_host_gone",
                        "h1",
                        1.0,
                        now - 120_000,
                        SampleKind::Gauge,
                    ),
                ],
            );
            store.describe(&BTreeMap::from([
                (
                    "faultline_host_load1".to_string(),
                    "Load average over 1 minute.".to_string(),
                ),
                ("faultline_not_held".to_string(), "Never sent.".to_string()),
            ]));
            let mut odd = sample("faultline_odd", "h\"1", 1.0, now, SampleKind::Gauge);
            odd.labels
                .insert("alias".into(), "quote\" back\\slash\nnewline".into());
            put(&mut store, &a, &[odd]);
        }
        let mut registry = Registry::default();
        registry.register_collector(Box::new(SeriesCollector(shared)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"faultline_host_load1{agent="a1",target="h1",site="bj1"} 0.25"#),
            "{text}"
        );
        assert!(
            text.contains("# TYPE faultline_host_network_receive_bytes counter"),
            "{text}"
        );
        assert!(
            text.contains(r#"faultline_host_network_receive_bytes_total{agent="a1",target="h1",site="bj1"} 42.0"#),
            "{text}"
        );
        assert!(
            !text.contains("faultline_host_gone"),
            "stale series exported: {text}"
        );
        assert!(text.contains(r#"target="h\"1""#), "{text}");
        assert!(
            text.contains(r#"alias="quote\" back\\slash\nnewline""#),
            "{text}"
        );
        assert!(
            text.contains("# HELP faultline_host_load1 Load average over 1 minute.\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!("# HELP faultline_odd {DEFAULT_HELP}\n")),
            "{text}"
        );
        assert!(!text.contains("faultline_not_held"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
