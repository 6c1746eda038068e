//! SIGHUP (the units' `systemctl reload`) on the real daemons. Collector: a changed rule threshold
//! is in effect after the reload, a config that fails `check-config` is refused with its file,
//! line and field logged while the running config stays, both outcomes are counted in `/metrics`,
//! and every push sent during the reloads is acknowledged and applied once. Agent: an SNMP device
//! added by a reload is polled, a broken config is refused and counted in the agent's health.

use faultline_tests::incidents::{IncidentSetup, S, sample, try_push, wait_tickets};
use faultline_tests::{
    CollectorProcess, Daemon, agent_config, free_port, metric_value, start_agent, wait_until,
};
use faultline_wire::{PushAck, Sample};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Pushes as agent `a1` one batch at a time, in sequence order, from several tasks.
#[derive(Clone)]
struct Pusher {
    url: String,
    next: Arc<Mutex<u64>>,
}

impl Pusher {
    /// Pushes `samples` as the next batch: (its sequence number, the acknowledgement).
    async fn push(&self, samples: Vec<Sample>) -> (u64, PushAck) {
        let mut next = self.next.lock().await;
        *next += 1;
        let ack = try_push(&self.url, *next, samples, None)
            .await
            .unwrap_or_else(|e| panic!("push {}: {e}", *next));
        (*next, ack)
    }
}

/// A rule file with one rule: `room_temp` above `threshold` opens a P2 ticket at once.
fn hot_rule(threshold: &str) -> String {
    format!(
        "[[rules]]\nname = \"RoomHot\"\nmetric = \"room_temp\"\ncondition = \"above\"\nthreshold = {threshold}\nfor = \"0s\"\nseverity = \"P2\"\nsummary = \"{{{{ target }}}} at {{{{ value }}}}\"\n"
    )
}

