//! Settling: a candidate root waits until its upstream has spoken (rules → **settle** → desk →
//! tickets), so that the same faults give the same tickets, tags and pages whatever order and
//! poll phase their facts arrive in.
//!
//! Devices are polled at different intervals and phases: the customer systems behind a failed
//! carrier circuit are often seen down seconds before the edge router's next poll shows the
//! circuit down. Judged at once, such a system would open (and page) a ticket of its own. So a
//! firing that the desk would open as a new root ([`crate::desk::Action::Open`]) is first
//! [`Settle::hold`]: it waits while a target upstream of it (its `depends_on` closure, and our side
//! of a carrier boundary) has not reported a sample at or after the failure's start, or has a rule
//! pending (condition true, `for` not yet done) that started within one of its polls of the
//! failure — a cause is observed no later than that. It is released ([`Settle::settled`]) as soon as
//! every upstream target has spoken and none is pending, and judged again: by then a failing
//! upstream has its ticket and the firing joins it as a symptom (no page).
//!
//! The wait is bounded: an upstream target that has not reported is waited for one of its poll
//! intervals (the gap between its last two samples, or [`SettlePolicy::default_interval`] when
//! unknown) plus [`SettlePolicy::margin`] from when the firing was held; a pending upstream rule at
//! most [`SettlePolicy::max_wait`]; never longer than that in all. A target that has never reported
//! is no evidence and is not waited for. Firings released together are judged in a fixed order
//! (upstream before downstream, then fault start, firing time, rule, target), so which of them opens the ticket does not depend on
//! the order they arrived in either; a firing whose upstream target has a firing held itself waits
//! for that one, and is judged after it.
//!
//! Pure and synchronous: time is passed in (wall-clock milliseconds for the bounds, sample times
//! for what has been reported).

