//! `GET /metrics` of the collector's HTTP edge ([`super`]): encodes the registry that
//! [`crate::telemetry`] and the stages fill, in OpenMetrics or the Prometheus 0.0.4 text format.

use super::{App, text};
use axum::extract::State;
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// The size of the last `/metrics` body: the next one is allocated at once at about that size
/// (100k series are ~11 MB; growing to it by doubling copies it several times).
static LAST_BODY_BYTES: AtomicUsize = AtomicUsize::new(64 * 1024);

/// Serves `/metrics`. Encoding 100k series takes tens of milliseconds, so it runs on the blocking
/// pool, not on the runtime's worker thread that pushes and API requests share.
pub(super) async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let openmetrics = wants_openmetrics(&headers);
    let encoded = tokio::task::spawn_blocking(move || encode(&app, openmetrics))
        .await
        .map_err(|e| e.to_string())
        .and_then(|encoded| encoded.map_err(|e| e.to_string()));
    match encoded {
        Ok((body, content_type)) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "encoding /metrics failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding failed\n".into(),
            )
        }
    }
}

/// Encodes the registry in OpenMetrics or the 0.0.4 text format; returns the body and its
/// content type.
fn encode(app: &App, openmetrics: bool) -> Result<(String, &'static str), std::fmt::Error> {
    let hint = LAST_BODY_BYTES.load(Ordering::Relaxed);
    let mut body = String::with_capacity(hint + hint / 8);
    let content_type = if openmetrics {
        prometheus_client::encoding::text::encode(&mut body, &app.registry)?;
        OPENMETRICS
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut body, &app.registry)?;
        PROMETHEUS_TEXT
    };
    LAST_BODY_BYTES.store(body.len(), Ordering::Relaxed);
    Ok((body, content_type))
}
