//! The ticket API's routes ([`super`]): axum handlers under `/api/v1` that authenticate the bearer
//! token, check the role, read the JSON body under its limit and call the shared [`Api`]
//! operations; answers are JSON with RFC 3339 times next to the epoch ones, errors
//! `{"error", "field"?}` with 400, 401, 403, 404, 405, 409 or 503.

use super::parse::{followup_note, parse_followup_query};
use super::{Api, Denied, MAX_BODY, Refusal, User, command, manual_report, parse_query, ticket_id};
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
            "/tickets/{id}/{action}",
            post(change).fallback(method_not_allowed),
        )
        .route("/followups", get(followups).fallback(method_not_allowed))
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

async fn list(State(api): State<Arc<Api>>, headers: HeaderMap, query: RawQuery) -> Response {
    respond(
        async {
            authorize(&api, &headers, Role::Viewer)?;
            let page = api
                .list(parse_query(query.0.as_deref().unwrap_or_default())?)
                .await?;
            Ok((
                StatusCode::OK,
                serde_json::json!({ "tickets": page.tickets, "next": page.next }),
            ))
        }
        .await,
    )
}

async fn create(State(api): State<Arc<Api>>, headers: HeaderMap, raw: Body) -> Response {
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

async fn show(
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

async fn change(
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
            let command = command(&action, &body(raw).await?, user.name.clone())?;
            Ok((
                StatusCode::OK,
                to_json(&api.change(user, id, command).await?),
            ))
        }
        .await,
    )
}

async fn followups(State(api): State<Arc<Api>>, headers: HeaderMap, query: RawQuery) -> Response {
    respond(
        async {
            authorize(&api, &headers, Role::Viewer)?;
            let query = parse_followup_query(query.0.as_deref().unwrap_or_default())?;
            let tasks = api.followups(query).await?;
            Ok((StatusCode::OK, serde_json::json!({ "followups": tasks })))
        }
        .await,
    )
}

async fn complete(
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

fn error(status: StatusCode, message: &str, field: Option<&str>) -> Response {
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
}
