//! Helpers for end-to-end tests of the collector's incident stage: start a collector with
//! incidents on (an inventory, second-level ticket timers, API tokens), push crafted batches as
//! agent `a1`, call the REST API and wait for tickets.

use crate::{CollectorProcess, TOKEN, log_events};
use faultline_wire::{AgentHealth, Batch, PushAck, Sample, SampleKind, codec};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// API token with the engineer role in every [`IncidentSetup`] collector.
pub const ENGINEER: &str = "alice-engineer-token-0123456789";
/// API token with the viewer role.
pub const VIEWER: &str = "victor-viewer-token-0123456789";

/// An on-call file: Ana on call around the clock, escalation policy `ops` paging her at once
/// (by e-mail, and by phone: SMS and robot @-mentions).
pub const ONCALL: &str = r#"
[[people]]
id = "ana"
name = "Ana Berg"
email = "ana@example.com"
phone = "+8613800000001"

[[schedules]]
id = "primary"
time_zone = "UTC"
rotation = "daily"
handoff = "09:00"
start = "2020-01-06"
participants = ["ana"]

[[escalations]]
id = "ops"
levels = [{ schedule = "primary", after = "0s" }]
"#;

/// One second in sample time (milliseconds).
pub const S: i64 = 1000;

/// What a collector with incidents runs on. Empty texts leave the file out.
#[derive(Debug, Clone)]
pub struct IncidentSetup<'a> {
    /// Inventory file text (TOML).
    pub inventory: &'a str,
    /// Unacknowledged this long → escalate (when no on-call policy applies).
    pub ack_timeout: &'a str,
    /// Maintenance windows file text.
    pub maintenance: &'a str,
    /// On-call file text.
    pub oncall: &'a str,
    /// Appended to the collector config (`[notify]`, `[incidents.escalation]`, …).
    pub tail: &'a str,
}

impl Default for IncidentSetup<'_> {
    fn default() -> Self {
        Self {
            inventory: "",
            ack_timeout: "1h",
            maintenance: "",
            oncall: "",
            tail: "",
        }
    }
}

/// `[incidents] <key> = "<file>"` after writing `text` to `dir/name`; nothing for empty text.
fn file_line(dir: &Path, key: &str, name: &str, text: &str) -> anyhow::Result<String> {
    if text.is_empty() {
        return Ok(String::new());
    }
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(format!("{key} = \"{}\"\n", path.display()))
}

