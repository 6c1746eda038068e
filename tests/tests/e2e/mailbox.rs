//! The repair mailbox end to end: the real collector reads a real Dovecot (plain IMAP on
//! loopback, mail delivered with `doveadm save`) and answers reporters through the Python SMTP
//! sink. GB2312/GBK mail opens a ticket with its decoded subject and text and the reporter gets
//! the acknowledgement with `[FL-<id>]`; a reply threads in; a bounce opens nothing and is not
//! answered; unreadable mail is quarantined and counted; a collector killed with SIGKILL at
//! fixed moments after a mail arrived (before the fetch, or between commit and flag, whichever
//! the timing hits: the test does not observe which) opens exactly one ticket once restarted, and
//! mails unflagged after their tickets were committed (that window, made certain) are fetched
//! again and found by their Message-ID: no second ticket; a Dovecot that was down
//! loses nothing.

use faultline_tests::dovecot::{Dovecot, PASSWORD, USER};
use faultline_tests::incidents::{IncidentSetup, changes, email_channel, tickets, wait_tickets};
use faultline_tests::receivers::SmtpSink;
use faultline_tests::{CollectorProcess, free_port, metric_value, wait_until};
use serde_json::Value;
use std::time::Duration;

const INVENTORY: &str = r#"
[[departments]]
id = "finance"
language = "zh-CN"
mail_domains = ["finance.gov.example"]
contacts = [{ name = "Li Wei", email = "li.wei@finance.gov.example" }]
"#;

/// The peers of one test: Dovecot, the SMTP sink, and a collector (state in `dir`, on `port`)
/// with incidents, the e-mail channel to the sink and `[mailbox]` on Dovecot.
struct Peers {
    dir: tempfile::TempDir,
    dovecot: Dovecot,
    sink: SmtpSink,
    collector: CollectorProcess,
    port: u16,
}

async fn peers() -> Peers {
    let dovecot = Dovecot::start().unwrap();
    peers_on(
        tempfile::tempdir().unwrap(),
        dovecot,
        "security = \"plain\"",
    )
    .await
}

/// [`peers`] on a given Dovecot, `security` lines in `[mailbox]`.
async fn peers_on(dir: tempfile::TempDir, dovecot: Dovecot, security: &str) -> Peers {
    let smtp = free_port();
    let sink = SmtpSink::start(smtp).unwrap();
    let pass = dir.path().join("mailbox.pass");
    std::fs::write(&pass, format!("{PASSWORD}\n")).unwrap();
    let tail = format!(
        "{}\n[mailbox]\nhost = \"127.0.0.1\"\nport = {}\n{security}\nuser = \"{USER}\"\npassword_file = \"{}\"\npoll_interval = \"2s\"\nreconnect_max = \"1s\"\nmax_mail_bytes = 200000\n",
        email_channel(smtp, "desk@example.com"),
        dovecot.port,
        pass.display()
    );
    let port = free_port();
    let setup = IncidentSetup {
        inventory: INVENTORY,
        tail: &tail,
        ..IncidentSetup::default()
    };
    let collector = setup.start(dir.path(), port).await.unwrap();
    Peers {
        dir,
        dovecot,
        sink,
        collector,
        port,
    }
}

/// `text` in `charset`, base64 (RFC 2047 words and bodies).
fn b64(text: &str, charset: &str) -> String {
    use base64::Engine;
    let (bytes, _, unmappable) = encoding_rs::Encoding::for_label(charset.as_bytes())
        .unwrap()
        .encode(text);
    assert!(!unmappable);
    base64::engine::general_purpose::STANDARD.encode(&bytes)
}

/// A mail from Li Wei in `charset`.
fn chinese(id: &str, charset: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: =?{charset}?B?{}?= <li.wei@finance.gov.example>\r\nTo: repair@example.com\r\n\
         Subject: =?{charset}?B?{}?=\r\nMessage-ID: <{id}>\r\nDate: Tue, 8 Dec 2026 09:00:00 +0800\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        b64("李伟", charset),
        b64(subject, charset),
        b64(body, charset)
    )
    .into_bytes()
}

/// A plain ASCII mail.
fn plain(id: &str, from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: repair@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\r\nThe VPN is down.\r\n"
    )
    .into_bytes()
}

/// Flags of the mail `<id>` in `folder`, `None` when it is not there.
fn flags(dovecot: &Dovecot, folder: &str, id: &str) -> Option<String> {
    let want = format!("<{id}>");
    dovecot
        .mails(folder)
        .unwrap()
        .into_iter()
        .find(|(m, _)| *m == want)
        .map(|(_, f)| f)
}

async fn wait_seen(dovecot: &Dovecot, id: &str, within: Duration) -> bool {
    wait_until(within, || async {
        flags(dovecot, "INBOX", id).is_some_and(|f| f.contains("\\Seen"))
    })
    .await
}

