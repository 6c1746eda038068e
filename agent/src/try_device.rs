//! `faultline-agent poll`: one poll of one device, without a collector — which profiles its
//! sysObjectID selects, the samples the agent would send, and which profile OIDs did not
//! answer. The way to bring up a new device or check a profile written from a vendor MIB.
//!
//! The poll itself is the agent's own ([`faultline_snmp::DevicePoller`]); this module only
//! turns its outcome into a report. [`Report::render`] is pure.

use faultline_snmp::{DeviceConfig, DevicePoller, Profile, ProfileCatalog};
use faultline_wire::Sample;
use std::fmt::Write as _;
use std::sync::Arc;

/// What one poll of a device showed.
#[derive(Debug)]
pub struct Report {
    /// Target id of the device.
    pub device: String,
    /// Profiles applied (named in the config, or detected from sysObjectID).
    pub profiles: Vec<Arc<Profile>>,
    /// Every sample the agent would send, health samples included.
    pub samples: Vec<Sample>,
    /// Requests that failed (timeouts, errors), one line each.
    pub request_errors: Vec<String>,
    /// Values that could not become samples (not present, wrong type), one line each.
    pub value_errors: Vec<String>,
}

impl Report {
    /// True when the device answered the poll (`faultline_snmp_up` is 1).
    pub fn answered(&self) -> bool {
        self.samples
            .iter()
            .any(|s| s.metric == faultline_snmp::poller::METRIC_UP && s.value == 1.0)
    }

    /// Profile metrics that produced no sample: `profile metric OID` (tables with no rows,
    /// scalars the device does not have).
    pub fn unanswered(&self) -> Vec<String> {
        let mut out = Vec::new();
        for profile in &self.profiles {
            let metrics = profile
                .scalars
                .iter()
                .chain(profile.tables.iter().flat_map(|t| t.columns.iter()));
            for m in metrics {
                let seen = self.samples.iter().any(|s| {
                    s.metric == m.metric && m.labels.iter().all(|(k, v)| s.labels.get(k) == Some(v))
                });
                if !seen {
                    out.push(format!("{} {} {}", profile.name, m.metric, m.oid));
                }
            }
        }
        out
    }

    /// The report as text: profiles, samples (`metric{labels} value`), then what did not
    /// answer and why.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let names: Vec<&str> = self.profiles.iter().map(|p| p.name.as_str()).collect();
        let _ = writeln!(out, "# device {}", self.device);
        let _ = writeln!(out, "# profiles: {}", names.join(", "));
        let mut samples: Vec<&Sample> = self.samples.iter().collect();
        samples.sort_by(|a, b| (&a.metric, &a.labels).cmp(&(&b.metric, &b.labels)));
        for s in samples {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            let _ = writeln!(
                out,
                "{}{{{}}} {} ({:?})",
                s.metric,
                labels.join(","),
                s.value,
                s.kind
            );
        }
        let unanswered = self.unanswered();
        let _ = writeln!(out, "# not answered: {}", unanswered.len());
        for line in unanswered {
            let _ = writeln!(out, "#   {line}");
        }
        for e in self.request_errors.iter().chain(&self.value_errors) {
            let _ = writeln!(out, "# error: {e}");
        }
        out
    }
}

/// Polls `device` once with the profiles of `catalog`.
pub async fn poll_once(device: DeviceConfig, catalog: Arc<ProfileCatalog>) -> Report {
    let id = device.id.clone();
    let mut poller = DevicePoller::new(device, catalog.clone());
    let outcome = poller.poll().await;
    Report {
        device: id,
        profiles: poller
            .profiles()
            .iter()
            .filter_map(|name| catalog.get(name).cloned())
            .collect(),
        samples: outcome.samples,
        request_errors: outcome
            .request_errors
            .iter()
            .map(ToString::to_string)
            .collect(),
        value_errors: outcome
            .value_errors
            .iter()
            .map(ToString::to_string)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_wire::SampleKind;
    use std::collections::BTreeMap;

    fn sample(metric: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            metric: metric.into(),
            target: "fw".into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect::<BTreeMap<_, _>>(),
            value,
            ts_ms: 1,
            kind: SampleKind::Gauge,
        }
    }

    #[test]
    fn render_lists_samples_and_unanswered() {
        let catalog = ProfileCatalog::builtin().unwrap();
        let report = Report {
            device: "fw".into(),
            profiles: vec![catalog.get("topsec-ngfw").unwrap().clone()],
            samples: vec![
                sample("faultline_snmp_up", &[], 1.0),
                sample(
                    "faultline_snmp_firewall_cpu_usage_ratio",
                    &[("a", "x\"y")],
                    0.03,
                ),
            ],
            request_errors: vec![],
            value_errors: vec!["profile topsec-ngfw metric m OID 1.2: not present".into()],
        };
        assert!(report.answered());
        let text = report.render();
        assert!(text.contains("# profiles: topsec-ngfw\n"), "{text}");
        assert!(
            text.contains("faultline_snmp_firewall_cpu_usage_ratio{a=\"x\\\"y\"} 0.03 (Gauge)\n"),
            "{text}"
        );
        assert!(text.contains("# not answered: 2\n"), "{text}");
        assert!(
            text.contains(
                "#   topsec-ngfw faultline_snmp_firewall_ha_role 1.3.6.1.4.1.14331.5.5.1.4.1.0\n"
            ),
            "{text}"
        );
        assert!(text.contains("# error: profile topsec-ngfw metric m OID 1.2: not present\n"));
    }
}
