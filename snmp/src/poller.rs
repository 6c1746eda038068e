//! The device task: polls one device on its own interval and sends each collection, with the
//! device's health samples, to the agent's batcher as one `Vec<Sample>`.
//!
//! Flow: [`run_device`] (one tokio task per device) → [`DevicePoller::poll`] → the async
//! [`Client`] fetches → the pure core ([`crate::collect`]) builds samples → `mpsc` → batcher.
//! A slow or dead device only delays its own task.

use crate::Oid;
use crate::catalog::ProfileCatalog;
use crate::client::{Client, SnmpError};
use crate::collect::{CollectError, FetchPlan, PollStamp, VarbindMap, build_samples};
use crate::config::DeviceConfig;
use crate::counters::CounterTracker;
use crate::profile::Profile;
use crate::value::SnmpValue;
use faultline_wire::{Sample, SampleKind};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// sysUpTime.0 (SNMPv2-MIB).
const SYS_UPTIME: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 3, 0];
/// sysObjectID.0 (SNMPv2-MIB).
const SYS_OBJECT_ID: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 2, 0];

/// Health metric: 1 when the device answered this poll, 0 when not.
pub const METRIC_UP: &str = "faultline_snmp_up";
/// Health metric: wall time of the poll.
pub const METRIC_POLL_DURATION: &str = "faultline_snmp_poll_duration_seconds";
/// Health metric (counter): requests that timed out (every attempt).
pub const METRIC_TIMEOUTS: &str = "faultline_snmp_timeouts";
/// Health metric (counter): failed requests and values that could not become samples, by
/// `kind` (timeout, network, protocol, error_status, not_increasing, value).
pub const METRIC_ERRORS: &str = "faultline_snmp_errors";
/// Health metric: Unix time of the last poll the device answered.
pub const METRIC_LAST_SUCCESS: &str = "faultline_snmp_last_success_timestamp_seconds";
/// Health metric (counter): device restarts seen (sysUpTime went back).
pub const METRIC_REBOOTS: &str = "faultline_snmp_device_reboots";
/// Device uptime from sysUpTime.
pub const METRIC_UPTIME: &str = "faultline_snmp_device_uptime_seconds";
/// Health metric: GETBULK max-repetitions in use after back-off.
pub const METRIC_MAX_REPETITIONS: &str = "faultline_snmp_max_repetitions";

/// State of one device between polls.
pub struct DevicePoller {
    config: DeviceConfig,
    catalog: Arc<ProfileCatalog>,
    /// `concurrency` clients (never empty); tables are walked in parallel across them.
    clients: Vec<Client>,
    counters: CounterTracker,
    /// Profiles in use and the sysObjectID they were chosen for.
    selected: Option<(Option<Oid>, Vec<Arc<Profile>>, FetchPlan)>,
    lookups: VarbindMap,
    lookups_at: Option<Instant>,
    errors: BTreeMap<&'static str, u64>,
    last_success_ms: Option<i64>,
}

/// What one poll produced.
#[derive(Debug)]
pub struct PollOutcome {
    /// Samples for the batcher, health samples included.
    pub samples: Vec<Sample>,
    /// Requests that failed (each names device and OID/table).
    pub request_errors: Vec<SnmpError>,
    /// Values that could not become samples (profile, table, metric, OID).
    pub value_errors: Vec<CollectError>,
}

impl DevicePoller {
    /// A poller for `config` using profiles from `catalog`.
    pub fn new(config: DeviceConfig, catalog: Arc<ProfileCatalog>) -> Self {
        Self {
            clients: (0..config.concurrency.max(1))
                .map(|_| Client::new(&config))
                .collect(),
            config,
            catalog,
            counters: CounterTracker::default(),
            selected: None,
            lookups: VarbindMap::new(),
            lookups_at: None,
            errors: BTreeMap::new(),
            last_success_ms: None,
        }
    }

