//! `GET /metrics` of the collector's HTTP edge ([`super`]): encodes the registry that
//! [`crate::telemetry`] and the stages fill, in OpenMetrics or the Prometheus 0.0.4 text format.

use super::{App, text};
use axum::extract::State;
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// True when the scraper accepts OpenMetrics (Prometheus does); others get the 0.0.4 text format.
fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

/// Serves `/metrics`.
pub(super) async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let mut body = String::with_capacity(64 * 1024);
    let (encoded, content_type) = if wants_openmetrics(&headers) {
        (
            prometheus_client::encoding::text::encode(&mut body, &app.registry),
            OPENMETRICS,
        )
    } else {
        (
            prometheus_client::encoding::prometheus_text::encode(&mut body, &app.registry),
            PROMETHEUS_TEXT,
        )
    };
    if let Err(e) = encoded {
        tracing::error!(error = %e, "encoding /metrics failed");
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding failed\n".into(),
        );
    }
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}
