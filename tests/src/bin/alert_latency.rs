//! `alert_latency`: latency from a threshold crossing pushed to the collector to (a) the ticket
//! stored and (b) the first webhook received, next to Prometheus + Alertmanager driven by the very
//! same crossings. Figures go to BENCHMARKS.md; `scripts/bench-alert-latency.sh` installs the peers
//! and builds everything first.
//!
//! One run, all on 127.0.0.1:
//! - a loopback HTTP receiver in this process timestamps every webhook delivery (path tells who
//!   sent it: `/faultline`, `/am-default`, `/am-fast`);
//! - the real collector binary with an `[incidents]` rule `bench_temperature_celsius > 30`,
//!   `for = "0s"`, and (when the binary supports `[notify]`) a generic webhook channel to the
//!   receiver; the ticket-stored time is the collector's `ticket event` (`change = opened`) JSON
//!   log line, written after the ticket is committed to SQLite;
//! - two Prometheus + Alertmanager pairs scraping the collector's `/metrics`, alerting rule
//!   `bench_temperature_celsius > 30`, webhook receiver → the same loopback receiver: one with
//!   Prometheus' and Alertmanager's default timings (scrape and evaluation 1m, group_wait 30s),
//!   one with 1 s scrape and evaluation and group_wait 0s. `group_by: [alertname, target]` in
//!   both, so every crossing is its own notification.
//!
//! The bench pushes a below-threshold baseline for `N` distinct targets, then one crossing per
//! target every `--spacing-ms` (one HTTP push each, the time taken just before sending it is the
//! crossing time), and waits, bounded, for every system to report every crossing.
//!
//! With `--settle-ms MS` every target depends on an upstream target (inventory) that reported
//! just before the crossing: the crossing is held by settling until the upstream's next sample,
//! pushed `MS` later, and the latencies count from that deciding push (no peers compare there).
//!
//! ```sh
//! target/release/alert_latency target/release/faultline-collector \
//!     [--crossings 120] [--spacing-ms 500] [--peer-wait-s 200] [--no-peers] \
//!     [--prometheus /usr/bin/prometheus] [--alertmanager /usr/bin/prometheus-alertmanager]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::{Context, bail};
use faultline_tests::{Daemon, free_port, wait_until};
use faultline_wire::{AgentHealth, Batch, Sample, SampleKind, codec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const TOKEN: &str = "bench-token-0123456789abcdef";
const API_TOKEN: &str = "bench-api-token-0123456789abcdef";
const METRIC: &str = "bench_temperature_celsius";
const THRESHOLD: f64 = 30.0;

/// Wall clock in milliseconds since the epoch, with sub-millisecond precision.
fn now_ms_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

struct Options {
    collector: PathBuf,
    crossings: usize,
    spacing: Duration,
    peer_wait: Duration,
    peers: bool,
    prometheus: PathBuf,
    alertmanager: PathBuf,
    /// Settling mode: each target depends on an upstream target whose sample, pushed this long
    /// after the crossing, decides it; latencies count from that deciding push.
    settle: Option<Duration>,
}

fn options() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        collector: PathBuf::new(),
        crossings: 120,
        spacing: Duration::from_millis(500),
        peer_wait: Duration::from_secs(200),
        peers: true,
        prometheus: PathBuf::from("/usr/bin/prometheus"),
        alertmanager: PathBuf::from("/usr/bin/prometheus-alertmanager"),
        settle: None,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().context(format!("{arg} needs a value"));
        match arg.as_str() {
            "--crossings" => o.crossings = value()?.parse()?,
            "--spacing-ms" => o.spacing = Duration::from_millis(value()?.parse()?),
            "--peer-wait-s" => o.peer_wait = Duration::from_secs(value()?.parse()?),
            "--no-peers" => o.peers = false,
            "--prometheus" => o.prometheus = value()?.into(),
            "--alertmanager" => o.alertmanager = value()?.into(),
            "--settle-ms" => o.settle = Some(Duration::from_millis(value()?.parse()?)),
            other if !other.starts_with('-') && o.collector.as_os_str().is_empty() => {
                o.collector = other.into();
            }
            other => bail!("unknown argument `{other}`"),
        }
    }
    if o.collector.as_os_str().is_empty() {
        bail!(
            "usage: alert_latency COLLECTOR [--crossings N] [--spacing-ms MS] [--peer-wait-s S] [--no-peers] [--prometheus BIN] [--alertmanager BIN] [--settle-ms MS]"
        );
    }
    Ok(o)
}

