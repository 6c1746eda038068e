//! `mailbox_bench`: mails per second turned into tickets by the repair mailbox. Delivers `N`
//! distinct mails from a known department into a private Dovecot (`doveadm save`, before the
//! collector starts), starts the real collector binary with `[mailbox]` on it, and times from the
//! collector being healthy until `faultline_mailbox_mails_total{result="ticket"}` reaches `N`
//! (every ticket committed; the last mail may still be being flagged). Prints one line per run.
//!
//! ```sh
//! cargo build -p faultline-collector -p faultline-tests --bins
//! target/debug/mailbox_bench [N=300] [RUNS=3]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use faultline_tests::dovecot::{Dovecot, PASSWORD, USER};
use faultline_tests::incidents::IncidentSetup;
use faultline_tests::{free_port, metric_value};
use std::time::{Duration, Instant};

const INVENTORY: &str = r#"
[[departments]]
id = "finance"
mail_domains = ["finance.gov.example"]
"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(300), |a| a.parse())?;
    let runs: usize = args.next().map_or(Ok(3), |a| a.parse())?;
    let mut rates = Vec::new();
    for run in 1..=runs {
        let dovecot = Dovecot::start()?;
        for i in 0..n {
            let mail = format!(
                "From: user{i}@finance.gov.example\r\nTo: repair@example.com\r\nSubject: fault {i}\r\nMessage-ID: <bench-{run}-{i}@finance.gov.example>\r\n\r\nThe printer on floor {i} is down.\r\n"
            );
            dovecot.deliver("INBOX", mail.as_bytes())?;
        }
        let dir = tempfile::tempdir()?;
        let pass = dir.path().join("mailbox.pass");
        std::fs::write(&pass, PASSWORD)?;
        let tail = format!(
            "[mailbox]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\nuser = \"{USER}\"\npassword_file = \"{}\"\npoll_interval = \"1s\"\n",
            dovecot.port,
            pass.display()
        );
        let setup = IncidentSetup {
            inventory: INVENTORY,
            tail: &tail,
            ..IncidentSetup::default()
        };
        let collector = setup.start(dir.path(), free_port()).await?;
        let start = Instant::now();
        let deadline = start + Duration::from_secs(600);
        loop {
            let metrics = collector.scrape().await;
            let done = metric_value(
                &metrics,
                "faultline_mailbox_mails_total",
                &[("result", "ticket")],
            )
            .unwrap_or(0.0);
            if done as usize >= n {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {done} of {n} tickets in 600 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        let rate = n as f64 / secs;
        println!("run {run}: {n} mails → tickets in {secs:.2} s = {rate:.1} mails/s");
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    if let (Some(min), Some(max)) = (rates.first(), rates.last()) {
        println!(
            "mails/s min {min:.1} median {:.1} max {max:.1}",
            rates[rates.len() / 2]
        );
    }
    Ok(())
}
