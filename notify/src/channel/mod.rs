//! Channels: pure request builders and response checks (… → incidents → **notifications**).
//!
//! [`prepare`] turns one notification into what one channel must send — an [`HttpRequest`] with
//! the way to judge its response ([`Expect`]), or an [`email::EmailMessage`] — without any I/O, so
//! every payload shape is a table test. [`interpret`] judges an HTTP response. The
//! [`crate::Notifier`] does the sending and records the outcome.
//!
//! [`ChannelConfig`] (`[[notify.channels]]`) lives here with the channels: each channel module
//! owns its type table (`webhook::WebhookConfig`, `gateway::GatewayConfig` …), and
//! [`crate::config`] only collects the channels; neither imports the other back.

pub mod alertmanager;
pub mod email;
pub mod gateway;
pub mod pagerduty;
pub mod robot;
pub mod ticket_sink;
pub mod webhook;

use crate::model::{Kind, Notification};
use crate::path::field;
use crate::retry::{Failure, classify_status};
use crate::template;
use alertmanager::AlertmanagerConfig;
use email::EmailConfig;
use faultline_incidents::Millis;
use faultline_incidents::Severity;
use faultline_incidents::inventory::Owner;
use faultline_wire::config_file::{ConfigError, ConfigSource, Secret};
use gateway::{GatewayConfig, GatewayKind};
use pagerduty::PagerDutyConfig;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use robot::{RobotConfig, RobotKind};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use ticket_sink::TicketSinkConfig;
use webhook::WebhookConfig;

/// One destination of notifications and which notifications it wants.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Unique name: in logs, counters and the outbox. Letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// Kinds of notification to send: `trigger`, `reopen`, `flapping`, `acknowledge`, `resolve`,
    /// `progress`,
    /// `reminder`, `breach`, `escalation`, `callback_due`, `follow_up` (a customer follow-up task
    /// came due: tagged `customer`, severity P4). Empty (the default) means what the type
    /// supports: all kinds, except PagerDuty (trigger, acknowledge, resolve) and Alertmanager
    /// (trigger, resolve); a ticket sink skips follow-ups.
    #[serde(default)]
    pub kinds: Vec<Kind>,
    /// Responsibility tags to send (`platform`, `carrier`, `customer`); empty means all.
    #[serde(default)]
    pub tags: Vec<Owner>,
    /// Least urgent severity to send: `"P2"` sends P1 and P2. Unset sends all.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// A generic JSON webhook.
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// An Alertmanager-compatible webhook receiver (payload version 4).
    #[serde(default)]
    pub alertmanager: Option<AlertmanagerConfig>,
    /// PagerDuty Events API v2.
    #[serde(default)]
    pub pagerduty: Option<PagerDutyConfig>,
    /// A WeCom (企业微信) group robot.
    #[serde(default)]
    pub wecom: Option<RobotConfig>,
    /// A DingTalk (钉钉) group robot.
    #[serde(default)]
    pub dingtalk: Option<RobotConfig>,
    /// A Feishu / Lark (飞书) group robot.
    #[serde(default)]
    pub feishu: Option<RobotConfig>,
    /// E-mail over SMTP to the ticket mailbox and the customer contacts.
    #[serde(default)]
    pub email: Option<EmailConfig>,
    /// A ticket system (Jira / ServiceNow-like) driven by HTTP templates.
    #[serde(default)]
    pub ticket_sink: Option<TicketSinkConfig>,
    /// An SMS gateway driven by an HTTP template.
    #[serde(default)]
    pub sms: Option<GatewayConfig>,
    /// A voice-call gateway driven by an HTTP template.
    #[serde(default)]
    pub voice: Option<GatewayConfig>,
}

