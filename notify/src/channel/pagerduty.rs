//! PagerDuty Events API v2 (… → incidents → **notifications** → PagerDuty).
//!
//! Trigger, acknowledge and resolve events carry the ticket's dedup key as PagerDuty's
//! `dedup_key`, so PagerDuty itself folds a retried trigger into the same incident, and
//! acknowledge / resolve reach the incident the trigger opened.

use super::{Expect, Prepared, Rejection, check_url, json_post, truncate};
use crate::model::{Kind, Notification};
use crate::path::field;
use crate::template::rfc3339;
use faultline_incidents::Severity;
use faultline_wire::config_file::{ConfigError, ConfigSource, Secret};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `[notify.channels.pagerduty]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// The integration's routing key (kept secret).
    pub routing_key: Secret,
    /// Events API URL (default `https://events.pagerduty.com/v2/enqueue`).
    #[serde(default = "default_url")]
    pub url: String,
    /// `payload.source`; by default the ticket's target.
    #[serde(default)]
    pub source: Option<String>,
}

fn default_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".to_string()
}

/// PagerDuty's severity for a ticket severity.
pub fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::P1 => "critical",
        Severity::P2 => "error",
        Severity::P3 => "warning",
        Severity::P4 => "info",
    }
}

impl PagerDutyConfig {
    /// Checks the table; `prefix` is where it sits.
    pub fn validate(&self, source: &ConfigSource, prefix: &str) -> Result<(), ConfigError> {
        check_url(source, &field(prefix, "url"), &self.url)?;
        if self.routing_key.expose().trim().is_empty() {
            return Err(source.error(&field(prefix, "routing_key"), "must not be empty"));
        }
        Ok(())
    }

    /// The event for `notification`; only trigger, acknowledge and resolve exist in PagerDuty.
    pub fn payload(&self, notification: &Notification) -> Result<Value, Rejection> {
        let n = notification;
        let action = match n.kind {
            Kind::Trigger | Kind::Reopen => "trigger",
            Kind::Acknowledge => "acknowledge",
            Kind::Resolve => "resolve",
            other => {
                return Err(Rejection::permanent(format!(
                    "PagerDuty has no `{other}` event"
                )));
            }
        };
        let mut event = json!({
            "routing_key": self.routing_key.expose(),
            "event_action": action,
            "dedup_key": n.dedup_key,
        });
        if matches!(n.kind, Kind::Trigger | Kind::Reopen) {
            event["payload"] = json!({
                "summary": truncate(&n.summary, 1024),
                "source": self.source.as_deref().unwrap_or(&n.target),
                "severity": severity(n.severity),
                "timestamp": rfc3339(n.started_at_ms),
                "component": n.target,
                "group": faultline_incidents::inventory::tag_label(n.tag),
                "class": n.rule,
                "custom_details": {
                    "ticket": n.ticket_id,
                    "tag": faultline_incidents::inventory::tag_label(n.tag),
                    "reason": n.reason,
                    "details": n.details,
                    "faultline_severity": n.severity.to_string(),
                },
            });
            event["client"] = json!("Faultline");
            if let Some(link) = n.links.first() {
                event["client_url"] = json!(link.url);
            }
            let ack = n
                .ack_url
                .iter()
                .map(|url| (url.as_str(), "Acknowledge in Faultline"));
            event["links"] = n
                .links
                .iter()
                .map(|l| (l.url.as_str(), l.title.as_str()))
                .chain(ack)
                .map(|(href, text)| json!({ "href": href, "text": text }))
                .collect();
        }
        Ok(event)
    }

    pub(crate) fn request(
        &self,
        notification: &Notification,
        key: &str,
    ) -> Result<Prepared, Rejection> {
        Ok(Prepared::Http {
            request: json_post(
                self.url.clone(),
                &BTreeMap::new(),
                &self.payload(notification)?,
                key,
            ),
            expect: Expect::Status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::sample;

    #[test]
    fn events_table() {
        let config = PagerDutyConfig {
            routing_key: Secret::new("RK"),
            url: default_url(),
            source: None,
        };
        // (kind, event_action or None for no PagerDuty event, has payload)
        let cases = [
            (Kind::Trigger, Some("trigger"), true),
            (Kind::Acknowledge, Some("acknowledge"), false),
            (Kind::Resolve, Some("resolve"), false),
            (Kind::Progress, None, false),
            (Kind::Escalation, None, false),
        ];
        for (kind, action, has_payload) in cases {
            let mut n = sample();
            n.kind = kind;
            let got = config.payload(&n);
            let Some(action) = action else {
                assert!(got.is_err(), "{kind}");
                continue;
            };
            let event = got.unwrap();
            assert_eq!(event["event_action"], action);
            assert_eq!(event["routing_key"], "RK");
            assert_eq!(event["dedup_key"], "faultline-ticket-1");
            assert_eq!(event.get("payload").is_some(), has_payload, "{kind}");
        }
        let event = config.payload(&sample()).unwrap();
        assert_eq!(event["payload"]["summary"], "uplink-1 down");
        assert_eq!(event["payload"]["severity"], "error");
        assert_eq!(event["payload"]["source"], "uplink-1");
        assert_eq!(event["payload"]["custom_details"]["tag"], "carrier");
        assert_eq!(
            event["links"][0]["href"],
            "https://faultline.example/tickets/1"
        );
        let severities = [
            (Severity::P1, "critical"),
            (Severity::P2, "error"),
            (Severity::P3, "warning"),
            (Severity::P4, "info"),
        ];
        for (s, want) in severities {
            assert_eq!(severity(s), want);
        }
    }
}
