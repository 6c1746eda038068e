//! The ticket console in a real browser: the real collector binary with incidents on, tickets
//! opened through the API, and headless Chromium (Debian `chromium` + `chromium-driver`, driven
//! over WebDriver with fantoccini) working the queue as an engineer and reading it as a department.
//! Loopback only, bounded in time; screenshots go to `target/test-artifacts/console/`.

use fantoccini::{Client, Locator};
use faultline_tests::browser;
use faultline_tests::incidents::*;
use faultline_tests::*;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const INVENTORY: &str = r#"
[[sites]]
id = "dc1"

[[departments]]
id = "finance"
contacts = [{ name = "Li Wei", phone = "+86 21 5555 0101" }]

[[departments]]
id = "hr"
contacts = [{ name = "Zhang Min", email = "zhang.min@example.com" }]

[[targets]]
id = "vm-fin"
kind = "vm"
owner = "customer"
department = "finance"

[[targets]]
id = "vm-hr"
kind = "vm"
owner = "customer"
department = "hr"

[[targets]]
id = "core1"
kind = "device"
owner = "platform"
"#;

const FINANCE: &str = "finance-console-token-0123456789";

const TAIL: &str = r#"
[[api.departments]]
department = "finance"
token = "finance-console-token-0123456789"

[api]
time_zone = "Asia/Shanghai"
"#;

/// Where the screenshots go: `target/test-artifacts/console/`.
fn artifacts() -> PathBuf {
    browser::artifacts("console")
}