/// The type of a channel, borrowed from its config.
#[derive(Debug, Clone, Copy)]
pub enum ChannelType<'a> {
    /// Generic JSON webhook.
    Webhook(&'a WebhookConfig),
    /// Alertmanager-compatible webhook.
    Alertmanager(&'a AlertmanagerConfig),
    /// PagerDuty Events API v2.
    PagerDuty(&'a PagerDutyConfig),
    /// A group robot.
    Robot(RobotKind, &'a RobotConfig),
    /// SMTP.
    Email(&'a EmailConfig),
    /// Templated ticket system.
    TicketSink(&'a TicketSinkConfig),
    /// An SMS or voice gateway.
    Gateway(GatewayKind, &'a GatewayConfig),
}

impl ChannelType<'_> {
    /// The table name in the config file.
    pub fn name(&self) -> &'static str {
        match self {
            ChannelType::Webhook(_) => "webhook",
            ChannelType::Alertmanager(_) => "alertmanager",
            ChannelType::PagerDuty(_) => "pagerduty",
            ChannelType::Robot(kind, _) => kind.as_str(),
            ChannelType::Email(_) => "email",
            ChannelType::TicketSink(_) => "ticket_sink",
            ChannelType::Gateway(kind, _) => kind.as_str(),
        }
    }

    /// The kinds this type can deliver, which are also its default.
    pub fn supported_kinds(&self) -> &'static [Kind] {
        match self {
            ChannelType::PagerDuty(_) => &[
                Kind::Trigger,
                Kind::Reopen,
                Kind::Acknowledge,
                Kind::Resolve,
            ],
            ChannelType::Alertmanager(_) => &[Kind::Trigger, Kind::Reopen, Kind::Resolve],
            ChannelType::Gateway(kind, _) => kind.supported_kinds(),
            _ => &Kind::ALL,
        }
    }
}

impl ChannelConfig {
    /// The channel's type; `None` only for a config that did not pass [`ChannelConfig::validate`].
    pub fn channel_type(&self) -> Option<ChannelType<'_>> {
        self.types().into_iter().flatten().next()
    }

    fn types(&self) -> [Option<ChannelType<'_>>; 10] {
        [
            self.webhook.as_ref().map(ChannelType::Webhook),
            self.alertmanager.as_ref().map(ChannelType::Alertmanager),
            self.pagerduty.as_ref().map(ChannelType::PagerDuty),
            self.wecom
                .as_ref()
                .map(|c| ChannelType::Robot(RobotKind::WeCom, c)),
            self.dingtalk
                .as_ref()
                .map(|c| ChannelType::Robot(RobotKind::DingTalk, c)),
            self.feishu
                .as_ref()
                .map(|c| ChannelType::Robot(RobotKind::Feishu, c)),
            self.email.as_ref().map(ChannelType::Email),
            self.ticket_sink.as_ref().map(ChannelType::TicketSink),
            self.sms
                .as_ref()
                .map(|c| ChannelType::Gateway(GatewayKind::Sms, c)),
            self.voice
                .as_ref()
                .map(|c| ChannelType::Gateway(GatewayKind::Voice, c)),
        ]
    }

    /// Whether this channel wants `notification` (kind, tag and severity filters).
    pub fn accepts(&self, notification: &Notification) -> bool {
        let kinds: &[Kind] = if self.kinds.is_empty() {
            self.channel_type().map_or(&[], |t| t.supported_kinds())
        } else {
            &self.kinds
        };
        kinds.contains(&notification.kind)
            && (self.tags.is_empty() || notification.tag.is_some_and(|t| self.tags.contains(&t)))
            && self
                .min_severity
                .is_none_or(|min| notification.severity <= min)
    }

    /// Checks one channel; `prefix` is where it sits (`notify.channels[2]`).
    pub fn validate(&self, source: &ConfigSource, prefix: &str) -> Result<(), ConfigError> {
        let valid_name = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_name {
            return Err(source.error(
                &field(prefix, "name"),
                "must be non-empty and use only letters, digits, `-`, `_` and `.`",
            ));
        }
        let types: Vec<ChannelType<'_>> = self.types().into_iter().flatten().collect();
        let channel_type = match types.as_slice() {
            [one] => *one,
            [] => {
                return Err(source.error(
                    prefix,
                    "needs one type table: webhook, alertmanager, pagerduty, wecom, dingtalk, \
                     feishu, email, ticket_sink, sms or voice",
                ));
            }
            [first, second, ..] => {
                return Err(source.error(
                    &field(prefix, second.name()),
                    format!(
                        "a channel has exactly one type, this one has `{}` and `{}`: define \
                         another channel",
                        first.name(),
                        second.name()
                    ),
                ));
            }
        };
        let supported = channel_type.supported_kinds();
        if let Some(kind) = self.kinds.iter().find(|k| !supported.contains(k)) {
            return Err(source.error(
                &field(prefix, "kinds"),
                format!("{} cannot deliver `{kind}`", channel_type.name()),
            ));
        }
        let at = field(prefix, channel_type.name());
        match channel_type {
            ChannelType::Webhook(c) => c.validate(source, &at),
            ChannelType::Alertmanager(c) => c.validate(source, &at),
            ChannelType::PagerDuty(c) => c.validate(source, &at),
            ChannelType::Robot(kind, c) => c.validate(kind, source, &at),
            ChannelType::Email(c) => c.validate(source, &at),
            ChannelType::TicketSink(c) => c.validate(source, &at),
            ChannelType::Gateway(_, c) => c.validate(source, &at),
        }
    }
}

/// An HTTP request ready to send.
#[derive(Clone, PartialEq)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL (may carry a robot's access token: never log it whole).
    pub url: String,
    /// Headers, in order (values may be credentials).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The URL without query or credentials, for logs and errors.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The body as JSON, for tests and checks.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.redacted_url())
            .field("headers", &names)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// `scheme://host:port/path` of a URL: no user info, no query (tokens live there).
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "<invalid url>".to_string(),
    }
}

