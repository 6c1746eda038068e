//! The capacity watch's metrics (capacity → **/metrics**): the readings of the last round,
//! encoded at scrape time (prometheus-client's `Collector`), one series per pool that has
//! data. `faultline_capacity_days_to_full` is absent for a pool without a forecast (not
//! growing, or less than a day of history): no NaN, no infinity.

use faultline_incidents::capacity::PoolKind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use std::sync::{Arc, Mutex};

/// One pool as last evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Pool id.
    pub pool: String,
    /// Its kind.
    pub kind: PoolKind,
    /// Usage, in the pool's unit.
    pub used: f64,
    /// Usage over capacity.
    pub ratio: f64,
    /// Days until full by the forecast, if it has one and grows.
    pub days_to_full: Option<f64>,
}

/// The last round's readings, shared between the watch (writer) and scrapes (readers).
#[derive(Debug, Clone, Default)]
pub struct Readings(Arc<Mutex<Arc<Vec<Reading>>>>);

impl Readings {
    /// Replaces the readings with a new round's.
    pub fn publish(&self, readings: Vec<Reading>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(readings);
    }

    /// The last round's readings.
    pub fn get(&self) -> Arc<Vec<Reading>> {
        Arc::clone(&self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Encodes the readings at scrape time.
#[derive(Debug)]
pub struct CapacityCollector(pub Readings);

impl Collector for CapacityCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let readings = self.0.get();
        type Field = fn(&Reading) -> Option<f64>;
        let gauges: [(&str, &str, Field); 3] = [
            (
                "faultline_capacity_usage_ratio",
                "Resource pool usage over its capacity (inventory [[pools]])",
                |r| Some(r.ratio),
            ),
            (
                "faultline_capacity_days_to_full",
                "Days until the pool is full by a robust linear fit of its hourly history (absent when not growing or under a day of history)",
                |r| r.days_to_full,
            ),
            (
                "faultline_capacity_used",
                "Resource pool usage in its unit: the members' latest values of its metric, summed",
                |r| Some(r.used),
            ),
        ];
        for (name, help, field) in gauges {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for reading in readings.iter() {
                if let Some(value) = field(reading).filter(|v| v.is_finite()) {
                    let labels = [
                        ("pool", reading.pool.as_str()),
                        ("kind", reading.kind.as_str()),
                    ];
                    metric.encode_family(&labels)?.encode_gauge(&value)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn readings_are_exported_and_a_missing_forecast_is_omitted() {
        let readings = Readings::default();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(CapacityCollector(readings.clone())));
        readings.publish(vec![
            Reading {
                pool: "san-a".into(),
                kind: PoolKind::Storage,
                used: 870.0,
                ratio: 0.87,
                days_to_full: Some(12.5),
            },
            Reading {
                pool: "cpu-a".into(),
                kind: PoolKind::Compute,
                used: 10.0,
                ratio: 0.1,
                days_to_full: None,
            },
        ]);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "faultline_capacity_usage_ratio{pool=\"san-a\",kind=\"storage\"} 0.87",
            "faultline_capacity_usage_ratio{pool=\"cpu-a\",kind=\"compute\"} 0.1",
            "faultline_capacity_days_to_full{pool=\"san-a\",kind=\"storage\"} 12.5",
            "faultline_capacity_used{pool=\"san-a\",kind=\"storage\"} 870.0",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(
            !text.contains("faultline_capacity_days_to_full{pool=\"cpu-a\""),
            "{text}"
        );
    }
}
