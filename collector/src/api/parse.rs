//! Reading the ticket API's inputs ([`super`]): JSON bodies into ticket [`Command`]s and manual
//! reports, query strings into list filters. Each error names the field. The console
//! ([`crate::console`]) goes through the same functions, so both doors share one set of rules.

use super::{
    CandidateQuery, DEFAULT_LIMIT, FollowUpQuery, MAX_LIMIT, ManualReport, Refusal, ReportLink,
    TicketQuery,
};
use faultline_incidents::{Channel, Command, ListWindow, Millis, Owner, Severity};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A ticket id from a path.
pub(crate) fn ticket_id(text: &str) -> Result<u64, Refusal> {
    text.parse()
        .map_err(|_| Refusal::invalid("id", format!("`{text}` is not a ticket id")))
}

/// An attachment's number on its ticket, from a path.
pub(crate) fn attachment_number(text: &str) -> Result<u32, Refusal> {
    text.parse()
        .map_err(|_| Refusal::invalid("number", "must be an attachment number (1, 2 …)"))
}

/// `value`, refused when blank.
pub(crate) fn required(field: &str, value: String) -> Result<String, Refusal> {
    if value.trim().is_empty() {
        return Err(Refusal::invalid(field, "must not be empty"));
    }
    Ok(value)
}

/// The body of `POST /api/v1/tickets`: a fault reported by phone, at the desk or by a system.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportBody {
    target: String,
    summary: String,
    #[serde(default)]
    description: String,
    severity: Severity,
    #[serde(default)]
    tag: Option<Owner>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    started_at_ms: Option<Millis>,
    #[serde(default)]
    channel: Option<Channel>,
    /// Who reported it (name, email, phone, department), told of its progress by e-mail.
    #[serde(default)]
    reporter: Option<faultline_incidents::ticket::Reporter>,
}

/// `link_report`: a fault reported by hand that is the fault of an open ticket.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkReportBody {
    /// What the reporter said, in one line.
    summary: String,
    /// More detail.
    #[serde(default)]
    description: String,
    /// How it came in: `phone`, `walk_in`, `console`, `mailbox` or `api` (default).
    #[serde(default)]
    channel: Option<Channel>,
    /// The affected target, when the reporter named one.
    #[serde(default)]
    target: Option<String>,
    /// The reporting department (default: the target's).
    #[serde(default)]
    department: Option<String>,
    /// The reporter, to hear back.
    #[serde(default)]
    reporter: Option<faultline_incidents::ticket::Reporter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// A note: `resolve` and `close` (optional), `callback` and follow-up completion (required).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoteBody {
    #[serde(default)]
    note: String,
}

/// `carrier_response`: the carrier's answer to a trouble report — its own trouble-ticket
/// number, what it said, or both.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CarrierResponseBody {
    /// The carrier's trouble-ticket number.
    #[serde(default)]
    reference: Option<String>,
    /// What the carrier said.
    #[serde(default)]
    note: String,
}

/// `assign` and `handover`: the engineer who takes the ticket, with an optional note.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToBody {
    to: String,
    #[serde(default)]
    note: String,
}

/// `comment` (internal) and `progress` (sent to the customer): the text.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TextBody {
    text: String,
}

/// `retag`: the new responsibility tag and why.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetagBody {
    tag: Owner,
    reason: String,
}

/// The manual report of `POST /api/v1/tickets`, entered by `by`.
pub(crate) fn manual_report(body: &[u8], by: String) -> Result<ManualReport, Refusal> {
    let r: ReportBody = parse_body(body)?;
    let channel = hand_channel(r.channel)?;
    Ok(ManualReport {
        target: required("target", r.target)?,
        summary: required("summary", r.summary)?,
        description: r.description,
        severity: r.severity,
        tag: r.tag,
        reason: r.reason,
        started_at_ms: r.started_at_ms,
        by,
        channel,
        reporter: r.reporter,
    })
}

/// How a report made by hand came in: `api` by default; never `monitoring`.
fn hand_channel(channel: Option<Channel>) -> Result<Channel, Refusal> {
    match channel {
        None => Ok(Channel::Api),
        Some(Channel::Monitoring) => Err(Refusal::invalid(
            "channel",
            "`monitoring` is for tickets the rules open; a report comes by phone, walk_in, \
             console, mailbox or api",
        )),
        Some(channel) => Ok(channel),
    }
}

