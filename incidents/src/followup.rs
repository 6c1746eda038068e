//! Customer follow-ups as scheduled tasks (incidents → **notifications**): new-customer
//! follow-ups some time after a department's first target appears (default days 3, 8 and 15),
//! and periodic follow-ups with VIP departments (default every 30 days).
//!
//! Pure planning: [`plan`] lists what is due at `now` for one department and when to look again;
//! each [`FollowUp`] has a stable [`FollowUp::key`] that the collector stores with the task it
//! creates ([`FollowUpTask`]), so a restart or a repeated call never creates the same follow-up
//! twice. A task moves only from pending to done ([`FollowUpTask::complete`], recording who, when
//! and what the customer said); nothing is deleted.

use crate::inventory::Contact;
use crate::{Millis, duration_ms};
use faultline_wire::config_file::{ConfigError, ConfigSource};
use humantime_serde::re::humantime;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::time::Duration;
use thiserror::Error;

const DAY: Duration = Duration::from_secs(86_400);

/// When follow-ups are due, from the collector's config (`[incidents.followups]`). Every period
/// goes down to seconds, so tests and demos run in real time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FollowUpPolicy {
    /// New-customer follow-ups, each this long after a department's first target appeared
    /// (default `["3 days", "8 days", "15 days"]`; empty: none).
    #[serde(with = "durations")]
    pub new_customer_after: Vec<Duration>,
    /// Period of VIP follow-ups, counted from the department's first target (default `"30 days"`).
    #[serde(with = "humantime_serde")]
    pub vip_every: Duration,
}

impl Default for FollowUpPolicy {
    fn default() -> Self {
        Self {
            new_customer_after: vec![3 * DAY, 8 * DAY, 15 * DAY],
            vip_every: 30 * DAY,
        }
    }
}

/// A list of human-readable durations (`["3 days", "90s"]`), as `humantime_serde` reads one.
mod durations {
    use super::*;

    pub fn serialize<S: Serializer>(value: &[Duration], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(value.iter().map(humantime_serde::Serde::from))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Duration>, D::Error> {
        Ok(
            Vec::<humantime_serde::Serde<Duration>>::deserialize(deserializer)?
                .into_iter()
                .map(humantime_serde::Serde::into_inner)
                .collect(),
        )
    }
}

impl FollowUpPolicy {
    /// Checks the policy after parsing; `prefix` is where it sits in the config file
    /// (`incidents.followups`). Periods are at least one second, and no new-customer time is
    /// listed twice (both would be the same task).
    pub fn validate(&self, source: &ConfigSource, prefix: &str) -> Result<(), ConfigError> {
        let field = |name: &str| format!("{prefix}.{name}");
        let second = Duration::from_secs(1);
        if self.vip_every < second {
            return Err(source.error(&field("vip_every"), "must be at least 1s"));
        }
        for (i, after) in self.new_customer_after.iter().enumerate() {
            let at = field(&format!("new_customer_after[{i}]"));
            if *after < second {
                return Err(source.error(&at, "must be at least 1s"));
            }
            if self.new_customer_after[..i].contains(after) {
                return Err(source.error(&at, "listed twice"));
            }
        }
        Ok(())
    }
}

/// Which follow-up.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FollowUpKind {
    /// New-customer follow-up this long after the department's first target appeared.
    NewCustomer {
        /// The configured time after the first target (`3days`).
        #[serde(with = "humantime_serde")]
        #[schema(value_type = String, example = "3days")]
        after: Duration,
    },
    /// The n-th periodic VIP follow-up (1-based).
    Vip {
        /// Period number.
        period: u64,
    },
}

impl FollowUpKind {
    /// Every [`FollowUpKind::label`], for metrics.
    pub const LABELS: [&'static str; 2] = ["new_customer", "vip"];

    /// `new_customer` or `vip`: the metric label and the JSON `kind`.
    pub fn label(&self) -> &'static str {
        match self {
            FollowUpKind::NewCustomer { .. } => Self::LABELS[0],
            FollowUpKind::Vip { .. } => Self::LABELS[1],
        }
    }
}

