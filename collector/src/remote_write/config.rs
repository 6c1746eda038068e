//! `[remote_write]`: how the Prometheus remote-write receiver ([`super`]) names the inventory
//! target of each incoming series. Present: `POST /api/v1/write` is served; absent: it answers 404.
//!
//! ```toml
//! [remote_write]
//! target_label = "instance"        # the label whose value is the inventory target id
//! strip_port = true                # "node1:9100" → "node1"
//! jobs = { blackbox = "target" }   # per job: another label names the target
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;

/// The receiver's label → target mapping.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// The label whose value is the sample's target (an inventory target id); default `instance`.
    /// It is consumed: the sample keeps its other labels (`job` included).
    pub target_label: String,
    /// Drop a trailing `:<port>` from the target label's value (`node1:9100` → `node1`), so a
    /// scrape address names its host's inventory target. Default true.
    pub strip_port: bool,
    /// Per-job overrides: the series of job `<key>` take their target from label `<value>`
    /// (e.g. a blackbox exporter's probed address), default none.
    pub jobs: BTreeMap<String, String>,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        Self {
            target_label: "instance".to_string(),
            strip_port: true,
            jobs: BTreeMap::new(),
        }
    }
}

impl RemoteWriteConfig {
    /// The label naming the target of a series of `job` (none: the default label).
    pub fn target_label_for(&self, job: Option<&str>) -> &str {
        job.and_then(|job| self.jobs.get(job))
            .map_or(self.target_label.as_str(), String::as_str)
    }

    /// Checks the label names; the error names the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let check = |field: String, name: &str| {
            if faultline_wire::validate::is_label_name(name) {
                Ok(())
            } else {
                Err((field, format!("`{name}` is not a label name")))
            }
        };
        check("remote_write.target_label".into(), &self.target_label)?;
        for (job, label) in &self.jobs {
            check(format!("remote_write.jobs.{job}"), label)?;
        }
        Ok(())
    }
}