async fn text(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The text of `css` once `check` accepts it (a click's navigation may still be under way);
/// at most 15 s.
async fn wait_text(client: &Client, css: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = match client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if check(&found) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never matched; last: {found:?}\npage:\n{}",
            client.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (at most 15 s) until the browser is on a URL containing `part`.
async fn wait_url(client: &Client, part: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !client.current_url().await.unwrap().as_str().contains(part) {
        assert!(Instant::now() < deadline, "never reached a URL with {part}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn login(client: &Client, base: &str, token: &str) {
    client.goto(&format!("{base}/console/login")).await.unwrap();
    let field = client.find(Locator::Css("#token")).await.unwrap();
    field.send_keys(token).await.unwrap();
    client
        .find(Locator::Css("#login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_url(client, "/console/tickets").await;
    wait_text(client, "h1", |t| !t.is_empty()).await;
}

async fn open(collector: &CollectorProcess, target: &str, summary: &str) -> u64 {
    let report = json!({ "target": target, "summary": summary, "severity": "P2",
                         "description": "reported by phone" });
    let (status, ticket) = api(collector, Some(ENGINEER), "POST", "/tickets", Some(report)).await;
    assert_eq!(status, 201, "{ticket}");
    ticket["id"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let setup = IncidentSetup {
        inventory: INVENTORY,
        tail: TAIL,
        ..IncidentSetup::default()
    };
    let collector = setup.start(dir.path(), free_port()).await.unwrap();
    let fin = open(&collector, "vm-fin", "finance VM disk full").await;
    let hr = open(&collector, "vm-hr", "hr VM unreachable").await;
    let core = open(&collector, "core1", "core switch fan failure").await;
    let shots = artifacts();
    let (_driver, port) = browser::chromedriver(dir.path());
    let client = browser::browser(port, &dir.path().join("chromium-profile")).await;
    let base = collector.url.clone();
    let scenario = async {
        // The engineer's queue: all three, newest first.
        login(&client, &base, ENGINEER).await;
        let rows = client.find_all(Locator::Css(".ticket-row")).await.unwrap();
        assert_eq!(rows.len(), 3, "{}", client.source().await.unwrap());
        browser::shot(&client, &shots, "01-queue-engineer.png").await;

        // Filter: customer-tagged tickets only (the two VMs).
        let tag = client.find(Locator::Css("#filter-tag")).await.unwrap();
        tag.select_by_value("customer").await.unwrap();
        client
            .find(Locator::Css("#apply-filters"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_url(&client, "tag=customer").await;
        let ids: Vec<String> = {
            let mut ids = Vec::new();
            for row in client.find_all(Locator::Css(".ticket-row")).await.unwrap() {
                ids.push(row.attr("data-id").await.unwrap().unwrap_or_default());
            }
            ids
        };
        assert_eq!(ids, [hr.to_string(), fin.to_string()], "filtered by tag");
        assert!(!ids.contains(&core.to_string()));
        browser::shot(&client, &shots, "02-queue-filtered.png").await;

        // Open the finance ticket, acknowledge it, post a customer progress note.
        client
            .find(Locator::Css(&format!(
                "a.ticket-link[href='/console/tickets/{fin}']"
            )))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_text(&client, "#ticket-title", |t| {
            t.contains("finance VM disk full")
        })
        .await;
        assert!(
            text(&client, "#ticket-title")
                .await
                .contains("finance VM disk full")
        );
        assert!(
            text(&client, "#tag-reason").await.len() > 3,
            "the reason for its tag"
        );
        assert!(
            text(&client, "#timeline").await.contains("(UTC+08:00)"),
            "local times"
        );
        client
            .find(Locator::Css("#acknowledge"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_text(&client, "#ticket-state", |t| t == "acknowledged").await;
        assert_eq!(text(&client, "#ticket-state").await, "acknowledged");
        let note = "Disk replaced, restoring data now";
        client
            .find(Locator::Css("#note-text"))
            .await
            .unwrap()
            .send_keys(note)
            .await
            .unwrap();
        let audience = client.find(Locator::Css("#note-audience")).await.unwrap();
        audience.select_by_value("customer").await.unwrap();
        client
            .find(Locator::Css("#post-note"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_text(&client, "#timeline", |t| t.contains(note)).await;
        let timeline = text(&client, "#timeline").await;
        assert!(timeline.contains(note), "{timeline}");
        assert!(
            timeline.contains("Progress update to the customer"),
            "{timeline}"
        );
        browser::shot(&client, &shots, "03-ticket-engineer.png").await;

        // The API sees the same change (one store, one set of rules).
        let (_, ticket) = api(
            &collector,
            Some(VIEWER),
            "GET",
            &format!("/tickets/{fin}"),
            None,
        )
        .await;
        assert_eq!(ticket["state"], "acknowledged");
        assert_eq!(ticket["assignee"], "alice");

        // Log out; the department sees only its own ticket, read-only, with the update.
        client
            .find(Locator::Css("header form button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_url(&client, "/console/login").await;
        login(&client, &base, FINANCE).await;
        let rows = client.find_all(Locator::Css(".ticket-row")).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].attr("data-id").await.unwrap(),
            Some(fin.to_string())
        );
        assert!(client.find(Locator::Css("#department-view")).await.is_ok());
        assert!(
            client.find(Locator::Css("#new-ticket")).await.is_err(),
            "no manual report"
        );
        browser::shot(&client, &shots, "04-queue-department.png").await;
        client
            .goto(&format!("{base}/console/tickets/{fin}"))
            .await
            .unwrap();
        assert!(
            client.find(Locator::Css("#actions")).await.is_err(),
            "no action forms"
        );
        assert!(client.find(Locator::Css("#evidence")).await.is_err());
        assert!(text(&client, "#timeline").await.contains(note));
        browser::shot(&client, &shots, "05-ticket-department.png").await;
        client
            .goto(&format!("{base}/console/tickets/{hr}"))
            .await
            .unwrap();
        assert!(
            text(&client, "h1").await.contains("404"),
            "another department's ticket"
        );

        // Switch to Chinese.
        client
            .goto(&format!("{base}/console/tickets/{fin}"))
            .await
            .unwrap();
        client
            .find(Locator::Css("#lang-switch"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_text(&client, "#ticket-title", |t| t.starts_with("工单")).await;
        assert!(text(&client, "#ticket-title").await.starts_with("工单"));
        assert!(text(&client, "#timeline").await.contains("向客户通报进展"));
        browser::shot(&client, &shots, "06-ticket-department-zh.png").await;
    };
    let outcome = tokio::time::timeout(Duration::from_secs(120), scenario).await;
    let _ = client.close().await;
    assert!(
        outcome.is_ok(),
        "console scenario timed out; collector log:\n{}",
        collector.daemon.log()
    );
}
