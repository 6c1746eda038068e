//! The `[notify]` section of the collector's config file (… → incidents → **notifications**).
//!
//! ```toml
//! [notify.retry]
//! initial = "5s"
//! max = "10m"
//!
//! [[notify.channels]]
//! name = "oncall"
//! kinds = ["trigger", "acknowledge", "resolve"]
//! tags = ["platform", "carrier"]
//! min_severity = "P2"
//! [notify.channels.pagerduty]
//! routing_key = "R0UTINGKEY"
//! ```
//!
//! Each channel names exactly one type table: `webhook`, `alertmanager`, `pagerduty`, `wecom`,
//! `dingtalk`, `feishu`, `email` or `ticket_sink`. [`NotifyConfig::validate`] reports problems with
//! the file, line and field, and renders every template once so a typo fails at load time.

use crate::channel::alertmanager::AlertmanagerConfig;
use crate::channel::email::EmailConfig;
use crate::channel::pagerduty::PagerDutyConfig;
use crate::channel::robot::{RobotConfig, RobotKind};
use crate::channel::ticket_sink::TicketSinkConfig;
use crate::channel::webhook::WebhookConfig;
use crate::model::{Kind, Notification};
use crate::retry::RetryPolicy;
use faultline_incidents::Severity;
use faultline_incidents::inventory::Owner;
use faultline_wire::config_file::{ConfigError, ConfigSource};
use serde::Deserialize;
use std::collections::BTreeSet;

/// `prefix.name`, or `name` when the prefix is empty.
pub(crate) fn field(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Outgoing notifications: how they are retried and where they go.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Retry and pacing of deliveries (`[notify.retry]`).
    pub retry: RetryPolicy,
    /// Where notifications go (`[[notify.channels]]`); none by default.
    pub channels: Vec<ChannelConfig>,
}

impl NotifyConfig {
    /// Checks the section after parsing; `prefix` is where it sits in the file (`notify`).
    pub fn validate(&self, source: &ConfigSource, prefix: &str) -> Result<(), ConfigError> {
        self.retry.validate(source, &field(prefix, "retry"))?;
        let mut names = BTreeSet::new();
        for (i, channel) in self.channels.iter().enumerate() {
            let at = field(prefix, &format!("channels[{i}]"));
            channel.validate(source, &at)?;
            if !names.insert(channel.name.as_str()) {
                return Err(source.error(
                    &field(&at, "name"),
                    format!("channel `{}` is defined twice", channel.name),
                ));
            }
        }
        Ok(())
    }

    /// The channels that want `notification`.
    pub fn route(&self, notification: &Notification) -> Vec<&ChannelConfig> {
        self.channels
            .iter()
            .filter(|c| c.accepts(notification))
            .collect()
    }
}

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
            _ => &Kind::ALL,
        }
    }
}