/// The body of `POST /api/v1/tickets/{id}/link_report`, entered by `by`.
pub(crate) fn report_link(body: &[u8], by: String) -> Result<ReportLink, Refusal> {
    let r: LinkReportBody = parse_body(body)?;
    let blank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    Ok(ReportLink {
        channel: hand_channel(r.channel)?,
        summary: required("summary", r.summary)?,
        description: r.description,
        target: blank(r.target),
        department: blank(r.department),
        reporter: r.reporter.filter(|c| !c.name.trim().is_empty()),
        by,
    })
}

/// The note of `POST /api/v1/followups/{key}/done` (required).
pub(crate) fn followup_note(body: &[u8]) -> Result<String, Refusal> {
    required("note", parse_body::<NoteBody>(body)?.note)
}

/// The ticket command of `POST /api/v1/tickets/{id}/{action}`, authored by `by`.
pub(crate) fn command(action: &str, body: &[u8], by: String) -> Result<Command, Refusal> {
    Ok(match action {
        "acknowledge" => {
            parse_body::<Empty>(body)?;
            Command::Acknowledge { by }
        }
        "assign" => {
            let b: ToBody = parse_body(body)?;
            Command::Assign {
                to: required("to", b.to)?,
                by,
            }
        }
        "handover" => {
            let b: ToBody = parse_body(body)?;
            Command::HandOver {
                to: required("to", b.to)?,
                by,
                note: b.note,
            }
        }
        "comment" => Command::Comment {
            text: required("text", parse_body::<TextBody>(body)?.text)?,
            by,
        },
        "progress" => Command::PostProgress {
            text: required("text", parse_body::<TextBody>(body)?.text)?,
            by,
        },
        "retag" => {
            let b: RetagBody = parse_body(body)?;
            Command::Retag {
                tag: b.tag,
                reason: required("reason", b.reason)?,
                by,
            }
        }
        "resolve" => Command::Resolve {
            note: parse_body::<NoteBody>(body)?.note,
            by,
        },
        "callback" => Command::RecordCallback {
            note: required("note", parse_body::<NoteBody>(body)?.note)?,
            by,
        },
        "carrier_response" => {
            let b: CarrierResponseBody = parse_body(body)?;
            if b.reference.as_deref().is_none_or(|r| r.trim().is_empty())
                && b.note.trim().is_empty()
            {
                return Err(Refusal::invalid(
                    "reference",
                    "give the carrier's reference, a note, or both",
                ));
            }
            Command::RecordCarrierResponse {
                reference: b.reference,
                note: b.note,
                by,
            }
        }
        "close" => Command::Close {
            note: parse_body::<NoteBody>(body)?.note,
            by,
        },
        other => {
            return Err(Refusal::invalid(
                "action",
                format!("unknown action `{other}`"),
            ));
        }
    })
}

/// Parses a JSON body (empty means `{}`); an error names the field.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let field = if path == "." {
            // Missing and unknown fields are reported at the object itself: name them.
            message
                .split('`')
                .nth(1)
                .filter(|_| message.contains("field"))
                .unwrap_or("body")
                .to_string()
        } else {
            path
        };
        Refusal::Invalid { field, message }
    })
}

/// A query value that is one of an enum's JSON names (`open`, `carrier`, `P1`).
fn enum_value<T: DeserializeOwned>(field: &str, value: &str) -> Result<T, Refusal> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|e| Refusal::invalid(field, e.to_string()))
}

/// The filters of `GET /api/v1/tickets`.
pub(crate) fn parse_query(query: &str) -> Result<TicketQuery, Refusal> {
    let mut q = TicketQuery {
        state: None,
        tag: None,
        severity: None,
        customer: None,
        site: None,
        role: None,
        channel: None,
        window: ListWindow::default(),
        limit: DEFAULT_LIMIT,
    };
    let time = |field: &str, value: &str| {
        faultline_incidents::parse_time(value).ok_or_else(|| {
            Refusal::invalid(
                field,
                "must be RFC 3339 (2026-11-28T07:22:18Z) or epoch milliseconds",
            )
        })
    };
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "state" => q.state = Some(enum_value("state", &value)?),
            "before" => {
                let cursor = value.parse().map_err(|_| {
                    Refusal::invalid("before", "must be a ticket id (the `next` of a page)")
                })?;
                q.window.before = Some(cursor);
            }
            "since" => q.window.since_ms = Some(time("since", &value)?),
            "until" => q.window.until_ms = Some(time("until", &value)?),
            "tag" if value == "untagged" => q.tag = Some(None),
            "tag" => q.tag = Some(Some(enum_value("tag", &value)?)),
            "severity" => q.severity = Some(enum_value("severity", &value)?),
            "customer" => q.customer = Some(value.into_owned()),
            "site" => q.site = Some(value.into_owned()),
            "role" => q.role = Some(enum_value("role", &value)?),
            "channel" => q.channel = Some(enum_value("channel", &value)?),
            "limit" => q.limit = limit(&value)?,
            other => return Err(Refusal::invalid(other, "unknown filter")),
        }
    }
    Ok(q)
}