fn mailbox_tickets(all: &[Value]) -> Vec<&Value> {
    all.iter().filter(|t| t["channel"] == "mailbox").collect()
}

/// Decoded subject and `X-Faultline-Ticket` of the sink's mails to `to`.
fn answers(sink: &SmtpSink, to: &str) -> Vec<(String, String)> {
    sink.received()
        .iter()
        .filter(|m| {
            m["to"]
                .as_array()
                .is_some_and(|a| a.iter().any(|t| t == to))
        })
        .filter_map(|m| {
            let data = m["data"].as_str()?;
            let parsed = mail_parser::MessageParser::default().parse(data.as_bytes())?;
            let ticket = parsed
                .header("X-Faultline-Ticket")
                .and_then(|h| h.as_text())
                .unwrap_or_default()
                .to_string();
            Some((parsed.subject().unwrap_or_default().to_string(), ticket))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gb2312_mail_opens_one_ticket_acknowledged_a_gbk_reply_threads_in_a_bounce_opens_nothing() {
    let Peers {
        dovecot,
        sink,
        collector,
        dir: _dir,
        port: _,
    } = peers().await;

    dovecot
        .deliver(
            "INBOX",
            &chinese(
                "zh-1@finance.gov.example",
                "GB2312",
                "打印机故障",
                "三楼的打印机无法连接网络。",
            ),
        )
        .unwrap();
    let all = wait_tickets(&collector, "?channel=mailbox", |t| t.len() == 1).await;
    let ticket = &all[0];
    let id = ticket["id"].as_u64().unwrap();
    assert_eq!(ticket["summary"], "打印机故障");
    assert!(
        ticket["description"]
            .as_str()
            .unwrap()
            .contains("三楼的打印机无法连接网络。"),
        "{ticket:#}"
    );
    assert_eq!(ticket["tag"], "platform");
    assert_eq!(ticket["reporter"]["email"], "li.wei@finance.gov.example");
    assert!(
        wait_seen(
            &dovecot,
            "zh-1@finance.gov.example",
            Duration::from_secs(10)
        )
        .await,
        "the mail is flagged once its ticket is committed"
    );
    // The reporter's acknowledgement carries the ticket number.
    let token = format!("[FL-{id}]");
    assert!(
        wait_until(Duration::from_secs(15), || async {
            answers(&sink, "li.wei@finance.gov.example")
                .iter()
                .any(|(subject, ticket)| subject.starts_with(&token) && *ticket == id.to_string())
        })
        .await,
        "no acknowledgement with {token}: {:#?}\nlog:\n{}",
        sink.received(),
        collector.daemon.log()
    );

    // A GBK reply with the token threads into the ticket.
    dovecot
        .deliver(
            "INBOX",
            &chinese(
                "zh-2@finance.gov.example",
                "GBK",
                &format!("回复：{token} 打印机故障"),
                "重启后仍然无法打印。",
            ),
        )
        .unwrap();
    assert!(
        wait_seen(
            &dovecot,
            "zh-2@finance.gov.example",
            Duration::from_secs(10)
        )
        .await
    );
    let all = tickets(&collector, "?channel=mailbox").await;
    assert_eq!(mailbox_tickets(&all).len(), 1, "{all:#?}");
    let (_, one) = faultline_tests::incidents::api(
        &collector,
        Some(faultline_tests::incidents::VIEWER),
        "GET",
        &format!("/tickets/{id}"),
        None,
    )
    .await;
    assert!(
        changes(&one).iter().any(|c| c == "mail_received"),
        "{one:#}"
    );
    assert!(one.to_string().contains("重启后仍然无法打印。"), "{one:#}");

    // A bounce: marked done, no ticket, no answer.
    let bounce = "From: MAILER-DAEMON@mx.finance.gov.example\r\nTo: repair@example.com\r\n\
        Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce-1@mx.finance.gov.example>\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n\
        --r\r\nContent-Type: text/plain\r\n\r\nThis is the mail system: delivery failed.\r\n\
        --r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.finance.gov.example\r\n\r\nFinal-Recipient: rfc822; nobody@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\
        --r--\r\n";
    let sent_before = sink.received().len();
    dovecot.deliver("INBOX", bounce.as_bytes()).unwrap();
    assert!(
        wait_seen(
            &dovecot,
            "bounce-1@mx.finance.gov.example",
            Duration::from_secs(10)
        )
        .await
    );
    let metrics = collector.scrape().await;
    assert_eq!(
        metric_value(
            &metrics,
            "faultline_mailbox_mails_total",
            &[("result", "automatic")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "faultline_mailbox_mails_total",
            &[("result", "ticket")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "faultline_mailbox_mails_total",
            &[("result", "reply")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&metrics, "faultline_mailbox_connected", &[]),
        Some(1.0)
    );
    // Give a wrongly sent answer time to arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mailbox_tickets(&tickets(&collector, "").await).len(), 1);
    let to_bounce = sink.received()[sent_before..]
        .iter()
        .filter(|m| m.to_string().to_ascii_lowercase().contains("mailer-daemon"))
        .count();
    assert_eq!(to_bounce, 0, "{:#?}", sink.received());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_charset_and_oversized_mail_are_quarantined_and_counted_the_next_opens_an_untagged_ticket_with_its_attachment()
 {
    let Peers {
        dovecot,
        collector,
        dir: _dir,
        sink: _sink,
        port: _,
    } = peers().await;

    let klingon = String::from_utf8(chinese("q-1@x.example", "GB2312", "x", "y"))
        .unwrap()
        .replace("charset=GB2312", "charset=x-klingon");
    dovecot.deliver("INBOX", klingon.as_bytes()).unwrap();
    let mut big = plain("q-2@x.example", "a@x.example", "big");
    big.extend(std::iter::repeat_n(b'x', 300_000));
    big.extend(b"\r\n");
    dovecot.deliver("INBOX", &big).unwrap();
    let with_photo = "From: a@x.example\r\nTo: repair@example.com\r\nSubject: VPN down\r\n\
        Message-ID: <ok-1@x.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the screenshot.\r\n\
        --b\r\nContent-Type: image/png; name=\"screen.png\"\r\nContent-Disposition: attachment; filename=\"screen.png\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n";
    dovecot.deliver("INBOX", with_photo.as_bytes()).unwrap();
    let quarantined = || {
        let mut ids: Vec<String> = dovecot
            .mails("Quarantine")
            .unwrap_or_default()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        ids.sort();
        ids
    };
    assert!(
        wait_until(Duration::from_secs(15), || async {
            quarantined().len() == 2
        })
        .await,
        "quarantine: {:?}\nlog:\n{}",
        quarantined(),
        collector.daemon.log()
    );
    assert_eq!(quarantined(), ["<q-1@x.example>", "<q-2@x.example>"]);
    assert_eq!(flags(&dovecot, "INBOX", "q-1@x.example"), None, "moved");
    // The good mail after them still becomes an (untagged) ticket.
    let all = wait_tickets(&collector, "?channel=mailbox", |t| t.len() == 1).await;
    assert_eq!(all[0]["summary"], "VPN down");
    assert_eq!(all[0]["tag"], Value::Null);
    // Untagged tickets are listed for triage; its attachment is served as sent.
    let id = all[0]["id"].as_u64().unwrap();
    let untagged = tickets(&collector, "?tag=untagged").await;
    assert_eq!(
        untagged
            .iter()
            .map(|t| t["id"].as_u64())
            .collect::<Vec<_>>(),
        [Some(id)]
    );
    assert!(tickets(&collector, "?tag=platform").await.is_empty());
    let download = |n: u32| {
        reqwest::Client::new()
            .get(format!(
                "{}/api/v1/tickets/{id}/attachments/{n}",
                collector.url
            ))
            .bearer_auth(faultline_tests::incidents::VIEWER)
            .send()
    };
    let photo = download(1).await.unwrap();
    assert_eq!(photo.status(), 200);
    assert_eq!(photo.headers()["content-type"], "image/png");
    assert!(
        photo.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("screen.png")
    );
    assert_eq!(photo.bytes().await.unwrap().as_ref(), b"\x89PNG\r\n\x1a\n");
    assert_eq!(download(2).await.unwrap().status(), 404);
    let metrics = collector.scrape().await;
    assert_eq!(
        metric_value(
            &metrics,
            "faultline_mailbox_mails_total",
            &[("result", "quarantined")]
        ),
        Some(2.0)
    );
    let log = collector.daemon.log();
    assert!(
        log.contains("mail quarantined")
            && log.contains("q-1@x.example")
            && log.contains("x-klingon"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_sigkilled_after_delivery_or_mails_refetched_after_commit_open_each_mail_once() {
    let Peers {
        dir,
        dovecot,
        mut collector,
        port,
        sink: _sink,
    } = peers().await;
    // Three rounds: deliver, SIGKILL after a delay somewhere between "not fetched yet" and
    // "ticket committed, mail not yet flagged", restart; every mail ends as exactly one ticket.
    for (round, delay_ms) in [(1u32, 0u64), (2, 150), (3, 400)] {
        let id = format!("kill-{round}@finance.gov.example");
        dovecot
            .deliver(
                "INBOX",
                &plain(&id, "li.wei@finance.gov.example", &format!("fault {round}")),
            )
            .unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        collector.daemon.kill9();
        collector = collector.restart(dir.path(), port).await.unwrap();
        assert!(
            wait_seen(&dovecot, &id, Duration::from_secs(15)).await,
            "round {round}: not flagged; log:\n{}",
            collector.daemon.log()
        );
        let all = wait_tickets(&collector, "?channel=mailbox", |t| {
            t.len() == round as usize
        })
        .await;
        let summaries: Vec<&str> = all.iter().filter_map(|t| t["summary"].as_str()).collect();
        assert_eq!(
            summaries
                .iter()
                .filter(|s| **s == format!("fault {round}"))
                .count(),
            1,
            "{summaries:?}"
        );
    }
    // The window between commit and flag, made certain: every mail unflagged while the collector
    // is down is fetched again and found by its Message-ID, no second ticket.
    collector.daemon.kill9();
    dovecot.unflag_seen("INBOX").unwrap();
    let collector = collector.restart(dir.path(), port).await.unwrap();
    for round in 1..=3 {
        let id = format!("kill-{round}@finance.gov.example");
        assert!(wait_seen(&dovecot, &id, Duration::from_secs(15)).await);
    }
    let metrics = collector.scrape().await;
    assert_eq!(
        metric_value(
            &metrics,
            "faultline_mailbox_mails_total",
            &[("result", "duplicate")]
        ),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(tickets(&collector, "?channel=mailbox").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_down_for_a_while_then_intake_resumes_and_nothing_is_lost() {
    let Peers {
        mut dovecot,
        collector,
        dir: _dir,
        sink: _sink,
        port: _,
    } = peers().await;
    dovecot
        .deliver("INBOX", &plain("up-1@x.example", "a@x.example", "before"))
        .unwrap();
    wait_tickets(&collector, "?channel=mailbox", |t| t.len() == 1).await;

    dovecot.stop();
    assert!(
        wait_until(Duration::from_secs(10), || async {
            metric_value(
                &collector.scrape().await,
                "faultline_mailbox_connected",
                &[],
            ) == Some(0.0)
        })
        .await
    );
    // Mail arrives while the server is down (delivered into its store), then it comes back.
    for n in 0..3 {
        dovecot
            .deliver(
                "INBOX",
                &plain(
                    &format!("down-{n}@x.example"),
                    "a@x.example",
                    &format!("while down {n}"),
                ),
            )
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    dovecot.start_again().unwrap();
    let all = wait_tickets(&collector, "?channel=mailbox", |t| t.len() == 4).await;
    for n in 0..3 {
        let summary = format!("while down {n}");
        assert_eq!(all.iter().filter(|t| t["summary"] == summary).count(), 1);
    }
    let metrics = collector.scrape().await;
    assert_eq!(
        metric_value(&metrics, "faultline_mailbox_connected", &[]),
        Some(1.0)
    );
    assert!(
        metric_value(
            &metrics,
            "faultline_mailbox_errors_total",
            &[("kind", "connect")]
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaps_with_a_private_ca_takes_mail_in() {
    takes_mail_in_over_tls("imaps", Dovecot::start_imaps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_a_private_ca_takes_mail_in() {
    takes_mail_in_over_tls("starttls", Dovecot::start_starttls).await;
}

/// A Dovecot started by `start` with a certificate of a private CA takes a mail in with
/// `[mailbox] security = "<security>"` and that CA as `ca_file`.
async fn takes_mail_in_over_tls(
    security: &str,
    start: fn(&std::path::Path, &std::path::Path) -> anyhow::Result<Dovecot>,
) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    faultline_tests::certs::make_ca(d, "ca");
    faultline_tests::certs::make_leaf(d, "ca", "imap", "serverAuth");
    let dovecot = start(&d.join("imap.crt"), &d.join("imap.key")).unwrap();
    let security = format!(
        "security = \"{security}\"\nca_file = \"{}\"",
        d.join("ca.crt").display()
    );
    let Peers {
        dovecot,
        collector,
        dir: _dir,
        sink: _sink,
        port: _,
    } = peers_on(dir, dovecot, &security).await;
    dovecot
        .deliver(
            "INBOX",
            &plain("tls-1@x.example", "a@x.example", "over TLS"),
        )
        .unwrap();
    let all = wait_tickets(&collector, "?channel=mailbox", |t| t.len() == 1).await;
    assert_eq!(all[0]["summary"], "over TLS");
    assert!(wait_seen(&dovecot, "tls-1@x.example", Duration::from_secs(10)).await);
    let log = dovecot.log();
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("Login: user=<{USER}>")) && l.contains("TLS")),
        "the login was over TLS: {log}"
    );
    assert_eq!(
        metric_value(
            &collector.scrape().await,
            "faultline_mailbox_connected",
            &[]
        ),
        Some(1.0)
    );
}
