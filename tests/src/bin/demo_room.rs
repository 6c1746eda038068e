//! The demo's simulated machine room (`scripts/demo.sh` runs it): the devices the agent polls at
//! the start of the data flow, and the pager and mailbox at its end.
//!
//! snmpsim serves recordings of real devices (an edge router whose carrier-facing port the demo
//! takes down, a Palo Alto firewall, a UPS, a Geist environmental monitor whose temperature the
//! demo raises, and a department's two Linux VMs, one of whose root disk the demo fills), with the
//! values the demo changes made writable (SNMP SET, see [`snmp_peers::Writable`]); a real net-snmp
//! `snmpd` is the hypervisor. A PagerDuty Events v2 receiver stands in for the on-call pager and an
//! SMTP sink for the customers' mailboxes: each page and e-mail is printed as one readable line and
//! appended as JSON to `pager.jsonl` / `mail.jsonl`. Where everything listens is written to
//! `room.env` (shell `KEY=value` lines) once all answer. Runs until SIGINT or SIGTERM.
//!
//! Usage: `demo_room <state dir>`.

use anyhow::Context;
use faultline_tests::receivers::{Receiver, SmtpSink};
use faultline_tests::snmp_peers::{self, Recording, Writable};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// The recorded devices, each served as its target id (the v2c community).
const RECORDINGS: [Recording; 6] = [
    Recording {
        source: "network/switch/cts-media-converter.snmprec.bz2",
        community: "edge-r1",
        drop_prefixes: &[],
    },
    Recording {
        source: "network/firewall/paloalto-pa-5000.snmprec.bz2",
        community: "fw-a1",
        drop_prefixes: &[],
    },
    Recording {
        source: "UPS/phoenixtec-power.snmprec.bz2",
        community: "ups-a1",
        drop_prefixes: &[],
    },
    Recording {
        source: "iot/geist-temperature-sensor.snmprec",
        community: "env-a1",
        drop_prefixes: &[],
    },
    Recording {
        source: "os/linux/slackware.snmprec.bz2",
        community: "fin-vm1",
        drop_prefixes: &[],
    },
    Recording {
        source: "os/linux/slackware.snmprec.bz2",
        community: "fin-vm2",
        drop_prefixes: &[],
    },
];

/// The values `scripts/demo.sh` changes, at their healthy start: the edge router's carrier port
/// (`port1`, ifIndex 2) up; the Geist monitor's temperatures (tenths of °C) and humidity fixed
/// instead of drifting; `fin-vm1`'s root filesystem (hrStorage row 31, 4 KiB units) 77 % used.
const WRITABLE: [Writable; 6] = [
    Writable {
        community: "edge-r1",
        oid: "1.3.6.1.2.1.2.2.1.8.2",
        value: "1",
    },
    Writable {
        community: "env-a1",
        oid: "1.3.6.1.4.1.21239.5.1.2.1.5.1",
        value: "220",
    },
    Writable {
        community: "env-a1",
        oid: "1.3.6.1.4.1.21239.5.1.4.1.5.2",
        value: "215",
    },
    Writable {
        community: "env-a1",
        oid: "1.3.6.1.4.1.21239.5.1.4.1.5.3",
        value: "210",
    },
    Writable {
        community: "env-a1",
        oid: "1.3.6.1.4.1.21239.5.1.2.1.6.1",
        value: "45",
    },
    Writable {
        community: "fin-vm1",
        oid: "1.3.6.1.2.1.25.2.3.1.6.31",
        value: "1667935",
    },
];

/// How long snmpsim may take to index the recordings and answer.
const STARTUP: Duration = Duration::from_secs(90);

/// The text of the acknowledge link the collector adds to a page's PagerDuty links.
const ACK_LINK_TEXT: &str = "Acknowledge in Faultline";

