//! The HTTP(S) edge of the collector: one axum [`Router`] for the push endpoint, `/metrics`,
//! `/healthz`, the Prometheus remote-write receiver ([`crate::remote_write`]), the ticket API under `/api/v1` ([`crate::api`]) and the ticket console under
//! `/console` ([`crate::console`]), served over hyper 1.x with optional TLS and mutual TLS
//! ([`tls`], rustls).
//!
//! A thin shell around [`Ingest`]: bounds connections, refuses a body over the limit, and maps each
//! rejection to its status with a plain-text reason ([`push`]). Tokens never reach logs.

mod metrics;
mod push;
mod remote_write;
mod tls;

pub use tls::tls_acceptor;

use crate::ingest::Ingest;
use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::header::{self, HeaderValue};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the HTTP layer serves.
pub struct App {
    /// The push pipeline.
    pub ingest: Ingest,
    /// What `/metrics` encodes.
    pub registry: Registry,
    /// The ticket and follow-up API under `/api/v1`, shared with the console.
    pub api: Arc<crate::api::Api>,
    /// The Prometheus remote-write receiver (`[remote_write]`); none: `/api/v1/write` is 404.
    pub remote_write: Option<crate::remote_write::Receiver>,
}

/// The collector's one router: push, `/metrics`, `/healthz`, `/api/v1` (with the acknowledge
/// links of pages, [`crate::ack_link`]) and `/console`.
pub fn router(
    app: Arc<App>,
    console: crate::console::Console,
    ack: Option<Arc<crate::ack_link::AckEndpoint>>,
) -> Router {
    let api = app.api.clone();
    Router::new()
        .route(
            faultline_wire::PUSH_PATH,
            post(push::push).fallback(method_not_allowed),
        )
        .route(
            remote_write::WRITE_PATH,
            post(remote_write::write).fallback(method_not_allowed),
        )
        .route(
            "/metrics",
            get(metrics::metrics).fallback(method_not_allowed),
        )
        .route(
            "/healthz",
            get(|| async { text(StatusCode::OK, "ok\n".into()) }).fallback(method_not_allowed),
        )
        .with_state(app)
        .merge(crate::ack_link::router(ack))
        .nest(crate::api::PREFIX, crate::api::router(api))
        .merge(crate::console::router(console))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "not found\n".into()) })
}

async fn method_not_allowed() -> Response {
    text(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed\n".into(),
    )
}

/// Accepts connections forever, at most `max_connections` at once, each served by `router`
/// (which sees the peer address as [`ConnectInfo`]).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    max_connections: usize,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .context("connection limiter closed")?;
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = router
            .clone()
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let service = TowerToHyperService::new(service);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let result = match tls {
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => {
                            builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::warn!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// A plain-text answer.
fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// The peer of a request, as the accept loop recorded it.
type Peer = ConnectInfo<SocketAddr>;