/// First delivery time per (receiver path, target).
type Deliveries = Arc<Mutex<BTreeMap<(String, String), f64>>>;

/// Targets named in a webhook body: the generic Faultline payload (`notification.target`) or an
/// Alertmanager payload (`alerts[].labels.target` of firing alerts).
fn targets_in(body: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    if let Some(t) = v["notification"]["target"].as_str() {
        return vec![t.to_string()];
    }
    v["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["status"] == "firing")
        .filter_map(|a| a["labels"]["target"].as_str().map(String::from))
        .collect()
}

/// Reads one HTTP/1.1 request (Content-Length or chunked body); `None` at end of stream.
async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (mut length, mut chunked) = (0usize, false);
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                _ => {}
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if size == 0 {
                line.clear();
                reader.read_line(&mut line).await?;
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).await?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf).await?;
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).await?;
    }
    Ok(Some((path, body)))
}

/// Serves webhook deliveries on `listener`, recording the first arrival per (path, target).
async fn receiver(listener: TcpListener, deliveries: Deliveries) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let deliveries = deliveries.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            while let Ok(Some((path, body))) = read_request(&mut reader).await {
                let at = now_ms_f64();
                {
                    let mut map = deliveries.lock().unwrap();
                    for target in targets_in(&body) {
                        map.entry((path.clone(), target)).or_insert(at);
                    }
                }
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                if write.write_all(reply).await.is_err() {
                    break;
                }
            }
        });
    }
}

fn received(deliveries: &Deliveries, path: &str) -> usize {
    deliveries
        .lock()
        .unwrap()
        .keys()
        .filter(|(p, _)| p == path)
        .count()
}

/// `2026-11-28T07:32:25.123456Z` → milliseconds since the epoch (jiff, the one time crate).
fn parse_rfc3339_utc(text: &str) -> Option<f64> {
    let at: jiff::Timestamp = text.parse().ok()?;
    Some(at.as_microsecond() as f64 / 1000.0)
}

/// Wall time of the first `ticket event` / `opened` log line per target.
fn ticket_opened_times(log: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for v in faultline_tests::log_events(log, "ticket event") {
        let fields = &v["fields"];
        if fields["change"] != "opened" {
            continue;
        }
        let (Some(target), Some(at)) = (
            fields["target"].as_str(),
            v["timestamp"].as_str().and_then(parse_rfc3339_utc),
        ) else {
            continue;
        };
        out.entry(target.to_string()).or_insert(at);
    }
    out
}

fn push_body(seq: u64, samples: Vec<Sample>) -> Vec<u8> {
    codec::encode(&Batch {
        agent: "a1".into(),
        epoch: 1,
        seq,
        health: AgentHealth::default(),
        samples,
        help: Default::default(),
    })
}

fn sample(target: &str, value: f64) -> Sample {
    Sample {
        metric: METRIC.into(),
        target: target.into(),
        labels: [("site".to_string(), "bench".to_string())].into(),
        value,
        ts_ms: faultline_wire::now_ms(),
        kind: SampleKind::Gauge,
    }
}

