//! Which ticket store the collector runs on (config → **incidents**, capacity, reports): `[store]`
//! picks the embedded SQLite file (`kind = "sqlite"`, the default: `incidents.database`) or a
//! PostgreSQL server (`kind = "postgres"`, `url` or `url_file`). [`Location`] is the resolved
//! choice; each user opens its own connection on it ([`Location::open`]).
//!
//! The notification outbox stays in the local SQLite file `incidents.database` with either kind:
//! it records the feed position it handled, a number the PostgreSQL feed gives as well.
//!
//! PostgreSQL down at start: the collector exits with an error naming `store.url` and the
//! server's `host:port` (never the password); under systemd (`Restart=always`) it is started
//! again every 2 s until the server answers. Down mid-run: each store call fails and is logged
//! by its user, which keeps what it could not store for another try; the session is opened again
//! at the next call once the server is back.

use crate::config::{IncidentsConfig, StorageConfig};
use anyhow::Context;
use faultline_incidents::{PgStore, SqliteStore, Store};
use faultline_wire::config_file::{ConfigError, ConfigSource, Secret};
use serde::Deserialize;
use std::path::PathBuf;

/// `[store]`: where tickets, timelines, the feed, follow-ups, the rules' memory, report and
/// capacity history are kept.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite` (default: the file `incidents.database`) or `postgres`.
    pub kind: StoreKind,
    /// PostgreSQL connection URL, `postgres://user:password@host:5432/database` (prefer
    /// `url_file`: it holds a password). Only with `kind = "postgres"`.
    pub url: Option<Secret>,
    /// File whose first line is the connection URL.
    pub url_file: Option<PathBuf>,
}

/// The store implementation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The embedded SQLite file.
    #[default]
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl StoreConfig {
    /// Checks the fields without reading the URL file; errors name `{at}.<field>`.
    pub fn validate(&self, source: &ConfigSource, at: &str) -> Result<(), ConfigError> {
        let given = (self.url.is_some(), self.url_file.is_some());
        match (self.kind, given) {
            (StoreKind::Sqlite, (false, false)) => Ok(()),
            (StoreKind::Sqlite, _) => Err(source.error(
                &format!("{at}.url"),
                "only with kind = \"postgres\" (SQLite uses incidents.database)",
            )),
            (StoreKind::Postgres, (true, false) | (false, true)) => Ok(()),
            (StoreKind::Postgres, _) => Err(source.error(
                &format!("{at}.url"),
                "kind = \"postgres\" needs exactly one of `url` and `url_file`",
            )),
        }
    }
}

/// The resolved ticket store: a SQLite file or a PostgreSQL URL (kept secret).
#[derive(Debug, Clone)]
pub enum Location {
    /// The SQLite file.
    Sqlite(PathBuf),
    /// The PostgreSQL connection URL.
    Postgres(Secret),
}

impl Location {
    /// The store `[store]` picks (reading `store.url_file`), the SQLite file being
    /// `incidents.database`.
    pub fn resolve(
        store: &StoreConfig,
        incidents: &IncidentsConfig,
        storage: &StorageConfig,
    ) -> anyhow::Result<Self> {
        Ok(match store.kind {
            StoreKind::Sqlite => Location::Sqlite(incidents.database_path(storage)),
            StoreKind::Postgres => Location::Postgres(
                faultline_daemon::credential(store.url.as_ref(), store.url_file.as_deref())
                    .context("store.url / store.url_file")?,
            ),
        })
    }

    /// Opens a connection, the schema brought up to date (the SQLite file's directory created).
    pub fn open(&self) -> anyhow::Result<Box<dyn Store>> {
        match self {
            Location::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("incidents.database {}", path.display()))?;
                }
                let store = SqliteStore::open(path)
                    .with_context(|| format!("incidents.database {}", path.display()))?;
                Ok(Box::new(store))
            }
            Location::Postgres(url) => Ok(Box::new(
                PgStore::connect(url.expose()).context("store.url")?,
            )),
        }
    }

    /// Opens a connection for reading only (nothing migrated; a newer schema refused).
    pub fn open_read_only(&self) -> anyhow::Result<Box<dyn Store>> {
        match self {
            Location::Sqlite(path) => Ok(Box::new(
                SqliteStore::open_read_only(path)
                    .with_context(|| format!("incidents.database {}", path.display()))?,
            )),
            Location::Postgres(url) => Ok(Box::new(
                PgStore::connect_read_only(url.expose()).context("store.url")?,
            )),
        }
    }

    /// Where it is, for logs and messages: the file, or `postgres://host:port` (no password).
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres(url) => match PgStore::server_of(url.expose()) {
                Ok(server) => format!("postgres://{server}"),
                Err(_) => "postgres (store.url not valid)".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn check(section: &str) -> Result<StoreConfig, String> {
        let text = format!("[store]\n{section}\n");
        let source = ConfigSource::from_text(Path::new("c.toml"), text);
        #[derive(Deserialize)]
        struct Wrapper {
            store: StoreConfig,
        }
        let config = source.parse::<Wrapper>().map_err(|e| e.to_string())?.store;
        config
            .validate(&source, "store")
            .map_err(|e| e.to_string())?;
        Ok(config)
    }

    #[test]
    fn kind_and_url_must_agree_and_errors_name_the_field() {
        assert_eq!(check("").unwrap(), StoreConfig::default());
        assert_eq!(check("kind = \"sqlite\"").unwrap().kind, StoreKind::Sqlite);
        let pg = check("kind = \"postgres\"\nurl = \"postgres://u:pw@db:5432/t\"").unwrap();
        assert_eq!(pg.kind, StoreKind::Postgres);
        assert!(check("kind = \"postgres\"\nurl_file = \"/etc/faultline/db\"").is_ok());
        for (section, field) in [
            ("kind = \"postgres\"", "store.url"),
            (
                "kind = \"postgres\"\nurl = \"x\"\nurl_file = \"/f\"",
                "store.url",
            ),
            ("url = \"postgres://u:pw@db/t\"", "store.url"),
            ("kind = \"mysql\"", "store.kind"),
        ] {
            let err = check(section).unwrap_err();
            assert!(err.contains(field), "{section}: {err}");
            assert!(!err.contains("pw@"), "{section}: {err}");
        }
    }

    #[test]
    fn a_postgres_location_is_described_without_its_password() {
        let location = Location::Postgres(Secret::new("postgres://u:pw@db.example:6543/t"));
        assert_eq!(location.describe(), "postgres://db.example:6543");
        assert!(!format!("{location:?}").contains("pw"));
    }
}
