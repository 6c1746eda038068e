//! The HTTP(S) edge of the collector: the push endpoint, `/metrics`, `/healthz` and the ticket API
//! (delegated to [`crate::api`]), over hyper 1.x with optional TLS and mutual TLS (rustls).
//!
//! A thin shell around [`Ingest`]: bounds connections, refuses a body over the limit before reading
//! it, and maps each [`Rejection`] to its status with a plain-text reason. Tokens never reach logs.

use crate::config::ListenConfig;
use crate::ingest::Ingest;
use crate::telemetry::Rejection;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::registry::Registry;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// How far past the body limit a body is still read (and discarded) to deliver the 413 cleanly.
const DRAIN_FACTOR: usize = 8;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the HTTP layer serves.
pub struct App {
    /// The push pipeline.
    pub ingest: Ingest,
    /// What `/metrics` encodes.
    pub registry: Registry,
    /// The ticket and follow-up API under `/api/v1`.
    pub api: crate::api::Api,
    /// Acknowledge links from pages (`/api/v1/ack/<token>`), when `[api]` has a key.
    pub ack: Option<crate::ack_link::AckEndpoint>,
}

/// Builds the TLS acceptor from config, or `None` for plain HTTP.
pub fn tls_acceptor(config: &ListenConfig) -> anyhow::Result<Option<TlsAcceptor>> {
    let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
        return Ok(None);
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect())
        .with_context(|| format!("listen.cert_file {}", cert_file.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "listen.cert_file {}: no certificate",
        cert_file.display()
    );
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("listen.key_file {}", key_file.display()))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match &config.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca_file)
                .with_context(|| format!("listen.client_ca_file {}", ca_file.display()))?
            {
                let cert =
                    cert.with_context(|| format!("listen.client_ca_file {}", ca_file.display()))?;
                roots
                    .add(cert)
                    .with_context(|| format!("listen.client_ca_file {}", ca_file.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .context("listen.client_ca_file: building the client verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server = builder
        .with_single_cert(certs, key)
        .context("listen.cert_file/key_file: certificate and key do not match")?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

/// Accepts connections forever, at most `max_connections` at once.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
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
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&app, req, peer).await) }
            });
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

async fn route(app: &App, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, faultline_wire::PUSH_PATH) => push(app, req, peer).await,
        (&Method::GET, "/metrics") => metrics(app, wants_openmetrics(&req)),
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n".into()),
        (&Method::GET | &Method::POST, path) if path.starts_with(crate::ack_link::PREFIX) => {
            match &app.ack {
                Some(ack) => ack.serve(path, faultline_wire::now_ms()).await,
                None => text(StatusCode::NOT_FOUND, "acknowledge links are off\n".into()),
            }
        }
        (_, path) if path.starts_with(crate::api::PREFIX) => app.api.handle(req).await,
        (_, faultline_wire::PUSH_PATH | "/metrics" | "/healthz") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".into(),
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

async fn push(app: &App, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
    let peer = peer.to_string();
    let telemetry = app.ingest.telemetry();
    let agent = match app.ingest.authenticate(
        req.headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    ) {
        Ok(agent) => agent,
        Err(rejection) => return rejected(app, &rejection, None, &peer),
    };
    let _permit = match app.ingest.admit() {
        Ok(permit) => permit,
        Err(rejection) => return rejected(app, &rejection, Some(&agent.id), &peer),
    };
    let encoding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(HeaderValue::as_bytes);
    if encoding != Some(faultline_wire::CONTENT_ENCODING.as_bytes()) {
        let rejection = Rejection::Malformed("Content-Encoding must be zstd".into());
        return rejected(app, &rejection, Some(&agent.id), &peer);
    }
    let sent_at_ms = req
        .headers()
        .get(faultline_wire::SENT_AT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let limit = app.ingest.config().max_body_bytes;
    let body = match read_body(req.into_body(), limit).await {
        Ok(body) => body,
        Err(rejection) => return rejected(app, &rejection, Some(&agent.id), &peer),
    };
    match app.ingest.push(&agent, &body, sent_at_ms).await {
        Ok(ack) => {
            let json = serde_json::to_vec(&ack).unwrap_or_default();
            let mut response = Response::new(Full::new(Bytes::from(json)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(rejection) => {
            telemetry.reject(&rejection, Some(&agent.id), &peer);
            respond_rejection(&rejection)
        }
    }
}

/// Reads a body of at most `limit` bytes. A larger body is read on (not kept) up to
/// [`DRAIN_FACTOR`] × `limit`, so that the client, still sending, receives the 413 rather than a
/// reset connection; past that the connection is dropped.
pub(crate) async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, Rejection> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    let too_large = || Rejection::TooLarge(format!("body exceeds {limit} bytes"));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Rejection::Malformed(format!("reading body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= limit {
            kept.extend_from_slice(&data);
        } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
            return Err(too_large());
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(kept))
}

fn rejected(
    app: &App,
    rejection: &Rejection,
    agent: Option<&str>,
    peer: &str,
) -> Response<Full<Bytes>> {
    app.ingest.telemetry().reject(rejection, agent, peer);
    respond_rejection(rejection)
}

fn respond_rejection(rejection: &Rejection) -> Response<Full<Bytes>> {
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

/// True when the scraper accepts OpenMetrics (Prometheus does); others get the 0.0.4 text format.
fn wants_openmetrics(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

fn metrics(app: &App, openmetrics: bool) -> Response<Full<Bytes>> {
    let mut body = String::with_capacity(64 * 1024);
    let (encoded, content_type) = if openmetrics {
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
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
