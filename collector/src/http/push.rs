//! `POST` of agents' batches at the collector's HTTP edge ([`super`]) into [`crate::ingest`]:
//! authenticates the agent, takes an admission permit, reads the body under the limit and maps
//! each [`Rejection`] to its status with a plain-text reason.

use super::{App, Peer, text};
use crate::telemetry::Rejection;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Serves one push.
pub(super) async fn push(
    State(app): State<Arc<App>>,
    axum::extract::ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let peer = peer.to_string();
    let telemetry = app.ingest.telemetry();
    let agent = match app.ingest.authenticate(
        headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    ) {
        Ok(agent) => agent,
        Err(rejection) => return rejected(&app, &rejection, None, &peer),
    };
    let _permit = match app.ingest.admit() {
        Ok(permit) => permit,
        Err(rejection) => return rejected(&app, &rejection, Some(&agent.id), &peer),
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(HeaderValue::as_bytes);
    if encoding != Some(faultline_wire::CONTENT_ENCODING.as_bytes()) {
        let rejection = Rejection::Malformed("Content-Encoding must be zstd".into());
        return rejected(&app, &rejection, Some(&agent.id), &peer);
    }
    let sent_at_ms = headers
        .get(faultline_wire::SENT_AT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let limit = app.ingest.config().max_body_bytes;
    let body = match crate::body::read_body(body, limit).await {
        Ok(body) => body,
        Err(rejection) => return rejected(&app, &rejection, Some(&agent.id), &peer),
    };
    match app.ingest.push(&agent, &body, sent_at_ms).await {
        Ok(ack) => {
            let json = serde_json::to_vec(&ack).unwrap_or_default();
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                json,
            )
                .into_response()
        }
        Err(rejection) => {
            telemetry.reject(&rejection, Some(&agent.id), &peer);
            respond_rejection(&rejection)
        }
    }
}

pub(super) fn rejected(
    app: &App,
    rejection: &Rejection,
    agent: Option<&str>,
    peer: &str,
) -> Response {
    app.ingest.telemetry().reject(rejection, agent, peer);
    respond_rejection(rejection)
}

pub(super) fn respond_rejection(rejection: &Rejection) -> Response {
    let status = StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = text(
        status,
        format!("{}: {}\n", rejection.reason(), rejection.detail()),
    );
    match rejection {
        Rejection::Overloaded | Rejection::Unavailable(_) => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        Rejection::Unauthorized => {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    response
}