/// One readable line for a PagerDuty event (and the page's acknowledge link); `triggers` remembers each incident's ticket and tag
/// by dedup key, as an acknowledge or resolve event carries only the key.
fn page_line(event: &Value, triggers: &mut BTreeMap<String, String>) -> String {
    let action = event["event_action"].as_str().unwrap_or("?");
    let key = event["dedup_key"].as_str().unwrap_or_default().to_string();
    let payload = &event["payload"];
    if action == "trigger" {
        let what = format!(
            "ticket #{} [{}] {}",
            payload["custom_details"]["ticket"],
            payload["custom_details"]["tag"].as_str().unwrap_or("?"),
            payload["component"].as_str().unwrap_or("?"),
        );
        triggers.insert(key, what.clone());
        let ack = event["links"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["text"] == ACK_LINK_TEXT)
            .and_then(|l| l["href"].as_str())
            .map(|href| format!("\n              acknowledge: {href}"))
            .unwrap_or_default();
        format!(
            "PAGE     {what} {}: {}{ack}",
            payload["custom_details"]["faultline_severity"]
                .as_str()
                .unwrap_or("?"),
            payload["summary"].as_str().unwrap_or_default()
        )
    } else {
        let what = triggers.get(&key).map_or(key.as_str(), String::as_str);
        format!("PAGE     {action}: {what}")
    }
}

/// The `Subject:` header of a received message.
fn subject(data: &str) -> &str {
    data.lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or_default()
}

/// Appends `value` as one JSON line to `path`.
fn append(path: &Path, value: &Value) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(file, "{value}").with_context(|| format!("writing {}", path.display()))
}

/// Prints and records what arrived at the pager and the mailbox since the last call.
struct Printer {
    dir: PathBuf,
    pages: usize,
    mails: usize,
    triggers: BTreeMap<String, String>,
}

impl Printer {
    fn print_new(&mut self, pager: &Receiver, smtp: &SmtpSink) -> anyhow::Result<()> {
        let seen = pager.accepted("/pagerduty");
        for request in seen.iter().skip(self.pages) {
            let event = request.json();
            println!("  📟 {}", page_line(&event, &mut self.triggers));
            append(&self.dir.join("pager.jsonl"), &event)?;
        }
        self.pages = seen.len();
        let mails = smtp.received();
        for mail in mails.iter().skip(self.mails) {
            let to: Vec<&str> = mail["to"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let subject = subject(mail["data"].as_str().unwrap_or_default());
            println!("  ✉  MAIL     to {}: {subject}", to.join(", "));
            append(
                &self.dir.join("mail.jsonl"),
                &json!({ "to": to, "subject": subject }),
            )?;
        }
        self.mails = mails.len();
        Ok(())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .context("usage: demo_room <state dir>")?,
    );
    let sim_dir = dir.join("snmpsim");
    let hv_dir = dir.join("hv-1");
    for d in [&sim_dir, &hv_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let sim = snmp_peers::snmpsim_with_writable(&sim_dir, &RECORDINGS, &WRITABLE);
    for rec in &RECORDINGS {
        sim.wait_answering(rec.community, STARTUP);
    }
    let hypervisor = snmp_peers::snmpd(&hv_dir, snmp_peers::free_udp_port());
    hypervisor.wait_answering("public", Duration::from_secs(10));
    let pager = Receiver::start().await?;
    let smtp = SmtpSink::start(faultline_tests::free_port())?;

    let env = format!(
        "SNMPSIM_PORT={}\nHYPERVISOR_PORT={}\nPAGER_URL={}\nSMTP_PORT={}\n",
        sim.port,
        hypervisor.port,
        pager.url("/pagerduty"),
        smtp.port
    );
    let ready = dir.join("room.env");
    let partial = dir.join("room.env.partial");
    std::fs::write(&partial, env).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &ready).with_context(|| format!("writing {}", ready.display()))?;

    let mut printer = Printer {
        dir,
        pages: 0,
        mails: 0,
        triggers: BTreeMap::new(),
    };
    let mut terminate = signal(SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = tick.tick() => printer.print_new(&pager, &smtp)?,
        }
    }
    printer.print_new(&pager, &smtp)?;
    // Dropping the peers stops snmpsim, snmpd and the SMTP server.
    Ok(())
}
