//! The ticket REST API (`/api/v1/tickets…` and `/api/v1/followups…`, JSON): the engineers' door
//! into the incidents stage (ingest → rules → **incidents** → notifications). A customer-reported
//! fault entered here joins the same queue as the automatic ones; customer follow-up tasks are
//! listed and recorded as done here.
//!
//! A thin shell: authenticates the bearer token (constant-time, against every configured token),
//! checks the role (viewer reads; engineer and admin also change tickets), turns the request into
//! a [`Request`] for the incidents stage (bounded channel; the stage owns the tickets, so API
//! changes and automatic ones never race) and maps the answer to a status: 400 names the field,
//! 401, 403, 404, 409 carries the ticket state machine's message, 503 when the store fails.
//!
//! ```text
//! GET  /api/v1/tickets?state=&tag=&severity=&customer=&site=&since=&until=&before=&limit=
//!                          list, newest first; `next` in the answer is the `before` of the
//!                          next (older) page; since/until: RFC 3339 or epoch ms (opened time)
//! POST /api/v1/tickets                          {target, summary, severity, description?, tag?, reason?}
//! GET  /api/v1/tickets/{id}                     one ticket with its timeline
//! POST /api/v1/tickets/{id}/acknowledge         {}
//! POST /api/v1/tickets/{id}/assign              {to}
//! POST /api/v1/tickets/{id}/handover            {to, note?}
//! POST /api/v1/tickets/{id}/comment             {text}
//! POST /api/v1/tickets/{id}/progress            {text}      (sent to the customer contacts)
//! POST /api/v1/tickets/{id}/retag               {tag, reason}
//! POST /api/v1/tickets/{id}/resolve             {note?}
//! POST /api/v1/tickets/{id}/callback            {note}      (records the call-back and closes)
//! POST /api/v1/tickets/{id}/close               {note?}     (tickets without a call-back)
//! GET  /api/v1/followups?state=&department=&limit=  follow-up tasks, oldest due first
//! POST /api/v1/followups/{key}/done             {note}      (who and when are recorded)
//! ```
//!
//! A follow-up `key` (`followup:finance:new:3days`) goes into the path as listed, `%`-escaped
//! where it holds characters a path cannot (a department id with a space or a slash).

use crate::config::{ApiConfig, Role};
use bytes::Bytes;
use faultline_incidents::followup::{FollowUpTask, TaskState};
use faultline_incidents::{Command, ListWindow, Millis, Owner, Severity, Ticket, TicketState};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

/// Path prefix of every API route.
pub const PREFIX: &str = "/api/v1";
/// Largest accepted request body.
const MAX_BODY: usize = 64 * 1024;
/// Tickets listed when `limit` is not given, and the most a list returns.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// What the API asks of the incidents stage; each carries where the answer goes.
#[derive(Debug)]
pub enum Request {
    /// Tickets matching a query.
    List {
        /// The filters.
        query: TicketQuery,
        /// Answer.
        reply: oneshot::Sender<Result<TicketPage, Refusal>>,
    },
    /// One ticket with its timeline.
    Get {
        /// Ticket id.
        id: u64,
        /// Answer.
        reply: oneshot::Sender<Result<Ticket, Refusal>>,
    },
    /// A change by an engineer.
    Change {
        /// Ticket id.
        id: u64,
        /// The change.
        command: Command,
        /// Answer: the ticket after the change.
        reply: oneshot::Sender<Result<Ticket, Refusal>>,
    },
    /// A ticket created by hand.
    Create {
        /// What was reported.
        report: ManualReport,
        /// Answer: the new ticket.
        reply: oneshot::Sender<Result<Ticket, Refusal>>,
    },
    /// Follow-up tasks matching a query.
    FollowUps {
        /// The filters.
        query: FollowUpQuery,
        /// Answer.
        reply: oneshot::Sender<Result<Vec<FollowUpTask>, Refusal>>,
    },
    /// A follow-up task recorded as done.
    CompleteFollowUp {
        /// Task key.
        key: String,
        /// Who did it.
        by: String,
        /// How it went.
        note: String,
        /// Answer: the task, done.
        reply: oneshot::Sender<Result<FollowUpTask, Refusal>>,
    },
}

/// Follow-up list filters; all given ones must match.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUpQuery {
    /// Pending or done.
    pub state: Option<TaskState>,
    /// Customer department.
    pub department: Option<String>,
    /// Most tasks returned.
    pub limit: usize,
}