/// `3days`, `1day 2h` without spaces: a duration as a key part (stable for equal durations, however
/// they were written, and usable in a URL path).
fn compact(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// A follow-up that is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FollowUp {
    /// Department id.
    pub department: String,
    /// Which one.
    #[serde(flatten)]
    pub kind: FollowUpKind,
    /// When it became due.
    pub due_at_ms: Millis,
}

impl FollowUp {
    /// Stable de-duplication key, e.g. `followup:finance:new:3days` or `followup:finance:vip:2`.
    pub fn key(&self) -> String {
        match self.kind {
            FollowUpKind::NewCustomer { after } => {
                format!("followup:{}:new:{}", self.department, compact(after))
            }
            FollowUpKind::Vip { period } => format!("followup:{}:vip:{period}", self.department),
        }
    }

    /// One line for people: `new customer, 3days after the first target` or `VIP, period 2`.
    pub fn describe(&self) -> String {
        match self.kind {
            FollowUpKind::NewCustomer { after } => {
                format!("new customer, {} after the first target", compact(after))
            }
            FollowUpKind::Vip { period } => format!("VIP, period {period}"),
        }
    }
}

/// What is due for one department, and when something next comes due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Due at `now` and not created yet, in a stable order.
    pub due: Vec<FollowUp>,
    /// The next time after `now` a follow-up comes due (`None`: never again).
    pub next_ms: Option<Millis>,
}

/// The follow-ups of `department` due at `now` whose keys are not in `done` (those already
/// created), and when to look again. `first_seen_ms` is when its first target appeared; VIP
/// periods count from then as well, and only the latest one is planned: a VIP call is not made up
/// for missed months.
pub fn plan(
    policy: &FollowUpPolicy,
    department: &str,
    first_seen_ms: Millis,
    vip: bool,
    done: &BTreeSet<String>,
    now: Millis,
) -> Plan {
    let make = |kind, due_at_ms| FollowUp {
        department: department.to_string(),
        kind,
        due_at_ms,
    };
    let mut planned: Vec<FollowUp> = policy
        .new_customer_after
        .iter()
        .map(|&after| {
            make(
                FollowUpKind::NewCustomer { after },
                first_seen_ms.saturating_add(duration_ms(after)),
            )
        })
        .collect();
    let every = duration_ms(policy.vip_every);
    if vip && every > 0 {
        let current = now.saturating_sub(first_seen_ms).max(0) / every;
        for period in [current, current.saturating_add(1)] {
            if period > 0 {
                planned.push(make(
                    FollowUpKind::Vip {
                        period: u64::try_from(period).unwrap_or(u64::MAX),
                    },
                    first_seen_ms.saturating_add(period.saturating_mul(every)),
                ));
            }
        }
    }
    let next_ms = planned
        .iter()
        .map(|f| f.due_at_ms)
        .filter(|at| *at > now)
        .min();
    planned.retain(|f| f.due_at_ms <= now && !done.contains(&f.key()));
    Plan {
        due: planned,
        next_ms,
    }
}

/// Where a follow-up task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Created, not done yet.
    Pending,
    /// Done (the customer was called).
    Done,
}

impl TaskState {
    /// Name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Done => "done",
        }
    }
}

/// Who completed a task, when, and what the customer said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Completion {
    /// Who.
    pub by: String,
    /// When.
    pub at_ms: Millis,
    /// Note.
    pub note: String,
}

/// A follow-up task: created once when its follow-up comes due, done when someone records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FollowUpTask {
    /// [`FollowUp::key`]: unique, stable across restarts.
    pub key: String,
    /// The follow-up.
    #[serde(flatten)]
    pub followup: FollowUp,
    /// Whom to call: the department's contacts when the task was created.
    pub contacts: Vec<Contact>,
    /// When the task was created.
    pub created_at_ms: Millis,
    /// Pending or done.
    pub state: TaskState,
    /// Who did it, when and how it went (once done).
    pub done: Option<Completion>,
}

/// A follow-up task change that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FollowUpError {
    /// The task is already done.
    #[error("follow-up {key} was already done by {by} at {}", crate::format_time(*at_ms))]
    AlreadyDone {
        /// Task key.
        key: String,
        /// Who did it.
        by: String,
        /// When.
        at_ms: Millis,
    },
}

