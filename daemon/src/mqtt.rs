//! MQTT broker connection settings, shared by every MQTT client of Faultline: the agent's MQTT
//! sensor source, the agent's MQTT transport and the collector's MQTT ingest. Outside the data
//! flow: this turns a `[...broker]` config table into `rumqttc` options (credentials, TLS) and
//! names a connection failure for logs and error counters; the tasks that poll the event loop
//! live with their source or transport.

use crate::{SecretFileError, credential};
use faultline_wire::config_file::Secret;
use rumqttc::{ConnectReturnCode, ConnectionError, MqttOptions, TlsConfiguration, Transport};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// The system CA bundle used for TLS when no `ca_file` is set (Debian's `ca-certificates`).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A broker connection (`[… .broker]` table).
///
/// ```toml
/// address = "mqtt.example.net:8883"
/// tls = true
/// ca_file = "/etc/faultline/mqtt-ca.pem"
/// username = "faultline"
/// password_file = "/etc/faultline/mqtt.pass"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Broker `host:port` (1883 is plain MQTT, 8883 MQTT over TLS by convention).
    pub address: String,
    /// MQTT client id; defaults to one derived from the agent or collector id. Two clients with
    /// the same id throw each other off the broker.
    #[serde(default)]
    pub client_id: Option<String>,
    /// User name, when the broker asks for credentials.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (prefer `password_file`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// File whose first line is the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Connect with TLS.
    #[serde(default)]
    pub tls: bool,
    /// PEM CA certificate(s) the broker's certificate must chain to (default: the system bundle,
    /// `/etc/ssl/certs/ca-certificates.crt`). Only with `tls = true`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS. Only with `tls = true`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key for `client_cert_file`.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// MQTT keep-alive: the broker drops a silent client after 1.5 × this.
    #[serde(default = "default_keep_alive", with = "humantime_serde")]
    pub keep_alive: Duration,
    /// First reconnect delay after a failure; doubles (±50 % at random) up to `max_backoff`.
    #[serde(default = "default_min_backoff", with = "humantime_serde")]
    pub min_backoff: Duration,
    /// Longest reconnect delay.
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}
fn default_min_backoff() -> Duration {
    Duration::from_millis(500)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}

/// A broker setting that cannot work.
#[derive(Debug, Error)]
pub enum BrokerError {
    /// A field has a value that cannot work; `field` is relative to the broker table.
    #[error("field `{field}`: {message}")]
    Invalid {
        /// The field (`address`, `ca_file`, …).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The password file cannot be used.
    #[error("password_file: {0}")]
    Password(#[from] SecretFileError),
    /// A TLS file cannot be read.
    #[error("{field} {path}: {source}")]
    File {
        /// The field naming the file.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl BrokerError {
    /// The dotted config field of this error for a broker table at `table` (`push.mqtt` →
    /// `push.mqtt.address`; the table itself for file errors).
    pub fn field_in(&self, table: &str) -> String {
        match self {
            BrokerError::Invalid { field, .. } => format!("{table}.{field}"),
            BrokerError::File { field, .. } => format!("{table}.{field}"),
            BrokerError::Password(_) => format!("{table}.password_file"),
        }
    }
}

impl BrokerConfig {
    /// Checks values that parse but cannot work (pure, no I/O); the error names the field.
    pub fn validate(&self) -> Result<(), BrokerError> {
        let invalid = |field, message: &str| {
            Err(BrokerError::Invalid {
                field,
                message: message.to_string(),
            })
        };
        if self.host_port().is_none() {
            return invalid("address", "must be host:port");
        }
        if self.password.is_some() && self.password_file.is_some() {
            return invalid("password", "set only one of `password` and `password_file`");
        }
        if (self.password.is_some() || self.password_file.is_some()) && self.username.is_none() {
            return invalid("username", "a password needs a username");
        }
        if !self.tls
            && (self.ca_file.is_some()
                || self.client_cert_file.is_some()
                || self.client_key_file.is_some())
        {
            return invalid("tls", "certificate files are set: set `tls = true`");
        }
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            return invalid(
                "client_cert_file",
                "client_cert_file and client_key_file go together",
            );
        }
        if self.keep_alive < Duration::from_secs(1) {
            return invalid("keep_alive", "must be at least 1s");
        }
        if self.min_backoff.is_zero() || self.min_backoff > self.max_backoff {
            return invalid(
                "min_backoff",
                "must be above zero and not above max_backoff",
            );
        }
        Ok(())
    }

    fn host_port(&self) -> Option<(&str, u16)> {
        let (host, port) = self.address.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port.parse().ok()?;
        (!host.is_empty()).then_some((host, port))
    }

    /// The reconnect schedule.
    pub fn backoff(&self) -> crate::backoff::Backoff {
        crate::backoff::Backoff {
            initial: self.min_backoff,
            max: self.max_backoff,
            multiplier: 2.0,
            jitter: 0.5,
        }
    }

    /// Builds the client options, reading the password and TLS files. `default_client_id` is used
    /// when `client_id` is not set. The rustls crypto provider is the process default (the
    /// daemons install aws-lc-rs at start).
    pub fn options(&self, default_client_id: &str) -> Result<MqttOptions, BrokerError> {
        self.validate()?;
        let (host, port) = self.host_port().ok_or(BrokerError::Invalid {
            field: "address",
            message: "must be host:port".into(),
        })?;
        let id = self.client_id.as_deref().unwrap_or(default_client_id);
        let mut options = MqttOptions::new(id, host, port);
        options.set_keep_alive(self.keep_alive);
        if let Some(user) = &self.username {
            let password = if self.password.is_some() || self.password_file.is_some() {
                credential(self.password.as_ref(), self.password_file.as_deref())?
                    .expose()
                    .to_string()
            } else {
                String::new()
            };
            options.set_credentials(user, password);
        }
        if self.tls {
            let read = |field: &'static str, path: &PathBuf| {
                std::fs::read(path).map_err(|source| BrokerError::File {
                    field,
                    path: path.clone(),
                    source,
                })
            };
            let ca_path = self
                .ca_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE));
            let ca = read("ca_file", &ca_path)?;
            let client_auth = match (&self.client_cert_file, &self.client_key_file) {
                (Some(cert), Some(key)) => Some((
                    read("client_cert_file", cert)?,
                    read("client_key_file", key)?,
                )),
                _ => None,
            };
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
                ca,
                alpn: None,
                client_auth,
            }));
        }
        Ok(options)
    }
}

