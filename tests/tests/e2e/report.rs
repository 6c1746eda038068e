//! Management reports end to end: the real `faultline-collector report` command on a ticket
//! store seeded with the hand-computed fixture (`faultline_tests::report_fixture`) writes HTML
//! and CSV with exactly the fixture's figures; the HTML is opened in headless Chromium (a
//! screenshot is kept in `target/test-artifacts/report/`); a bad `--period` fails naming the
//! option; and the real collector with `[reports]` mails the last month's report once to a real
//! SMTP server on loopback, and not again after a restart.

use fantoccini::Locator;
use faultline_tests::incidents::{IncidentSetup, email_channel};
use faultline_tests::receivers::SmtpSink;
use faultline_tests::report_fixture::{EXPECTED_CSV, INVENTORY, PERIOD, seed};
use faultline_tests::{binary, browser, free_port, log_events, wait_until};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// A config whose ticket store is `dir/tickets.db` and inventory the fixture's.
fn config(dir: &Path) -> std::path::PathBuf {
    let inventory = dir.join("inventory.toml");
    std::fs::write(&inventory, INVENTORY).unwrap();
    let config = dir.join("collector.toml");
    let text = format!(
        "[listen]\naddress = \"127.0.0.1:1\"\n\n[storage]\npath = \"{}\"\n\n[incidents]\ninventory_file = \"{}\"\n",
        dir.join("state.db").display(),
        inventory.display()
    );
    std::fs::write(&config, text).unwrap();
    config
}

fn report(config: &Path, args: &[&str]) -> Output {
    Command::new(binary("faultline-collector"))
        .arg("report")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// The CSV without the ongoing incident's line: it lasts until the report is made.
fn settled(csv: &str) -> String {
    csv.lines()
        .filter(|l| !l.contains("(ongoing)"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_command_writes_exact_figures_and_chromium_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    seed(&dir.path().join("tickets.db"));
    let config = config(dir.path());
    let out = dir.path().join("out");
    let run = report(
        &config,
        &["--period", PERIOD, "--out", out.to_str().unwrap()],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let csv = std::fs::read_to_string(out.join("faultline-report-2026-11.csv")).unwrap();
    assert_eq!(settled(&csv), settled(EXPECTED_CSV));
    assert!(
        csv.contains("\nlongest_minutes,all,#11 vm-hr customer (ongoing),"),
        "{csv}"
    );
    let html = out.join("faultline-report-2026-11.html");
    assert!(html.exists());

    let one = report(
        &config,
        &[
            "--period",
            PERIOD,
            "--department",
            "finance",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let finance =
        std::fs::read_to_string(out.join("faultline-report-2026-11-finance.csv")).unwrap();
    assert!(finance.contains("\ntickets,finance,,3\n"), "{finance}");
    assert!(
        finance.contains("\nmttr_minutes,finance,,220.0\n"),
        "{finance}"
    );

    let (_driver, port) = browser::chromedriver(dir.path());
    let client = browser::browser(port, &dir.path().join("chromium-profile")).await;
    client
        .goto(&format!("file://{}", html.display()))
        .await
        .unwrap();
    let body = client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for figure in [
        "Faultline management report 2026-11",
        "26.0 min",
        "150.0 min",
        "83.3 %",
        "acme-0042",
        "510.0",
        "new_customer_15days",
        "No pools declared.",
    ] {
        assert!(body.contains(figure), "{figure} not shown:\n{body}");
    }
    let bars = client.find_all(Locator::Css("svg rect")).await.unwrap();
    assert_eq!(
        bars.len(),
        4 + 4 + 6 + 3,
        "one bar per tag, severity, channel, security role"
    );
    browser::shot(&client, &browser::artifacts("report"), "report-2026-11.png").await;
    client.close().await.unwrap();
}

#[test]
fn bad_period_fails_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    seed(&dir.path().join("tickets.db"));
    let config = config(dir.path());
    for (period, message) in [
        (
            "2026-13",
            "--period: \"2026-13\" is not a month (YYYY-MM) or ISO week (YYYY-Www)",
        ),
        (
            "2026-W54",
            "--period: \"2026-W54\" is not a month (YYYY-MM) or ISO week (YYYY-Www)",
        ),
    ] {
        let run = report(
            &config,
            &["--period", period, "--out", dir.path().to_str().unwrap()],
        );
        assert!(!run.status.success(), "{period} accepted");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(message), "{period}: {stderr}");
    }
    let run = report(&config, &["--period", PERIOD, "--department", "sales"]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("--department: \"sales\""), "{stderr}");
}

/// The month before now, UTC (`2026-11` in December 2026): what the scheduler reports.
fn last_month() -> String {
    let today = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .date();
    let last = today.first_of_month().yesterday().unwrap();
    format!("{:04}-{:02}", last.year(), last.month())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_report_is_mailed_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    seed(&dir.path().join("tickets.db"));
    let smtp = SmtpSink::start(free_port()).unwrap();
    let tail = format!(
        r#"{}
[reports]
schedule = "monthly"
to = ["cio@gov.example"]
channel = "mail"
time_zone = "UTC"
"#,
        email_channel(smtp.port, "noc@example.com")
    );
    let setup = IncidentSetup {
        inventory: INVENTORY,
        tail: &tail,
        ..IncidentSetup::default()
    };
    let port = free_port();
    let mut collector = setup.start(dir.path(), port).await.unwrap();
    let subject = format!("Subject: Faultline management report {}", last_month());
    let reports = |smtp: &SmtpSink| -> Vec<serde_json::Value> {
        smtp.received()
            .into_iter()
            .filter(|m| {
                m["data"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("management report")
            })
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(20), || async {
            !reports(&smtp).is_empty()
        })
        .await,
        "no report mail; log:\n{}",
        collector.daemon.log()
    );
    let mail = &reports(&smtp)[0];
    assert_eq!(mail["to"], serde_json::json!(["cio@gov.example"]));
    let data = mail["data"].as_str().unwrap();
    for needle in [
        subject.as_str(),
        "Content-Type: text/html",
        "Content-Type: text/csv",
    ] {
        assert!(data.contains(needle), "{needle} missing:\n{data}");
    }
    assert!(collector.daemon.terminate());
    let collector = collector.restart(dir.path(), port).await.unwrap();
    // The restarted scheduler's first check finds the month sent and says so.
    assert!(
        wait_until(Duration::from_secs(20), || async {
            !log_events(&collector.daemon.log(), "no management report due").is_empty()
        })
        .await,
        "log:\n{}",
        collector.daemon.log()
    );
    assert_eq!(reports(&smtp).len(), 1, "sent again after the restart");
}