    /// Names of the profiles applied in the last poll.
    pub fn profiles(&self) -> Vec<String> {
        self.selected
            .as_ref()
            .map(|(_, p, _)| p.iter().map(|p| p.name.clone()).collect())
            .unwrap_or_default()
    }

    /// Polls the device once.
    pub async fn poll(&mut self) -> PollOutcome {
        let started = Instant::now();
        let ts_ms = now_ms();
        let mut outcome = PollOutcome {
            samples: Vec::new(),
            request_errors: Vec::new(),
            value_errors: Vec::new(),
        };
        let up = match self.poll_inner(ts_ms, &mut outcome).await {
            Ok(()) => true,
            Err(e) => {
                outcome.request_errors.push(e);
                false
            }
        };
        for e in &outcome.request_errors {
            *self.errors.entry(e.kind.label()).or_default() += 1;
        }
        if !outcome.value_errors.is_empty() {
            *self.errors.entry("value").or_default() += outcome.value_errors.len() as u64;
        }
        if up {
            self.last_success_ms = Some(ts_ms);
        }
        self.clients.iter_mut().for_each(Client::release_idle);
        self.report(&outcome);
        let health = self.health(up, started.elapsed(), ts_ms);
        outcome.samples.extend(health);
        for sample in &mut outcome.samples {
            for (name, value) in &self.config.labels {
                if !sample.labels.contains_key(name) {
                    sample.labels.insert(name.clone(), value.clone());
                }
            }
        }
        outcome
    }

    /// Everything after the first answer is best effort: a failing table is an error, not a
    /// dead device. Only the system GET failing makes the device unreachable.
    async fn poll_inner(&mut self, ts_ms: i64, outcome: &mut PollOutcome) -> Result<(), SnmpError> {
        let uptime_oid = Oid::new(SYS_UPTIME.to_vec());
        let object_id_oid = Oid::new(SYS_OBJECT_ID.to_vec());
        let system = self.clients[0]
            .get(&[uptime_oid.clone(), object_id_oid.clone()])
            .await?;
        let stamp = PollStamp {
            target: &self.config.id,
            ts_ms,
        };
        if let Some(SnmpValue::Timeticks(ticks)) = system.get(&uptime_oid) {
            if self.counters.observe_uptime(*ticks) {
                // Interface indexes may be renumbered by a restart: re-read the labels.
                self.lookups_at = None;
            }
            outcome.samples.push(sample(
                stamp,
                METRIC_UPTIME,
                f64::from(*ticks) / 100.0,
                SampleKind::Gauge,
            ));
        }
        let object_id = match system.get(&object_id_oid) {
            Some(SnmpValue::ObjectId(oid)) => Some(oid.clone()),
            _ => None,
        };
        let (profiles, plan) = self.select(object_id);

        let refresh_due = self
            .lookups_at
            .is_none_or(|at| at.elapsed() >= self.config.lookup_refresh);
        if refresh_due && !plan.lookups.is_empty() {
            let failed_before = outcome.request_errors.len();
            let mut fresh = self
                .walk_all(&plan.lookups, &mut outcome.request_errors)
                .await;
            if outcome.request_errors.len() == failed_before {
                self.lookups_at = Some(Instant::now());
            } else {
                // Keep the old labels of tables that failed; try again next poll.
                for (oid, value) in std::mem::take(&mut self.lookups) {
                    fresh.entry(oid).or_insert(value);
                }
            }
            self.lookups = fresh;
        }

        let mut data = VarbindMap::new();
        if !plan.scalars.is_empty() {
            match self.clients[0].get(&plan.scalars).await {
                Ok(found) => data.extend(found),
                Err(e) => outcome.request_errors.push(e),
            }
        }
        data.append(
            &mut self
                .walk_all(&plan.tables, &mut outcome.request_errors)
                .await,
        );
        let stamp = PollStamp {
            target: &self.config.id,
            ts_ms,
        };
        for profile in &profiles {
            // Scalars of a failed GET are simply absent: report the request error only.
            let mut errors = Vec::new();
            build_samples(
                profile,
                &data,
                &self.lookups,
                stamp,
                &mut self.counters,
                &mut outcome.samples,
                &mut errors,
            );
            let get_failed =
                !plan.scalars.is_empty() && !plan.scalars.iter().any(|o| data.contains_key(o));
            outcome.value_errors.extend(
                errors
                    .into_iter()
                    .filter(|e| !(get_failed && e.table.is_none())),
            );
        }
        self.counters.finish_poll();
        Ok(())
    }

