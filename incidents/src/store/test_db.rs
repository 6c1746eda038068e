//! The store test suite's harness (test support, feature `pg-test-server`): one test body runs
//! against both stores ([`both_stores!`](crate::both_stores)), the embedded SQLite file and a
//! private PostgreSQL server ([`super::pg_server`]). A "restart" is a new connection on the same
//! database ([`Db::open`]). The collector's tests use it too.

use super::pg_server::PgServer;
use super::{PgStore, SqliteStore, Store};

/// A database a test body opens stores on.
pub enum Db {
    /// A SQLite file in a temporary directory.
    Sqlite(tempfile::TempDir),
    /// A private PostgreSQL server.
    Postgres(PgServer),
}

impl Db {
    /// A new SQLite database.
    pub fn sqlite() -> Self {
        Db::Sqlite(tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}")))
    }

    /// A new PostgreSQL server.
    pub fn postgres() -> Self {
        Db::Postgres(PgServer::start())
    }

    /// A new connection, the schema brought up to date.
    pub fn open(&self) -> Box<dyn Store> {
        match self {
            Db::Sqlite(dir) => Box::new(
                SqliteStore::open(&dir.path().join("tickets.db")).unwrap_or_else(|e| panic!("{e}")),
            ),
            Db::Postgres(server) => {
                Box::new(PgStore::connect(&server.url()).unwrap_or_else(|e| panic!("{e}")))
            }
        }
    }

    /// How many migrations its store has (the schema version after opening).
    pub fn migrations(&self) -> i64 {
        let n = match self {
            Db::Sqlite(_) => super::MIGRATIONS.len(),
            Db::Postgres(_) => super::pg::schema::MIGRATIONS.len(),
        };
        i64::try_from(n).unwrap_or(i64::MAX)
    }
}

/// Runs each named test body (`fn(&Db)`, in scope) once on SQLite and once on PostgreSQL, as
/// tests `sqlite::<name>` and `postgres::<name>`.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() {
                super::$name(&$crate::store::test_db::Db::sqlite());
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                super::$name(&$crate::store::test_db::Db::postgres());
            })*
        }
    };
}