/// Latencies (ms) from `pushed` to `seen` for every target seen.
fn latencies(pushed: &BTreeMap<String, f64>, seen: &BTreeMap<String, f64>) -> Vec<f64> {
    let mut out: Vec<f64> = pushed
        .iter()
        .filter_map(|(t, p)| seen.get(t).map(|s| s - p))
        .collect();
    out.sort_by(f64::total_cmp);
    out
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(name: &str, expected: usize, sorted: &[f64]) {
    if sorted.is_empty() {
        println!("| {name} | 0 / {expected} | – | – | – | – | – |");
        return;
    }
    let fmt = |ms: f64| {
        if ms >= 10_000.0 {
            format!("{:.1} s", ms / 1000.0)
        } else {
            format!("{ms:.1} ms")
        }
    };
    println!(
        "| {name} | {} / {expected} | {} | {} | {} | {} | {} |",
        sorted.len(),
        fmt(sorted[0]),
        fmt(pct(sorted, 50.0)),
        fmt(pct(sorted, 90.0)),
        fmt(pct(sorted, 99.0)),
        fmt(sorted[sorted.len() - 1]),
    );
}

/// Starts a Prometheus + Alertmanager pair; `fast` selects 1 s timings, else the defaults.
fn start_peers(
    o: &Options,
    dir: &Path,
    name: &str,
    fast: bool,
    collector_port: u16,
    receiver_port: u16,
) -> anyhow::Result<(Daemon, Daemon, u16, u16)> {
    let dir = dir.join(name);
    std::fs::create_dir_all(dir.join("tsdb"))?;
    std::fs::create_dir_all(dir.join("am"))?;
    let (prom_port, am_port) = (free_port(), free_port());
    let timing = if fast {
        "  group_wait: 0s\n  group_interval: 1s\n"
    } else {
        ""
    };
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: bench\n  group_by: [alertname, target]\n{timing}receivers:\n  - name: bench\n    webhook_configs:\n      - url: http://127.0.0.1:{receiver_port}/am-{name}\n        send_resolved: false\n"
        ),
    )?;
    std::fs::write(
        dir.join("rules.yml"),
        format!(
            "groups:\n  - name: bench\n    rules:\n      - alert: BenchHot\n        expr: {METRIC} > {THRESHOLD}\n"
        ),
    )?;
    let global = if fast {
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
    } else {
        ""
    };
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "{global}rule_files: [{}]\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\nscrape_configs:\n  - job_name: faultline\n    static_configs:\n      - targets: ['127.0.0.1:{collector_port}']\n",
            dir.join("rules.yml").display()
        ),
    )?;
    let am = Daemon::spawn(
        &o.alertmanager,
        &[
            &format!("--config.file={}", dir.join("alertmanager.yml").display()),
            &format!("--storage.path={}", dir.join("am").display()),
            &format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=",
        ],
        &dir.join("alertmanager.log"),
        &[],
    )?;
    let prom = Daemon::spawn(
        &o.prometheus,
        &[
            &format!("--config.file={}", dir.join("prometheus.yml").display()),
            &format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
            &format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &dir.join("prometheus.log"),
        &[],
    )?;
    Ok((prom, am, prom_port, am_port))
}

async fn ready(url: String) -> bool {
    matches!(reqwest::get(&url).await, Ok(r) if r.status().is_success())
}

