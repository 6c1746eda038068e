//! The capacity watch task (ingest → series store → **capacity** → incidents): the thin shell
//! around `faultline_incidents::capacity`. Every [`TICK`] it reads each inventory pool's usage —
//! the latest fresh values of the pool's metric (series with the pool's `labels`) on its member
//! targets, summed
//! ([`crate::series::SeriesStore::target_sums`]) — records it into the pool's hourly history,
//! stores the hours that finished (one year kept, in the ticket database's `capacity_hourly`
//! table), evaluates the usage ratio and the time-to-full forecast (refitted hourly), publishes
//! both for `/metrics` ([`metrics`]), and asks the incident stage for a planning ticket when a
//! pool needs one ([`Request::Plan`], over the API's bounded request channel: the stage owns the
//! tickets, so it keeps one active planning ticket per pool).
//!
//! Restart: the stored history is loaded at start, so forecasts survive; the current hour's
//! readings are lost with the process (at most an hour of rollup). A reload that changes the
//! pools takes effect at the next tick (the inventory is read live); removed pools are forgotten.
//!
//! A pool without any fresh member series has no reading: no history is recorded, no metric
//! exported and nothing decided for it until its data comes back. A pool's metric is a gauge of
//! current usage, or a counter (octets sent) whose per-second rate is the usage
//! ([`CounterRates`]: a member counts from its second sample on).

mod metrics;

pub use metrics::{CapacityCollector, Reading, Readings};

use crate::api::{Refusal, Request};
use crate::series::SharedSeries;
use anyhow::Context;
use faultline_daemon::log_limit::LogLimiter;
use faultline_daemon::reload::Live;
use faultline_incidents::capacity::decide::{LISTED_CONSUMERS, largest_consumers, planning_ticket};
use faultline_incidents::capacity::history::{RETENTION, hour_of};
use faultline_incidents::capacity::{CounterRates, HourBucket, Level, Watch};
use faultline_incidents::{Inventory, Millis, NewTicket, Store, Ticket};
use faultline_wire::SampleKind;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How often pools are read and evaluated.
pub const TICK: Duration = Duration::from_secs(5);
/// Finished hours kept for another try while the store refuses them (then the oldest go).
const MAX_UNSAVED: usize = 100_000;

/// The watch and what it works with; [`Shell::tick`] is one round, time passed in.
pub struct Shell {
    inventory: Live<Inventory>,
    series: SharedSeries,
    store: Box<dyn Store>,
    requests: mpsc::Sender<Request>,
    watch: Watch,
    readings: Readings,
    /// Finished hours the store refused, retried with the next ones.
    unsaved: Vec<(String, HourBucket)>,
    store_errors: LogLimiter<()>,
    request_errors: LogLimiter<String>,
    /// Counted pools' members' last readings.
    rates: CounterRates,
}

/// A planning ticket to ask for: pool, level, ticket.
type Planning = (String, Level, NewTicket);