/// List filters; all given ones must match.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketQuery {
    /// Lifecycle state.
    pub state: Option<TicketState>,
    /// Responsibility tag.
    pub tag: Option<Owner>,
    /// Severity.
    pub severity: Option<Severity>,
    /// An affected customer department.
    pub customer: Option<String>,
    /// The site of the ticket's target (from the inventory).
    pub site: Option<String>,
    /// Which stretch of the history: before a cursor, opened within a time range.
    pub window: ListWindow,
    /// Most tickets returned.
    pub limit: usize,
}

/// One page of a ticket list, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketPage {
    /// The tickets.
    pub tickets: Vec<Ticket>,
    /// The cursor of the next (older) page (`before=`), when there may be one.
    pub next: Option<u64>,
}

/// A customer-reported fault entered by an engineer.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualReport {
    /// The affected target.
    pub target: String,
    /// One-line summary.
    pub summary: String,
    /// Description.
    pub description: String,
    /// Severity.
    pub severity: Severity,
    /// Responsibility; default: the target's owner in the inventory.
    pub tag: Option<Owner>,
    /// Why that tag; default: a note naming who reported it.
    pub reason: Option<String>,
    /// When the fault started; default: now.
    pub started_at_ms: Option<Millis>,
    /// The engineer entering it.
    pub by: String,
}

/// Why the stage (or the API) refused a request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    /// No such ticket (404).
    #[error("ticket #{0} not found")]
    NotFound(u64),
    /// No such follow-up task (404).
    #[error("follow-up {0} not found")]
    UnknownFollowUp(String),
    /// The ticket cannot take this change in its state (409).
    #[error("{0}")]
    Conflict(String),
    /// A field of the request is unusable (400).
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The ticket store failed (503).
    #[error("{0}")]
    Unavailable(String),
}

impl Refusal {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        Refusal::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Refusal::NotFound(_) | Refusal::UnknownFollowUp(_) => StatusCode::NOT_FOUND,
            Refusal::Conflict(_) => StatusCode::CONFLICT,
            Refusal::Invalid { .. } => StatusCode::BAD_REQUEST,
            Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

struct User {
    name: String,
    role: Role,
    token: Vec<u8>,
}

/// The API's users and its channel to the incidents stage.
pub struct Api {
    users: Vec<User>,
    requests: Option<mpsc::Sender<Request>>,
}

impl Api {
    /// Reads the tokens from config; `requests` is `None` when `[incidents]` is not configured.
    pub fn new(
        config: &ApiConfig,
        requests: Option<mpsc::Sender<Request>>,
    ) -> anyhow::Result<Self> {
        let users = config
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Ok(User {
                    name: t.name.clone(),
                    role: t.role,
                    token: crate::agents::read_token(
                        &format!("api.tokens[{i}]"),
                        t.token.as_ref(),
                        t.token_file.as_deref(),
                    )?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { users, requests })
    }

    /// The user owning the `Authorization: Bearer …` token; compares in constant time against
    /// every user.
    fn authenticate(&self, authorization: Option<&[u8]>) -> Option<&User> {
        let token = authorization?.strip_prefix(b"Bearer ")?;
        let mut found = None;
        for user in &self.users {
            if bool::from(user.token.as_slice().ct_eq(token)) {
                found = Some(user);
            }
        }
        found
    }

    /// Serves one request under [`PREFIX`].
    pub async fn handle(&self, req: hyper::Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        let Some(rest) = path
            .strip_prefix(PREFIX)
            .filter(|r| r.is_empty() || r.starts_with('/'))
        else {
            return error(StatusCode::NOT_FOUND, "not found", None);
        };
        let segments: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let method = req.method().clone();
        let resource = segments.first().map_or("", String::as_str);
        let needs = match (resource, &method, segments.len()) {
            ("tickets", &Method::GET, 1 | 2) | ("followups", &Method::GET, 1) => Role::Viewer,
            ("tickets", &Method::POST, 1 | 3) | ("followups", &Method::POST, 3) => Role::Engineer,
            ("tickets", _, 1..=3) | ("followups", _, 1 | 3) => {
                return error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed", None);
            }
            _ => return error(StatusCode::NOT_FOUND, "not found", None),
        };
        let Some(user) = self.authenticate(
            req.headers()
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
        ) else {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "missing or unknown bearer token",
                None,
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        };
        if user.role < needs {
            return error(
                StatusCode::FORBIDDEN,
                &format!("{} may only read", user.name),
                None,
            );
        }
        let Some(requests) = &self.requests else {
            return error(
                StatusCode::NOT_FOUND,
                "incidents are not enabled ([incidents] is not configured)",
                None,
            );
        };
        let query = req.uri().query().unwrap_or_default().to_string();
        let body = if method == Method::POST {
            match crate::http::read_body(req.into_body(), MAX_BODY).await {
                Ok(body) => body,
                Err(rejection) => {
                    return error(
                        StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST),
                        rejection.detail(),
                        None,
                    );
                }
            }
        } else {
            Bytes::new()
        };
        let outcome = self
            .dispatch(requests, user, &method, &segments, &query, &body)
            .await;
        match outcome {
            Ok((status, mut value)) => {
                with_rfc3339(&mut value);
                json(status, &value)
            }
            Err(refusal) => {
                let field = match &refusal {
                    Refusal::Invalid { field, .. } => Some(field.as_str()),
                    _ => None,
                };
                error(refusal.status(), &refusal.to_string(), field)
            }
        }
    }

