//! The ticket API's routes ([`super`]): axum handlers under `/api/v1` that authenticate the bearer
//! token, check the role, read the JSON body under its limit and call the shared [`Api`]
//! operations; answers are JSON with RFC 3339 times next to the epoch ones, errors
//! `{"error", "field"?}` with 400, 401, 403, 404, 405, 409 or 503.

use super::parse::{attachment_number, followup_note, parse_candidate_query, parse_followup_query};
use super::{Api, Denied, MAX_BODY, Refusal, User, manual_report, parse_query, ticket_id};
use crate::config::Role;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use std::sync::Arc;

/// The API's routes, to be nested under [`super::PREFIX`].
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route(
            "/tickets",
            get(list).post(create).fallback(method_not_allowed),
        )
        .route("/tickets/{id}", get(show).fallback(method_not_allowed))
        .route(
            "/tickets/{id}/attachments/{number}",
            get(attachment).fallback(method_not_allowed),
        )
        .route(
            "/tickets/{id}/{action}",
            post(change).fallback(method_not_allowed),
        )
        .route(
            "/link_candidates",
            get(link_candidates).fallback(method_not_allowed),
        )
        .route("/followups", get(followups).fallback(method_not_allowed))
        .route(
            "/openapi.json",
            get(|| async { json(StatusCode::OK, super::openapi::document_json()) })
                .fallback(method_not_allowed),
        )
        .route(
            "/followups/{key}/done",
            post(complete).fallback(method_not_allowed),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not found", None) })
        .with_state(api)
}

/// Why a request got no answer: an authentication failure or a refusal, each its own status.
enum Failure {
    Denied(Denied),
    Refused(Refusal),
    /// The body could not be read (413 over the limit).
    Body(crate::telemetry::Rejection),
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Failure::Refused(refusal)
    }
}

impl From<Denied> for Failure {
    fn from(denied: Denied) -> Self {
        Failure::Denied(denied)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::Denied(denied @ Denied::Unauthenticated) => {
                let mut response = error(StatusCode::UNAUTHORIZED, &denied.to_string(), None);
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            Failure::Denied(denied @ Denied::Forbidden(_)) => {
                error(StatusCode::FORBIDDEN, &denied.to_string(), None)
            }
            Failure::Body(rejection) => error(
                StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST),
                rejection.detail(),
                None,
            ),
            Failure::Refused(refusal) => {
                let field = match &refusal {
                    Refusal::Invalid { field, .. } => Some(field.as_str()),
                    _ => None,
                };
                error(refusal.status(), &refusal.to_string(), field)
            }
        }
    }
}

type Answer = Result<(StatusCode, serde_json::Value), Failure>;

/// The user of the `Authorization: Bearer …` token when its role reaches `needs`.
fn authorize<'a>(api: &'a Api, headers: &HeaderMap, needs: Role) -> Result<&'a User, Failure> {
    let principal = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .and_then(|token| api.authenticate(token))
        .ok_or(Denied::Unauthenticated)?;
    Ok(principal.permit(needs)?)
}

/// The body of a POST, at most [`MAX_BODY`] bytes.
async fn body(body: Body) -> Result<Bytes, Failure> {
    crate::body::read_body(body, MAX_BODY)
        .await
        .map_err(Failure::Body)
}

/// A path parameter, or a 400 naming `field`.
fn path<T>(path: Result<Path<T>, PathRejection>, field: &str) -> Result<T, Refusal> {
    path.map(|Path(value)| value)
        .map_err(|e| Refusal::invalid(field, e.body_text()))
}

fn respond(answer: Answer) -> Response {
    match answer {
        Ok((status, mut value)) => {
            with_rfc3339(&mut value);
            json(status, &value)
        }
        Err(failure) => failure.into_response(),
    }
}