/// The filters of `GET /api/v1/followups`.
pub(crate) fn parse_followup_query(query: &str) -> Result<FollowUpQuery, Refusal> {
    let mut q = FollowUpQuery {
        state: None,
        department: None,
        limit: DEFAULT_LIMIT,
    };
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "state" => q.state = Some(enum_value("state", &value)?),
            "department" => q.department = Some(value.into_owned()),
            "limit" => q.limit = limit(&value)?,
            other => return Err(Refusal::invalid(other, "unknown filter")),
        }
    }
    Ok(q)
}

/// The query of `GET /api/v1/link_candidates`: `target` and `department` (blank means not given).
pub(crate) fn parse_candidate_query(query: &str) -> Result<CandidateQuery, Refusal> {
    let mut q = CandidateQuery::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = Some(value.into_owned()).filter(|v| !v.trim().is_empty());
        match key.as_ref() {
            "target" => q.target = value,
            "department" => q.department = value,
            other => return Err(Refusal::invalid(other, "unknown filter")),
        }
    }
    Ok(q)
}

/// The `limit` of a list: 1 to [`MAX_LIMIT`].
fn limit(value: &str) -> Result<usize, Refusal> {
    value
        .parse()
        .ok()
        .filter(|l| (1..=MAX_LIMIT).contains(l))
        .ok_or_else(|| Refusal::invalid("limit", format!("must be 1 to {MAX_LIMIT}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_incidents::TicketState;
    use faultline_incidents::followup::TaskState;

    #[test]
    fn bodies_and_queries_name_the_bad_field() {
        let cases: [(&str, &[u8], &str); 5] = [
            ("retag", br#"{"tag":"carrier"}"#, "reason"),
            ("retag", br#"{"tag":"nobody","reason":"x"}"#, "tag"),
            ("comment", br#"{"text":"  "}"#, "text"),
            ("assign", br#"{"to":"bob","extra":1}"#, "extra"),
            ("callback", b"", "note"),
        ];
        for (action, body, field) in cases {
            match command(action, body, "alice".into()) {
                Err(Refusal::Invalid { field: got, .. }) => assert_eq!(got, field, "{action}"),
                other => panic!("{action}: {other:?}"),
            }
        }
        assert!(matches!(
            command("acknowledge", b"", "alice".into()),
            Ok(Command::Acknowledge { .. })
        ));
        let untagged = parse_query("tag=untagged").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(untagged.tag, Some(None));
        let q = parse_query("state=open&tag=carrier&severity=P1&customer=finance%20dept&limit=5")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (q.state, q.tag, q.severity, q.customer.as_deref(), q.limit),
            (
                Some(TicketState::Open),
                Some(Some(Owner::Carrier)),
                Some(Severity::P1),
                Some("finance dept"),
                5
            )
        );
        let q = parse_query("role=firewall&channel=walk_in").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (q.role, q.channel),
            (
                Some(faultline_incidents::inventory::TargetRole::Firewall),
                Some(Channel::WalkIn)
            )
        );
        let q = parse_query("since=2026-11-28T07:22:18Z&until=1795850600000&before=42")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            q.window,
            ListWindow {
                before: Some(42),
                since_ms: Some(1_795_850_538_000),
                until_ms: Some(1_795_850_600_000),
            }
        );
        for (query, field) in [
            ("state=gone", "state"),
            ("role=toaster", "role"),
            ("channel=pigeon", "channel"),
            ("limit=0", "limit"),
            ("x=1", "x"),
            ("since=yesterday", "since"),
            ("until=2026-13-01T00:00:00Z", "until"),
            ("before=latest", "before"),
        ] {
            match parse_query(query) {
                Err(Refusal::Invalid { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{query}: {other:?}"),
            }
        }
    }

    #[test]
    fn followup_queries_and_keys() {
        let q = parse_followup_query("state=pending&department=finance%20dept&limit=7")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (q.state, q.department.as_deref(), q.limit),
            (Some(TaskState::Pending), Some("finance dept"), 7)
        );
        // (query, bad field)
        for (query, field) in [
            ("state=open", "state"),
            ("limit=5000", "limit"),
            ("tag=x", "tag"),
        ] {
            match parse_followup_query(query) {
                Err(Refusal::Invalid { field: got, .. }) => assert_eq!(got, field, "{query}"),
                other => panic!("{query}: {other:?}"),
            }
        }
    }
}
