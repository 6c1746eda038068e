//! The IMAP connection of the repair mailbox (IMAP → **mailbox**): TCP, TLS (IMAPS, or STARTTLS
//! before login) with the process's rustls crypto provider, the greeting and the login. Every
//! step is bounded by [`COMMAND_TIMEOUT`]; a failure carries the `kind` label of
//! `faultline_mailbox_errors_total`.

use super::config::{MailboxConfig, Security};
use faultline_wire::config_file::Secret;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Longest wait for one IMAP command's answer.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A byte stream the IMAP client runs on: TCP, or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Io for T {}

/// A logged-in IMAP session.
pub type Imap = async_imap::Session<Box<dyn Io>>;

/// Why the session failed.
#[derive(Debug)]
pub struct Failure {
    /// `connect`, `tls`, `login`, `protocol`, `timeout` or `stage`.
    pub kind: &'static str,
    /// What happened.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: &'static str, message: impl fmt::Display) -> Self {
        Failure {
            kind,
            message: message.to_string(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// Runs one IMAP step (`what`, for the error) within [`COMMAND_TIMEOUT`].
pub async fn timed<T>(
    what: &str,
    step: impl Future<Output = async_imap::error::Result<T>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(COMMAND_TIMEOUT, step).await {
        Err(_) => Err(Failure::new("timeout", format!("{what}: no answer"))),
        Ok(Err(error)) => Err(Failure::new("protocol", format!("{what}: {error}"))),
        Ok(Ok(value)) => Ok(value),
    }
}

/// Connects, secures the connection as configured and logs in.
pub async fn connect(config: &MailboxConfig, password: &Secret) -> Result<Imap, Failure> {
    let address = (config.host.as_str(), config.port());
    let tcp = tokio::time::timeout(COMMAND_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| Failure::new("timeout", "connecting"))?
        .map_err(|e| Failure::new("connect", format!("{}:{}: {e}", config.host, config.port())))?;
    let stream: Box<dyn Io> = match config.security {
        Security::Imaps => tls(config, Box::new(tcp)).await?,
        Security::Starttls | Security::Plain => Box::new(tcp),
    };
    let mut client = async_imap::Client::new(stream);
    match timed("greeting", async { Ok(client.read_response().await?) }).await? {
        Some(_) => {}
        None => return Err(Failure::new("protocol", "closed before the greeting")),
    }
    if config.security == Security::Starttls {
        timed(
            "STARTTLS",
            client.run_command_and_check_ok("STARTTLS", None),
        )
        .await?;
        client = async_imap::Client::new(tls(config, client.into_inner()).await?);
    }
    let login = client.login(&config.user, password.expose());
    match tokio::time::timeout(COMMAND_TIMEOUT, login).await {
        Err(_) => Err(Failure::new("timeout", "login: no answer")),
        Ok(Err((error, _))) => Err(Failure::new(
            "login",
            format!("as {}: {error}", config.user),
        )),
        Ok(Ok(session)) => Ok(session),
    }
}

/// Wraps `stream` in TLS, checking the server's certificate for `host` against `ca_file` (or
/// the system bundle).
async fn tls(config: &MailboxConfig, stream: Box<dyn Io>) -> Result<Box<dyn Io>, Failure> {
    let ca_file = config
        .ca_file
        .clone()
        .unwrap_or_else(|| faultline_daemon::mqtt::SYSTEM_CA_BUNDLE.into());
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&ca_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Failure::new("tls", format!("mailbox.ca_file {}: {e}", ca_file.display())))?;
    roots.add_parsable_certificates(certs);
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(config.host.clone())
        .map_err(|e| Failure::new("tls", format!("mailbox.host {}: {e}", config.host)))?;
    let secured = tokio::time::timeout(
        COMMAND_TIMEOUT,
        TlsConnector::from(Arc::new(client)).connect(name, stream),
    )
    .await
    .map_err(|_| Failure::new("timeout", "TLS handshake"))?
    .map_err(|e| Failure::new("tls", e))?;
    Ok(Box::new(secured))
}
