//! Judged before acknowledged: a collector killed (SIGKILL) at a random point while a state
//! change is in flight still opens its ticket, every time, once its agent sends the
//! unacknowledged batch again — the cursor is committed only after the rules judged the batch and
//! stored what they must recall (here: the `changed_to` rule's previous value).

use faultline_tests::incidents::{IncidentSetup, push, sample, tickets, try_push};
use faultline_tests::{CollectorProcess, free_port};
use std::path::Path;
use std::time::{Duration, Instant};

const RULES: &str = r#"
[[rules]]
name = "LinkDown"
metric = "if_oper_status"
condition = "changed_to"
threshold = 2.0
severity = "P2"
summary = "{{ target }} link down"
"#;

/// Rounds of change-then-kill; each kills at a different point of the push.
const ROUNDS: u64 = 20;

/// Waits (at most 10 s) for an active `LinkDown` ticket on `target`.
async fn wait_link_down(collector: &CollectorProcess, target: &str, round: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let open = tickets(collector, "?state=open").await;
        if open
            .iter()
            .any(|t| t["rule"] == "LinkDown" && t["target"] == target)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "round {round}: no LinkDown ticket for {target}; open: {open:#?}\nlog:\n{}",
            collector.daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Kills the collector `delay` after a push of `seq` starts, restarts it, and sends the batch
/// again as the agent does when it had no acknowledgement. Returns the restarted collector and
/// whether the first push was acknowledged before the kill.
async fn kill_during_push(
    collector: CollectorProcess,
    dir: &Path,
    port: u16,
    seq: u64,
    change: Vec<faultline_wire::Sample>,
    delay: Duration,
) -> (CollectorProcess, bool) {
    let mut collector = collector;
    let url = collector.url.clone();
    let first = change.clone();
    let in_flight = tokio::spawn(async move { try_push(&url, seq, first, None).await });
    // Finer than a timer: a push takes about a millisecond.
    let until = Instant::now() + delay;
    while Instant::now() < until {
        tokio::task::yield_now().await;
    }
    collector.daemon.kill9();
    let acked = matches!(in_flight.await, Ok(Ok(_)));
    let collector = collector.restart(dir, port).await.unwrap();
    push(&collector, seq, change).await;
    (collector, acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_change_in_flight_opens_its_ticket_whatever_the_kill_point() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut collector = IncidentSetup::default()
        .start_with_rules(dir.path(), port, RULES)
        .await
        .unwrap();
    let base = faultline_wire::now_ms() - 10 * 60_000;
    // Kill points spread over the push (connect, decode, apply, judge, commit, answer) and
    // just after it, with a jitter that differs between runs.
    let seed = u64::try_from(base).unwrap_or(1);
    eprintln!("kill delays from seed {seed}");
    let mut acked_before_kill = 0;
    let mut seq = 0;
    for round in 0..ROUNDS {
        let target = format!("sw{round}");
        let t = base + i64::try_from(round).unwrap() * 10_000;
        let status = |value, ts| sample("if_oper_status", &target, &[("ifIndex", "1")], value, ts);
        seq += 1;
        push(&collector, seq, vec![status(1.0, t)]).await;
        seq += 1;
        let delay = Duration::from_micros(round * 1000 + seed.wrapping_mul(round + 1) % 1000);
        let acked;
        (collector, acked) = kill_during_push(
            collector,
            dir.path(),
            port,
            seq,
            vec![status(2.0, t + 1000)],
            delay,
        )
        .await;
        acked_before_kill += u64::from(acked);
        wait_link_down(&collector, &target, round).await;
    }
    let open = tickets(&collector, "?state=open").await;
    let link_down = open.iter().filter(|t| t["rule"] == "LinkDown").count();
    assert_eq!(
        link_down,
        usize::try_from(ROUNDS).unwrap(),
        "one ticket per change, none twice: {open:#?}"
    );
    eprintln!("{acked_before_kill} of {ROUNDS} changes were acknowledged before the kill");
}