/// `GET /api/v1/tickets`: one page of tickets, newest first.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets",
    params(
        ("state" = Option<faultline_incidents::TicketState>, Query, description = "Lifecycle state"),
        ("tag" = Option<String>, Query, description = "Responsibility tag: platform, carrier, customer, or untagged (mail waiting for triage)"),
        ("severity" = Option<faultline_incidents::Severity>, Query, description = "Severity"),
        ("role" = Option<faultline_incidents::inventory::TargetRole>, Query, description = "Role of the ticket's target"),
        ("channel" = Option<faultline_incidents::Channel>, Query, description = "How the fault reached the queue"),
        ("customer" = Option<String>, Query, description = "An affected department id"),
        ("site" = Option<String>, Query, description = "Site of the ticket's target"),
        ("since" = Option<String>, Query, description = "Opened at or after (RFC 3339 or epoch ms)"),
        ("until" = Option<String>, Query, description = "Opened before (RFC 3339 or epoch ms)"),
        ("before" = Option<u64>, Query, description = "Cursor: the `next` of the previous page"),
        ("limit" = Option<usize>, Query, description = "Most tickets on the page"),
    ),
    responses(
        (status = 200, description = "A page of tickets", body = TicketList),
        (status = 400, description = "A filter that does not parse", body = ApiError),
        (status = 401, description = "No or unknown token", body = ApiError),
    ),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    respond(
        async {
            authorize(&api, &headers, Role::Viewer)?;
            let page = api
                .list(parse_query(query.0.as_deref().unwrap_or_default())?)
                .await?;
            let list = TicketList {
                tickets: page.tickets,
                next: page.next,
            };
            Ok((
                StatusCode::OK,
                serde_json::to_value(&list).unwrap_or_default(),
            ))
        }
        .await,
    )
}

/// `POST /api/v1/tickets`: a fault reported by phone, at the desk or by another system.
#[utoipa::path(post, path = "/api/v1/tickets", tag = "tickets",
    request_body = super::parse::ReportBody,
    responses(
        (status = 201, description = "The new ticket", body = faultline_incidents::Ticket),
        (status = 400, description = "A field is missing or wrong", body = ApiError),
        (status = 403, description = "Needs the engineer role", body = ApiError),
    ),
    security(("bearer" = [])))]
pub(super) async fn create(State(api): State<Arc<Api>>, headers: HeaderMap, raw: Body) -> Response {
    respond(
        async {
            let user = authorize(&api, &headers, Role::Engineer)?;
            let report = manual_report(&body(raw).await?, user.name.clone())?;
            let ticket = api.create(user, report).await?;
            Ok((StatusCode::CREATED, to_json(&ticket)))
        }
        .await,
    )
}

/// `GET /api/v1/tickets/{id}`: one ticket with its timeline and evidence.
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "tickets",
    params(("id" = u64, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The ticket", body = faultline_incidents::Ticket),
        (status = 404, description = "No such ticket", body = ApiError),
    ),
    security(("bearer" = [])))]
pub(super) async fn show(
    State(api): State<Arc<Api>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            authorize(&api, &headers, Role::Viewer)?;
            let id = ticket_id(&path(id, "id")?)?;
            Ok((StatusCode::OK, to_json(&api.ticket(id).await?)))
        }
        .await,
    )
}

/// `GET /api/v1/tickets/{id}/attachments/{number}`: an attachment a mail brought, kept with the
/// ticket (numbered as the ticket's description and timeline list them), with its content type
/// and file name.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/attachments/{number}", tag = "tickets",
    params(
        ("id" = u64, Path, description = "Ticket id"),
        ("number" = u32, Path, description = "Attachment number on the ticket (1, 2 …)"),
    ),
    responses(
        (status = 200, description = "The attachment's bytes", content_type = "application/octet-stream"),
        (status = 404, description = "No such ticket or attachment", body = ApiError),
    ),
    security(("bearer" = [])))]
