//! Ticket timers and deadlines as configured (`[incidents.tickets]`): SLA per severity,
//! acknowledgement and escalation, progress interval, re-open window, call-back delay
//! (config → **incidents**: read by the ticket state machine).

use crate::inventory::Owner;
use crate::rules::Severity;
use faultline_wire::config_file::{ConfigError, ConfigSource};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Respond-by and resolve-by for one severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// Time from opening to acknowledgement.
    #[serde(with = "humantime_serde")]
    pub respond: Duration,
    /// Time from opening to resolution.
    #[serde(with = "humantime_serde")]
    pub resolve: Duration,
}

/// Ticket timers, from the collector's config. Every timer goes down to seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicketPolicy {
    /// SLA for P1.
    pub p1: Sla,
    /// SLA for P2.
    pub p2: Sla,
    /// SLA for P3.
    pub p3: Sla,
    /// SLA for P4.
    pub p4: Sla,
    /// Unacknowledged this long → escalate one on-call level (and again after each further
    /// period). Only for tickets whose tag has no on-call escalation policy
    /// (`[incidents.escalation]`): those escalate on the policy's level times.
    #[serde(with = "humantime_serde")]
    pub ack_timeout: Duration,
    /// Highest escalation level with `ack_timeout` (level 0 is the primary on-call).
    pub max_escalation_level: u32,
    /// Progress update to the customer contacts this often while a customer-affecting ticket is open.
    #[serde(with = "humantime_serde")]
    pub progress_interval: Duration,
    /// A fault firing again within this time after resolution re-opens the same ticket.
    #[serde(with = "humantime_serde")]
    pub reopen_window: Duration,
    /// Call-back to the customer due this long after resolution.
    #[serde(with = "humantime_serde")]
    pub callback_after: Duration,
    /// Escalation times by tag, not read from the file: every level's `after` of the escalation
    /// policy `[incidents.escalation]` names for the tag (level 1, paged at the (re-)open, first),
    /// derived once when the on-call file is loaded (`None`: untagged tickets, which follow the
    /// default policy). A tag without an entry uses `ack_timeout`.
    #[serde(skip)]
    pub escalation: BTreeMap<Option<Owner>, Vec<Duration>>,
    /// Flap detection: a ticket re-opened this many times within `flap_window` is flapping —
    /// its further re-opens and resolutions are recorded but not paged or mailed, and its
    /// resolution is announced once it stayed resolved for a whole window (Nagios / Zabbix flap
    /// detection). Before that, a re-open is announced as a re-open (and pages: the fault is
    /// back). 0 turns it off. A rule may set its own (`flap_threshold`, `flap_window` in the
    /// rule file). Default 2: the open and the first re-open page, the second re-open within the
    /// hour reports flapping instead.
    pub flap_threshold: u32,
    /// The window re-opens are counted in, and how long a flapping ticket must stay resolved
    /// before its resolution is announced. Default 1h.
    #[serde(with = "humantime_serde")]
    pub flap_window: Duration,
    /// Rules with their own flap detection, not read from this section: derived from the rule
    /// files at load.
    #[serde(skip)]
    pub flap_by_rule: BTreeMap<String, FlapPolicy>,
    /// How long a ticket stays the carrier's before Faultline reports it to the carrier's NOC
    /// (`0s`, the default: at once; a fault that clears or is re-tagged within it is never
    /// reported). See [`crate::carrier::report_due`].
    #[serde(with = "humantime_serde")]
    pub carrier_report_after: Duration,
}

/// When a ticket is flapping: `threshold` re-opens within `window` (see
/// [`TicketPolicy::flap_threshold`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlapPolicy {
    /// Re-opens within the window that make a ticket flapping (0: never).
    pub threshold: u32,
    /// The window re-opens are counted in; also how long a flapping ticket must stay resolved.
    pub window: Duration,
}

const MINUTE: u64 = 60;

impl Default for TicketPolicy {
    fn default() -> Self {
        let sla = |respond_min: u64, resolve_min: u64| Sla {
            respond: Duration::from_secs(respond_min * MINUTE),
            resolve: Duration::from_secs(resolve_min * MINUTE),
        };
        Self {
            p1: sla(15, 4 * 60),
            p2: sla(30, 8 * 60),
            p3: sla(2 * 60, 24 * 60),
            p4: sla(8 * 60, 72 * 60),
            ack_timeout: Duration::from_secs(10 * MINUTE),
            max_escalation_level: 3,
            progress_interval: Duration::from_secs(30 * MINUTE),
            reopen_window: Duration::from_secs(60 * MINUTE),
            callback_after: Duration::from_secs(24 * 60 * MINUTE),
            escalation: BTreeMap::new(),
            flap_threshold: 2,
            flap_window: Duration::from_secs(60 * MINUTE),
            flap_by_rule: BTreeMap::new(),
            carrier_report_after: Duration::ZERO,
        }
    }
}

impl TicketPolicy {
    /// Checks the policy after parsing; `prefix` is where it sits in the config file (`tickets`).
    /// Zero periods are rejected: a zero progress interval or ack timeout would make a timer due
    /// again the moment it fired.
    pub fn validate(&self, source: &ConfigSource, prefix: &str) -> Result<(), ConfigError> {
        let field = |name: &str| {
            if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            }
        };
        let periods = [
            ("ack_timeout", self.ack_timeout),
            ("progress_interval", self.progress_interval),
        ];
        for (name, period) in periods {
            if period.is_zero() {
                return Err(source.error(&field(name), "must be longer than zero"));
            }
        }
        for (name, sla) in [
            ("p1", self.p1),
            ("p2", self.p2),
            ("p3", self.p3),
            ("p4", self.p4),
        ] {
            if sla.respond.is_zero() || sla.resolve < sla.respond {
                return Err(source.error(
                    &field(name),
                    "respond must be longer than zero and resolve at least as long as respond",
                ));
            }
        }
        Ok(())
    }

    /// How long after its last (re-)open an unacknowledged ticket tagged `tag` escalates to
    /// on-call `level` (0 is paged at the (re-)open): the `after` of level `level + 1` of the tag's
    /// escalation policy, else `level` ack timeouts up to `max_escalation_level`. `None`: there is
    /// no such level, so escalation ends before it.
    pub fn escalation_offset(&self, tag: Option<Owner>, level: u32) -> Option<Duration> {
        match self.escalation.get(&tag) {
            Some(levels) => levels.get(usize::try_from(level).ok()?).copied(),
            None => {
                (level <= self.max_escalation_level).then(|| self.ack_timeout.saturating_mul(level))
            }
        }
    }

    /// Flap detection for tickets of `rule`.
    pub fn flap_for(&self, rule: &str) -> FlapPolicy {
        self.flap_by_rule.get(rule).copied().unwrap_or(FlapPolicy {
            threshold: self.flap_threshold,
            window: self.flap_window,
        })
    }

    /// The SLA of a severity.
    pub fn sla(&self, severity: Severity) -> Sla {
        match severity {
            Severity::P1 => self.p1,
            Severity::P2 => self.p2,
            Severity::P3 => self.p3,
            Severity::P4 => self.p4,
        }
    }
}