impl ChannelConfig {
    /// The channel's type; `None` only for a config that did not pass [`ChannelConfig::validate`].
    pub fn channel_type(&self) -> Option<ChannelType<'_>> {
        self.types().into_iter().flatten().next()
    }

    fn types(&self) -> [Option<ChannelType<'_>>; 8] {
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
            && (self.tags.is_empty() || self.tags.contains(&notification.tag))
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
                     feishu, email or ticket_sink",
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::sample;
    use std::path::Path;

    #[derive(Deserialize)]
    struct File {
        notify: NotifyConfig,
    }

    fn load(text: &str) -> Result<NotifyConfig, ConfigError> {
        let source = ConfigSource::from_text(Path::new("collector.toml"), text.to_string());
        let file: File = source.parse()?;
        file.notify.validate(&source, "notify")?;
        Ok(file.notify)
    }

    const PD: &str =
        "[[notify.channels]]\nname = \"pd\"\n[notify.channels.pagerduty]\nrouting_key = \"k\"\n";

    #[test]
    fn validation_table() {
        // (file text, expected error: field and line)
        let cases: Vec<(String, Option<(&str, usize)>)> = vec![
            (PD.to_string(), None),
            (
                "[[notify.channels]]\nname = \"x\"\n".into(),
                Some(("notify.channels[0]", 1)),
            ),
            (
                "[[notify.channels]]\nname = \"bad name\"\n[notify.channels.webhook]\nurl = \"http://h/\"\n"
                    .into(),
                Some(("notify.channels[0].name", 2)),
            ),
            (
                format!("{PD}[notify.channels.webhook]\nurl = \"http://h/\"\n"),
                Some(("notify.channels[0].pagerduty", 3)),
            ),
            (
                format!("{PD}{PD}"),
                Some(("notify.channels[1].name", 6)),
            ),
            (
                "[[notify.channels]]\nname = \"pd\"\nkinds = [\"progress\"]\n[notify.channels.pagerduty]\nrouting_key = \"k\"\n"
                    .into(),
                Some(("notify.channels[0].kinds", 3)),
            ),
            (
                "[[notify.channels]]\nname = \"pd\"\nkinds = [\"paging\"]\n".into(),
                Some(("notify.channels[0].kinds[0]", 3)),
            ),
            (
                "[[notify.channels]]\nname = \"w\"\n[notify.channels.webhook]\nurl = \"not a url\"\n"
                    .into(),
                Some(("notify.channels[0].webhook.url", 4)),
            ),
            (
                "[[notify.channels]]\nname = \"w\"\n[notify.channels.webhook]\nurl = \"http://h/\"\nbody = \"{{ summry }}\"\n"
                    .into(),
                Some(("notify.channels[0].webhook.body", 5)),
            ),
            (
                "[notify.retry]\njitter = 2.0\n".into(),
                Some(("notify.retry.jitter", 2)),
            ),
            (
                "[[notify.channels]]\nname = \"w\"\n[notify.channels.wecom]\nurl = \"https://qyapi.example/send?key=k\"\nsecret = \"s\"\n"
                    .into(),
                Some(("notify.channels[0].wecom.secret", 5)),
            ),
            (
                "[[notify.channels]]\nname = \"m\"\n[notify.channels.email]\nhost = \"smtp\"\nfrom = \"f@example.com\"\nusername = \"u\"\n"
                    .into(),
                Some(("notify.channels[0].email.username", 6)),
            ),
            (
                "[[notify.channels]]\nname = \"m\"\n[notify.channels.email]\nhost = \"smtp\"\nfrom = \"f@example.com\"\nmailbox = [\"ok@example.com\", \"not an address\"]\n"
                    .into(),
                Some(("notify.channels[0].email.mailbox[1]", 6)),
            ),
            (
                "[[notify.channels]]\nname = \"pd\"\n[notify.channels.pagerduty]\nrouting_key = \" \"\n"
                    .into(),
                Some(("notify.channels[0].pagerduty.routing_key", 4)),
            ),
        ];
        for (text, want) in cases {
            let got = load(&text).err();
            assert_eq!(
                got.as_ref()
                    .map(|e| (e.field.as_str(), e.position.map_or(0, |p| p.0))),
                want,
                "{text}\n{got:?}"
            );
        }
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let config = load(include_str!("../notify.example.toml")).unwrap();
        assert_eq!(config.channels.len(), 8);
        let types: Vec<&str> = config
            .channels
            .iter()
            .filter_map(|c| c.channel_type().map(|t| t.name()))
            .collect();
        assert_eq!(
            types,
            [
                "pagerduty",
                "alertmanager",
                "webhook",
                "dingtalk",
                "wecom",
                "feishu",
                "email",
                "ticket_sink"
            ]
        );
    }

    #[test]
    fn routing_filters_kind_tag_and_severity() {
        let config = load(
            "[[notify.channels]]\nname = \"pd\"\ntags = [\"carrier\"]\nmin_severity = \"P2\"\n\
             [notify.channels.pagerduty]\nrouting_key = \"k\"\n\
             [[notify.channels]]\nname = \"all\"\n[notify.channels.webhook]\nurl = \"http://h/\"\n",
        )
        .unwrap();
        let base = sample(); // carrier, P2, trigger
        let with = |f: &dyn Fn(&mut Notification)| {
            let mut n = base.clone();
            f(&mut n);
            config
                .route(&n)
                .into_iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(with(&|_| {}), ["pd", "all"]);
        assert_eq!(with(&|n| n.severity = Severity::P1), ["pd", "all"]);
        assert_eq!(with(&|n| n.severity = Severity::P3), ["all"]);
        assert_eq!(with(&|n| n.tag = Owner::Platform), ["all"]);
        assert_eq!(with(&|n| n.kind = Kind::Progress), ["all"]);
    }
}