use crate::attribution::{agent_target, our_side};
use crate::eval::Firing;
use crate::inventory::{Inventory, Owner};
use crate::{Millis, duration_ms};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long a candidate root may wait for its upstream (`[incidents.settle]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettlePolicy {
    /// Added to an upstream target's poll interval: how late its next sample may be (default 5s).
    #[serde(with = "humantime_serde")]
    pub margin: Duration,
    /// The longest any firing is held back, also while an upstream rule is pending (default
    /// 5m: an upstream rule's own `for` plus a poll).
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// The poll interval assumed for a target seen only once so far (default 1m).
    #[serde(with = "humantime_serde")]
    pub default_interval: Duration,
}

impl Default for SettlePolicy {
    fn default() -> Self {
        Self {
            margin: Duration::from_secs(5),
            max_wait: Duration::from_secs(300),
            default_interval: Duration::from_secs(60),
        }
    }
}

/// What settling looks at: the dependency graph, and what each target has reported.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// The inventory (its `depends_on` graph and carrier boundaries).
    pub inventory: &'a Inventory,
    /// Time of the newest sample of each target.
    pub last_seen_ms: &'a BTreeMap<String, Millis>,
    /// Gap between the last two polls of each target, where known.
    pub interval_ms: &'a BTreeMap<String, Millis>,
    /// When the earliest rule pending (condition true, `for` not yet done) on a target started
    /// to hold.
    pub pending_since: &'a dyn Fn(&str) -> Option<Millis>,
}

/// A firing held back until its upstream has spoken.
#[derive(Debug, Clone, PartialEq)]
struct Candidate {
    firing: Firing,
    /// Wall-clock time it was held.
    held_at_ms: Millis,
    /// The upstream targets it waits for (computed once, when held).
    upstream: Vec<String>,
}

/// Why a held firing still waits, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// The target has not reported since the failure started; waited for until the time given.
    Silent(String, Millis),
    /// A rule is pending on the target; waited for until the time given.
    Pending(String, Millis),
}

/// The firings held back, and the policy bounding their wait.
#[derive(Debug, Clone, Default)]
pub struct Settle {
    policy: SettlePolicy,
    held: Vec<Candidate>,
}

/// The targets whose data decides `target`'s attribution: its `depends_on` closure and, at a
/// carrier boundary, our side of it.
pub fn upstream_of(inventory: &Inventory, target: &str) -> Vec<String> {
    let mut out: BTreeSet<String> = inventory
        .upstream(target)
        .into_iter()
        .filter_map(|path| path.last().cloned())
        .collect();
    if let Some(t) = inventory.target(target) {
        let is_carrier = t.owner == Owner::Carrier;
        let at_boundary = is_carrier
            || t.depends_on.iter().any(|d| {
                inventory
                    .target(d)
                    .is_some_and(|d| d.owner == Owner::Carrier)
            });
        if at_boundary {
            out.extend(our_side(inventory, target, is_carrier));
        }
    }
    out.remove(target);
    out.into_iter().collect()
}

impl Settle {
    /// Nothing held, waits bounded by `policy`.
    pub fn new(policy: SettlePolicy) -> Self {
        Self {
            policy,
            held: Vec::new(),
        }
    }

    /// How many firings are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// What `candidate` still waits for at `now`; empty when it is settled.
    fn waiting(&self, candidate: &Candidate, view: &View<'_>, now: Millis) -> Vec<Waiting> {
        let failed_at = candidate.firing.started_at_ms;
        let margin = duration_ms(self.policy.margin);
        let hard_limit = candidate
            .held_at_ms
            .saturating_add(duration_ms(self.policy.max_wait));
        if now >= hard_limit {
            return Vec::new();
        }
        let mut out = Vec::new();
        for target in &candidate.upstream {
            let Some(&seen) = view.last_seen_ms.get(target) else {
                continue; // Never reported: no evidence to wait for.
            };
            let interval = view
                .interval_ms
                .get(target)
                .copied()
                .unwrap_or_else(|| duration_ms(self.policy.default_interval));
            if seen < failed_at {
                let until = candidate
                    .held_at_ms
                    .saturating_add(interval)
                    .saturating_add(margin)
                    .min(hard_limit);
                if now < until {
                    out.push(Waiting::Silent(target.clone(), until));
                }
            } else if (view.pending_since)(target).is_some_and(|since| {
                // Observed within one poll of the failure: it may be its cause, seen later.
                since <= failed_at.saturating_add(interval).saturating_add(margin)
            }) {
                out.push(Waiting::Pending(target.clone(), hard_limit));
            }
        }
        out
    }

    /// Holds `firing` (at wall-clock `now`) when an upstream target has not spoken yet; returns
    /// what it waits for (empty: not held, judge it now).
    pub fn hold(&mut self, firing: &Firing, view: &View<'_>, now: Millis) -> Vec<Waiting> {
        let mut upstream = upstream_of(view.inventory, &firing.target);
        if let Some(agent) = firing.labels.get("agent").map(|a| agent_target(a))
            && agent != firing.target
        {
            upstream.push(agent);
        }
        let candidate = Candidate {
            upstream,
            firing: firing.clone(),
            held_at_ms: now,
        };
        let waiting = self.waiting(&candidate, view, now);
        if !waiting.is_empty() {
            self.held.push(candidate);
        }
        waiting
    }

    /// Takes back the held firing of `rule` on `target` (its condition cleared before it
    /// settled): the caller judges it at once, before the resolution.
    pub fn take(&mut self, rule: &str, target: &str) -> Option<Firing> {
        let index = self
            .held
            .iter()
            .position(|c| c.firing.rule == rule && c.firing.target == target)?;
        Some(self.held.remove(index).firing)
    }

    /// Removes and returns the held firings that are settled at `now`: nothing they wait for,
    /// and no firing upstream of them still held (within their own bound). They come in a fixed
    /// order: upstream before downstream (fewer upstream targets first: a target upstream of
    /// another has strictly fewer), then fault start, firing time, rule, target.
    pub fn settled(&mut self, view: &View<'_>, now: Millis) -> Vec<Firing> {
        if self.held.is_empty() {
            return Vec::new();
        }
        let (mut done, mut kept): (Vec<Candidate>, Vec<Candidate>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|c| self.waiting(c, view, now).is_empty());
        // A firing upstream still held keeps its downstream held too, to its own bound.
        loop {
            let held: BTreeSet<&str> = kept.iter().map(|c| c.firing.target.as_str()).collect();
            let hard = duration_ms(self.policy.max_wait);
            let (blocked, free): (Vec<Candidate>, Vec<Candidate>) =
                done.into_iter().partition(|c| {
                    now < c.held_at_ms.saturating_add(hard)
                        && c.upstream.iter().any(|u| held.contains(u.as_str()))
                });
            done = free;
            if blocked.is_empty() {
                break;
            }
            kept.extend(blocked);
        }
        self.held = kept;
        done.sort_by(|a, b| {
            (
                a.upstream.len(),
                a.firing.started_at_ms,
                a.firing.fired_at_ms,
                &a.firing.rule,
                &a.firing.target,
            )
                .cmp(&(
                    b.upstream.len(),
                    b.firing.started_at_ms,
                    b.firing.fired_at_ms,
                    &b.firing.rule,
                    &b.firing.target,
                ))
        });
        done.into_iter().map(|c| c.firing).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Correlate, Severity};
    use faultline_wire::config_file::ConfigSource;
    use std::path::Path;

    const S: Millis = 1_000;

    fn inventory() -> Inventory {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        Inventory::load(&ConfigSource::read(&dir.join("testdata/inventory.toml")).unwrap()).unwrap()
    }

    fn firing(target: &str, started: Millis) -> Firing {
        Firing {
            rule: "Down".into(),
            target: target.into(),
            labels: BTreeMap::new(),
            severity: Severity::P2,
            value: 0.0,
            started_at_ms: started,
            fired_at_ms: started,
            summary: String::new(),
            description: String::new(),
            correlate: Correlate::None,
            same_fault: vec!["Down".into()],
        }
    }

    #[test]
    fn waits_for_silent_upstream_then_releases_when_it_reports() {
        let inv = inventory();
        let vm = inv
            .targets()
            .values()
            .find(|t| !inv.upstream(&t.id).is_empty() && t.owner == Owner::Customer)
            .expect("a customer target with dependencies in the test inventory")
            .id
            .clone();
        let upstream = upstream_of(&inv, &vm);
        assert!(!upstream.is_empty());
        let mut last_seen: BTreeMap<String, Millis> =
            upstream.iter().map(|u| (u.clone(), 100 * S)).collect();
        let before = last_seen.clone();
        let intervals: BTreeMap<String, Millis> =
            upstream.iter().map(|u| (u.clone(), 30 * S)).collect();
        let never = |_: &str| None;
        let mut settle = Settle::new(SettlePolicy::default());
        let view = View {
            inventory: &inv,
            last_seen_ms: &before,
            interval_ms: &intervals,
            pending_since: &never,
        };
        // The VM fails at 110 s; its upstream last spoke at 100 s: held.
        let waiting = settle.hold(&firing(&vm, 110 * S), &view, 111 * S);
        assert_eq!(waiting.len(), upstream.len());
        assert!(
            waiting
                .iter()
                .all(|w| matches!(w, Waiting::Silent(_, until) if *until == 146 * S))
        );
        assert!(settle.settled(&view, 120 * S).is_empty());
        // Every upstream target reports at 125 s: released.
        for u in &upstream {
            last_seen.insert(u.clone(), 125 * S);
        }
        let view = View {
            inventory: &inv,
            last_seen_ms: &last_seen,
            interval_ms: &intervals,
            pending_since: &never,
        };
        let released = settle.settled(&view, 126 * S);
        assert_eq!(released.len(), 1);
        assert!(settle.is_empty());
    }

    #[test]
    fn bounds_pending_and_silent_waits_and_ignores_targets_never_seen() {
        let inv = inventory();
        let vm = inv
            .targets()
            .values()
            .find(|t| !inv.upstream(&t.id).is_empty() && t.owner == Owner::Customer)
            .unwrap()
            .id
            .clone();
        let upstream = upstream_of(&inv, &vm);
        let none = BTreeMap::new();
        let never = |_: &str| None;
        let always = |_: &str| Some(15 * S);
        let mut settle = Settle::new(SettlePolicy::default());
        let view = View {
            inventory: &inv,
            last_seen_ms: &none,
            interval_ms: &none,
            pending_since: &never,
        };
        // Nothing upstream has ever reported: not held.
        assert!(settle.hold(&firing(&vm, 10 * S), &view, 10 * S).is_empty());
        // Reported after the failure but a rule is pending there: held until max_wait.
        let fresh: BTreeMap<String, Millis> =
            upstream.iter().map(|u| (u.clone(), 20 * S)).collect();
        let view = View {
            last_seen_ms: &fresh,
            pending_since: &always,
            ..view
        };
        assert!(!settle.hold(&firing(&vm, 10 * S), &view, 20 * S).is_empty());
        assert!(settle.settled(&view, 319 * S).is_empty());
        assert_eq!(settle.settled(&view, 320 * S).len(), 1);
        // Silent upstream with an unknown interval: default interval plus margin.
        let stale: BTreeMap<String, Millis> = upstream.iter().map(|u| (u.clone(), S)).collect();
        let view = View {
            last_seen_ms: &stale,
            pending_since: &never,
            ..view
        };
        assert!(!settle.hold(&firing(&vm, 10 * S), &view, 10 * S).is_empty());
        assert!(settle.settled(&view, 74 * S).is_empty());
        assert_eq!(settle.settled(&view, 75 * S).len(), 1);
        // Taken back by its resolution.
        assert!(!settle.hold(&firing(&vm, 10 * S), &view, 10 * S).is_empty());
        assert!(settle.take("Down", &vm).is_some());
        assert!(settle.take("Down", &vm).is_none());
    }

    #[test]
    fn releases_together_in_a_fixed_order() {
        let inv = inventory();
        let targets: Vec<String> = inv
            .targets()
            .values()
            .filter(|t| !upstream_of(&inv, &t.id).is_empty())
            .map(|t| t.id.clone())
            .take(3)
            .collect();
        let seen: BTreeMap<String, Millis> = inv.targets().keys().map(|t| (t.clone(), 0)).collect();
        let never = |_: &str| None;
        let view = View {
            inventory: &inv,
            last_seen_ms: &seen,
            interval_ms: &BTreeMap::new(),
            pending_since: &never,
        };
        let mut settle = Settle::new(SettlePolicy::default());
        for (i, t) in targets.iter().enumerate().rev() {
            let mut f = firing(t, 10 * S);
            f.fired_at_ms = 10 * S + i as Millis;
            assert!(!settle.hold(&f, &view, 10 * S).is_empty());
        }
        let released: Vec<String> = settle
            .settled(&view, 1_000 * S)
            .into_iter()
            .map(|f| f.target)
            .collect();
        let mut expected: Vec<(usize, usize, String)> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| (upstream_of(&inv, t).len(), i, t.clone()))
            .collect();
        expected.sort();
        let expected: Vec<String> = expected.into_iter().map(|(.., t)| t).collect();
        assert_eq!(released, expected);
    }

    #[test]
    fn a_firing_waits_while_one_upstream_of_it_is_held() {
        let inv = inventory();
        // vm-1 depends on host-1; both fail at 10 s. host-1's upstream (tor1) has not reported
        // since: host-1 is held, and vm-1 with it although its own upstream all reported.
        let mut seen: BTreeMap<String, Millis> =
            inv.targets().keys().map(|t| (t.clone(), 20 * S)).collect();
        seen.insert("tor1".into(), 5 * S);
        let never = |_: &str| None;
        let intervals = BTreeMap::from([("tor1".to_string(), 30 * S)]);
        let before = seen.clone();
        let view = View {
            inventory: &inv,
            last_seen_ms: &before,
            interval_ms: &intervals,
            pending_since: &never,
        };
        let mut settle = Settle::new(SettlePolicy::default());
        assert!(
            !settle
                .hold(&firing("host-1", 10 * S), &view, 20 * S)
                .is_empty()
        );
        // vm-1's own upstream includes tor1 too: held by it directly.
        assert!(
            !settle
                .hold(&firing("vm-1", 10 * S), &view, 21 * S)
                .is_empty()
        );
        seen.insert("tor1".into(), 40 * S);
        let view = View {
            last_seen_ms: &seen,
            ..view
        };
        let released: Vec<String> = settle
            .settled(&view, 41 * S)
            .into_iter()
            .map(|f| f.target)
            .collect();
        assert_eq!(released, ["host-1", "vm-1"], "upstream first");
    }

    #[test]
    fn a_held_upstream_firing_keeps_its_downstream_held() {
        let inv = inventory();
        let never = |_: &str| None;
        let mut seen: BTreeMap<String, Millis> =
            inv.targets().keys().map(|t| (t.clone(), 20 * S)).collect();
        seen.insert("tor1".into(), 5 * S);
        let view = View {
            inventory: &inv,
            last_seen_ms: &seen,
            interval_ms: &BTreeMap::new(),
            pending_since: &never,
        };
        let mut settle = Settle::new(SettlePolicy::default());
        // host-1 waits for tor1; vm-1 failed later than tor1's last report too... so make its
        // own wait over: vm-1 fails at 2 s, before tor1's last report.
        assert!(
            !settle
                .hold(&firing("host-1", 10 * S), &view, 20 * S)
                .is_empty()
        );
        assert!(
            settle
                .hold(&firing("vm-1", 2 * S), &view, 20 * S)
                .is_empty(),
            "not held by itself"
        );
        let mut vm = firing("vm-1", 2 * S);
        vm.rule = "Other".into();
        // Held explicitly through a pending wait, then freed of it: still kept for host-1.
        let pending = |t: &str| (t == "host-1").then_some(3 * S);
        let pending_view = View {
            pending_since: &pending,
            ..view
        };
        assert!(!settle.hold(&vm, &pending_view, 20 * S).is_empty());
        assert!(
            settle.settled(&view, 30 * S).is_empty(),
            "host-1 still waits for tor1"
        );
        assert_eq!(settle.len(), 2);
        // Past host-1's bound (default interval + margin from 20 s): both go, host-1 first.
        let released: Vec<String> = settle
            .settled(&view, 85 * S)
            .into_iter()
            .map(|f| f.target)
            .collect();
        assert_eq!(released, ["host-1", "vm-1"]);
    }
}