impl FollowUpTask {
    /// A pending task for `followup`, created at `now`.
    pub fn new(followup: FollowUp, contacts: Vec<Contact>, now: Millis) -> Self {
        Self {
            key: followup.key(),
            followup,
            contacts,
            created_at_ms: now,
            state: TaskState::Pending,
            done: None,
        }
    }

    /// The task marked done by `by` at `now` with `note`; a done task stays as it was done.
    pub fn complete(&self, by: &str, note: &str, now: Millis) -> Result<Self, FollowUpError> {
        if let Some(done) = &self.done {
            return Err(FollowUpError::AlreadyDone {
                key: self.key.clone(),
                by: done.by.clone(),
                at_ms: done.at_ms,
            });
        }
        Ok(Self {
            state: TaskState::Done,
            done: Some(Completion {
                by: by.to_string(),
                at_ms: now,
                note: note.to_string(),
            }),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: Millis = 86_400_000;
    const S: Millis = 1_000;

    #[test]
    fn plan_table() {
        let policy = FollowUpPolicy::default();
        let t0 = 1_000 * DAY_MS;
        let done = BTreeSet::from(["followup:fin:new:3days".to_string()]);
        let none = BTreeSet::new();
        // (what, vip, done, now, expected keys, expected next look)
        type Case<'a> = (
            &'a str,
            bool,
            &'a BTreeSet<String>,
            Millis,
            Vec<&'a str>,
            Option<Millis>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "day 2: nothing",
                false,
                &none,
                t0 + 2 * DAY_MS,
                vec![],
                Some(t0 + 3 * DAY_MS),
            ),
            (
                "day 3 due",
                false,
                &none,
                t0 + 3 * DAY_MS,
                vec!["followup:fin:new:3days"],
                Some(t0 + 8 * DAY_MS),
            ),
            (
                "day 9: 3 and 8",
                false,
                &none,
                t0 + 9 * DAY_MS,
                vec!["followup:fin:new:3days", "followup:fin:new:8days"],
                Some(t0 + 15 * DAY_MS),
            ),
            (
                "day 9, 3 done",
                false,
                &done,
                t0 + 9 * DAY_MS,
                vec!["followup:fin:new:8days"],
                Some(t0 + 15 * DAY_MS),
            ),
            (
                "after the last: never again",
                false,
                &none,
                t0 + 20 * DAY_MS,
                vec![
                    "followup:fin:new:3days",
                    "followup:fin:new:8days",
                    "followup:fin:new:15days",
                ],
                None,
            ),
            (
                "VIP before a month",
                true,
                &done,
                t0 + 29 * DAY_MS,
                vec!["followup:fin:new:8days", "followup:fin:new:15days"],
                Some(t0 + 30 * DAY_MS),
            ),
            (
                "VIP after two months: latest period only",
                true,
                &done,
                t0 + 61 * DAY_MS,
                vec![
                    "followup:fin:new:8days",
                    "followup:fin:new:15days",
                    "followup:fin:vip:2",
                ],
                Some(t0 + 90 * DAY_MS),
            ),
        ];
        for (what, vip, done, now, want, next) in cases {
            let plan = plan(&policy, "fin", t0, vip, done, now);
            let keys: Vec<String> = plan.due.iter().map(FollowUp::key).collect();
            assert_eq!(keys, want, "{what}");
            assert_eq!(plan.next_ms, next, "{what}");
        }
        let vip = plan(&policy, "fin", t0, true, &none, t0 + 61 * DAY_MS);
        assert_eq!(vip.due.last().map(|f| f.due_at_ms), Some(t0 + 60 * DAY_MS));
    }

    #[test]
    fn seconds_policy_plans_in_real_time() {
        let policy: FollowUpPolicy =
            toml::from_str("new_customer_after = [\"2s\", \"4s\"]\nvip_every = \"3s\"\n").unwrap();
        let mut done = BTreeSet::new();
        let mut created = Vec::new();
        // Tick every second for 7 s, creating what is due, as the collector does.
        let mut next = Some(0);
        for now in (0..=7).map(|s| s * S) {
            if next.is_none_or(|n| n > now) {
                continue;
            }
            let plan = plan(&policy, "fin", 0, true, &done, now);
            for f in plan.due {
                done.insert(f.key());
                created.push((now, f.key()));
            }
            next = plan.next_ms;
        }
        let created: Vec<(Millis, &str)> = created.iter().map(|(t, k)| (*t, k.as_str())).collect();
        assert_eq!(
            created,
            [
                (2 * S, "followup:fin:new:2s"),
                (3 * S, "followup:fin:vip:1"),
                (4 * S, "followup:fin:new:4s"),
                (6 * S, "followup:fin:vip:2"),
            ]
        );
    }

    #[test]
    fn keys_are_stable_however_the_time_is_written() {
        let key = |after: &str| {
            let policy: FollowUpPolicy =
                toml::from_str(&format!("new_customer_after = [\"{after}\"]")).unwrap();
            FollowUp {
                department: "fin".into(),
                kind: FollowUpKind::NewCustomer {
                    after: policy.new_customer_after[0],
                },
                due_at_ms: 0,
            }
            .key()
        };
        assert_eq!(key("3 days"), "followup:fin:new:3days");
        assert_eq!(key("72h"), "followup:fin:new:3days");
        assert_eq!(key("26h"), "followup:fin:new:1day2h");
        assert_eq!(key("2s"), "followup:fin:new:2s");
    }

    #[test]
    fn policy_validation_table() {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            followups: FollowUpPolicy,
        }
        // (file text, expected error field and line)
        let cases = [
            ("[followups]\n", None),
            ("[followups]\nnew_customer_after = []\n", None),
            (
                "[followups]\nvip_every = \"0s\"\n",
                Some(("followups.vip_every", 2)),
            ),
            (
                "[followups]\nnew_customer_after = [\"2s\", \"500ms\"]\n",
                Some(("followups.new_customer_after[1]", 2)),
            ),
            (
                "[followups]\nnew_customer_after = [\"2s\", \"2 s\"]\n",
                Some(("followups.new_customer_after[1]", 2)),
            ),
        ];
        for (text, want) in cases {
            let source = ConfigSource::from_text(std::path::Path::new("c.toml"), text.to_string());
            let file: File = source.parse().unwrap();
            let got = file.followups.validate(&source, "followups").err();
            assert_eq!(
                got.as_ref()
                    .map(|e| (e.field.as_str(), e.position.map_or(0, |p| p.0))),
                want,
                "{text}: {got:?}"
            );
        }
        assert!(
            ConfigSource::from_text(
                std::path::Path::new("c.toml"),
                "[followups]\nvip_every = \"soon\"\n".into()
            )
            .parse::<File>()
            .is_err()
        );
    }