    /// Walks `jobs` (table name, columns), spread over the device's clients so that up to
    /// `concurrency` tables are walked at once.
    async fn walk_all(
        &mut self,
        jobs: &[(String, Vec<Oid>)],
        errors: &mut Vec<SnmpError>,
    ) -> VarbindMap {
        let lanes = self.clients.len().min(jobs.len()).max(1);
        let mut groups: Vec<Vec<(String, Vec<Oid>)>> = vec![Vec::new(); lanes];
        for (i, job) in jobs.iter().enumerate() {
            groups[i % lanes].push(job.clone());
        }
        let mut set = tokio::task::JoinSet::new();
        for (group, mut client) in groups
            .into_iter()
            .zip(self.clients.drain(..lanes).collect::<Vec<_>>())
        {
            set.spawn(async move {
                let mut found = VarbindMap::new();
                let mut errors = Vec::new();
                for (table, columns) in &group {
                    match client.walk(table, columns).await {
                        Ok(mut f) => found.append(&mut f),
                        Err(e) => errors.push(e),
                    }
                }
                (client, found, errors)
            });
        }
        let mut data = VarbindMap::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((client, mut found, lane_errors)) => {
                    self.clients.push(client);
                    data.append(&mut found);
                    errors.extend(lane_errors);
                }
                Err(e) => {
                    // A panicked walk: its client is lost; start a fresh one.
                    tracing::error!(device = %self.config.id, error = %e, "table walk task failed");
                    self.clients.push(Client::new(&self.config));
                }
            }
        }
        data
    }

    /// The profiles for this sysObjectID (re-selected when it changes, e.g. a replaced device).
    fn select(&mut self, object_id: Option<Oid>) -> (Vec<Arc<Profile>>, FetchPlan) {
        if let Some((for_id, profiles, plan)) = &self.selected
            && *for_id == object_id
        {
            return (profiles.clone(), plan.clone());
        }
        let profiles = match self.catalog.select(
            &self.config.profiles,
            object_id.as_ref(),
            self.config.detect_profiles,
        ) {
            Ok(p) => p,
            Err(unknown) => {
                tracing::error!(device = %self.config.id, profile = %unknown, "unknown profile in device config; using detected profiles only");
                self.catalog
                    .select(&[], object_id.as_ref(), self.config.detect_profiles)
                    .unwrap_or_default()
            }
        };
        tracing::info!(device = %self.config.id, sys_object_id = ?object_id.as_ref().map(ToString::to_string), profiles = ?profiles.iter().map(|p| &p.name).collect::<Vec<_>>(), "profiles selected");
        let plan = FetchPlan::new(&profiles);
        self.lookups_at = None;
        self.selected = Some((object_id, profiles.clone(), plan.clone()));
        (profiles, plan)
    }

    fn report(&self, outcome: &PollOutcome) {
        for e in &outcome.request_errors {
            tracing::warn!(device = %self.config.id, error = %e, "SNMP request failed");
        }
        for e in &outcome.value_errors {
            tracing::debug!(device = %self.config.id, error = %e, "value skipped");
        }
        if let Some(first) = outcome.value_errors.first() {
            tracing::warn!(device = %self.config.id, count = outcome.value_errors.len(), first = %first, "values skipped in this poll");
        }
    }

    #[allow(clippy::cast_precision_loss)] // counts and milliseconds far below 2^53
    fn health(&self, up: bool, took: Duration, ts_ms: i64) -> Vec<Sample> {
        let stamp = PollStamp {
            target: &self.config.id,
            ts_ms,
        };
        let mut out = vec![
            sample(
                stamp,
                METRIC_UP,
                if up { 1.0 } else { 0.0 },
                SampleKind::Gauge,
            ),
            sample(
                stamp,
                METRIC_POLL_DURATION,
                took.as_secs_f64(),
                SampleKind::Gauge,
            ),
            sample(
                stamp,
                METRIC_TIMEOUTS,
                self.clients.iter().map(Client::timeouts).sum::<u64>() as f64,
                SampleKind::Counter,
            ),
            sample(
                stamp,
                METRIC_REBOOTS,
                self.counters.reboots() as f64,
                SampleKind::Counter,
            ),
            sample(
                stamp,
                METRIC_MAX_REPETITIONS,
                f64::from(
                    self.clients
                        .iter()
                        .map(Client::max_repetitions)
                        .min()
                        .unwrap_or(0),
                ),
                SampleKind::Gauge,
            ),
        ];
        out.extend(self.errors.iter().map(|(kind, count)| Sample {
            labels: BTreeMap::from([("kind".to_string(), (*kind).to_string())]),
            ..sample(stamp, METRIC_ERRORS, *count as f64, SampleKind::Counter)
        }));
        if let Some(ms) = self.last_success_ms {
            out.push(sample(
                stamp,
                METRIC_LAST_SUCCESS,
                ms as f64 / 1000.0,
                SampleKind::Gauge,
            ));
        }
        out
    }
}

