//! Rendering for the ticket console ([`super`]): the embedded minijinja templates, the message
//! catalogue of each language (one TOML table per language), local times in the configured time
//! zone, and the views of tickets the templates read. Pure functions of a ticket: the department
//! view is decided here (which timeline entries a customer sees), the pages only choose it.

use faultline_incidents::{Millis, Ticket};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use minijinja::Environment;
use serde::Serialize;
use std::collections::BTreeMap;
use thiserror::Error;

/// A console language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Lang {
    /// English.
    #[serde(rename = "en")]
    En,
    /// Simplified Chinese.
    #[serde(rename = "zh-CN")]
    Zh,
}

impl Lang {
    /// The language of a `lang` cookie value or an `Accept-Language` tag.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let tag = tag.trim().to_ascii_lowercase();
        if tag.starts_with("zh") {
            Some(Lang::Zh)
        } else if tag.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The first language of an `Accept-Language` header the console speaks; English otherwise.
    pub fn negotiate(accept_language: Option<&str>) -> Self {
        let mut ranked: Vec<(f32, Lang)> = accept_language
            .unwrap_or_default()
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let lang = Lang::from_tag(parts.next()?)?;
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse().ok())
                    .unwrap_or(1.0);
                Some((q, lang))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranked.first().map_or(Lang::En, |(_, lang)| *lang)
    }

    /// The tag used in the cookie and `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }
}

