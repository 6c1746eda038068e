//! A collector outage and an agent kill -9 lose nothing and apply nothing twice.
//!
//! The collector logs every batch it applies (after the cursor is durable) and every duplicate it
//! acknowledges again. Across both collector runs, the applied and duplicate sequence numbers must
//! cover 1..=last without a gap, and no sequence number may be applied twice.

use faultline_tests::*;
use std::collections::BTreeMap;
use std::time::Duration;

fn seqs(log: &str, message: &str) -> Vec<u64> {
    log_events(log, message)
        .iter()
        .filter_map(|e| e["fields"]["seq"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_and_agent_crash_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut collector = CollectorProcess::start(dir.path(), port, "").await.unwrap();
    let config = agent_config(dir.path(), &collector.url, "200ms", "").unwrap();
    let mut agent = start_agent(dir.path(), &config).unwrap();

    let applied_before = wait_until(Duration::from_secs(20), || async {
        seqs(&collector.daemon.log(), "batch applied").len() >= 3
    })
    .await;
    assert!(applied_before, "nothing applied:\n{}", agent.log());

    // Outage: the collector stops; the agent keeps polling into its outbox.
    assert!(
        collector.daemon.terminate(),
        "collector did not stop cleanly"
    );
    let first_log = collector.daemon.log();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Crash the agent in the middle of its work, then restart it on the same outbox.
    agent.kill9();
    let mut agent = start_agent(dir.path(), &config).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The collector comes back on the same port and state; the backlog drains.
    let collector = collector.restart(dir.path(), port).await.unwrap();
    let drained = wait_until(Duration::from_secs(30), || async {
        let text = collector.scrape().await;
        let last = metric_value(
            &text,
            "faultline_agent_last_applied_sequence",
            &[("agent", "a1")],
        );
        let waiting = metric_value(&text, "faultline_agent_outbox_batches", &[("agent", "a1")]);
        let first_max = seqs(&first_log, "batch applied")
            .into_iter()
            .max()
            .unwrap_or(0);
        matches!((last, waiting), (Some(l), Some(w)) if l as u64 > first_max + 12 && w <= 1.0)
    })
    .await;
    assert!(
        drained,
        "backlog not drained:\n{}\nagent:\n{}",
        collector.scrape().await,
        agent.log()
    );
    assert!(agent.terminate());
    let second_log = collector.daemon.log();

    let mut applied: BTreeMap<u64, usize> = BTreeMap::new();
    for seq in seqs(&first_log, "batch applied")
        .into_iter()
        .chain(seqs(&second_log, "batch applied"))
    {
        *applied.entry(seq).or_default() += 1;
    }
    let twice: Vec<_> = applied.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "batches applied twice: {twice:?}");
    let duplicates: Vec<u64> = seqs(&first_log, "duplicate batch acknowledged again")
        .into_iter()
        .chain(seqs(&second_log, "duplicate batch acknowledged again"))
        .collect();
    let last = *applied.keys().max().unwrap();
    let missing: Vec<u64> = (1..=last)
        .filter(|s| !applied.contains_key(s) && !duplicates.contains(s))
        .collect();
    assert!(missing.is_empty(), "batches lost: {missing:?}");

    // The backlog was real: the second collector applied the outage's batches in one catch-up.
    let second_applied = seqs(&second_log, "batch applied").len();
    assert!(
        second_applied >= 12,
        "only {second_applied} batches after the outage"
    );
    // The restarted agent recovered the same outbox (same epoch), so no sequence restarted at 1.
    assert!(!seqs(&second_log, "batch applied").contains(&1));
    let agent_log = agent.log();
    assert!(
        log_events(&agent_log, "agent starting").len() >= 2,
        "agent restart not seen:\n{agent_log}"
    );
}
