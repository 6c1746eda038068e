//! `[reports]`: the scheduled management report mail (config → **reports**).

use faultline_notify::channel::email::EmailConfig;
use faultline_notify::config::NotifyConfig;
use faultline_report::Schedule;
use faultline_wire::config_file::{ConfigError, ConfigSource};
use jiff::tz::TimeZone;
use serde::Deserialize;

/// `[reports]`: mail the management report of every month or ISO week, once, soon after the
/// period ends (in `time_zone`), as an HTML body with the CSV attached, through the SMTP server
/// and sender of an e-mail channel of `[[notify.channels]]`. Needs `[incidents]`.
///
/// ```toml
/// [reports]
/// schedule = "monthly"            # or "weekly" (ISO weeks, Monday to Sunday)
/// to = ["cio@gov.example"]
/// channel = "mail"                # a [[notify.channels]] entry with an `email` table
/// time_zone = "Asia/Shanghai"     # default: api.time_zone, else UTC
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// `monthly` or `weekly`.
    pub schedule: Schedule,
    /// Recipients.
    pub to: Vec<String>,
    /// The `[[notify.channels]]` e-mail channel whose SMTP server and sender are used.
    pub channel: String,
    /// The IANA time zone periods are counted in; default: `api.time_zone`, else UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// A time zone by IANA name, UTC for none.
pub fn zone(name: Option<&str>) -> Result<TimeZone, String> {
    name.map_or(Ok(TimeZone::UTC), |name| {
        TimeZone::get(name).map_err(|_| {
            format!("`{name}` is not a known IANA time zone (e.g. Asia/Shanghai, UTC)")
        })
    })
}

impl ReportsConfig {
    /// The e-mail channel named by `channel`.
    pub fn email<'a>(&self, notify: &'a NotifyConfig) -> Option<&'a EmailConfig> {
        notify
            .channels
            .iter()
            .find(|c| c.name == self.channel)
            .and_then(|c| c.email.as_ref())
    }

    /// Checks the section against the rest of the config; `incidents` says whether
    /// `[incidents]` is present.
    pub fn validate(
        &self,
        source: &ConfigSource,
        notify: &NotifyConfig,
        incidents: bool,
    ) -> Result<(), ConfigError> {
        if !incidents {
            return Err(source.error(
                "reports",
                "reports are made from tickets: add an `[incidents]` section",
            ));
        }
        if self.to.is_empty() {
            return Err(source.error("reports.to", "no recipients"));
        }
        if let Err((i, problem)) = faultline_notify::report_mail::check_recipients(&self.to) {
            return Err(source.error(&format!("reports.to[{i}]"), problem));
        }
        if self.email(notify).is_none() {
            return Err(source.error(
                "reports.channel",
                format!(
                    "`{}` is not an e-mail channel of [[notify.channels]]",
                    self.channel
                ),
            ));
        }
        if let Err(problem) = zone(self.time_zone.as_deref()) {
            return Err(source.error("reports.time_zone", problem));
        }
        Ok(())
    }
}