/// Why the console could not be set up or a page not rendered.
#[derive(Debug, Error)]
pub enum RenderError {
    /// A message catalogue is not a flat TOML table of strings.
    #[error("message catalogue {lang}: {source}")]
    Catalogue {
        /// Which.
        lang: &'static str,
        /// Why.
        source: toml::de::Error,
    },
    /// A template failed to load or render.
    #[error("template: {0}")]
    Template(#[from] minijinja::Error),
    /// `api.time_zone` is not a known IANA time zone.
    #[error("api.time_zone `{0}`: not a known IANA time zone (e.g. Asia/Shanghai, UTC)")]
    TimeZone(String),
}

const TEMPLATES: [(&str, &str); 7] = [
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("queue.html", include_str!("templates/queue.html")),
    ("ticket.html", include_str!("templates/ticket.html")),
    ("new.html", include_str!("templates/new.html")),
    ("link.html", include_str!("templates/link.html")),
    ("error.html", include_str!("templates/error.html")),
];

/// Templates, messages and the time zone.
pub struct Renderer {
    env: Environment<'static>,
    en: BTreeMap<String, String>,
    zh: BTreeMap<String, String>,
    zone: TimeZone,
}

impl Renderer {
    /// Loads the embedded templates and catalogues; `time_zone` is an IANA name (default UTC).
    pub fn new(time_zone: Option<&str>) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        let catalogue = |lang: &'static str, text: &str| {
            toml::from_str(text).map_err(|source| RenderError::Catalogue { lang, source })
        };
        let zone = match time_zone {
            None => TimeZone::UTC,
            Some(name) => {
                TimeZone::get(name).map_err(|_| RenderError::TimeZone(name.to_string()))?
            }
        };
        Ok(Self {
            env,
            en: catalogue("en", include_str!("messages/en.toml"))?,
            zh: catalogue("zh-CN", include_str!("messages/zh-CN.toml"))?,
            zone,
        })
    }

    /// The messages of a language.
    pub fn messages(&self, lang: Lang) -> &BTreeMap<String, String> {
        match lang {
            Lang::En => &self.en,
            Lang::Zh => &self.zh,
        }
    }

    /// Renders `template` with `context` (which the page gives `m`, the messages, and `lang`).
    pub fn render(&self, template: &str, context: minijinja::Value) -> Result<String, RenderError> {
        Ok(self.env.get_template(template)?.render(context)?)
    }

    /// A time as the console shows it: `2026-12-07 18:40 (UTC+08:00)`, in the configured zone.
    pub fn local(&self, ms: Millis) -> String {
        Timestamp::from_millisecond(ms)
            .map(|t| {
                t.to_zoned_datetime(self.zone.clone())
                    .strftime("%Y-%m-%d %H:%M (UTC%:z)")
                    .to_string()
            })
            .unwrap_or_else(|_| ms.to_string())
    }

    /// The queue row of a ticket.
    pub fn row(&self, ticket: &Ticket) -> Row {
        Row {
            id: ticket.id,
            summary: ticket.summary.clone(),
            target: ticket.target.clone(),
            state: ticket.state.as_str(),
            tag: faultline_incidents::inventory::tag_label(ticket.tag).to_string(),
            channel: ticket.channel.as_str(),
            severity: format!("{:?}", ticket.severity),
            departments: ticket
                .customers
                .iter()
                .map(|c| c.department.clone())
                .collect::<Vec<_>>()
                .join(", "),
            assignee: ticket.assignee.clone().unwrap_or_default(),
            opened: self.local(ticket.opened_at_ms),
        }
    }

    /// The ticket page's view; `department`: the department view (customer-facing entries only,
    /// no evidence).
    pub fn detail(&self, ticket: &Ticket, department: bool) -> Detail {
        let timeline = ticket
            .timeline
            .iter()
            .filter(|entry| !department || customer_facing(&entry.change))
            .map(|entry| {
                let mut value = serde_json::to_value(&entry.change).unwrap_or_default();
                let kind = value
                    .get("type")
                    .and_then(|v| v.as_str())
                    .unwrap_or("unknown")
                    .to_string();
                if let Some(map) = value.as_object_mut() {
                    map.remove("type");
                    // A department reads what was said to it, not the internal fields.
                    if department {
                        map.retain(|key, _| matches!(key.as_str(), "text" | "note"));
                    }
                }
                Entry {
                    at: self.local(entry.at_ms),
                    who: entry.who.clone(),
                    kind,
                    details: details(&value),
                    attachments: kept_attachments(&entry.change),
                }
            })
            .collect();
        let evidence = (!department)
            .then_some(ticket.evidence.as_ref())
            .flatten()
            .map(|e| EvidenceView {
                rule: e.rule.clone(),
                target: e.target.clone(),
                value: e.value,
                started: self.local(e.started_at_ms),
                fired: self.local(e.fired_at_ms),
                chain: e.chain.join(" → "),
                role: e
                    .role
                    .and_then(|r| serde_json::to_value(r).ok())
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                labels: e
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        let time = |ms: Option<Millis>| ms.map(|ms| self.local(ms)).unwrap_or_default();
        Detail {
            row: self.row(ticket),
            description: ticket.description.clone(),
            reason: if department {
                String::new()
            } else {
                ticket.reason.clone()
            },
            started: self.local(ticket.started_at_ms),
            acknowledged: time(ticket.acknowledged_at_ms),
            resolved: time(ticket.resolved_at_ms),
            closed: time(ticket.closed_at_ms),
            respond_by: self.local(ticket.respond_by_ms),
            resolve_by: self.local(ticket.resolve_by_ms),
            callback_due: time(ticket.callback_due_ms),
            carrier_reported: ticket.carrier_reported(),
            evidence,
            timeline,
        }
    }
}

/// What a department sees of the timeline: its updates, the resolution and the call-back.
fn customer_facing(change: &faultline_incidents::Change) -> bool {
    use faultline_incidents::Change;
    matches!(
        change,
        Change::Opened { .. }
            | Change::ProgressPosted { .. }
            | Change::ProgressOverdue { .. }
            | Change::Resolved { .. }
            | Change::CallbackDue { .. }
            | Change::CallbackRecorded { .. }
            | Change::Closed { .. }
    )
}

/// The attachments of a mail on the timeline that were kept (those have a number to download).
fn kept_attachments(change: &faultline_incidents::Change) -> Vec<AttachmentLink> {
    let faultline_incidents::Change::MailReceived { mail } = change else {
        return Vec::new();
    };
    mail.attachments
        .iter()
        .filter_map(|a| {
            a.number.map(|number| AttachmentLink {
                number,
                name: a.name.clone(),
                size: a.size,
            })
        })
        .collect()
}

/// The fields of a timeline change as `name: value` text (contact lists by name; a nested
/// record, such as a carrier report, field by field).
fn details(value: &serde_json::Value) -> Vec<String> {
    let Some(map) = value.as_object() else {
        return Vec::new();
    };
    map.iter()
        .flat_map(|(key, v)| {
            let text = match v {
                serde_json::Value::Object(_) => return details(v),
                serde_json::Value::Null => return Vec::new(),
                serde_json::Value::String(s) if s.is_empty() => return Vec::new(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) if items.is_empty() => return Vec::new(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|item| {
                        item.get("name")
                            .and_then(|n| n.as_str())
                            .map_or_else(|| item.to_string(), str::to_string)
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            vec![format!("{key}: {text}")]
        })
        .collect()
}

/// One line of the queue.
#[derive(Debug, Serialize)]
pub struct Row {
    id: u64,
    summary: String,
    target: String,
    state: &'static str,
    tag: String,
    channel: &'static str,
    severity: String,
    departments: String,
    assignee: String,
    opened: String,
}

/// One timeline entry.
#[derive(Debug, Serialize)]
pub struct Entry {
    at: String,
    who: String,
    kind: String,
    details: Vec<String>,
    attachments: Vec<AttachmentLink>,
}

/// A kept attachment of a timeline entry, linked for download.
#[derive(Debug, Serialize)]
pub struct AttachmentLink {
    number: u32,
    name: String,
    size: u64,
}

/// The attribution evidence.
#[derive(Debug, Serialize)]
pub struct EvidenceView {
    rule: String,
    target: String,
    value: f64,
    started: String,
    fired: String,
    chain: String,
    role: String,
    labels: String,
}

/// The ticket page.
#[derive(Debug, Serialize)]
pub struct Detail {
    row: Row,
    description: String,
    reason: String,
    started: String,
    acknowledged: String,
    resolved: String,
    closed: String,
    respond_by: String,
    resolve_by: String,
    callback_due: String,
    /// Reported to a carrier: the carrier's response can be recorded.
    carrier_reported: bool,
    evidence: Option<EvidenceView>,
    timeline: Vec<Entry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_local_and_readable() {
        let shanghai = Renderer::new(Some("Asia/Shanghai")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            shanghai.local(1_796_601_600_000),
            "2026-12-07 08:00 (UTC+08:00)"
        );
        let utc = Renderer::new(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(utc.local(1_796_601_600_000), "2026-12-07 00:00 (UTC+00:00)");
        assert!(matches!(
            Renderer::new(Some("Mars/Olympus")),
            Err(RenderError::TimeZone(_))
        ));
    }

    #[test]
    fn catalogues_have_the_same_keys() {
        let r = Renderer::new(None).unwrap_or_else(|e| panic!("{e}"));
        let en: Vec<_> = r.messages(Lang::En).keys().collect();
        let zh: Vec<_> = r.messages(Lang::Zh).keys().collect();
        assert_eq!(en, zh);
        assert!(r.messages(Lang::Zh).values().all(|v| !v.is_empty()));
    }

    #[test]
    fn languages_follow_accept_language() {
        assert_eq!(Lang::negotiate(Some("zh-CN,zh;q=0.9,en;q=0.8")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("en-GB,zh;q=0.5")), Lang::En);
        assert_eq!(Lang::negotiate(Some("fr, zh;q=0.3")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("fr")), Lang::En);
        assert_eq!(Lang::negotiate(None), Lang::En);
    }
}
