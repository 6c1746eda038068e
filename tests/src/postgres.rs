//! A private PostgreSQL server on 127.0.0.1 for end-to-end tests of the collector with
//! `[store] kind = "postgres"`: the incidents crate's test server ([`PgServer`]: `initdb` in a
//! temporary directory, a free port, stopped on drop, as `nobody` when the tests run as root),
//! and the `[store]` section that points a collector at it.

pub use faultline_incidents::store::pg_server::PgServer;

/// The collector config section for the ticket store on `server`.
pub fn store_section(server: &PgServer) -> String {
    format!("[store]\nkind = \"postgres\"\nurl = \"{}\"\n", server.url())
}
