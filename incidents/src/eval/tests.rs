//! Table tests of the rule evaluator.

use super::*;
use faultline_wire::SampleKind;
use faultline_wire::config_file::ConfigSource;
use std::path::Path;

/// One step of a scenario.
enum Step {
    /// (metric, target, labels "k=v,k=v", value, ts)
    S(&'static str, &'static str, &'static str, f64, Millis),
    /// Wall-clock tick.
    Tick(Millis),
}
use Step::{S, Tick};

fn rules(body: &str) -> RuleSet {
    RuleSet::from_sources(&[ConfigSource::from_text(
        Path::new("t.toml"),
        body.to_string(),
    )])
    .unwrap()
}

/// Runs the steps and renders events as `fire RULE TARGET start=.. at=.. value=..` /
/// `resolve RULE TARGET at=..`.
fn run(body: &str, steps: &[Step]) -> Vec<String> {
    let mut eval = Evaluator::new(rules(body));
    let mut out = Vec::new();
    for step in steps {
        let events = match step {
            S(metric, target, labels, value, ts) => {
                let labels = labels
                    .split(',')
                    .filter(|kv| !kv.is_empty())
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let sample = Sample {
                    metric: metric.to_string(),
                    target: target.to_string(),
                    labels,
                    value: *value,
                    ts_ms: *ts,
                    kind: SampleKind::Gauge,
                };
                eval.observe("agent-1", &sample)
            }
            Tick(now) => eval.tick(*now),
        };
        for event in events {
            out.push(match event {
                RuleEvent::Firing(f) => format!(
                    "fire {} {} start={} at={} value={} | {}",
                    f.rule, f.target, f.started_at_ms, f.fired_at_ms, f.value, f.summary
                ),
                RuleEvent::Resolved(r) => {
                    format!("resolve {} {} at={}", r.rule, r.target, r.resolved_at_ms)
                }
            });
        }
    }
    out
}

const HOT: &str = r#"
[[rules]]
name = "Hot"
metric = "temp"
condition = "above"
threshold = 30.0
clear = 28.0
for = "2m"
severity = "P2"
summary = "{{ target }} {{ value }}"
"#;

#[test]
fn threshold_for_and_hysteresis() {
    let got = run(
        HOT,
        &[
            S("temp", "s1", "", 25.0, 0),
            S("temp", "s1", "", 31.0, 60_000),  // pending since 60s
            S("temp", "s1", "", 29.0, 120_000), // above clear: still pending
            S("temp", "s1", "", 32.0, 180_000), // 2m since 60s: fires, start 60s
            S("temp", "s1", "", 29.0, 240_000), // hysteresis: still firing
            S("temp", "s1", "", 28.0, 300_000), // at clear: resolves
            S("temp", "s1", "", 31.0, 360_000), // pending again
            S("temp", "s1", "", 27.0, 420_000), // back to normal before `for`: nothing
        ],
    );
    assert_eq!(
        got,
        [
            "fire Hot s1 start=60000 at=180000 value=32 | s1 32",
            "resolve Hot s1 at=300000"
        ]
    );
}

#[test]
fn late_backlog_keeps_original_times_and_drops_out_of_order() {
    let mut eval = Evaluator::new(rules(HOT));
    let sample = |value, ts_ms| Sample {
        metric: "temp".into(),
        target: "s1".into(),
        labels: BTreeMap::new(),
        value,
        ts_ms,
        kind: SampleKind::Gauge,
    };
    // The agent's backlog arrives hours later, in its own order; no tick fires anything.
    assert!(eval.tick(10_000_000).is_empty());
    assert!(eval.observe("a", &sample(35.0, 1_000)).is_empty());
    let events = eval.observe("a", &sample(36.0, 121_000));
    let [RuleEvent::Firing(f)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!((f.started_at_ms, f.fired_at_ms), (1_000, 121_000));
    assert_eq!(f.labels.get("agent").map(String::as_str), Some("a"));
    // A duplicate or older sample of the same series is ignored.
    assert!(eval.observe("a", &sample(10.0, 60_000)).is_empty());
    assert_eq!(eval.out_of_order(), 1);
    let events = eval.observe("a", &sample(20.0, 181_000));
    assert!(matches!(events.as_slice(), [RuleEvent::Resolved(r)] if r.resolved_at_ms == 181_000));
}

#[test]
fn one_event_per_fingerprint_across_series() {
    let got = run(
        &HOT.replace("for = \"2m\"", ""),
        &[
            S("temp", "s1", "probe=a", 31.0, 0),
            S("temp", "s1", "probe=b", 31.0, 1_000),
            S("temp", "s2", "probe=a", 31.0, 1_000),
            S("temp", "s1", "probe=a", 20.0, 2_000),
            S("temp", "s1", "probe=b", 20.0, 3_000),
        ],
    );
    assert_eq!(
        got,
        [
            "fire Hot s1 start=0 at=0 value=31 | s1 31",
            "fire Hot s2 start=1000 at=1000 value=31 | s2 31",
            "resolve Hot s1 at=3000",
        ]
    );
}

#[test]
fn counter_rate_ignores_wraps_and_resets() {
    let body = r#"
[[rules]]
name = "IfErrors"
metric = "errs"
condition = "rate_above"
threshold = 10.0
clear = 1.0
severity = "P3"
summary = "{{ labels.ifName }} {{ value }}/s"
"#;
    let wrap = 4_294_967_296.0;
    let got = run(
        body,
        &[
            S("errs", "sw1", "ifName=Gi1", wrap - 1_000.0, 0),
            S("errs", "sw1", "ifName=Gi1", 500.0, 10_000), // 32-bit wrap: 150/s, true rate
            S("errs", "sw1", "ifName=Gi1", 505.0, 20_000), // 0.5/s: clears
            S("errs", "sw1", "ifName=Gi1", 3.0, 30_000),   // reset: skipped, no spike
            S("errs", "sw1", "ifName=Gi1", 8.0, 40_000),   // 0.5/s
            S("errs", "sw1", "ifName=Gi1", 5_000_000.0, 50_000), // real burst
        ],
    );
    assert_eq!(
        got,
        [
            "fire IfErrors sw1 start=10000 at=10000 value=150 | Gi1 150/s",
            "resolve IfErrors sw1 at=20000",
            "fire IfErrors sw1 start=50000 at=50000 value=499999.2 | Gi1 499999.2/s",
        ]
    );
}

#[test]
fn changed_to_fires_only_on_a_change() {
    let body = r#"
[[rules]]
name = "IfDown"
metric = "oper"
match = ['ifName!~"Null.*"', 'agent="agent-1"', 'target=~"sw.*"']
condition = "changed_to"
threshold = 2
severity = "P2"
summary = "{{ labels.ifName }} down"
"#;
    let got = run(
        body,
        &[
            S("oper", "sw1", "ifName=Gi2", 2.0, 0), // already down when first seen: no ticket
            S("oper", "sw1", "ifName=Gi2", 2.0, 10_000),
            S("oper", "sw1", "ifName=Gi1", 1.0, 0),
            S("oper", "sw1", "ifName=Gi1", 2.0, 10_000),
            S("oper", "sw1", "ifName=Gi1", 2.0, 20_000),
            S("oper", "sw1", "ifName=Gi1", 1.0, 30_000),
            S("oper", "sw1", "ifName=Null0", 1.0, 0),
            S("oper", "sw1", "ifName=Null0", 2.0, 10_000), // excluded by matcher
            S("oper", "fw1", "ifName=Gi1", 1.0, 0),
            S("oper", "fw1", "ifName=Gi1", 2.0, 10_000), // excluded by target matcher
        ],
    );
    assert_eq!(
        got,
        [
            "fire IfDown sw1 start=10000 at=10000 value=2 | Gi1 down",
            "resolve IfDown sw1 at=30000"
        ]
    );
}

#[test]
fn absence_by_tick_and_by_gap_in_backlog() {
    let body = r#"
[[rules]]
name = "Silent"
metric = "up"
condition = "absent"
stale_after = "5m"
severity = "P2"
summary = "{{ target }} silent"
"#;
    let got = run(
        body,
        &[
            S("up", "d1", "", 1.0, 0),
            Tick(200_000),
            Tick(300_001), // 5 min after the last sample
            Tick(400_000), // already firing: nothing new
            S("up", "d1", "", 1.0, 410_000),
            S("up", "d1", "", 1.0, 420_000),
            S("up", "d1", "", 1.0, 1_000_000), // backlog with a 580 s hole
        ],
    );
    assert_eq!(
        got,
        [
            "fire Silent d1 start=300000 at=300001 value=1 | d1 silent",
            "resolve Silent d1 at=410000",
            "fire Silent d1 start=720000 at=720000 value=1 | d1 silent",
            "resolve Silent d1 at=1000000",
        ]
    );
}

#[test]
fn absence_is_judged_in_the_agents_time_while_it_replays_a_backlog() {
    let rules = rules(
        r#"
[[rules]]
name = "Silent"
metric = "up"
condition = "absent"
stale_after = "5m"
severity = "P2"
summary = "{{ target }} silent"
"#,
    );
    let mut eval = Evaluator::new(rules);
    let up = |target: &str, ts: Millis| Sample {
        metric: "up".into(),
        target: target.into(),
        labels: BTreeMap::new(),
        value: 1.0,
        ts_ms: ts,
        kind: SampleKind::Gauge,
    };
    const MIN: Millis = 60_000;
    let now = 100 * MIN; // the collector restarts after a long outage
    // The agent replays ten minutes of backlog, a minute per push, one push a second: d1
    // and d2 are polled throughout, d3 only at the start.
    let mut fired = Vec::new();
    for (i, ts) in (0..=10).map(|m| m * MIN).enumerate() {
        let wall = now + i as Millis * 1_000;
        eval.pushed("a", ts, wall);
        let mut batch = vec![up("d1", ts), up("d2", ts)];
        if ts == 0 {
            batch.push(up("d3", ts));
        }
        for s in &batch {
            assert!(eval.observe("a", s).is_empty());
        }
        fired.extend(eval.tick(wall + 500));
    }
    // Only d3 is absent, and at the backlog's time (5 min after its last sample), not at the
    // restart; d1 and d2 are catching up, not silent.
    let names: Vec<(String, Millis, Millis)> = fired
        .iter()
        .map(|e| match e {
            RuleEvent::Firing(f) => (f.target.clone(), f.started_at_ms, f.fired_at_ms),
            RuleEvent::Resolved(r) => (format!("resolved {}", r.target), 0, 0),
        })
        .collect();
    assert_eq!(names, [("d3".to_string(), 5 * MIN, 5 * MIN + 500)]);
    // The agent stops pushing (last push at now + 10 s): after stale_after of wall time its
    // series are absent.
    let later = now + 10_000 + 5 * MIN;
    assert!(eval.tick(later - 1_000).is_empty());
    let silent: Vec<String> = eval
        .tick(later + 1)
        .into_iter()
        .filter_map(|e| match e {
            RuleEvent::Firing(f) => Some(f.target),
            RuleEvent::Resolved(_) => None,
        })
        .collect();
    assert_eq!(silent, ["d1", "d2"]);
}

#[test]
fn ratio_to_denominator() {
    let body = r#"
[[rules]]
name = "DiskFull"
metric = "avail"
divide_by = "size"
condition = "below"
threshold = 0.05
clear = 0.08
severity = "P2"
summary = "{{ labels.mountpoint }} {{ value_pct }}% free"
"#;
    let got = run(
        body,
        &[
            S("avail", "vm1", "mountpoint=/", 10.0, 0), // no denominator yet: skipped
            S("size", "vm1", "mountpoint=/", 1000.0, 0),
            S("avail", "vm1", "mountpoint=/", 40.0, 10_000),
            S("avail", "vm1", "mountpoint=/var", 1.0, 10_000), // other series, no size
            S("avail", "vm1", "mountpoint=/", 60.0, 20_000),   // 6%: hysteresis holds
            S("avail", "vm1", "mountpoint=/", 90.0, 30_000),
        ],
    );
    assert_eq!(
        got,
        [
            "fire DiskFull vm1 start=10000 at=10000 value=0.04 | / 4% free",
            "resolve DiskFull vm1 at=30000"
        ]
    );
}

#[test]
fn restored_fingerprints_settle_on_their_first_sample() {
    let mut eval = Evaluator::new(rules(HOT));
    assert!(!eval.restore_firing("NoSuchRule", "s1"));
    for target in ["s1", "s2", "s3"] {
        assert!(eval.restore_firing("Hot", target));
    }
    let sample = |target: &str, value, ts_ms| Sample {
        metric: "temp".into(),
        target: target.into(),
        labels: BTreeMap::new(),
        value,
        ts_ms,
        kind: SampleKind::Gauge,
    };
    // Cleared while the collector was down: the lost resolution is emitted.
    let events = eval.observe("a", &sample("s1", 25.0, 1_000));
    assert!(
        matches!(events.as_slice(), [RuleEvent::Resolved(r)] if r.target == "s1" && r.resolved_at_ms == 1_000)
    );
    // Still hot (29 is above the clear level): confirmed silently, no second ticket.
    assert!(eval.observe("a", &sample("s2", 29.0, 1_000)).is_empty());
    assert!(eval.observe("a", &sample("s3", 40.0, 1_000)).is_empty());
    let events = eval.observe("a", &sample("s2", 20.0, 2_000));
    assert!(
        matches!(events.as_slice(), [RuleEvent::Resolved(r)] if r.target == "s2" && r.resolved_at_ms == 2_000)
    );
    // Settled fingerprints behave normally afterwards.
    assert!(eval.observe("a", &sample("s1", 20.0, 2_000)).is_empty());
    assert!(eval.observe("a", &sample("s3", 41.0, 2_000)).is_empty());
}
