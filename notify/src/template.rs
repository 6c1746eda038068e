//! User-provided and default templates (… → incidents → **notifications**).
//!
//! Payload, body, subject and markdown templates are minijinja templates rendered against one
//! [`Notification`]: its fields at the top level (`summary`, `severity`, `tag`, `reason`,
//! `ticket_id`, `role`, `contacts`, `paged`, `links`, `ack_url` …) plus `kind_title`, `started_at` and `at` (RFC 3339),
//! `channel` and — for the ticket sink — `remote_id`. Undefined variables are errors, and every
//! template is rendered once against a sample notification when the config is validated, so a
//! typo is reported at load time with the field it is in.

use crate::model::{Kind, Notification};
use faultline_incidents::Millis;
use faultline_incidents::Severity;
use faultline_incidents::inventory::{Contact, Owner};
use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;
use std::time::{Duration, UNIX_EPOCH};

/// Default markdown for the group robots.
pub const DEFAULT_MARKDOWN: &str = "\
### [{{ kind_title }}] {{ summary }}
- **Ticket**: #{{ ticket_id }} · {{ severity }}
- **Responsibility**: {{ tag }} — {{ reason }}
- **Target**: {{ target }}{% if role %} ({{ role }}){% endif %} (rule {{ rule }})
- **Started**: {{ started_at }}
- **Event**: {{ at }}{% if actor != \"faultline\" %} by {{ actor }}{% endif %}

{{ details }}
{% for link in links %}
[{{ link.title }}]({{ link.url }})
{% endfor %}{% if ack_url %}
[Acknowledge]({{ ack_url }})
{% endif %}";

/// Default one-line title (robot card titles, e-mail subjects).
pub const DEFAULT_TITLE: &str =
    "[Faultline #{{ ticket_id }} {{ severity }} {{ tag }}] {{ kind_title }}: {{ summary }}";

/// Default plain-text e-mail body.
pub const DEFAULT_TEXT: &str = "\
{{ kind_title }}: {{ summary }}

Ticket:          #{{ ticket_id }} ({{ severity }})
Responsibility:  {{ tag }} — {{ reason }}
Target:          {{ target }}{% if role %} ({{ role }}){% endif %} (rule {{ rule }})
Fault started:   {{ started_at }}
This event:      {{ at }}{% if actor != \"faultline\" %} by {{ actor }}{% endif %}

{{ details }}
{% for link in links %}
{{ link.title }}: {{ link.url }}
{%- endfor %}
";

/// RFC 3339 text of a time in ms since the Unix epoch (times before 1970 show as the epoch).
pub fn rfc3339(ms: Millis) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The variables a template sees for `notification`.
pub fn context(notification: &Notification, channel: &str, remote_id: Option<&str>) -> Value {
    let mut value = serde_json::to_value(notification).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("kind_title".into(), notification.kind.title().into());
        map.insert(
            "started_at".into(),
            rfc3339(notification.started_at_ms).into(),
        );
        map.insert("at".into(), rfc3339(notification.at_ms).into());
        map.insert("channel".into(), channel.into());
        map.insert("remote_id".into(), remote_id.into());
    }
    value
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// Renders `source` against a [`context`]; the error is minijinja's message.
pub fn render(source: &str, context: &Value) -> Result<String, String> {
    environment()
        .render_str(source, context)
        .map_err(|e| format!("{e:#}"))
}

/// A notification with every field set, for checking templates at load time.
pub fn sample() -> Notification {
    Notification {
        dedup_key: "faultline-ticket-1".into(),
        occurrence: 0,
        kind: Kind::Trigger,
        ticket_id: 1,
        severity: Severity::P2,
        tag: Some(Owner::Carrier),
        reason: "carrier edge unreachable while our interface is up".into(),
        summary: "uplink-1 down".into(),
        details: "no light from the carrier".into(),
        rule: "LinkDown".into(),
        target: "uplink-1".into(),
        role: Some(faultline_incidents::inventory::TargetRole::Link),
        started_at_ms: 1_795_850_000_000,
        at_ms: 1_795_850_060_000,
        actor: "faultline".into(),
        assignee: Some("ana".into()),
        escalation_level: 0,
        contacts: vec![Contact {
            name: "Li".into(),
            email: Some("li@example.com".into()),
            phone: None,
        }],
        paged: vec![Contact {
            name: "Ana".into(),
            email: Some("ana@example.com".into()),
            phone: Some("13800000000".into()),
        }],
        links: vec![crate::model::Link {
            title: "ticket".into(),
            url: "https://faultline.example/tickets/1".into(),
        }],
        ack_url: Some("https://faultline.example/api/v1/ack/v1.1.0.YW5h.c2ln".into()),
        followup: None,
        carrier: Some(faultline_incidents::ticket::CarrierReport {
            circuit: "uplink-1".into(),
            carrier: "ACME Telecom".into(),
            circuit_id: "ACME-SH-0042".into(),
            a_end: "edge1-wan".into(),
            z_end: "ACME POP Shanghai-3".into(),
            contacts: vec![Contact {
                name: "ACME NOC".into(),
                email: Some("noc@acme.example".into()),
                phone: None,
            }],
            evidence: vec!["Our side edge1: no fault of its own, last sample 1 s ago".into()],
        }),
        customer: crate::model::CustomerView::default(),
        reporter: None,
    }
}

/// Checks that `source` compiles and renders against the [`sample`] notification.
pub fn check(source: &str) -> Result<(), String> {
    render(source, &context(&sample(), "check", Some("REMOTE-1"))).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_render_the_essentials() {
        let ctx = context(&sample(), "ops", None);
        let md = render(DEFAULT_MARKDOWN, &ctx).unwrap();
        for want in [
            "### [Opened] uplink-1 down",
            "#1 · P2",
            "carrier — carrier edge",
            "2026-11-28T",
            "[ticket](https://faultline.example/tickets/1)",
        ] {
            assert!(md.contains(want), "{want} missing in\n{md}");
        }
        assert_eq!(
            render(DEFAULT_TITLE, &ctx).unwrap(),
            "[Faultline #1 P2 carrier] Opened: uplink-1 down"
        );
        assert!(
            render(DEFAULT_TEXT, &ctx)
                .unwrap()
                .contains("ticket: https://")
        );
    }

    #[test]
    fn check_table() {
        let cases = [
            ("{{ summary }}", true),
            ("{{ remote_id }}/{{ channel }}", true),
            ("{{ summary | tojson }}", true),
            ("{{ sumary }}", false),
            ("{% if %}", false),
            ("{{ contacts[0].email }}", true),
        ];
        for (source, ok) in cases {
            assert_eq!(check(source).is_ok(), ok, "{source}: {:?}", check(source));
        }
    }

    #[test]
    fn rfc3339_table() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_850_538_999), "2026-11-28T07:22:18.999Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00.000Z");
    }
}
