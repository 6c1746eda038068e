//! The collector on a PostgreSQL ticket store (`[store] kind = "postgres"`), end to end: a real
//! PostgreSQL server started on loopback ([`faultline_tests::postgres`]), the real collector
//! binary, crafted batches pushed over HTTP. A fault gives one ticket and one page, which survive
//! a restart without a duplicate; a server down at start stops the collector with a message
//! naming `store.url` and the server; a server going away mid-run refuses batches unjudged (503)
//! and nothing is lost once it is back.

use faultline_incidents::{ListWindow, PgStore, TicketStore};
use faultline_tests::incidents::*;
use faultline_tests::postgres::{PgServer, store_section};
use faultline_tests::*;
use faultline_wire::now_ms;
use std::path::Path;
use std::time::Duration;

const INVENTORY: &str = r#"
[[targets]]
id = "edge1"
kind = "device"
owner = "platform"
"#;

async fn start(dir: &Path, port: u16, server: &PgServer) -> CollectorProcess {
    let tail = store_section(server);
    let setup = IncidentSetup {
        inventory: INVENTORY,
        tail: &tail,
        ..IncidentSetup::default()
    };
    setup.start(dir, port).await.unwrap()
}

/// Four samples of edge1 down, 30 s apart, ending 0–30 s ago: DeviceUnreachable fires.
fn edge1_down(t0: i64) -> Vec<faultline_wire::Sample> {
    (0..4).map(|i| up("edge1", 0.0, t0 + i * 30 * S)).collect()
}

/// The page events once there are at least `n` (at most 10 s).
async fn wait_pages(collector: &CollectorProcess, n: usize) -> usize {
    wait_until(Duration::from_secs(10), || async {
        page_events(collector).len() >= n
    })
    .await;
    page_events(collector).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_in_postgres_pages_once_and_survives_a_restart_without_a_duplicate() {
    let server = PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut collector = start(dir.path(), port, &server).await;
    let t0 = now_ms() - 90 * S;
    push(&collector, 1, edge1_down(t0)).await;
    let open = wait_tickets(&collector, "?state=open", |t| t.len() == 1).await;
    let id = open[0]["id"].as_u64().unwrap();
    assert_eq!(wait_pages(&collector, 1).await, 1, "one page");
    // The ticket is in PostgreSQL.
    let url = server.url();
    let stored = tokio::task::spawn_blocking(move || {
        PgStore::connect_read_only(&url)
            .unwrap()
            .list(None, &ListWindow::default(), 10)
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(stored.iter().map(|t| t.id).collect::<Vec<_>>(), [id]);

    assert!(collector.daemon.terminate(), "stops on SIGTERM");
    let collector = collector.restart(dir.path(), port).await.unwrap();
    // The device is still down after the restart: the same ticket, no second one, no new page.
    push(&collector, 2, vec![up("edge1", 0.0, t0 + 120 * S)]).await;
    push(&collector, 3, vec![up("edge1", 0.0, t0 + 121 * S)]).await;
    let all = tickets(&collector, "").await;
    assert_eq!(all.len(), 1, "no duplicate: {all:#?}");
    assert_eq!(all[0]["id"].as_u64(), Some(id));
    assert_eq!(all[0]["state"], "open");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        page_events(&collector).is_empty(),
        "no page repeated: {:?}",
        page_events(&collector)
    );
    // It resolves the stored ticket.
    push(&collector, 4, vec![up("edge1", 1.0, t0 + 122 * S)]).await;
    let resolved = wait_tickets(&collector, "?state=resolved", |t| t.len() == 1).await;
    assert_eq!(resolved[0]["id"].as_u64(), Some(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_at_start_stops_the_collector_naming_store_url_and_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (port, db_port) = (free_port(), free_port());
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\n\n[storage]\npath = \"{}\"\n\n[incidents]\n\n[store]\nkind = \"postgres\"\nurl = \"postgres://faultline:s3cret-pw@127.0.0.1:{db_port}/tickets\"\n",
            dir.path().join("state.db").display()
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().to_string();
    let mut daemon = Daemon::spawn(
        &binary("faultline-collector"),
        &["run", "--config", &config],
        &dir.path().join("collector.log"),
        &[],
    )
    .unwrap();
    let exited = wait_until(Duration::from_secs(20), || {
        let running = daemon.running();
        async move { !running }
    })
    .await;
    let log = daemon.log();
    assert!(exited, "still running: {log}");
    assert!(log.contains("store.url"), "{log}");
    assert!(log.contains(&format!("127.0.0.1:{db_port}")), "{log}");
    assert!(
        !log.contains("s3cret-pw"),
        "the password is never logged: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_refuses_batches_unjudged_and_loses_nothing_once_back() {
    let mut server = PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let collector = start(dir.path(), port, &server).await;
    let t0 = now_ms() - 90 * S;
    push(&collector, 1, vec![up("edge1", 1.0, t0 - S)]).await;

    server.stop();
    let refused = try_push(&collector.url, 2, edge1_down(t0), None).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("503")),
        "{refused:?}"
    );
    assert_eq!(
        get_text(&format!("{}/healthz", collector.url)).await,
        "ok\n"
    );
    assert!(
        collector.daemon.log().contains("ticket store unavailable"),
        "logged"
    );

    server.resume();
    // The agent sends the refused batch again; the session is opened again at the next call.
    let acked = wait_until(Duration::from_secs(15), || async {
        try_push(&collector.url, 2, edge1_down(t0), None)
            .await
            .is_ok()
    })
    .await;
    assert!(acked, "log:\n{}", collector.daemon.log());
    let open = wait_tickets(&collector, "?state=open", |t| t.len() == 1).await;
    assert_eq!(changes(&open[0]), ["opened"]);
    assert_eq!(wait_pages(&collector, 1).await, 1, "one page");
}