    async fn dispatch(
        &self,
        requests: &mpsc::Sender<Request>,
        user: &User,
        method: &Method,
        segments: &[String],
        query: &str,
        body: &[u8],
    ) -> Result<(StatusCode, serde_json::Value), Refusal> {
        let by = user.name.clone();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (method, segments.as_slice()) {
            (&Method::GET, ["followups"]) => {
                let query = parse_followup_query(query)?;
                let tasks = ask(requests, |reply| Request::FollowUps { query, reply }).await?;
                Ok((StatusCode::OK, serde_json::json!({ "followups": tasks })))
            }
            (&Method::POST, ["followups", key, "done"]) => {
                let key = decode_segment(key)?;
                let note = required("note", parse_body::<NoteBody>(body)?.note)?;
                let task = ask(requests, |reply| Request::CompleteFollowUp {
                    key: key.clone(),
                    by,
                    note,
                    reply,
                })
                .await?;
                tracing::info!(user = %user.name, followup = %key, "follow-up done");
                Ok((
                    StatusCode::OK,
                    serde_json::to_value(&task).unwrap_or_default(),
                ))
            }
            (&Method::GET, ["tickets"]) => {
                let query = parse_query(query)?;
                let page = ask(requests, |reply| Request::List { query, reply }).await?;
                Ok((
                    StatusCode::OK,
                    serde_json::json!({ "tickets": page.tickets, "next": page.next }),
                ))
            }
            (&Method::POST, ["tickets"]) => {
                let r: ReportBody = parse_body(body)?;
                let report = ManualReport {
                    target: required("target", r.target)?,
                    summary: required("summary", r.summary)?,
                    description: r.description,
                    severity: r.severity,
                    tag: r.tag,
                    reason: r.reason,
                    started_at_ms: r.started_at_ms,
                    by,
                };
                let ticket = ask(requests, |reply| Request::Create { report, reply }).await?;
                tracing::info!(user = %user.name, ticket = ticket.id, "ticket created by hand");
                Ok((StatusCode::CREATED, to_json(&ticket)))
            }
            (&Method::GET, ["tickets", id]) => {
                let id = ticket_id(id)?;
                let ticket = ask(requests, |reply| Request::Get { id, reply }).await?;
                Ok((StatusCode::OK, to_json(&ticket)))
            }
            (&Method::POST, ["tickets", id, action]) => {
                let id = ticket_id(id)?;
                let command = command(action, body, by)?;
                let ticket = ask(requests, |reply| Request::Change { id, command, reply }).await?;
                tracing::info!(user = %user.name, ticket = id, action = %action, "ticket changed");
                Ok((StatusCode::OK, to_json(&ticket)))
            }
            _ => Err(Refusal::invalid("path", "no such route")),
        }
    }
}

/// Sends a request to the stage and waits for its answer.
async fn ask<T>(
    requests: &mpsc::Sender<Request>,
    make: impl FnOnce(oneshot::Sender<Result<T, Refusal>>) -> Request,
) -> Result<T, Refusal> {
    let (reply, answer) = oneshot::channel();
    let gone = || Refusal::Unavailable("the incidents stage is not running".into());
    requests.send(make(reply)).await.map_err(|_| gone())?;
    answer.await.map_err(|_| gone())?
}

/// A path segment with its `%XX` escapes decoded.
fn decode_segment(segment: &str) -> Result<String, Refusal> {
    let mut out = Vec::with_capacity(segment.len());
    let mut rest = segment.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let escaped = tail
                .get(..2)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| Refusal::invalid("key", "bad %-escape in the path"))?;
            out.push(escaped);
            rest = &tail[2..];
        } else {
            out.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(out).map_err(|_| Refusal::invalid("key", "not UTF-8 once decoded"))
}

fn ticket_id(text: &str) -> Result<u64, Refusal> {
    text.parse()
        .map_err(|_| Refusal::invalid("id", format!("`{text}` is not a ticket id")))
}

fn required(field: &str, value: String) -> Result<String, Refusal> {
    if value.trim().is_empty() {
        return Err(Refusal::invalid(field, "must not be empty"));
    }
    Ok(value)
}