pub(super) async fn attachment(
    State(api): State<Arc<Api>>,
    ids: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let answer = async {
        authorize(&api, &headers, Role::Viewer)?;
        let (id, number) = path(ids, "number")?;
        let id = ticket_id(&id)?;
        Ok::<_, Failure>(api.attachment(id, attachment_number(&number)?).await?)
    }
    .await;
    match answer {
        Err(failure) => failure.into_response(),
        Ok(file) => attachment_response(file),
    }
}

/// The answer carrying a kept attachment (the API's and the console's): its bytes with the
/// content type and file name as sent, never sniffed.
pub(crate) fn attachment_response(file: faultline_incidents::store::Attachment) -> Response {
    let content_type = HeaderValue::from_str(&file.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    // The name as sent, safe in a header: RFC 5987 percent-encoding for `filename*`.
    let encoded: String = form_urlencoded::byte_serialize(file.name.as_bytes()).collect();
    let disposition = format!(
        "attachment; filename=\"attachment-{}\"; filename*=UTF-8''{}",
        file.number,
        encoded.replace('+', "%20")
    );
    let mut response = Response::new(Body::from(file.bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `POST /api/v1/tickets/{id}/{action}`: work a ticket. Bodies by action: `acknowledge` `{}`;
/// `assign`, `handover` [`ToBody`](super::parse::ToBody); `comment` (internal), `progress` (for
/// the customer) [`TextBody`](super::parse::TextBody); `retag`
/// [`RetagBody`](super::parse::RetagBody); `resolve`, `callback`, `close`
/// [`NoteBody`](super::parse::NoteBody); `carrier_response`
/// [`CarrierResponseBody`](super::parse::CarrierResponseBody); `link_report` (a report by hand
/// of this ticket's fault) [`LinkReportBody`](super::parse::LinkReportBody).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/{action}", tag = "tickets",
    params(
        ("id" = u64, Path, description = "Ticket id"),
        ("action" = String, Path, description = "acknowledge | assign | handover | comment | progress | retag | resolve | callback | close | carrier_response | link_report"),
    ),
    request_body(content = serde_json::Value, description = "acknowledge: {}; assign, handover: ToBody; comment, progress: TextBody; retag: RetagBody; resolve, callback, close: NoteBody; carrier_response: CarrierResponseBody; link_report: LinkReportBody"),
    responses(
        (status = 200, description = "The changed ticket", body = faultline_incidents::Ticket),
        (status = 400, description = "Unknown action or a wrong body", body = ApiError),
        (status = 403, description = "Needs the engineer role", body = ApiError),
        (status = 404, description = "No such ticket", body = ApiError),
        (status = 409, description = "The ticket's state does not allow it", body = ApiError),
    ),
    security(("bearer" = [])))]
pub(super) async fn change(
    State(api): State<Arc<Api>>,
    params: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    raw: Body,
) -> Response {
    respond(
        async {
            let user = authorize(&api, &headers, Role::Engineer)?;
            let (id, action) = path(params, "path")?;
            let id = ticket_id(&id)?;
            let ticket = api.act(user, id, &action, &body(raw).await?).await?;
            Ok((StatusCode::OK, to_json(&ticket)))
        }
        .await,
    )
}

/// `GET /api/v1/link_candidates`: the open automatic tickets a fault reported by hand may be
/// about — same target, a target upstream of it, or already affecting the department — each
/// with the ticket (and its evidence) and why, strongest match first.
#[utoipa::path(get, path = "/api/v1/link_candidates", tag = "tickets",
    params(
        ("target" = Option<String>, Query, description = "The target the reporter names"),
        ("department" = Option<String>, Query, description = "The reporting department (default: the target's)"),
    ),
    responses(
        (status = 200, description = "The candidates", body = CandidateList),
        (status = 400, description = "An unknown department or query field", body = ApiError),
    ),
    security(("bearer" = [])))]
