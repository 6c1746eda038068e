//! Reloading a running daemon on SIGHUP, outside the data flow: the plumbing both daemons share
//! from the signal (`systemctl reload` sends it through the units' `ExecReload`) to a validated
//! config swapped in.
//!
//! Each daemon gives a `load` (reads and validates the config and every file it names, exactly as
//! `check-config` does) and an `apply` (swaps in what can change while running, and says what
//! needs a restart). A config that fails is logged with `check-config`'s message (file, line,
//! field) and the running one is kept. Every outcome is counted in [`ReloadStats`], which the
//! collector registers in its `/metrics` and the agent reports in its health.

use crate::with_causes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

/// Label set of `faultline_config_reload_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The outcome of config reloads: `faultline_config_reload_total{result="ok|failed"}` and
/// `faultline_config_last_reload_success_timestamp_seconds` (set when made: the config loaded at
/// start is the first success). Clones share the counts.
#[derive(Debug, Clone)]
pub struct ReloadStats {
    total: Family<ResultLabel, Counter>,
    last_success: Gauge<f64, AtomicU64>,
}

impl Default for ReloadStats {
    /// Counts that start now, with the config loaded at start as the last success.
    fn default() -> Self {
        let stats = Self {
            total: Family::default(),
            last_success: Gauge::default(),
        };
        stats.last_success.set(now_seconds());
        // Both results are exported from the start, at zero.
        for result in ["ok", "failed"] {
            let _ = stats.total.get_or_create(&ResultLabel { result });
        }
        stats
    }
}

impl ReloadStats {
    /// Registers both families in `registry` (the collector's `/metrics`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "faultline_config_reload",
            "Config reloads on SIGHUP, by result (failed: the running config was kept)",
            self.total.clone(),
        );
        registry.register(
            "faultline_config_last_reload_success_timestamp_seconds",
            "When the running config was loaded (at start or by the last successful reload)",
            self.last_success.clone(),
        );
    }

    /// Reloads that were applied.
    pub fn ok(&self) -> u64 {
        self.total
            .get_or_create(&ResultLabel { result: "ok" })
            .get()
    }

    /// Reloads refused (the running config kept).
    pub fn failed(&self) -> u64 {
        self.total
            .get_or_create(&ResultLabel { result: "failed" })
            .get()
    }

    /// Unix time (seconds) the running config was loaded.
    pub fn last_success_seconds(&self) -> f64 {
        self.last_success.get()
    }

    fn count(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.total.get_or_create(&ResultLabel { result }).inc();
        if ok {
            self.last_success.set(now_seconds());
        }
    }
}

fn now_seconds() -> f64 {
    faultline_wire::now_ms() as f64 / 1000.0
}

/// One reload: `load` the new config (validated as `check-config` does), then `apply` it. A
/// config that fails either step is logged with its causes and counted as failed; the caller
/// keeps running on the old one. Returns whether the new config is in effect.
pub async fn reload_once<T, Fut>(
    stats: &ReloadStats,
    load: impl FnOnce() -> anyhow::Result<T>,
    apply: impl FnOnce(T) -> Fut,
) -> bool
where
    Fut: Future<Output = anyhow::Result<()>>,
{
    let outcome = match load() {
        Ok(config) => apply(config).await,
        Err(e) => Err(e),
    };
    let ok = match outcome {
        Ok(()) => {
            tracing::info!("config reloaded");
            true
        }
        Err(e) => {
            tracing::error!(
                error = %with_causes(e.as_ref()),
                "config reload failed: the running config is kept"
            );
            false
        }
    };
    stats.count(ok);
    ok
}

/// Reloads the config on every SIGHUP until the process ends ([`reload_once`] each time; signals
/// that arrive during a reload are merged into one more reload). Without a SIGHUP handler (never
/// on Linux) it logs why and waits forever, so a `select!` on it does not end.
pub async fn on_sighup<T, Fut>(
    stats: ReloadStats,
    mut load: impl FnMut() -> anyhow::Result<T>,
    mut apply: impl FnMut(T) -> Fut,
) where
    Fut: Future<Output = anyhow::Result<()>>,
{
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload by restarting");
            return std::future::pending().await;
        }
    };
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the config");
        reload_once(&stats, &mut load, &mut apply).await;
    }
}

/// A value a reload replaces while others read it: readers take the current one (an `Arc`, held
/// as long as they need it, e.g. for one batch) and never see a half-made value. Clones share it.
#[derive(Debug)]
pub struct Live<T>(Arc<RwLock<Arc<T>>>);

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Live<T> {
    /// Starts with `value`.
    pub fn new(value: Arc<T>) -> Self {
        Self(Arc::new(RwLock::new(value)))
    }

    /// The current value.
    pub fn get(&self) -> Arc<T> {
        Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the value; readers holding the old one finish with it.
    pub fn set(&self, value: Arc<T>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = value;
    }
}

/// What a reload changed in one part of a config, for the log: `None` when the part is the
/// same. `restart` says the part is only read at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The config key (e.g. `listen`, `incidents.rule_files`).
    pub key: &'static str,
    /// Whether the change takes effect only after a restart.
    pub restart: bool,
}

/// Logs what a reload changes: the parts applied now and the parts that need a restart (which
/// keep their running values until then).
pub fn log_changes(changes: &[Changed]) {
    let (restart, live): (Vec<_>, Vec<_>) = changes.iter().partition(|c| c.restart);
    let keys = |c: &[&Changed]| c.iter().map(|c| c.key).collect::<Vec<_>>().join(", ");
    if !live.is_empty() {
        tracing::info!(keys = %keys(&live), "config changes applied");
    }
    if !restart.is_empty() {
        tracing::warn!(
            keys = %keys(&restart),
            "config changes that need a restart: the running values are kept until then"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failed_load_or_apply_keeps_the_old_config_and_counts() {
        let stats = ReloadStats::default();
        let started = stats.last_success_seconds();
        assert!(started > 0.0);
        let mut running = 1;
        let broken = reload_once(
            &stats,
            || anyhow::bail!("collector.toml:3:1: field `listen`: missing"),
            |_: i32| async { Ok(()) },
        )
        .await;
        assert!(!broken);
        assert_eq!((stats.ok(), stats.failed()), (0, 1));
        let refused = reload_once(
            &stats,
            || Ok(2),
            |_| async { anyhow::bail!("the stage is gone") },
        )
        .await;
        assert!(!refused);
        assert_eq!(running, 1);
        assert_eq!(stats.last_success_seconds(), started);
        let applied = reload_once(
            &stats,
            || Ok(3),
            |new| {
                running = new;
                async { Ok(()) }
            },
        )
        .await;
        assert!(applied);
        assert_eq!(running, 3);
        assert_eq!((stats.ok(), stats.failed()), (1, 2));
        assert!(stats.last_success_seconds() >= started);
    }

    #[test]
    fn registered_families_are_exported_from_the_start() {
        let stats = ReloadStats::default();
        let mut registry = Registry::default();
        stats.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("faultline_config_reload_total{result=\"ok\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("faultline_config_reload_total{result=\"failed\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("faultline_config_last_reload_success_timestamp_seconds "),
            "{text}"
        );
    }
}