/// How to judge the response to an [`HttpRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Any 2xx is a delivery.
    Status,
    /// A 2xx whose JSON body has `field` = 0 is a delivery (group robots answer 200 with an error
    /// code in the body).
    BodyCode {
        /// `errcode` (WeCom, DingTalk) or `code` (Feishu).
        field: &'static str,
    },
    /// A 2xx that creates a remote ticket, whose id is at this JSON pointer in the body.
    RemoteId {
        /// JSON pointer (`/key`, `/result/sys_id`).
        pointer: String,
    },
    /// A 2xx search for a remote ticket: its id is at this JSON pointer if one was found.
    Lookup {
        /// JSON pointer (`/issues/0/key`).
        pointer: String,
    },
}

/// What one channel must send for one notification.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    /// An HTTP request and how to judge its response.
    Http {
        /// The request.
        request: HttpRequest,
        /// How to judge the response.
        expect: Expect,
    },
    /// A retried create whose earlier attempt may have created the remote ticket: search for it
    /// first (its id is the delivery's remote id), and create only when none is found.
    Lookup {
        /// The search; judged with [`Expect::Lookup`].
        find: HttpRequest,
        /// Where a found ticket's id is in the search response.
        find_pointer: String,
        /// The create, when nothing was found; judged with [`Expect::RemoteId`].
        create: HttpRequest,
        /// Where the created ticket's id is in the create response.
        id_pointer: String,
    },
    /// An e-mail.
    Email(Vec<email::EmailMessage>),
    /// Nothing to send (no recipients, say); recorded as skipped with this reason.
    Skip(String),
}

/// A failed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Retry or not.
    pub failure: Failure,
    /// What went wrong (never a credential).
    pub message: String,
}

impl Rejection {
    /// A failure that retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            failure: Failure::Permanent,
            message: message.into(),
        }
    }

    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            failure: Failure::Transient,
            message: message.into(),
        }
    }
}

/// What `channel` must send for `notification` at `now_ms` (robot signatures carry the time).
/// `remote_id` is the ticket sink's remote ticket for this dedup key, once created; `attempts` is
/// how many attempts were made before (a retried create searches first). An error is permanent:
/// the notification cannot be rendered for this channel.
pub fn prepare(
    channel: &ChannelConfig,
    notification: &Notification,
    remote_id: Option<&str>,
    attempts: u32,
    now_ms: Millis,
) -> Result<Prepared, Rejection> {
    let Some(channel_type) = channel.channel_type() else {
        return Err(Rejection::permanent("channel has no type"));
    };
    let context = template::context(notification, &channel.name, remote_id);
    let key = idempotency_key(&channel.name, notification);
    match channel_type {
        ChannelType::Webhook(c) => c.request(notification, &context, &key),
        ChannelType::Alertmanager(c) => Ok(c.request(notification, &key)),
        ChannelType::PagerDuty(c) => c.request(notification, &key),
        ChannelType::Robot(kind, c) => c.request(kind, notification, &context, &key, now_ms),
        ChannelType::Email(c) => c.message(&channel.name, notification, &context),
        ChannelType::TicketSink(c) => c.request(notification, &context, &key, remote_id, attempts),
        ChannelType::Gateway(kind, c) => c.request(kind, notification, &context, &key),
    }
}

