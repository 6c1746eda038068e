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
//! `dingtalk`, `feishu`, `email`, `ticket_sink`, `sms` or `voice` (each channel module owns its
//! table's type; [`ChannelConfig`] lives with them in [`crate::channel`]). [`NotifyConfig::validate`] reports problems with
//! the file, line and field, and renders every template once so a typo fails at load time.

use crate::channel::ChannelConfig;
use crate::model::Notification;
use crate::path::field;
use crate::retry::RetryPolicy;
use faultline_wire::config_file::{ConfigError, ConfigSource};
use serde::Deserialize;
use std::collections::BTreeSet;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use crate::template::sample;
    use faultline_incidents::Severity;
    use faultline_incidents::inventory::Owner;
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
            (
                "[[notify.channels]]\nname = \"s\"\n[notify.channels.sms]\nurl = \"https://sms.example/send\"\nto = [\"+8613800000000\", \"call me\"]\n"
                    .into(),
                Some(("notify.channels[0].sms.to[1]", 5)),
            ),
            (
                "[[notify.channels]]\nname = \"s\"\n[notify.channels.voice]\nurl = \"https://voice.example/call\"\nmessage = \"{{ summry }}\"\n"
                    .into(),
                Some(("notify.channels[0].voice.message", 5)),
            ),
            (
                "[[notify.channels]]\nname = \"s\"\n[notify.channels.sms]\nurl = \"https://sms.example/send\"\nbody = \"{{ phone }}\"\n"
                    .into(),
                Some(("notify.channels[0].sms.body", 5)),
            ),
            (
                "[[notify.channels]]\nname = \"s\"\nkinds = [\"progress\"]\n[notify.channels.voice]\nurl = \"https://voice.example/call\"\n"
                    .into(),
                Some(("notify.channels[0].kinds", 3)),
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
        assert_eq!(config.channels.len(), 9);
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
                "ticket_sink",
                "sms"
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
        assert_eq!(with(&|n| n.tag = Some(Owner::Platform)), ["all"]);
        assert_eq!(with(&|n| n.kind = Kind::Progress), ["all"]);
    }
}
