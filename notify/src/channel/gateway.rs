//! SMS and voice-call gateways (… → incidents → **notifications** → the on-call's phone).
//!
//! Like the ticket sink, a templated HTTP request to the provider's API: the channel renders a
//! short `message` (an SMS text, or what a voice call reads out) and puts it, with the phone
//! numbers to reach, into the provider's body template. The numbers are the paged engineers'
//! (from the on-call file) plus the channel's fixed `to`. One request per notification; every
//! request carries the `Idempotency-Key`. `sms` and `voice` differ only in their default
//! message and body and in the kinds they deliver by default (a voice call is for pages only).
//!
//! Template variables: the notification's (see [`crate::template`]), `ack_url` (a signed link
//! that acknowledges the ticket, when the collector has an acknowledge-link key), and in the body
//! also `message` (the rendered message) and `phones` (the numbers, a list).

use super::{Prepared, Rejection, check_headers, check_url, default_content_type};
use crate::model::{Kind, Notification};
use crate::path::field;
use crate::template;
use faultline_wire::config_file::{ConfigError, ConfigSource, Secret};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Which gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayKind {
    /// A text-message gateway.
    Sms,
    /// A voice-call (text-to-speech) gateway.
    Voice,
}

impl GatewayKind {
    /// Name of the config table.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayKind::Sms => "sms",
            GatewayKind::Voice => "voice",
        }
    }

    /// The kinds this gateway delivers, which are also its default: pages, their
    /// acknowledgement and resolution by SMS; only pages by voice.
    pub fn supported_kinds(self) -> &'static [Kind] {
        match self {
            GatewayKind::Sms => &[
                Kind::Trigger,
                Kind::Reopen,
                Kind::Escalation,
                Kind::Acknowledge,
                Kind::Resolve,
                Kind::Breach,
                Kind::Reminder,
            ],
            GatewayKind::Voice => &[Kind::Trigger, Kind::Reopen, Kind::Escalation],
        }
    }

    fn default_message(self) -> &'static str {
        match self {
            GatewayKind::Sms => DEFAULT_SMS,
            GatewayKind::Voice => DEFAULT_VOICE,
        }
    }
}

/// Default SMS text: one line, the acknowledge link last.
pub const DEFAULT_SMS: &str = "[Faultline #{{ ticket_id }} {{ severity }} {{ tag }}] \
{{ kind_title }}: {{ summary }}{% if ack_url %} Ack: {{ ack_url }}{% endif %}";

/// Default voice text: what the call reads out (no link: it cannot be clicked).
pub const DEFAULT_VOICE: &str = "Faultline page. {{ kind_title }}. Ticket {{ ticket_id }}, \
severity {{ severity }}, responsibility {{ tag }}. {{ summary }}.";

/// Default body: JSON with the numbers and the message.
pub const DEFAULT_BODY: &str =
    r#"{"to": {{ phones | tojson }}, "message": {{ message | tojson }}}"#;

/// `[notify.channels.sms]` or `[notify.channels.voice]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The provider's API URL to POST to.
    pub url: String,
    /// Extra headers, such as the provider's API key (values are kept secret).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Numbers always sent to, besides the paged engineers' phones.
    #[serde(default)]
    pub to: Vec<String>,
    /// Message template; by default a one-line SMS or a sentence to read out.
    #[serde(default)]
    pub message: Option<String>,
    /// Messages are cut to this many bytes at a character boundary (default 480: three SMS
    /// segments of Latin text).
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// Body template (minijinja) in the provider's format; [`DEFAULT_BODY`] by default.
    #[serde(default)]
    pub body: Option<String>,
    /// Content type of the body (default `application/json`; a JSON body must render as JSON).
    #[serde(default = "default_content_type")]
    pub content_type: String,
}

fn default_max_length() -> usize {
    480
}

/// A phone number: an optional `+`, then digits, spaces or dashes, 5 to 20 digits in all.
fn valid_phone(number: &str) -> bool {
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let rest = number.strip_prefix('+').unwrap_or(number);
    (5..=20).contains(&digits)
        && rest
            .chars()
            .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
}

impl GatewayConfig {
    /// Checks the table; `prefix` is where it sits.
    pub fn validate(&self, source: &ConfigSource, prefix: &str) -> Result<(), ConfigError> {
        check_url(source, &field(prefix, "url"), &self.url)?;
        check_headers(source, prefix, &self.headers)?;
        for (i, number) in self.to.iter().enumerate() {
            if !valid_phone(number) {
                return Err(source.error(
                    &field(prefix, &format!("to[{i}]")),
                    format!("`{number}` is not a phone number (digits, an optional leading +)"),
                ));
            }
        }
        if self.max_length < 20 {
            return Err(source.error(&field(prefix, "max_length"), "must be at least 20 bytes"));
        }
        if let Some(message) = &self.message {
            super::check_template(source, &field(prefix, "message"), message)?;
        }
        let body = self.body.as_deref().unwrap_or(DEFAULT_BODY);
        let sample = template::context(&template::sample(), "check", None);
        let context = with_message(sample, "message", &["+8613800000000".into()]);
        super::render_body(body, &context, &self.content_type, "body")
            .map(drop)
            .map_err(|r| source.error(&field(prefix, "body"), r.message))?;
        Ok(())
    }