/// The key of one delivery, sent as `Idempotency-Key` so receivers that honour it drop a retry
/// whose first attempt did arrive.
pub fn idempotency_key(channel: &str, notification: &Notification) -> String {
    format!(
        "{channel}:{}:{}:{}",
        notification.dedup_key, notification.kind, notification.occurrence
    )
}

/// Judges an HTTP response: the remote ticket id for [`Expect::RemoteId`], else `None`.
pub fn interpret(expect: &Expect, status: u16, body: &[u8]) -> Result<Option<String>, Rejection> {
    if !(200..300).contains(&status) {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Err(Rejection {
            failure: classify_status(status),
            message: format!("HTTP {status}: {}", text.trim()),
        });
    }
    match expect {
        Expect::Status => Ok(None),
        Expect::BodyCode { field } => {
            let value: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| Rejection::transient(format!("response is not JSON: {e}")))?;
            match value.get(field).and_then(serde_json::Value::as_i64) {
                Some(0) => Ok(None),
                code => Err(Rejection::transient(format!(
                    "robot answered {field} {}: {}",
                    code.map_or("missing".to_string(), |c| c.to_string()),
                    value
                        .get("errmsg")
                        .or_else(|| value.get("msg"))
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("")
                ))),
            }
        }
        Expect::RemoteId { pointer } => {
            // The remote ticket exists now: whatever goes wrong here must not be retried, or a
            // second ticket would be created.
            let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
                Rejection::permanent(format!(
                    "ticket created but the response is not JSON ({e}); not retried"
                ))
            })?;
            match id_at(&value, pointer) {
                Some(id) => Ok(Some(id)),
                None => Err(Rejection::permanent(format!(
                    "ticket created but no id at `{pointer}` in the response; not retried"
                ))),
            }
        }
        Expect::Lookup { pointer } => {
            let value: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| Rejection::transient(format!("search response is not JSON: {e}")))?;
            Ok(id_at(&value, pointer))
        }
    }
}

/// A non-empty string or a number at `pointer`, as text.
fn id_at(value: &serde_json::Value, pointer: &str) -> Option<String> {
    match value.pointer(pointer) {
        Some(serde_json::Value::String(id)) if !id.is_empty() => Some(id.clone()),
        Some(serde_json::Value::Number(id)) => Some(id.to_string()),
        _ => None,
    }
}

/// A JSON POST with the idempotency key and the configured headers.
pub(crate) fn json_post(
    url: String,
    headers: &BTreeMap<String, Secret>,
    body: &serde_json::Value,
    key: &str,
) -> HttpRequest {
    http_request(
        Method::POST,
        url,
        headers,
        "application/json",
        body.to_string().into_bytes(),
        key,
    )
}

/// A request with the content type, the idempotency key and the configured headers.
pub(crate) fn http_request(
    method: Method,
    url: String,
    headers: &BTreeMap<String, Secret>,
    content_type: &str,
    body: Vec<u8>,
    key: &str,
) -> HttpRequest {
    let mut all = vec![
        ("content-type".to_string(), content_type.to_string()),
        ("idempotency-key".to_string(), key.to_string()),
    ];
    all.extend(
        headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.expose().to_string())),
    );
    HttpRequest {
        method,
        url,
        headers: all,
        body,
    }
}

/// Renders a body template; when the content type is JSON the result must parse as JSON.
pub(crate) fn render_body(
    source: &str,
    context: &serde_json::Value,
    content_type: &str,
    what: &str,
) -> Result<Vec<u8>, Rejection> {
    let body = render(source, context, what)?;
    if content_type.contains("json") {
        serde_json::from_str::<serde_json::Value>(&body)
            .map_err(|e| Rejection::permanent(format!("{what}: rendered body is not JSON: {e}")))?;
    }
    Ok(body.into_bytes())
}