fn collector_config(
    dir: &Path,
    port: u16,
    receiver_port: u16,
    notify: bool,
    inventory: bool,
) -> String {
    let inventory = if inventory {
        format!(
            "inventory_file = \"{}\"\n",
            dir.join("inventory.toml").display()
        )
    } else {
        String::new()
    };
    let notify = if notify {
        format!(
            "\n[notify]\n[[notify.channels]]\nname = \"bench\"\n[notify.channels.webhook]\nurl = \"http://127.0.0.1:{receiver_port}/faultline\"\n"
        )
    } else {
        String::new()
    };
    format!(
        "[listen]\naddress = \"127.0.0.1:{port}\"\n\n[storage]\npath = \"{}\"\n\n[series]\nstale_after = \"30m\"\n\n[[agents]]\nid = \"a1\"\ntoken = \"{TOKEN}\"\n\n[incidents]\nrule_files = [\"{}\"]\n{inventory}\n[[api.tokens]]\nname = \"bench\"\nrole = \"viewer\"\ntoken = \"{API_TOKEN}\"\n{notify}",
        dir.join("state.db").display(),
        dir.join("rules.toml").display(),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let dir = tempfile::tempdir()?;
    let dir = dir.path();
    let n = o.crossings;

    let deliveries: Deliveries = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let receiver_port = listener.local_addr()?.port();
    tokio::spawn(receiver(listener, deliveries.clone()));

    // The collector, with a webhook channel when this build has `[notify]`.
    std::fs::write(
        dir.join("rules.toml"),
        format!(
            "[[rules]]\nname = \"BenchHot\"\nmetric = \"{METRIC}\"\nmatch = ['site=\"bench\"']\ncondition = \"above\"\nthreshold = {THRESHOLD:.1}\nfor = \"0s\"\nseverity = \"P2\"\nsummary = \"{{{{ target }}}} at {{{{ value }}}} °C\"\n"
        ),
    )?;
    let targets: Vec<String> = (0..n).map(|i| format!("bench-{i:04}")).collect();
    let upstream = |target: &str| format!("{target}-up");
    if o.settle.is_some() {
        let mut inventory = String::new();
        for t in &targets {
            inventory.push_str(&format!(
                "[[targets]]\nid = \"{up}\"\nkind = \"device\"\nowner = \"platform\"\n\n[[targets]]\nid = \"{t}\"\nkind = \"vm\"\nowner = \"platform\"\ndepends_on = [\"{up}\"]\n\n",
                up = upstream(t)
            ));
        }
        std::fs::write(dir.join("inventory.toml"), inventory)?;
    }
    let port = free_port();
    let config = dir.join("collector.toml");
    let settle = o.settle.is_some();
    std::fs::write(
        &config,
        collector_config(dir, port, receiver_port, true, settle),
    )?;
    let check = std::process::Command::new(&o.collector)
        .args(["check-config", &config.to_string_lossy()])
        .output()?;
    let notify = check.status.success();
    if !notify {
        let why = String::from_utf8_lossy(&check.stderr);
        eprintln!(
            "collector refuses [notify] ({}): measuring the ticket-stored latency only",
            why.trim()
        );
        std::fs::write(
            &config,
            collector_config(dir, port, receiver_port, false, settle),
        )?;
    }
    let mut collector = Daemon::spawn(
        &o.collector,
        &[
            "--log-format",
            "json",
            "run",
            "--config",
            &config.to_string_lossy(),
        ],
        &dir.join("collector.log"),
        &[("RUST_LOG", "info")],
    )?;
    let url = format!("http://127.0.0.1:{port}");
    if !wait_until(Duration::from_secs(15), || ready(format!("{url}/healthz"))).await {
        bail!(
            "collector not healthy (running: {}); log:\n{}",
            collector.running(),
            collector.log()
        );
    }

    let mut peers = Vec::new();
    if o.peers {
        for (name, fast) in [("default", false), ("fast", true)] {
            let (prom, am, prom_port, am_port) =
                start_peers(&o, dir, name, fast, port, receiver_port)?;
            for ready_url in [
                format!("http://127.0.0.1:{prom_port}/-/ready"),
                format!("http://127.0.0.1:{am_port}/-/ready"),
            ] {
                if !wait_until(Duration::from_secs(30), || ready(ready_url.clone())).await {
                    bail!(
                        "{name} peer not ready at {ready_url}; logs:\n{}\n{}",
                        prom.log(),
                        am.log()
                    );
                }
            }
            peers.push((name, prom, am));
        }
    }

    let client = reqwest::Client::new();
    let push_url = format!("{url}{}", faultline_wire::PUSH_PATH);
    let push = |seq: u64, samples: Vec<Sample>| {
        let body = push_body(seq, samples);
        let request = client
            .post(&push_url)
            .bearer_auth(TOKEN)
            .header("Content-Encoding", faultline_wire::CONTENT_ENCODING)
            .body(body);
        async move {
            let resp = request.send().await?;
            if !resp.status().is_success() {
                bail!("push {seq}: {}", resp.status());
            }
            anyhow::Ok(())
        }
    };
    let baseline = |t: &String| {
        let mut out = vec![sample(t, 20.0)];
        if settle {
            out.push(sample(&upstream(t), 20.0));
        }
        out
    };
    push(1, targets.iter().flat_map(baseline).collect()).await?;
    // Let the 1 s Prometheus scrape the baseline before the first crossing.
    tokio::time::sleep(Duration::from_secs(3)).await;

    eprintln!(
        "{n} crossings, one every {} ms (notify {}, peers {}) …",
        o.spacing.as_millis(),
        if notify { "on" } else { "off" },
        if o.peers { "on" } else { "off" }
    );
    let mut pushed = BTreeMap::new();
    let mut acks = Vec::new();
    let mut tick = tokio::time::interval(o.spacing);
    let mut seq = 1;
    for target in &targets {
        tick.tick().await;
        let s = sample(target, 35.0);
        let at = now_ms_f64();
        seq += 1;
        push(seq, vec![s]).await?;
        acks.push(now_ms_f64() - at);
        match o.settle {
            // The crossing waits for its upstream; the upstream's report decides it.
            Some(delay) => {
                tokio::time::sleep(delay).await;
                let at = now_ms_f64();
                seq += 1;
                push(seq, vec![sample(&upstream(target), 20.0)]).await?;
                pushed.insert(target.clone(), at);
            }
            None => {
                pushed.insert(target.clone(), at);
            }
        }
    }
    let last_push = Instant::now();
    acks.sort_by(f64::total_cmp);

    // Bounded waits: our paths get 30 s after the last crossing, the peers `--peer-wait-s`.
    let done_ours = || {
        ticket_opened_times(&collector.log()).len() >= n
            && (!notify || received(&deliveries, "/faultline") >= n)
    };
    while !done_ours() && last_push.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut reported = false;
    while o.peers && last_push.elapsed() < o.peer_wait {
        let fast = received(&deliveries, "/am-fast");
        let default = received(&deliveries, "/am-default");
        if fast >= n && default >= n {
            break;
        }
        if !reported && fast >= n {
            eprintln!(
                "fast peers done after {:.0} s; waiting up to {} s for the default-timing pair ({default}/{n}) …",
                last_push.elapsed().as_secs_f64(),
                o.peer_wait.as_secs()
            );
            reported = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Cross-check: one ticket per target, through the REST API.
    let tickets: serde_json::Value = client
        .get(format!("{url}/api/v1/tickets?limit=1000"))
        .bearer_auth(API_TOKEN)
        .send()
        .await?
        .json()
        .await?;
    let ticket_count = tickets["tickets"].as_array().map_or(0, Vec::len);

    let stored = latencies(&pushed, &ticket_opened_times(&collector.log()));
    let by_path = |path: &str| -> BTreeMap<String, f64> {
        deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|((p, _), _)| p == path)
            .map(|((_, t), at)| (t.clone(), *at))
            .collect()
    };
    println!(
        "{n} threshold crossings, one every {} ms; push acknowledged p50 {:.1} ms, p99 {:.1} ms; {ticket_count} tickets in the API",
        o.spacing.as_millis(),
        pct(&acks, 50.0),
        pct(&acks, 99.0)
    );
    println!("| path (push → …) | seen | min | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|---|");
    report("Faultline: ticket stored", n, &stored);
    if notify {
        report(
            "Faultline: first webhook received",
            n,
            &latencies(&pushed, &by_path("/faultline")),
        );
    } else {
        println!(
            "| Faultline: first webhook received | not measured: no [notify] in this build | | | | | |"
        );
    }
    if o.peers {
        report(
            "Prometheus + Alertmanager, 1 s scrape/eval, group_wait 0s: webhook",
            n,
            &latencies(&pushed, &by_path("/am-fast")),
        );
        report(
            "Prometheus + Alertmanager, defaults (1m/1m, group_wait 30s): webhook",
            n,
            &latencies(&pushed, &by_path("/am-default")),
        );
    }
    for (_, mut prom, mut am) in peers {
        prom.terminate();
        am.terminate();
    }
    collector.terminate();
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(super::parse_rfc3339_utc("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            super::parse_rfc3339_utc("2026-11-28T07:22:18.5Z"),
            Some(1_795_850_538_500.0)
        );
        assert_eq!(super::pct(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.0);
        assert_eq!(super::pct(&[1.0, 2.0, 3.0, 4.0], 99.0), 4.0);
    }
}
