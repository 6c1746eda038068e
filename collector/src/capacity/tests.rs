//! The capacity shell driven by hand: time passed in, a real series store and a real SQLite
//! ticket database in a temporary directory.

use super::*;
use crate::series::{SeriesLimits, SeriesStore};
use faultline_incidents::SqliteStore;
use faultline_incidents::capacity::history::HOUR_MS;
use faultline_wire::config_file::ConfigSource;
use faultline_wire::{Sample, SampleKind};
use std::path::Path;
use std::sync::{Arc, RwLock};

const INVENTORY: &str = r#"
[[departments]]
id = "finance"

[[targets]]
id = "vm-1"
kind = "vm"
owner = "customer"
department = "finance"

[[targets]]
id = "vm-2"
kind = "vm"
owner = "customer"
department = "finance"

[[targets]]
id = "host-1"
kind = "host"
owner = "platform"

[[pools]]
id = "san-a"
kind = "storage"
capacity = 1000.0
unit = "GB"
members = ["vm-1", "vm-2", "host-1"]
metric = "storage_used_bytes"
shares = { finance = 0.5 }
"#;

/// 2026-12-01 00:00 UTC.
const T0: Millis = 1_796_083_200_000;

/// An uplink's bandwidth pool read from the interface's octet counter.
const UPLINK: &str = r#"
[[targets]]
id = "border-1"
kind = "device"
owner = "platform"

[[pools]]
id = "uplink"
kind = "bandwidth"
capacity = 1000.0
unit = "bytes/s"
members = ["border-1"]
metric = "tx_bytes"
"#;

fn inventory(text: &str) -> Live<Inventory> {
    let source = ConfigSource::from_text(Path::new("inv.toml"), text.to_string());
    Live::new(Arc::new(Inventory::load(&source).unwrap()))
}

fn push(series: &SharedSeries, target: &str, value: f64, at: Millis) {
    push_sample(
        series,
        "storage_used_bytes",
        SampleKind::Gauge,
        target,
        value,
        at,
    );
}

fn push_sample(
    series: &SharedSeries,
    metric: &str,
    kind: SampleKind,
    target: &str,
    value: f64,
    at: Millis,
) {
    let sample = Sample {
        metric: metric.into(),
        target: target.into(),
        labels: Default::default(),
        value,
        ts_ms: at,
        kind,
    };
    let mut rejected = Vec::new();
    series
        .write()
        .unwrap()
        .apply(&Arc::from("agent-1"), &[sample], at, &mut rejected);
    assert!(rejected.is_empty());
}

fn shell(dir: &Path, series: &SharedSeries, now: Millis) -> (Shell, mpsc::Receiver<Request>) {
    shell_over(INVENTORY, dir, series, now)
}

fn shell_over(
    inventory_text: &str,
    dir: &Path,
    series: &SharedSeries,
    now: Millis,
) -> (Shell, mpsc::Receiver<Request>) {
    let store = Box::new(SqliteStore::open(&dir.join("tickets.db")).unwrap());
    let (requests, rx) = mpsc::channel(8);
    let shell = Shell::open(
        inventory(inventory_text),
        series.clone(),
        store,
        requests,
        Readings::default(),
        now,
    )
    .unwrap();
    (shell, rx)
}