/// A short, stable name for a connection failure: the `kind` label of error counters and the
/// key of rate-limited log lines. `refused_credentials` is the broker refusing user or password.
pub fn failure_kind(error: &ConnectionError) -> &'static str {
    match error {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => "refused_credentials",
        ConnectionError::ConnectionRefused(_) => "refused",
        ConnectionError::Tls(_) => "tls",
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => "timeout",
        ConnectionError::Io(_) => "network",
        _ => "protocol",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(address: &str) -> BrokerConfig {
        BrokerConfig {
            address: address.into(),
            client_id: None,
            username: None,
            password: None,
            password_file: None,
            tls: false,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            keep_alive: default_keep_alive(),
            min_backoff: default_min_backoff(),
            max_backoff: default_max_backoff(),
        }
    }

    #[test]
    fn validation_names_the_field() {
        let cases: Vec<(BrokerConfig, Option<&str>)> = vec![
            (broker("127.0.0.1:1883"), None),
            (broker("[::1]:1883"), None),
            (broker("127.0.0.1"), Some("address")),
            (broker(":1883"), Some("address")),
            (
                BrokerConfig {
                    password: Some(Secret::new("p")),
                    ..broker("h:1")
                },
                Some("username"),
            ),
            (
                BrokerConfig {
                    ca_file: Some("/ca.pem".into()),
                    ..broker("h:1")
                },
                Some("tls"),
            ),
            (
                BrokerConfig {
                    tls: true,
                    client_cert_file: Some("/c.pem".into()),
                    ..broker("h:1")
                },
                Some("client_cert_file"),
            ),
            (
                BrokerConfig {
                    min_backoff: Duration::from_secs(60),
                    ..broker("h:1")
                },
                Some("min_backoff"),
            ),
        ];
        for (config, want) in cases {
            let got = match config.validate() {
                Ok(()) => None,
                Err(BrokerError::Invalid { field, .. }) => Some(field),
                Err(e) => panic!("unexpected {e}"),
            };
            assert_eq!(got, want, "{}", config.address);
        }
    }

    #[test]
    fn options_carry_id_and_credentials() {
        let config = BrokerConfig {
            username: Some("u".into()),
            password: Some(Secret::new("p")),
            ..broker("127.0.0.1:1883")
        };
        let options = config.options("faultline-a1").unwrap();
        assert_eq!(options.client_id(), "faultline-a1");
        assert_eq!(options.broker_address(), ("127.0.0.1".to_string(), 1883));
        let login = options.credentials().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("u", "p")
        );
        let missing_ca = BrokerConfig {
            tls: true,
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..broker("h:8883")
        };
        assert!(matches!(
            missing_ca.options("x"),
            Err(BrokerError::File {
                field: "ca_file",
                ..
            })
        ));
    }

    #[test]
    fn failure_kinds() {
        let cases = [
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword),
                "refused_credentials",
            ),
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized),
                "refused_credentials",
            ),
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::ServiceUnavailable),
                "refused",
            ),
            (
                ConnectionError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                "network",
            ),
            (ConnectionError::NetworkTimeout, "timeout"),
        ];
        for (error, want) in cases {
            assert_eq!(failure_kind(&error), want, "{error}");
        }
    }
}