/// Checks a body template: it renders against the sample, and is JSON when the content type is.
pub(crate) fn check_body(
    source: &ConfigSource,
    at: &str,
    text: &str,
    content_type: &str,
) -> Result<(), ConfigError> {
    let context = template::context(&template::sample(), "check", Some("REMOTE-1"));
    render_body(text, &context, content_type, "template")
        .map(drop)
        .map_err(|r| source.error(at, r.message))
}

/// The default content type of templated bodies.
pub(crate) fn default_content_type() -> String {
    "application/json".to_string()
}

/// Renders a template; a failure is permanent (the template cannot render this notification).
pub(crate) fn render(
    source: &str,
    context: &serde_json::Value,
    what: &str,
) -> Result<String, Rejection> {
    template::render(source, context).map_err(|e| Rejection::permanent(format!("{what}: {e}")))
}

/// Checks an http(s) URL field.
pub(crate) fn check_url(source: &ConfigSource, at: &str, url: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        Ok(_) => Err(source.error(at, "must be an http:// or https:// URL with a host")),
        Err(e) => Err(source.error(at, format!("not a URL: {e}"))),
    }
}

/// Checks a template field by rendering it against a sample notification.
pub(crate) fn check_template(
    source: &ConfigSource,
    at: &str,
    text: &str,
) -> Result<(), ConfigError> {
    template::check(text).map_err(|e| source.error(at, format!("template: {e}")))
}

/// Checks a table of extra HTTP headers.
pub(crate) fn check_headers(
    source: &ConfigSource,
    prefix: &str,
    headers: &BTreeMap<String, Secret>,
) -> Result<(), ConfigError> {
    for (name, value) in headers {
        let at = field(&field(prefix, "headers"), name);
        HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| source.error(&at, "not a valid header name"))?;
        HeaderValue::from_str(value.expose())
            .map_err(|_| source.error(&at, "not a valid header value"))?;
    }
    Ok(())
}

/// At most `max` bytes of `text`, cut at a character boundary, with `…` when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpret_table() {
        let status = Expect::Status;
        let code = Expect::BodyCode { field: "errcode" };
        let id = Expect::RemoteId {
            pointer: "/result/id".into(),
        };
        let find = Expect::Lookup {
            pointer: "/issues/0/key".into(),
        };
        // (expect, status, body, expected: Ok(remote id) or Err(failure))
        type Case<'a> = (&'a Expect, u16, &'a str, Result<Option<&'a str>, Failure>);
        let cases: Vec<Case<'_>> = vec![
            (&status, 200, "", Ok(None)),
            (&status, 202, "{}", Ok(None)),
            (&status, 503, "down", Err(Failure::Transient)),
            (&status, 400, "bad", Err(Failure::Permanent)),
            (&status, 429, "", Err(Failure::Transient)),
            (&code, 200, r#"{"errcode":0,"errmsg":"ok"}"#, Ok(None)),
            (&code, 200, r#"{"errcode":45009}"#, Err(Failure::Transient)),
            (&code, 200, "not json", Err(Failure::Transient)),
            (&id, 201, r#"{"result":{"id":"OPS-7"}}"#, Ok(Some("OPS-7"))),
            (&id, 201, r#"{"result":{"id":42}}"#, Ok(Some("42"))),
            (&id, 201, r#"{"result":{}}"#, Err(Failure::Permanent)),
            (&id, 201, "html", Err(Failure::Permanent)),
            (&id, 502, "", Err(Failure::Transient)),
            (
                &find,
                200,
                r#"{"issues":[{"key":"OPS-3"}]}"#,
                Ok(Some("OPS-3")),
            ),
            (&find, 200, r#"{"issues":[]}"#, Ok(None)),
            (&find, 200, "<html>", Err(Failure::Transient)),
            (&find, 401, "", Err(Failure::Permanent)),
        ];
        for (expect, status, body, want) in cases {
            let got = interpret(expect, status, body.as_bytes());
            let got = got.as_ref().map(|o| o.as_deref()).map_err(|r| r.failure);
            assert_eq!(got, want, "{expect:?} {status} {body}");
        }
    }

    #[test]
    fn truncate_and_redact() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcdef", 5), "ab…");
        assert_eq!(truncate("ééé", 5), "é…");
        assert_eq!(
            redact_url("https://user:pw@oapi.example:8443/robot/send?access_token=SECRET"),
            "https://oapi.example:8443/robot/send"
        );
    }
}