#[test]
fn usage_is_read_from_members_recorded_hourly_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let series: SharedSeries = Arc::new(RwLock::new(SeriesStore::new(
        2 * HOUR_MS,
        SeriesLimits::UNBOUNDED,
    )));
    let (mut watch, _rx) = shell(dir.path(), &series, T0);
    assert!(watch.tick(T0).is_empty(), "no data: nothing decided");
    assert!(watch.readings.get().is_empty(), "no data: no reading");
    // 26 hours growing from 300 to 550 GB (10 GB an hour), two readings an hour: below the
    // plan line, but once a day of hours is there the forecast says full within two days.
    let mut first_asked = None;
    for h in 0..26 {
        for half in 0..2 {
            let at = T0 + h * HOUR_MS + half * HOUR_MS / 2;
            let used = 300.0 + 10.0 * h as f64;
            push(&series, "vm-1", used * 0.6, at);
            push(&series, "vm-2", used * 0.3, at);
            push(&series, "host-1", used * 0.1, at);
            let planning = watch.tick(at);
            if let (None, Some((_, level, _))) = (first_asked, planning.first()) {
                first_asked = Some((h, *level));
            }
        }
    }
    // 23 finished hours and the current one make the first day of points.
    assert_eq!(first_asked, Some((23, Level::Forecast)));
    let readings = watch.readings.get();
    assert_eq!(readings.len(), 1);
    assert!((readings[0].used - 550.0).abs() < 1e-9, "{readings:?}");
    assert!((readings[0].ratio - 0.55).abs() < 1e-9);
    let days = readings[0].days_to_full.unwrap();
    // 450 GB left at 240 GB a day.
    assert!((days - 450.0 / 240.0).abs() < 0.05, "{days}");
    drop(watch);

    // Restarted: the 25 finished hours are back, so the forecast is there at once; the need
    // (full within 2 days) is asked for again (the stage keeps one ticket), with the largest
    // consumers.
    let now = T0 + 26 * HOUR_MS;
    let (mut watch, _rx) = shell(dir.path(), &series, now);
    assert_eq!(watch.watch.history("san-a").map(|h| h.len()), Some(25));
    push(&series, "vm-1", 600.0, now);
    let planning = watch.tick(now);
    assert_eq!(planning.len(), 1);
    let (pool, level, ticket) = &planning[0];
    assert_eq!((pool.as_str(), *level), ("san-a", Level::Forecast));
    assert_eq!(ticket.target, "pool:san-a");
    assert!(!ticket.pages);
    assert!(
        ticket
            .description
            .contains("- vm-1 (finance): 600 GB, 60.0 % of the pool"),
        "{}",
        ticket.description
    );
    assert!(
        ticket
            .description
            .contains("Department finance: 76.5 % of the pool, share 50.0 %"),
        "{}",
        ticket.description
    );
}

#[test]
fn a_counted_metric_is_used_at_its_rate() {
    let dir = tempfile::tempdir().unwrap();
    let series: SharedSeries = Arc::new(RwLock::new(SeriesStore::new(
        2 * HOUR_MS,
        SeriesLimits::UNBOUNDED,
    )));
    let (mut watch, _rx) = shell_over(UPLINK, dir.path(), &series, T0);
    let used = |watch: &Shell| watch.readings.get().first().map(|r| (r.used, r.ratio));
    let tx = |value: f64, at: Millis| {
        push_sample(
            &series,
            "tx_bytes",
            SampleKind::Counter,
            "border-1",
            value,
            at,
        );
    };
    // (sample time, counter, watch time) → usage and ratio expected.
    tx(50_000.0, T0);
    assert!(watch.tick(T0).is_empty());
    assert_eq!(used(&watch), None, "one reading: no rate yet");
    tx(58_000.0, T0 + 10_000);
    let planning = watch.tick(T0 + 12_000);
    assert_eq!(used(&watch), Some((800.0, 0.8)), "8000 bytes in 10 s");
    assert_eq!(planning.len(), 1, "0.8 is past the plan line");
    assert_eq!(planning[0].1, Level::Plan);
    assert_eq!(planning[0].2.target, "pool:uplink");
    // Read again before the agent polled: the same rate, not zero.
    watch.tick(T0 + 17_000);
    assert_eq!(used(&watch), Some((800.0, 0.8)));
    // The counter started again (device rebooted): counted from zero.
    tx(300.0, T0 + 20_000);
    watch.tick(T0 + 22_000);
    assert_eq!(used(&watch), Some((30.0, 0.03)));
}