    /// The numbers to reach for `notification`: the paged engineers' phones, then `to`, each once.
    fn phones(&self, notification: &Notification) -> Vec<String> {
        let mut phones: Vec<String> = Vec::new();
        let paged = notification.paged.iter().filter_map(|c| c.phone.clone());
        for number in paged.chain(self.to.iter().cloned()) {
            if !phones.contains(&number) {
                phones.push(number);
            }
        }
        phones
    }

    pub(crate) fn request(
        &self,
        kind: GatewayKind,
        notification: &Notification,
        context: &Value,
        key: &str,
    ) -> Result<Prepared, Rejection> {
        let phones = self.phones(notification);
        if phones.is_empty() {
            return Err(Rejection::permanent(
                "no phone number: nobody paged has a phone and the channel has no `to`",
            ));
        }
        let template = self.message.as_deref().unwrap_or(kind.default_message());
        let message = super::render(template, context, "message")?;
        let message = super::truncate(message.trim(), self.max_length);
        let context = with_message(context.clone(), &message, &phones);
        let body = self.body.as_deref().unwrap_or(DEFAULT_BODY);
        let body = super::render_body(body, &context, &self.content_type, "body")?;
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

/// `context` with `message` and `phones` added.
fn with_message(mut context: Value, message: &str, phones: &[String]) -> Value {
    if let Value::Object(map) = &mut context {
        map.insert("message".into(), message.into());
        map.insert("phones".into(), phones.into());
    }
    context
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{ChannelConfig, prepare};
    use crate::retry::Failure;
    use crate::template::sample;
    use serde_json::json;

    fn channel(table: &str, extra: &str) -> ChannelConfig {
        let text = format!(
            "name = \"phone\"\n[{table}]\nurl = \"http://127.0.0.1:9/send\"\nheaders = {{ X-Api-Key = \"K\" }}\n{extra}"
        );
        toml::from_str(&text).unwrap()
    }

    fn body(channel: &ChannelConfig, n: &Notification) -> Value {
        let Prepared::Http { request, expect } = prepare(channel, n, None, 0, 0).unwrap() else {
            panic!("http expected")
        };
        assert_eq!(expect, super::super::Expect::Status);
        assert_eq!(request.url, "http://127.0.0.1:9/send");
        assert!(request.headers.contains(&("x-api-key".into(), "K".into())));
        request.json().unwrap()
    }

    #[test]
    fn sms_and_voice_default_bodies() {
        let n = sample();
        assert_eq!(
            body(&channel("sms", "to = [\"+86 10 1234 5678\"]\n"), &n),
            json!({
                "to": ["13800000000", "+86 10 1234 5678"],
                "message": "[Faultline #1 P2 carrier] Opened: uplink-1 down Ack: \
                            https://faultline.example/api/v1/ack/v1.1.0.YW5h.c2ln",
            })
        );
        assert_eq!(
            body(&channel("voice", ""), &n),
            json!({
                "to": ["13800000000"],
                "message": "Faultline page. Opened. Ticket 1, severity P2, responsibility \
                            carrier. uplink-1 down.",
            })
        );
    }

    #[test]
    fn templates_length_and_recipients() {
        let mut n = sample();
        n.ack_url = None;
        let templated = channel(
            "sms",
            "message = \"{{ summary }} {{ target }}\"\nbody = '''{\"mobiles\": \"{{ phones | join(',') }}\", \"content\": {{ message | tojson }}}'''\n",
        );
        assert_eq!(
            body(&templated, &n),
            json!({"mobiles": "13800000000", "content": "uplink-1 down uplink-1"})
        );
        let short = channel("sms", "max_length = 20\n");
        let cut = body(&short, &n)["message"].as_str().unwrap().to_string();
        assert!(cut.len() <= 20 && cut.ends_with('…'), "{cut}");
        n.paged.clear();
        let nobody = prepare(&channel("sms", ""), &n, None, 0, 0).unwrap_err();
        assert_eq!(nobody.failure, Failure::Permanent);
    }

    #[test]
    fn phone_numbers() {
        for good in ["13800000000", "+8613800000000", "+86 10-1234-5678"] {
            assert!(valid_phone(good), "{good}");
        }
        for bad in [
            "",
            "1234",
            "+",
            "call me",
            "138 0000 000x",
            "++8613800000000",
        ] {
            assert!(!valid_phone(bad), "{bad}");
        }
    }
}
