//! TLS and mutual TLS for the collector's HTTP edge ([`super`]): the rustls acceptor built from
//! `[listen]`; the accept loop wraps each connection in it before the router sees a request.

use crate::config::ListenConfig;
use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

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
