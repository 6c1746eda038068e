//! `POST /api/v1/write` at the collector's HTTP edge ([`super`]) into the remote-write receiver
//! ([`crate::remote_write`]): authenticates the sender with its agent token, checks the protocol
//! (remote-write 1.0: snappy, `prometheus.WriteRequest`; 2.0 gets 415), takes an admission
//! permit (429 when all are busy, so the sender retries), reads the body under the limit and
//! answers 204 when the samples are applied.

use super::push::{rejected, respond_rejection};
use super::{App, Peer};
use crate::telemetry::Rejection;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Path of the receiver (Prometheus' own receiver's path).
pub const WRITE_PATH: &str = "/api/v1/write";

/// Serves one remote-write request.
pub(super) async fn write(
    State(app): State<Arc<App>>,
    axum::extract::ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let peer = peer.to_string();
    let Some(receiver) = &app.remote_write else {
        return super::text(
            StatusCode::NOT_FOUND,
            "remote write is not enabled ([remote_write])\n".into(),
        );
    };
    let value_of = |name: header::HeaderName| headers.get(name).map(HeaderValue::as_bytes);
    let source = match app.ingest.authenticate(value_of(header::AUTHORIZATION)) {
        Ok(source) => source,
        Err(rejection) => return rejected(&app, &rejection, None, &peer),
    };
    if let Err(rejection) = check_protocol(
        value_of(header::CONTENT_TYPE),
        value_of(header::CONTENT_ENCODING),
    ) {
        return rejected(&app, &rejection, Some(&source.id), &peer);
    }
    let _permit = match app.ingest.admit() {
        Ok(permit) => permit,
        Err(rejection) => return rejected(&app, &rejection, Some(&source.id), &peer),
    };
    let limit = app.ingest.config().max_body_bytes;
    let body = match crate::body::read_body(body, limit).await {
        Ok(body) => body,
        Err(rejection) => return rejected(&app, &rejection, Some(&source.id), &peer),
    };
    match receiver.receive(&app.ingest, &source, &body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(rejection) => {
            app.ingest
                .telemetry()
                .reject(&rejection, Some(&source.id), &peer);
            respond_rejection(&rejection)
        }
    }
}

/// Remote-write 1.0 only: a 2.0 body (`proto=io.prometheus.write.v2.Request`) or another
/// encoding than snappy is refused with what to configure instead. Missing headers are taken
/// as 1.0 (some senders omit them).
fn check_protocol(content_type: Option<&[u8]>, encoding: Option<&[u8]>) -> Result<(), Rejection> {
    let content_type = String::from_utf8_lossy(content_type.unwrap_or_default());
    if let Some(proto) = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("proto="))
        .find(|p| *p != "prometheus.WriteRequest")
    {
        return Err(Rejection::Unsupported(format!(
            "Content-Type: proto={proto} is not supported; send remote-write 1.0 \
             (protobuf_message: prometheus.WriteRequest)"
        )));
    }
    match encoding {
        None => Ok(()),
        Some(e) if e.eq_ignore_ascii_case(b"snappy") => Ok(()),
        Some(e) => Err(Rejection::Unsupported(format!(
            "Content-Encoding: `{}` is not supported; remote write uses snappy",
            String::from_utf8_lossy(e)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_remote_write_1_0_is_taken() {
        let cases: [(Option<&str>, Option<&str>, bool); 6] = [
            (Some("application/x-protobuf"), Some("snappy"), true),
            (None, None, true),
            (
                Some("application/x-protobuf;proto=prometheus.WriteRequest"),
                Some("snappy"),
                true,
            ),
            (
                Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
                Some("snappy"),
                false,
            ),
            (Some("application/x-protobuf"), Some("zstd"), false),
            (Some("application/x-protobuf"), Some("SNAPPY"), true),
        ];
        for (content_type, encoding, ok) in cases {
            let got = check_protocol(content_type.map(str::as_bytes), encoding.map(str::as_bytes));
            assert_eq!(got.is_ok(), ok, "{content_type:?} {encoding:?}: {got:?}");
            if let Err(e) = got {
                assert_eq!(e.status(), 415);
            }
        }
    }
}
