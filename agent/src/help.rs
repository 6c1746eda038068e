//! The help text of the series this agent's sources produce (the host source's descriptions, the
//! SNMP profiles' `help` fields and the SNMP health lines), built at start and again when a reload
//! brings new profiles. The transport
//! attaches the entries of the families each batch carries, so the collector's exposition shows
//! every family's own help line.

use faultline_wire::Sample;
use std::collections::{BTreeMap, HashMap};

/// Metric name → help line.
#[derive(Debug, Default)]
pub struct HelpBook(HashMap<String, String>);

/// The help of every source's series: the host, probe, Modbus and MQTT sources' descriptions and
/// the `help` fields of the SNMP `profiles`.
pub fn book(profiles: &faultline_snmp::ProfileCatalog) -> HelpBook {
    HelpBook::new(
        crate::source::host::HELP
            .iter()
            .chain(&crate::source::probe::outcome::HELP)
            .chain(&crate::source::modbus::HELP)
            .chain(&crate::source::mqtt::state::HELP)
            .map(|(m, h)| (m.to_string(), h.to_string()))
            .chain(faultline_snmp::help::metric_help(profiles)),
    )
}

impl HelpBook {
    /// A book of `entries`; a metric listed twice keeps its first line.
    pub fn new(entries: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut book = HashMap::new();
        for (metric, help) in entries {
            book.entry(metric).or_insert(help);
        }
        Self(book)
    }

    /// The help of the families in `samples` that have one.
    pub fn for_samples(&self, samples: &[Sample]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for sample in samples {
            if out.contains_key(&sample.metric) {
                continue;
            }
            if let Some(help) = self.0.get(&sample.metric) {
                out.insert(sample.metric.clone(), help.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_wire::SampleKind;

    #[test]
    fn only_the_families_of_the_batch_first_line_wins() {
        let book = HelpBook::new(
            [("m1", "one"), ("m2", "two"), ("m1", "again")].map(|(m, h)| (m.into(), h.into())),
        );
        let sample = |metric: &str| Sample {
            metric: metric.into(),
            target: "t".into(),
            labels: BTreeMap::new(),
            value: 1.0,
            ts_ms: 0,
            kind: SampleKind::Gauge,
        };
        let help = book.for_samples(&[sample("m1"), sample("m1"), sample("unknown")]);
        assert_eq!(
            help,
            BTreeMap::from([("m1".to_string(), "one".to_string())])
        );
    }
}