    #[test]
    fn a_task_is_done_once_and_reads_back() {
        let followup = FollowUp {
            department: "fin".into(),
            kind: FollowUpKind::NewCustomer {
                after: Duration::from_secs(2),
            },
            due_at_ms: 2 * S,
        };
        let task = FollowUpTask::new(followup, Vec::new(), 3 * S);
        assert_eq!(
            (task.key.as_str(), task.state),
            ("followup:fin:new:2s", TaskState::Pending)
        );
        let json = serde_json::to_value(&task).unwrap();
        assert_eq!(
            (
                &json["department"],
                &json["kind"],
                &json["after"],
                &json["due_at_ms"]
            ),
            (
                &"fin".into(),
                &"new_customer".into(),
                &"2s".into(),
                &2_000.into()
            )
        );
        assert_eq!(serde_json::from_value::<FollowUpTask>(json).unwrap(), task);
        let done = task.complete("ana", "all fine", 9 * S).unwrap();
        assert_eq!(done.state, TaskState::Done);
        assert_eq!(
            done.done,
            Some(Completion {
                by: "ana".into(),
                at_ms: 9 * S,
                note: "all fine".into()
            })
        );
        let again = done.complete("bo", "", 10 * S).unwrap_err();
        assert!(again.to_string().contains("already done by ana"), "{again}");
    }
}
