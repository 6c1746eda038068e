//! Generic JSON webhook (… → incidents → **notifications** → webhook).
//!
//! POSTs the notification as JSON (`{"version": "1", "channel": …, "notification": {…}}`), or a
//! body rendered from the channel's template. Every request carries `Idempotency-Key:
//! <channel>:<dedup key>:<kind>:<occurrence>` so a receiver can drop a retried duplicate.

use super::{Prepared, Rejection, check_body, check_headers, check_url, default_content_type};
use crate::model::Notification;
use crate::path::field;
use faultline_wire::config_file::{ConfigError, ConfigSource, Secret};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `[notify.channels.webhook]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// URL to POST to.
    pub url: String,
    /// Extra headers, such as `Authorization = "Bearer …"` (values are kept secret).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Body template (minijinja); by default the notification as JSON. Use `| tojson` to put
    /// text into JSON safely.
    #[serde(default)]
    pub body: Option<String>,
    /// Content type of the body (default `application/json`; a JSON body must render as JSON).
    #[serde(default = "default_content_type")]
    pub content_type: String,
}

impl WebhookConfig {
    /// Checks the table; `prefix` is where it sits.
    pub fn validate(&self, source: &ConfigSource, prefix: &str) -> Result<(), ConfigError> {
        check_url(source, &field(prefix, "url"), &self.url)?;
        check_headers(source, prefix, &self.headers)?;
        if let Some(body) = &self.body {
            check_body(source, &field(prefix, "body"), body, &self.content_type)?;
        }
        Ok(())
    }

    /// The default payload.
    pub fn payload(channel: &str, notification: &Notification) -> Value {
        json!({ "version": "1", "channel": channel, "notification": notification })
    }

    pub(crate) fn request(
        &self,
        notification: &Notification,
        context: &Value,
        key: &str,
    ) -> Result<Prepared, Rejection> {
        let body = match &self.body {
            Some(template) => super::render_body(template, context, &self.content_type, "body")?,
            None => {
                let channel = context.get("channel").and_then(Value::as_str).unwrap_or("");
                Self::payload(channel, notification)
                    .to_string()
                    .into_bytes()
            }
        };
        let request = super::http_request(
            Method::POST,
            self.url.clone(),
            &self.headers,
            &self.content_type,
            body,
            key,
        );
        Ok(Prepared::Http {
            request,
            expect: super::Expect::Status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelConfig;
    use crate::channel::prepare;
    use crate::template::sample;

    fn channel(body: Option<&str>) -> ChannelConfig {
        let mut text = "name = \"hook\"\n[webhook]\nurl = \"http://127.0.0.1:9/in\"\nheaders = { Authorization = \"Bearer T\" }\n".to_string();
        if let Some(body) = body {
            text.push_str(&format!("body = '''{body}'''\n"));
        }
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn default_and_templated_bodies() {
        let n = sample();
        let Prepared::Http { request, expect } = prepare(&channel(None), &n, None, 0, 0).unwrap()
        else {
            panic!("http expected")
        };
        assert_eq!(expect, super::super::Expect::Status);
        let body = request.json().unwrap();
        assert_eq!(body["version"], "1");
        assert_eq!(body["channel"], "hook");
        assert_eq!(body["notification"]["dedup_key"], "faultline-ticket-1");
        assert_eq!(body["notification"]["tag"], "carrier");
        assert!(request.headers.contains(&(
            "idempotency-key".into(),
            "hook:faultline-ticket-1:trigger:0".into()
        )));
        assert!(
            request
                .headers
                .contains(&("authorization".into(), "Bearer T".into()))
        );
        assert!(
            !format!("{request:?}").contains("Bearer"),
            "no secret in Debug"
        );

        let templated = channel(Some(
            r#"{"text": {{ summary | tojson }}, "sev": "{{ severity }}"}"#,
        ));
        let Prepared::Http { request, .. } = prepare(&templated, &n, None, 0, 0).unwrap() else {
            panic!("http expected")
        };
        assert_eq!(
            request.json().unwrap(),
            json!({"text": "uplink-1 down", "sev": "P2"})
        );
        let broken = channel(Some("not json {{ summary }}"));
        let err = prepare(&broken, &n, None, 0, 0).unwrap_err();
        assert_eq!(err.failure, crate::retry::Failure::Permanent);
    }
}