pub(super) async fn link_candidates(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    respond(
        async {
            authorize(&api, &headers, Role::Viewer)?;
            let wanted = parse_candidate_query(query.0.as_deref().unwrap_or_default())?;
            let list = CandidateList {
                candidates: api.link_candidates(wanted).await?,
            };
            Ok((
                StatusCode::OK,
                serde_json::to_value(&list).unwrap_or_default(),
            ))
        }
        .await,
    )
}

/// The answer of `GET /api/v1/link_candidates`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct CandidateList {
    candidates: Vec<super::Candidate>,
}

/// `GET /api/v1/followups`: customer follow-up tasks, oldest due first.
#[utoipa::path(get, path = "/api/v1/followups", tag = "followups",
    params(
        ("state" = Option<faultline_incidents::followup::TaskState>, Query, description = "pending or done"),
        ("department" = Option<String>, Query, description = "Department id"),
        ("limit" = Option<usize>, Query, description = "Most tasks returned"),
    ),
    responses(
        (status = 200, description = "The tasks", body = FollowUpList),
        (status = 400, description = "A filter that does not parse", body = ApiError),
    ),
    security(("bearer" = [])))]
pub(super) async fn followups(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    respond(
        async {
            authorize(&api, &headers, Role::Viewer)?;
            let query = parse_followup_query(query.0.as_deref().unwrap_or_default())?;
            let tasks = api.followups(query).await?;
            let list = FollowUpList { followups: tasks };
            Ok((
                StatusCode::OK,
                serde_json::to_value(&list).unwrap_or_default(),
            ))
        }
        .await,
    )
}

/// `POST /api/v1/followups/{key}/done`: records a follow-up visit or call as done.
#[utoipa::path(post, path = "/api/v1/followups/{key}/done", tag = "followups",
    params(("key" = String, Path, description = "The task's key")),
    request_body = super::parse::NoteBody,
    responses(
        (status = 200, description = "The completed task", body = faultline_incidents::followup::FollowUpTask),
        (status = 404, description = "No such task", body = ApiError),
    ),
    security(("bearer" = [])))]
pub(super) async fn complete(
    State(api): State<Arc<Api>>,
    key: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    raw: Body,
) -> Response {
    respond(
        async {
            let user = authorize(&api, &headers, Role::Engineer)?;
            let key = path(key, "key")?;
            let note = followup_note(&body(raw).await?)?;
            let task = api.complete_followup(user, key, note).await?;
            Ok((
                StatusCode::OK,
                serde_json::to_value(&task).unwrap_or_default(),
            ))
        }
        .await,
    )
}

async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed", None)
}

fn to_json(ticket: &faultline_incidents::Ticket) -> serde_json::Value {
    serde_json::to_value(ticket).unwrap_or_default()
}

/// Adds, next to every time field of an answer (`…at_ms`, `…due_ms`: epoch milliseconds), the
/// same time in RFC 3339 under the name without `_ms` (`opened_at`, `at`, `next_due`), so
/// integrators need not convert; the epoch fields stay. The OpenAPI document describes the same
/// twins ([`super::openapi::is_time_field`]).
fn with_rfc3339(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let times: Vec<(String, String)> = map
                .iter()
                .filter(|(key, _)| super::openapi::is_time_field(key))
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

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        value.to_string(),
    )
        .into_response()
}

/// A page of `GET /api/v1/tickets`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct TicketList {
    /// The tickets, newest first.
    tickets: Vec<faultline_incidents::Ticket>,
    /// The cursor of the next (older) page (`before=`), when there may be one.
    next: Option<u64>,
}

/// The answer of `GET /api/v1/followups`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct FollowUpList {
    /// The tasks, oldest due first.
    followups: Vec<faultline_incidents::followup::FollowUpTask>,
}

/// Every refusal's body.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct ApiError {
    /// What is wrong.
    error: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

fn error(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    let body = ApiError {
        error: message.to_string(),
        field: field.map(str::to_string),
    };
    json(status, &serde_json::to_value(&body).unwrap_or_default())
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
}