/// The built-in default rule set (`incidents/rules/default.toml`, read when called) with every
/// `for` and `stale_after` of minutes made seconds (`"2m"` → `"2s"`) but `AgentSilent`'s, metrics and thresholds
/// kept: for tests driven by real agents in real time rather than by pushed sample times.
pub fn fast_default_rules() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../incidents/rules/default.toml"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // AgentSilent keeps its minutes: it watches the agents' real push cadence, which no test
    // speeds up.
    let mut rule = String::new();
    text.lines()
        .map(|line| {
            let key = line.split('=').next().unwrap_or_default().trim();
            if key == "name" {
                rule = line.to_string();
            }
            let timing = key == "for" || key == "stale_after";
            if timing && !rule.contains("\"AgentSilent\"") {
                line.replace("m\"", "s\"")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl IncidentSetup<'_> {
    /// Starts the collector on `port` with its state in `dir`: the built-in rules, this setup's
    /// files, second-level timers (progress every hour, re-open window 10 min, call-back after
    /// an hour, P1/P2 respond within 1 h and resolve within 2 h) and the two API tokens.
    pub async fn start(&self, dir: &Path, port: u16) -> anyhow::Result<CollectorProcess> {
        self.start_with_rules(dir, port, "").await
    }

    /// [`IncidentSetup::start`] with the rule file text `rules` (written to `dir/rules.toml`)
    /// instead of the built-in rules; empty `rules` keeps the built-in ones.
    pub async fn start_with_rules(
        &self,
        dir: &Path,
        port: u16,
        rules: &str,
    ) -> anyhow::Result<CollectorProcess> {
        let rule_files = if rules.is_empty() {
            String::new()
        } else {
            let path = dir.join("rules.toml");
            std::fs::write(&path, rules)?;
            format!("rule_files = [\"{}\"]\n", path.display())
        };
        let files = [
            rule_files,
            file_line(dir, "inventory_file", "inventory.toml", self.inventory)?,
            file_line(
                dir,
                "maintenance_file",
                "maintenance.toml",
                self.maintenance,
            )?,
            file_line(dir, "oncall_file", "oncall.toml", self.oncall)?,
        ]
        .concat();
        let extra = format!(
            r#"[incidents]
{files}
[incidents.tickets]
ack_timeout = "{ack_timeout}"
progress_interval = "1h"
reopen_window = "10m"
callback_after = "1h"
p1 = {{ respond = "1h", resolve = "2h" }}
p2 = {{ respond = "1h", resolve = "2h" }}

[[api.tokens]]
name = "alice"
role = "engineer"
token = "{ENGINEER}"

[[api.tokens]]
name = "victor"
role = "viewer"
token = "{VIEWER}"

{tail}
"#,
            ack_timeout = self.ack_timeout,
            tail = self.tail,
        );
        CollectorProcess::start(dir, port, &extra).await
    }
}

/// `[notify]` config text with fast retries (300 ms up to 1 s, polled every 200 ms) and one generic
/// webhook channel `hook` posting to `url`.
pub fn webhook_channel(url: &str) -> String {
    format!(
        r#"[notify.retry]
initial = "300ms"
max = "1s"
timeout = "2s"
poll_interval = "200ms"
batch = 200

[[notify.channels]]
name = "hook"
[notify.channels.webhook]
url = "{url}"
"#
    )
}

/// `[notify]` config text with fast retries and one e-mail channel `mail` to the SMTP server on
/// `smtp_port` (no TLS), sending the engineers' copy to `mailbox`.
pub fn email_channel(smtp_port: u16, mailbox: &str) -> String {
    format!(
        r#"[notify.retry]
initial = "300ms"
max = "1s"
timeout = "5s"
poll_interval = "200ms"

[[notify.channels]]
name = "mail"
[notify.channels.email]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "Faultline <faultline@example.com>"
mailbox = ["{mailbox}"]
"#
    )
}

/// A sample of `metric` for `target`: a gauge for filesystem and sensor metrics, a state
/// otherwise.
pub fn sample(
    metric: &str,
    target: &str,
    labels: &[(&str, &str)],
    value: f64,
    ts_ms: i64,
) -> Sample {
    let gauge = ["filesystem", "temperature", "humidity", "sessions", "cpu"]
        .iter()
        .any(|word| metric.contains(word));
    Sample {
        metric: metric.into(),
        target: target.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        value,
        ts_ms,
        kind: if gauge {
            SampleKind::Gauge
        } else {
            SampleKind::State
        },
    }
}

/// `faultline_snmp_up` of `target`: 1 when its poll answered.
pub fn up(target: &str, value: f64, ts_ms: i64) -> Sample {
    sample("faultline_snmp_up", target, &[], value, ts_ms)
}

/// RFC 3339 (UTC, whole seconds) of a time in milliseconds, as maintenance windows take it.
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_second(ms.div_euclid(1000))
        .map(|t| t.to_string())
        .unwrap_or_else(|e| panic!("{ms} ms: {e}"))
}

/// Pushes `samples` as agent `a1` (epoch 7, batch `seq`) and asserts the collector took them.
pub async fn push(collector: &CollectorProcess, seq: u64, samples: Vec<Sample>) {
    push_acked(collector, seq, samples, None).await;
}

/// Like [`push`], saying the batch was sent at `sent_at_ms` (the agent's clock) when given;
/// returns the collector's acknowledgement.
pub async fn push_acked(
    collector: &CollectorProcess,
    seq: u64,
    samples: Vec<Sample>,
    sent_at_ms: Option<i64>,
) -> PushAck {
    try_push(&collector.url, seq, samples, sent_at_ms)
        .await
        .unwrap_or_else(|e| panic!("push {seq}: {e}"))
}

/// Pushes `samples` as agent `a1` (epoch 7, batch `seq`) to the collector at `url`, as the agent
/// does; the acknowledgement, or why there was none (no answer, or not 200).
pub async fn try_push(
    url: &str,
    seq: u64,
    samples: Vec<Sample>,
    sent_at_ms: Option<i64>,
) -> Result<PushAck, String> {
    let batch = Batch {
        agent: "a1".into(),
        epoch: 7,
        seq,
        health: AgentHealth::default(),
        samples,
        help: Default::default(),
    };
    let mut request = reqwest::Client::new()
        .post(format!("{url}{}", faultline_wire::PUSH_PATH))
        .header("Content-Encoding", "zstd")
        .bearer_auth(TOKEN)
        .body(codec::encode(&batch));
    if let Some(sent) = sent_at_ms {
        request = request.header(faultline_wire::SENT_AT_HEADER, sent.to_string());
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("status {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("ack {text:?}: {e}"))
}

/// Calls the REST API: `method` (GET or POST) on `path` (from `/api/v1`), with `token` and a
/// JSON `body`; returns the status and the JSON answer (`Null` when none).
pub async fn api(
    collector: &CollectorProcess,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}/api/v1{path}", collector.url);
    let client = reqwest::Client::new();
    let mut req = match method {
        "GET" => client.get(url),
        _ => client.post(url),
    };
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        }
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

/// The tickets `GET /api/v1/tickets<query>` lists (as the viewer).
pub async fn tickets(collector: &CollectorProcess, query: &str) -> Vec<Value> {
    let (status, body) = api(
        collector,
        Some(VIEWER),
        "GET",
        &format!("/tickets{query}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["tickets"].as_array().cloned().unwrap_or_default()
}

/// Waits (at most 10 s) until the ticket list for `query` satisfies `check`, returning it.
pub async fn wait_tickets(
    collector: &CollectorProcess,
    query: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let last = tickets(collector, query).await;
        if check(&last) {
            return last;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tickets never matched; last: {last:#?}\nlog:\n{}",
            collector.daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The change types of a ticket's timeline, in order.
pub fn changes(ticket: &Value) -> Vec<String> {
    ticket["timeline"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|e| e["change"]["type"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The collector's logged ticket events that page someone.
pub fn page_events(collector: &CollectorProcess) -> Vec<Value> {
    log_events(&collector.daemon.log(), "ticket event")
        .into_iter()
        .filter(|e| e["fields"]["pages"] == true)
        .collect()
}
