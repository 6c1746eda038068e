//! Customer messages (incidents → notifications → **customer wording** → e-mail): what a
//! department's contacts read about a fault, in the department's language (English or
//! Simplified Chinese). Written only from a notification's [`CustomerView`] and times — what is
//! affected, what is being done, the latest update engineers posted for customers, when the
//! next update comes — never from the responsibility reason, the evidence chain, the rule or an
//! engineer's internal comments, which stay in the engineers' messages.

use crate::model::{CustomerView, Kind, Notification};
use faultline_incidents::inventory::Language;
use faultline_incidents::ticket::Customer;
use faultline_incidents::{Millis, format_time};
use serde_json::{Value, json};

/// Built-in subject template (the `headline` is chosen by the event and language).
pub const SUBJECT: &str = "[{{ ticket_label }} #{{ ticket_id }}] {{ headline }}";

/// Built-in English body template.
pub const BODY_EN: &str = "\
Dear {{ department }},

{{ message }}

Affected systems: {{ affected | join(\", \") }}
Ticket:           #{{ ticket_id }}
Fault started:    {{ started_at }}
{%- if not resolved %}
Ongoing for:      {{ elapsed }}{% endif %}
{%- if note %}

Latest update from our engineers:
{{ note }}{% endif %}
{%- if next_update_at and not resolved %}

Next update by {{ next_update_at }}.{% endif %}

Faultline service desk
";

/// Built-in Simplified Chinese body template.
pub const BODY_ZH: &str = "\
{{ department }}：

{{ message }}

受影响的系统：{{ affected | join(\"、\") }}
工单编号：#{{ ticket_id }}
故障开始时间：{{ started_at }}
{%- if not resolved %}
已持续：{{ elapsed }}{% endif %}
{%- if note %}

工程师最新进展：
{{ note }}{% endif %}
{%- if next_update_at and not resolved %}

下次进展通报时间：{{ next_update_at }}。{% endif %}

Faultline 运维服务台
";

/// The built-in body template of `language`.
pub fn body(language: Language) -> &'static str {
    match language {
        Language::En => BODY_EN,
        Language::ZhCn => BODY_ZH,
    }
}

/// What the event means for the customer: (headline, message), in `language`.
fn wording(kind: Kind, view: &CustomerView, language: Language) -> (&'static str, &'static str) {
    let first = view.first_notice;
    match (language, kind) {
        (Language::En, Kind::Reopen) => (
            "The disruption affecting your systems is back",
            "The fault that affected your systems has returned. Our engineers are working on it \
             and will keep you informed.",
        ),
        (Language::En, Kind::Resolve) => (
            "Resolved: service disruption affecting your systems",
            "The fault that affected your systems has been resolved. If anything still does not \
             work as expected, please reply to this message or call the service desk.",
        ),
        (Language::En, _) if first => (
            "Service disruption affecting your systems",
            "We have detected a fault that affects your systems. Our engineers are working on it \
             and will keep you informed until it is resolved.",
        ),
        (Language::En, _) => (
            "Update on the service disruption",
            "Our engineers are still working on the fault that affects your systems.",
        ),
        (Language::ZhCn, Kind::Reopen) => (
            "故障再次出现",
            "此前影响贵单位系统的故障再次出现，工程师正在处理，我们会持续向您通报进展。",
        ),
        (Language::ZhCn, Kind::Resolve) => (
            "故障已恢复",
            "影响贵单位系统的故障已恢复。如仍有异常，请回复本邮件或致电运维服务台。",
        ),
        (Language::ZhCn, _) if first => (
            "服务故障通知",
            "我们监测到一项影响贵单位系统的故障，工程师正在处理，我们会持续向您通报进展，直至故障恢复。",
        ),
        (Language::ZhCn, _) => ("故障处理进展", "工程师仍在处理影响贵单位系统的故障。"),
    }
}

/// A duration as people say it, in `language`: `1 h 25 min`, `1小时25分钟`.
fn elapsed(ms: Millis, language: Language) -> String {
    let minutes = ms.max(0) / 60_000;
    let (h, m) = (minutes / 60, minutes % 60);
    match (language, h) {
        (Language::En, 0) => format!("{m} min"),
        (Language::En, _) => format!("{h} h {m} min"),
        (Language::ZhCn, 0) => format!("{m}分钟"),
        (Language::ZhCn, _) => format!("{h}小时{m}分钟"),
    }
}

/// The variables a customer template sees for `notification` and department `customer`:
/// `department`, `affected`, `ticket_id`, `ticket_label`, `headline`, `message`, `started_at`,
/// `elapsed`, `resolved`, `note`, `next_update_at`, `language`.
pub fn context(notification: &Notification, customer: &Customer) -> Value {
    let n = notification;
    let view = &n.customer;
    let language = customer.language;
    let (headline, message) = wording(n.kind, view, language);
    let resolved = n.kind == Kind::Resolve || matches!(view.state.as_str(), "resolved" | "closed");
    let affected = if customer.targets.is_empty() {
        vec![n.target.clone()]
    } else {
        customer.targets.clone()
    };
    // A progress update posted by an engineer is the note itself.
    let note = match n.kind {
        Kind::Progress if !view.first_notice && view.note.is_none() => None,
        _ => view.note.clone(),
    };
    json!({
        "department": customer.department,
        "affected": affected,
        "ticket_id": n.ticket_id,
        "ticket_label": match language { Language::En => "Ticket", Language::ZhCn => "工单" },
        "headline": headline,
        "message": message,
        "started_at": format_time(n.started_at_ms),
        "elapsed": elapsed(n.at_ms - n.started_at_ms, language),
        "resolved": resolved,
        "note": note,
        "next_update_at": view.next_update_at_ms.map(format_time),
        "language": language,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{render, sample};

    fn view(kind: Kind, language: Language) -> (Notification, Customer) {
        let mut n = sample();
        n.kind = kind;
        n.at_ms = n.started_at_ms + 85 * 60_000;
        let customer = Customer {
            department: "finance".into(),
            language,
            targets: vec!["vm-1".into(), "vm-2".into()],
            contacts: n.contacts.clone(),
            ..Customer::default()
        };
        n.customer = CustomerView {
            departments: vec![customer.clone()],
            first_notice: kind == Kind::Trigger,
            state: if kind == Kind::Resolve {
                "resolved"
            } else {
                "open"
            }
            .into(),
            note: Some("A line card was replaced; traffic is coming back.".into()),
            next_update_at_ms: Some(n.at_ms + 30 * 60_000),
        };
        (n, customer)
    }

    #[test]
    fn customer_messages_say_what_is_affected_and_nothing_internal() {
        for language in [Language::En, Language::ZhCn] {
            for kind in [Kind::Trigger, Kind::Reopen, Kind::Progress, Kind::Resolve] {
                let (n, customer) = view(kind, language);
                let ctx = context(&n, &customer);
                let text = render(body(language), &ctx).unwrap();
                let subject = render(SUBJECT, &ctx).unwrap();
                let internal_texts = [
                    n.reason.as_str(),
                    n.rule.as_str(),
                    n.details.as_str(),
                    n.summary.as_str(),
                    "carrier",
                ];
                for internal in internal_texts {
                    assert!(
                        !text.contains(internal) && !subject.contains(internal),
                        "{language:?} {kind}: `{internal}` leaked:\n{subject}\n{text}"
                    );
                }
                assert!(text.contains("vm-1") && text.contains("vm-2"), "{text}");
                assert!(text.contains("line card"), "the customer note: {text}");
                assert!(subject.contains("#1"), "{subject}");
                let ongoing = kind != Kind::Resolve;
                let (elapsed, next) = match language {
                    Language::En => ("1 h 25 min", "Next update by"),
                    Language::ZhCn => ("1小时25分钟", "下次进展通报时间"),
                };
                assert_eq!(text.contains(elapsed), ongoing, "{text}");
                assert_eq!(text.contains(next), ongoing, "{text}");
            }
        }
        let (n, customer) = view(Kind::Trigger, Language::ZhCn);
        let subject = render(SUBJECT, &context(&n, &customer)).unwrap();
        assert_eq!(subject, "[工单 #1] 服务故障通知");
    }
}