impl Shell {
    /// The watch over `store`'s history (opened on the ticket database, its schema current).
    pub fn open(
        inventory: Live<Inventory>,
        series: SharedSeries,
        store: Box<dyn Store>,
        requests: mpsc::Sender<Request>,
        readings: Readings,
        now: Millis,
    ) -> anyhow::Result<Self> {
        // Only the longest forecast window is read back (the store keeps the year).
        let window = inventory
            .get()
            .pools()
            .values()
            .map(|p| p.forecast_window)
            .max()
            .unwrap_or_default();
        let since =
            hour_of(now.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX)));
        let history = store
            .capacity_history(since)
            .context("reading the capacity history")?;
        tracing::info!(
            pools = inventory.get().pools().len(),
            with_history = history.len(),
            "capacity watch ready"
        );
        Ok(Self {
            inventory,
            series,
            store,
            requests,
            watch: Watch::new(history),
            readings,
            unsaved: Vec::new(),
            store_errors: LogLimiter::new(Duration::from_secs(60), 1),
            request_errors: LogLimiter::new(Duration::from_secs(3600), 1024),
            rates: CounterRates::default(),
        })
    }

    /// One round at `now`: read, record, store finished hours, evaluate, publish; returns the
    /// planning tickets to ask for (send them with [`Shell::ask`]).
    pub fn tick(&mut self, now: Millis) -> Vec<Planning> {
        let inventory = self.inventory.get();
        let pools = inventory.pools();
        let mut usage: HashMap<&str, BTreeMap<String, f64>> = HashMap::new();
        {
            let series = self.series.read().unwrap_or_else(|p| p.into_inner());
            let mut sums = HashMap::new();
            for pool in pools.values() {
                let Some((kind, sums)) = sums
                    .entry((pool.metric.as_str(), &pool.labels))
                    .or_insert_with(|| series.target_sums(&pool.metric, &pool.labels, now))
                else {
                    continue;
                };
                let counted = *kind == SampleKind::Counter;
                let by_member: BTreeMap<String, f64> = pool
                    .members
                    .iter()
                    .filter_map(|m| {
                        let sum = sums.get(m.as_str())?;
                        let used = if counted {
                            self.rates.rate(&pool.id, m, sum.ts_ms, sum.value)?
                        } else {
                            sum.value
                        };
                        Some((m.clone(), used))
                    })
                    .collect();
                if !by_member.is_empty() {
                    usage.insert(pool.id.as_str(), by_member);
                }
            }
        }
        let mut readings = Vec::with_capacity(usage.len());
        let mut planning = Vec::new();
        for pool in pools.values() {
            let Some(by_member) = usage.get(pool.id.as_str()) else {
                continue;
            };
            let used: f64 = by_member.values().sum();
            if let Some(done) = self.watch.record(&pool.id, now, used) {
                self.unsaved.push((pool.id.clone(), done));
            }
            let evaluation = self.watch.evaluate(pool, used, now);
            readings.push(Reading {
                pool: pool.id.clone(),
                kind: pool.kind,
                used,
                ratio: evaluation.state.ratio,
                days_to_full: evaluation.state.days_to_full,
            });
            if let (true, Some(need)) = (evaluation.request, evaluation.need) {
                let consumers = largest_consumers(&inventory, by_member, LISTED_CONSUMERS);
                let mut by_department: BTreeMap<String, f64> = BTreeMap::new();
                for (member, used) in by_member {
                    if let Some(d) = inventory.department_of(member) {
                        *by_department.entry(d.id.clone()).or_default() += used;
                    }
                }
                let ticket = planning_ticket(pool, &need, &consumers, &by_department, now);
                planning.push((pool.id.clone(), need.level, ticket));
            }
        }
        self.readings.publish(readings);
        self.save(now);
        self.watch.trim(now, pools);
        self.rates.retain(|pool| pools.contains_key(pool));
        planning
    }

    /// Stores the finished hours not stored yet, deleting those older than a year.
    fn save(&mut self, now: Millis) {
        if self.unsaved.is_empty() {
            return;
        }
        let hours: Vec<(&str, HourBucket)> =
            self.unsaved.iter().map(|(p, b)| (p.as_str(), *b)).collect();
        match self
            .store
            .save_capacity_hours(&hours, now.saturating_sub(retention_ms()))
        {
            Ok(()) => self.unsaved.clear(),
            Err(e) => {
                if let Some(held_back) = self.store_errors.check(&(), Instant::now()) {
                    tracing::error!(error = %e, unsaved = self.unsaved.len(), held_back, "cannot store the capacity history; retrying with the next hour");
                }
                let over = self.unsaved.len().saturating_sub(MAX_UNSAVED);
                self.unsaved.drain(..over);
            }
        }
    }

    /// Asks the incident stage for each planning ticket and waits for its answer (blocking: call
    /// from the watch's own thread); a need the stage took is not asked again until it is more
    /// urgent or a day has passed.
    pub fn ask(&mut self, planning: Vec<Planning>, now: Millis) {
        for (pool, level, ticket) in planning {
            match self.request(ticket) {
                Ok(ticket) => {
                    tracing::info!(pool, level = level.as_str(), ticket = ticket.id, summary = %ticket.summary, "capacity planning requested");
                    self.watch.requested(&pool, level, now);
                }
                Err(e) => {
                    if let Some(held_back) = self.request_errors.check(&pool, Instant::now()) {
                        tracing::warn!(pool, error = %e, held_back, "capacity planning ticket not opened; asking again next round");
                    }
                }
            }
        }
    }

    fn request(&self, ticket: NewTicket) -> Result<Ticket, Refusal> {
        let stopped = || Refusal::Unavailable("the incident stage has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.requests
            .blocking_send(Request::Plan {
                ticket: Box::new(ticket),
                reply,
            })
            .map_err(|_| stopped())?;
        answer.blocking_recv().map_err(|_| stopped())?
    }
}

fn retention_ms() -> Millis {
    i64::try_from(RETENTION.as_millis()).unwrap_or(i64::MAX)
}

/// Opens the watch on the ticket database (after the incident stage brought its schema up to
/// date), registers its metrics and starts its thread.
pub fn start(
    inventory: Live<Inventory>,
    series: SharedSeries,
    location: &crate::store::Location,
    requests: mpsc::Sender<Request>,
    registry: &mut Registry,
) -> anyhow::Result<()> {
    let store = location.open().context("capacity history")?;
    let readings = Readings::default();
    registry.register_collector(Box::new(CapacityCollector(readings.clone())));
    let mut shell = Shell::open(
        inventory,
        series,
        store,
        requests,
        readings,
        faultline_wire::now_ms(),
    )?;
    std::thread::Builder::new()
        .name("capacity".into())
        .spawn(move || {
            loop {
                let now = faultline_wire::now_ms();
                let planning = shell.tick(now);
                shell.ask(planning, now);
                std::thread::sleep(TICK);
            }
        })
        .context("starting the capacity watch")?;
    Ok(())
}

#[cfg(test)]
mod tests;