fn to_json(ticket: &Ticket) -> serde_json::Value {
    serde_json::to_value(ticket).unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportBody {
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    #[serde(default)]
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToBody {
    to: String,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextBody {
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetagBody {
    tag: Owner,
    reason: String,
}

/// The ticket command of `POST /api/v1/tickets/{id}/{action}`, authored by `by`.
fn command(action: &str, body: &[u8], by: String) -> Result<Command, Refusal> {
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

fn parse_query(query: &str) -> Result<TicketQuery, Refusal> {
    let mut q = TicketQuery {
        state: None,
        tag: None,
        severity: None,
        customer: None,
        site: None,
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
            "tag" => q.tag = Some(enum_value("tag", &value)?),
            "severity" => q.severity = Some(enum_value("severity", &value)?),
            "customer" => q.customer = Some(value.into_owned()),
            "site" => q.site = Some(value.into_owned()),
            "limit" => q.limit = limit(&value)?,
            other => return Err(Refusal::invalid(other, "unknown filter")),
        }
    }
    Ok(q)
}

fn parse_followup_query(query: &str) -> Result<FollowUpQuery, Refusal> {
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

/// The `limit` of a list: 1 to [`MAX_LIMIT`].
fn limit(value: &str) -> Result<usize, Refusal> {
    value
        .parse()
        .ok()
        .filter(|l| (1..=MAX_LIMIT).contains(l))
        .ok_or_else(|| Refusal::invalid("limit", format!("must be 1 to {MAX_LIMIT}")))
}

/// Adds, next to every time field of an answer (`…at_ms`, `…due_ms`: epoch milliseconds), the
/// same time in RFC 3339 under the name without `_ms` (`opened_at`, `at`, `next_due`), so
/// integrators need not convert; the epoch fields stay.
fn with_rfc3339(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let times: Vec<(String, String)> = map
                .iter()
                .filter(|(key, _)| key.ends_with("at_ms") || key.ends_with("due_ms"))
                .filter_map(|(key, v)| {
                    let text = faultline_incidents::rfc3339(v.as_i64()?)?;
                    Some((key.trim_end_matches("_ms").to_string(), text))
                })
                .collect();
            for child in map.values_mut() {
                with_rfc3339(child);
            }
            for (key, text) in times {
                map.entry(key).or_insert(serde_json::Value::String(text));
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(with_rfc3339),
        _ => {}
    }
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, message: &str, field: Option<&str>) -> Response<Full<Bytes>> {
    let mut value = serde_json::json!({ "error": message });
    if let Some(field) = field {
        value["field"] = field.into();
    }
    json(status, &value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_get_rfc3339_next_to_epoch_milliseconds() {
        let mut value = serde_json::json!({
            "tickets": [{
                "opened_at_ms": 1_795_850_538_500i64,
                "acknowledged_at_ms": null,
                "next_due_ms": 0,
                "flap_window_ms": 3_600_000,
                "timeline": [{ "at_ms": 1_000, "who": "rules" }],
            }]
        });
        with_rfc3339(&mut value);
        let ticket = &value["tickets"][0];
        assert_eq!(ticket["opened_at"], "2026-11-28T07:22:18.5Z");
        assert_eq!(
            ticket["opened_at_ms"], 1_795_850_538_500i64,
            "the epoch field stays"
        );
        assert_eq!(ticket["next_due"], "1970-01-01T00:00:00Z");
        assert_eq!(ticket["timeline"][0]["at"], "1970-01-01T00:00:01Z");
        assert!(ticket.get("acknowledged_at").is_none(), "no time, no text");
        assert!(
            ticket.get("flap_window").is_none(),
            "a duration is not a time"
        );
    }

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
        let q = parse_query("state=open&tag=carrier&severity=P1&customer=finance%20dept&limit=5")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (q.state, q.tag, q.severity, q.customer.as_deref(), q.limit),
            (
                Some(TicketState::Open),
                Some(Owner::Carrier),
                Some(Severity::P1),
                Some("finance dept"),
                5
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
        // (path segment, decoded key)
        let cases = [
            ("followup:fin:new:3days", Some("followup:fin:new:3days")),
            ("followup:fin%20dept:vip:2", Some("followup:fin dept:vip:2")),
            ("followup:a%2Fb:new:2s", Some("followup:a/b:new:2s")),
            ("followup:%E8%B4%A2:new:2s", Some("followup:财:new:2s")),
            ("bad%2", None),
            ("bad%zz", None),
            ("%FF", None),
        ];
        for (segment, want) in cases {
            assert_eq!(decode_segment(segment).ok().as_deref(), want, "{segment}");
        }
    }
}
