//! Alertmanager-compatible webhook payload (… → incidents → **notifications** → alertmanager).
//!
//! Receivers written for Alertmanager's webhook (version "4") take Faultline's tickets unchanged:
//! one alert per ticket, `status` firing or resolved, `labels` (alertname = rule, target,
//! severity, tag, ticket), `annotations` (summary, description, reason, event), `startsAt` = the
//! fault's start, `endsAt` = the resolution (zero time while firing) and a `fingerprint` derived
//! from the dedup key, stable for the ticket's life.

use super::{Expect, Prepared, check_headers, check_url, json_post};
use crate::model::{Kind, Notification};
use crate::path::field;
use crate::template::rfc3339;
use faultline_wire::config_file::{ConfigError, ConfigSource, Secret};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// `[notify.channels.alertmanager]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// The receiver's webhook URL.
    pub url: String,
    /// Extra headers (values are kept secret).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// The `receiver` name in the payload (default `faultline`).
    #[serde(default = "default_receiver")]
    pub receiver: String,
    /// `externalURL` in the payload: where Faultline's UI is (default empty).
    #[serde(default)]
    pub external_url: String,
}

fn default_receiver() -> String {
    "faultline".to_string()
}

/// Alertmanager's zero time, sent as `endsAt` while an alert fires.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// 16 hex digits derived from the dedup key: the alert's fingerprint.
pub fn fingerprint(dedup_key: &str) -> String {
    Sha256::digest(dedup_key.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl AlertmanagerConfig {
    /// Checks the table; `prefix` is where it sits.
    pub fn validate(&self, source: &ConfigSource, prefix: &str) -> Result<(), ConfigError> {
        check_url(source, &field(prefix, "url"), &self.url)?;
        check_headers(source, prefix, &self.headers)
    }

    /// The webhook payload for `notification`.
    pub fn payload(&self, notification: &Notification) -> Value {
        let n = notification;
        let resolved = n.kind == Kind::Resolve;
        let status = if resolved { "resolved" } else { "firing" };
        let labels = json!({
            "alertname": n.rule,
            "target": n.target,
            "severity": n.severity.to_string(),
            "tag": faultline_incidents::inventory::tag_label(n.tag),
            "ticket": n.ticket_id.to_string(),
        });
        let annotations = json!({
            "summary": n.summary,
            "description": n.details,
            "reason": n.reason,
            "event": n.kind.as_str(),
        });
        let ends_at = if resolved {
            rfc3339(n.at_ms)
        } else {
            ZERO_TIME.to_string()
        };
        json!({
            "version": "4",
            "groupKey": format!("{{}}:{{ticket=\"{}\"}}", n.dedup_key),
            "truncatedAlerts": 0,
            "status": status,
            "receiver": self.receiver,
            "groupLabels": { "ticket": n.ticket_id.to_string() },
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "externalURL": self.external_url,
            "alerts": [{
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(n.started_at_ms),
                "endsAt": ends_at,
                "generatorURL": n.links.first().map(|l| l.url.as_str()).unwrap_or(""),
                "fingerprint": fingerprint(&n.dedup_key),
            }],
        })
    }

    pub(crate) fn request(&self, notification: &Notification, key: &str) -> Prepared {
        Prepared::Http {
            request: json_post(
                self.url.clone(),
                &self.headers,
                &self.payload(notification),
                key,
            ),
            expect: Expect::Status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::sample;

    #[test]
    fn firing_and_resolved_shapes() {
        let config = AlertmanagerConfig {
            url: "http://127.0.0.1:9/".into(),
            headers: BTreeMap::new(),
            receiver: "noc".into(),
            external_url: "https://faultline.example".into(),
        };
        let firing = sample();
        let mut resolved = sample();
        resolved.kind = Kind::Resolve;
        resolved.at_ms = 1_795_850_538_999;
        // (notification, status, endsAt)
        let cases = [
            (&firing, "firing", ZERO_TIME),
            (&resolved, "resolved", "2026-11-28T07:22:18.999Z"),
        ];
        for (n, status, ends_at) in cases {
            let p = config.payload(n);
            assert_eq!(p["version"], "4");
            assert_eq!(p["status"], status);
            assert_eq!(p["receiver"], "noc");
            let alert = &p["alerts"][0];
            assert_eq!(alert["status"], status);
            assert_eq!(alert["endsAt"], ends_at);
            assert_eq!(alert["startsAt"], "2026-11-28T07:13:20.000Z");
            assert_eq!(alert["labels"]["alertname"], "LinkDown");
            assert_eq!(alert["labels"]["severity"], "P2");
            assert_eq!(alert["labels"]["tag"], "carrier");
            assert_eq!(alert["annotations"]["summary"], "uplink-1 down");
            assert_eq!(alert["fingerprint"], fingerprint("faultline-ticket-1"));
            assert_eq!(alert["generatorURL"], "https://faultline.example/tickets/1");
        }
        assert_eq!(fingerprint("faultline-ticket-1").len(), 16);
        assert_ne!(fingerprint("a"), fingerprint("b"));
    }
}
