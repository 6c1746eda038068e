//! Customer follow-up planning (incidents → **notifications**): new-customer follow-ups a few days
//! after a department's first target appears, and periodic follow-ups with VIP departments.
//!
//! Pure planning: [`due_followups`] lists what is due at `now` for one department; each
//! [`FollowUp`] has a stable [`FollowUp::key`] that the collector records once the task is created,
//! so a restart or a repeated call never plans the same follow-up twice.

use crate::{Millis, duration_ms};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

const DAY_MS: Millis = 86_400_000;

/// When follow-ups are due, from the collector's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FollowUpPolicy {
    /// Days after a department's first target appears (default 3, 8 and 15).
    pub new_customer_days: Vec<u32>,
    /// Period of VIP follow-ups (default 30 days).
    #[serde(with = "humantime_serde")]
    pub vip_every: Duration,
}

impl Default for FollowUpPolicy {
    fn default() -> Self {
        Self {
            new_customer_days: vec![3, 8, 15],
            vip_every: Duration::from_secs(30 * 86_400),
        }
    }
}

/// Which follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FollowUpKind {
    /// New-customer follow-up on this day after the first target appeared.
    NewCustomer {
        /// Day number.
        day: u32,
    },
    /// The n-th periodic VIP follow-up (1-based).
    Vip {
        /// Period number.
        period: u64,
    },
}

/// A follow-up task to plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    /// Department id.
    pub department: String,
    /// Which one.
    pub kind: FollowUpKind,
    /// When it became due.
    pub due_at_ms: Millis,
}

impl FollowUp {
    /// Stable de-duplication key, e.g. `followup:finance:new:3` or `followup:finance:vip:2`.
    pub fn key(&self) -> String {
        match self.kind {
            FollowUpKind::NewCustomer { day } => format!("followup:{}:new:{day}", self.department),
            FollowUpKind::Vip { period } => format!("followup:{}:vip:{period}", self.department),
        }
    }
}

/// Follow-ups of `department` due at `now` and not in `done` (keys of those already planned).
/// `first_seen_ms` is when its first target appeared; VIP periods count from then as well.
pub fn due_followups(
    policy: &FollowUpPolicy,
    department: &str,
    first_seen_ms: Millis,
    vip: bool,
    done: &BTreeSet<String>,
    now: Millis,
) -> Vec<FollowUp> {
    let make = |kind, due_at_ms| FollowUp {
        department: department.to_string(),
        kind,
        due_at_ms,
    };
    let mut due: Vec<FollowUp> = policy
        .new_customer_days
        .iter()
        .map(|&day| {
            make(
                FollowUpKind::NewCustomer { day },
                first_seen_ms.saturating_add(Millis::from(day) * DAY_MS),
            )
        })
        .filter(|f| f.due_at_ms <= now)
        .collect();
    let every = duration_ms(policy.vip_every);
    if vip && every > 0 && now > first_seen_ms {
        // Only the latest period is planned: a VIP call is not made up for missed months.
        let period = (now - first_seen_ms) / every;
        if period > 0 {
            let period_no = u64::try_from(period).unwrap_or(u64::MAX);
            due.push(make(
                FollowUpKind::Vip { period: period_no },
                first_seen_ms.saturating_add(period * every),
            ));
        }
    }
    due.retain(|f| !done.contains(&f.key()));
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followup_table() {
        let policy = FollowUpPolicy::default();
        let t0 = 1_000 * DAY_MS;
        let done = BTreeSet::from(["followup:fin:new:3".to_string()]);
        let none = BTreeSet::new();
        // (what, vip, done, now, expected keys)
        type Case<'a> = (&'a str, bool, &'a BTreeSet<String>, Millis, Vec<&'a str>);
        let cases: Vec<Case<'_>> = vec![
            ("day 2: nothing", false, &none, t0 + 2 * DAY_MS, vec![]),
            (
                "day 3 due",
                false,
                &none,
                t0 + 3 * DAY_MS,
                vec!["followup:fin:new:3"],
            ),
            (
                "day 9: 3 and 8",
                false,
                &none,
                t0 + 9 * DAY_MS,
                vec!["followup:fin:new:3", "followup:fin:new:8"],
            ),
            (
                "day 9, 3 done",
                false,
                &done,
                t0 + 9 * DAY_MS,
                vec!["followup:fin:new:8"],
            ),
            (
                "VIP before a month",
                true,
                &done,
                t0 + 29 * DAY_MS,
                vec!["followup:fin:new:8", "followup:fin:new:15"],
            ),
            (
                "VIP after two months: latest period only",
                true,
                &done,
                t0 + 61 * DAY_MS,
                vec![
                    "followup:fin:new:8",
                    "followup:fin:new:15",
                    "followup:fin:vip:2",
                ],
            ),
        ];
        for (what, vip, done, now, want) in cases {
            let keys: Vec<String> = due_followups(&policy, "fin", t0, vip, done, now)
                .iter()
                .map(FollowUp::key)
                .collect();
            assert_eq!(keys, want, "{what}");
        }
        let vip = due_followups(&policy, "fin", t0, true, &none, t0 + 61 * DAY_MS);
        assert_eq!(vip.last().map(|f| f.due_at_ms), Some(t0 + 60 * DAY_MS));
    }
}