/// Sends SIGHUP to `pid`, as `systemctl reload` does through the units' `ExecReload`.
fn signal(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits until `faultline_config_reload_total{result}` is `count`.
async fn reloads(collector: &CollectorProcess, result: &str, count: f64) {
    let counted = wait_until(Duration::from_secs(10), || async {
        metric_value(
            &collector.scrape().await,
            "faultline_config_reload_total",
            &[("result", result)],
        ) == Some(count)
    })
    .await;
    assert!(
        counted,
        "no {count} {result} reloads; log:\n{}",
        collector.daemon.log()
    );
}

/// Tickets open on `target` (as the viewer sees them).
async fn open_on(collector: &CollectorProcess, target: &str) {
    wait_tickets(collector, "", |tickets| {
        tickets.iter().any(|t| t["target"] == target)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_reloads_rules_on_sighup_and_keeps_the_old_config_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let collector = IncidentSetup::default()
        .start_with_rules(dir.path(), port, &hot_rule("30"))
        .await
        .unwrap();
    let rules = dir.path().join("rules.toml");
    let at = faultline_wire::now_ms();
    let temp = |target: &str, value: f64, ts: i64| sample("room_temp", target, &[], value, ts);
    let metrics = collector.scrape().await;
    assert_eq!(
        metric_value(
            &metrics,
            "faultline_config_reload_total",
            &[("result", "ok")]
        ),
        Some(0.0),
        "{metrics}"
    );
    let started = metric_value(
        &metrics,
        "faultline_config_last_reload_success_timestamp_seconds",
        &[],
    )
    .unwrap();

    // Pushes keep coming during the reloads; each must be acknowledged and applied once.
    let pusher = Pusher {
        url: collector.url.clone(),
        next: Arc::new(Mutex::new(0)),
    };
    let push = |samples| {
        let pusher = pusher.clone();
        async move { pusher.push(samples).await }
    };
    let filler = pusher.clone();
    let background = tokio::spawn(async move {
        let mut acks = Vec::new();
        for i in 0..200 {
            let load = sample(
                "filler_load",
                "host-x",
                &[],
                f64::from(i),
                at + i64::from(i),
            );
            acks.push(filler.push(vec![load]).await);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        acks
    });

    // 28 °C is fine at 30; after the reload to 25 the same reading opens a ticket.
    push(vec![temp("room-a", 28.0, at)]).await;
    std::fs::write(&rules, hot_rule("25")).unwrap();
    signal(collector.daemon.pid());
    reloads(&collector, "ok", 1.0).await;
    push(vec![temp("room-a", 28.0, at + S)]).await;
    open_on(&collector, "room-a").await;

    // A broken rule file (threshold 40 with an unknown severity) is refused: 25 stays in effect.
    std::fs::write(
        &rules,
        hot_rule("40").replace("severity = \"P2\"", "severity = \"P9\""),
    )
    .unwrap();
    signal(collector.daemon.pid());
    reloads(&collector, "failed", 1.0).await;
    let log = collector.daemon.log();
    let refused = log
        .lines()
        .find(|l| l.contains("config reload failed"))
        .unwrap_or_else(|| panic!("no reload error logged:\n{log}"));
    assert!(
        refused.contains("rules.toml:7:") && refused.contains("rules[0].severity"),
        "the error names file, line and field: {refused}"
    );
    push(vec![temp("room-b", 26.0, at + 2 * S)]).await;
    open_on(&collector, "room-b").await;

    let acks = background.await.unwrap();
    assert!(
        acks.iter()
            .all(|(_, ack)| ack.applied == 1 && !ack.duplicate),
        "every push during the reloads applied once: {acks:?}"
    );
    // A batch sent again after the reloads is only acknowledged.
    let (seq, _) = acks[acks.len() / 2];
    let again = try_push(&collector.url, seq, vec![], None).await.unwrap();
    assert!(again.duplicate && again.applied == 0, "{again:?}");
    let metrics = collector.scrape().await;
    assert_eq!(
        metric_value(
            &metrics,
            "faultline_config_reload_total",
            &[("result", "ok")]
        ),
        Some(1.0)
    );
    let last = metric_value(
        &metrics,
        "faultline_config_last_reload_success_timestamp_seconds",
        &[],
    )
    .unwrap();
    assert!(last >= started, "{last} < {started}");
}

/// Waits until the agent's reported `faultline_agent_config_reload_total{result}` is `count`.
async fn agent_reloads(collector: &CollectorProcess, agent: &Daemon, result: &str, count: f64) {
    let counted = wait_until(Duration::from_secs(15), || async {
        metric_value(
            &collector.scrape().await,
            "faultline_agent_config_reload_total",
            &[("agent", "a1"), ("result", result)],
        ) == Some(count)
    })
    .await;
    assert!(
        counted,
        "agent: no {count} {result} reloads; agent log:\n{}",
        agent.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_reloads_devices_on_sighup_and_keeps_the_old_config_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let collector = CollectorProcess::start(dir.path(), port, "").await.unwrap();
    let config = agent_config(dir.path(), &collector.url, "500ms", "").unwrap();
    let agent = start_agent(dir.path(), &config).unwrap();
    agent_reloads(&collector, &agent, "ok", 0.0).await;

    // A device added by a reload is polled: nothing answers on its port, so it reports down.
    let silent = free_port();
    let device = format!(
        "[[snmp.devices]]\nid = \"sw-new\"\naddress = \"127.0.0.1:{silent}\"\ncommunity = \"public\"\ninterval = \"1s\"\ntimeout = \"200ms\"\nretries = 0\n"
    );
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n{device}")).unwrap();
    signal(agent.pid());
    agent_reloads(&collector, &agent, "ok", 1.0).await;
    let polled = wait_until(Duration::from_secs(15), || async {
        metric_value(
            &collector.scrape().await,
            "faultline_snmp_up",
            &[("target", "sw-new")],
        ) == Some(0.0)
    })
    .await;
    assert!(polled, "sw-new not polled; agent log:\n{}", agent.log());

    // A config that fails check-config is refused; the device keeps being polled.
    std::fs::write(
        &config,
        format!(
            "{text}\n{}",
            device.replace("retries = 0", "retries = \"none\"")
        ),
    )
    .unwrap();
    signal(agent.pid());
    agent_reloads(&collector, &agent, "failed", 1.0).await;
    let log = agent.log();
    let refused = log
        .lines()
        .find(|l| l.contains("config reload failed"))
        .unwrap_or_else(|| panic!("no reload error logged:\n{log}"));
    assert!(
        refused.contains("agent.toml") && refused.contains("retries"),
        "the error names the file and field: {refused}"
    );
    assert!(!log.contains("SNMP device stopped"), "{log}");
    assert_eq!(
        metric_value(
            &collector.scrape().await,
            "faultline_agent_config_reload_total",
            &[("agent", "a1"), ("result", "ok")],
        ),
        Some(1.0)
    );
}