fn sample(stamp: PollStamp<'_>, metric: &str, value: f64, kind: SampleKind) -> Sample {
    Sample {
        metric: metric.to_string(),
        target: stamp.target.to_string(),
        labels: BTreeMap::new(),
        value,
        ts_ms: stamp.ts_ms,
        kind,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Bounds how many devices are polled at the same moment, agent-wide. Each poll in flight holds
/// a session (two 64 KiB `snmp2` buffers) and a burst of thousands of requests overflows
/// socket buffers, so the agent shares one limit among all device tasks.
#[derive(Debug, Clone)]
pub struct PollLimit(Arc<tokio::sync::Semaphore>);

impl PollLimit {
    /// At most `polls` devices polled at once (at least 1).
    pub fn new(polls: usize) -> Self {
        Self(Arc::new(tokio::sync::Semaphore::new(polls.max(1))))
    }

    /// Waits for a free slot; the slot is held until the returned guard drops.
    pub async fn acquire(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.0.clone().acquire_owned().await.ok()
    }
}

impl Default for PollLimit {
    /// 64 polls at once.
    fn default() -> Self {
        Self::new(64)
    }
}

/// The device task: polls `config`'s device every `interval` (the first poll at once, within
/// the agent-wide `limit`) and sends each collection to `tx`. Returns when `tx`'s receiver is
/// gone. Spawn one per device:
///
/// ```no_run
/// # async fn f(devices: Vec<faultline_snmp::DeviceConfig>, tx: tokio::sync::mpsc::Sender<Vec<faultline_wire::Sample>>) {
/// let catalog = std::sync::Arc::new(faultline_snmp::ProfileCatalog::builtin().unwrap());
/// let limit = faultline_snmp::PollLimit::default();
/// for device in devices {
///     tokio::spawn(faultline_snmp::run_device(device, catalog.clone(), limit.clone(), tx.clone()));
/// }
/// # }
/// ```
pub async fn run_device(
    config: DeviceConfig,
    catalog: Arc<ProfileCatalog>,
    limit: PollLimit,
    tx: mpsc::Sender<Vec<Sample>>,
) {
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut poller = DevicePoller::new(config, catalog);
    loop {
        ticker.tick().await;
        let Some(slot) = limit.acquire().await else {
            return;
        };
        let outcome = poller.poll().await;
        drop(slot);
        if tx.send(outcome.samples).await.is_err() {
            tracing::debug!(device = %poller.config.id, "sample channel closed; device task ends");
            return;
        }
    }
}
