//! Capacity decisions (history → forecast → **decision** → planning ticket): a pool's state now
//! (usage, ratio, forecast), whether it needs planning and at which level, and the planning
//! ticket that says so — naming the pool, the ratio, the forecast date and the largest consumers.
//!
//! Levels, most urgent first: **expand** (usage ratio at or past `expand_ratio`), **forecast**
//! (the fitted line reaches the capacity within `full_within_days`), **plan** (ratio at or past
//! `plan_ratio`). A planning ticket is P4, tagged platform, from channel `monitoring`, and never
//! pages ([`NewTicket::pages`] is false).

use super::forecast::{Fit, theil_sen};
use super::history::{DAY_MS, History, HourBucket, hour_of};
use super::pool::Pool;
use crate::inventory::{Inventory, Owner};
use crate::rules::Severity;
use crate::ticket::{Channel, NewTicket, SYSTEM};
use crate::{Millis, duration_ms, format_time};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Rule name of planning tickets (with target `pool:<id>`, their fingerprint).
pub const CAPACITY_RULE: &str = "CapacityPlanning";
/// Fewest hourly points a forecast is made from: a day of history.
pub const MIN_FORECAST_POINTS: usize = 24;
/// Consumers a planning ticket lists.
pub const LISTED_CONSUMERS: usize = 5;

/// How urgently a pool needs planning; ordered from least to most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Usage past the plan line.
    Plan,
    /// The forecast reaches the capacity within `full_within_days`.
    Forecast,
    /// Usage past the expand line.
    Expand,
}

impl Level {
    /// Name used in tickets and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Plan => "plan",
            Level::Forecast => "forecast",
            Level::Expand => "expand",
        }
    }
}

/// A pool's state at one evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolState {
    /// Current usage (the members' latest values, summed), in the pool's unit.
    pub used: f64,
    /// `used / capacity`.
    pub ratio: f64,
    /// The line fitted to the forecast window, with enough history.
    pub fit: Option<Fit>,
    /// Days until the fitted line reaches the capacity (0: there already); `None` when it does
    /// not grow or there is no fit.
    pub days_to_full: Option<f64>,
}

/// The fit of `pool`'s hourly means over its forecast window ending at `now`; `None` with fewer
/// than [`MIN_FORECAST_POINTS`] hours.
pub fn fit(pool: &Pool, history: &History, now: Millis) -> Option<Fit> {
    let since = hour_of(now.saturating_sub(duration_ms(pool.forecast_window)));
    let points: Vec<(Millis, f64)> = history.since(since).map(HourBucket::point).collect();
    if points.len() < MIN_FORECAST_POINTS {
        return None;
    }
    theil_sen(&points)
}

/// The state of `pool` using `used` now, with the forecast line `fit`.
pub fn state(pool: &Pool, used: f64, fit: Option<Fit>, now: Millis) -> PoolState {
    PoolState {
        used,
        ratio: used / pool.capacity,
        fit,
        days_to_full: fit.and_then(|f| f.days_to_full(pool.capacity, now)),
    }
}

/// What a pool needs: the level, and the figures that put it there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanningNeed {
    /// How urgent.
    pub level: Level,
    /// Usage ratio now.
    pub ratio: f64,
    /// Days until full by the forecast, if it grows.
    pub days_to_full: Option<f64>,
}

impl PlanningNeed {
    /// When the forecast says the pool is full, from `now`.
    pub fn full_at_ms(&self, now: Millis) -> Option<Millis> {
        let days = self.days_to_full?;
        let ms = days * DAY_MS as f64;
        (ms < i64::MAX as f64).then(|| now.saturating_add(ms as Millis))
    }
}

/// Whether `pool` in `state` needs planning, and how urgently.
pub fn decide(pool: &Pool, state: &PoolState) -> Option<PlanningNeed> {
    let forecast_due = state
        .days_to_full
        .is_some_and(|d| d <= pool.full_within_days);
    let level = if state.ratio >= pool.expand_ratio {
        Level::Expand
    } else if forecast_due {
        Level::Forecast
    } else if state.ratio >= pool.plan_ratio {
        Level::Plan
    } else {
        return None;
    };
    Some(PlanningNeed {
        level,
        ratio: state.ratio,
        days_to_full: state.days_to_full,
    })
}

/// A member of a pool with what it uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    /// The member target.
    pub target: String,
    /// Its customer department, if it has one.
    pub department: Option<String>,
    /// Its usage (its latest values of the pool's metric, summed).
    pub used: f64,
}

/// The members with the largest usage, largest first (ties by id), at most `n`.
pub fn largest_consumers(
    inventory: &Inventory,
    by_member: &BTreeMap<String, f64>,
    n: usize,
) -> Vec<Consumer> {
    let mut all: Vec<(&String, f64)> = by_member.iter().map(|(t, u)| (t, *u)).collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    all.into_iter()
        .take(n)
        .map(|(target, used)| Consumer {
            target: target.clone(),
            department: inventory.department_of(target).map(|d| d.id.clone()),
            used,
        })
        .collect()
}

fn percent(ratio: f64) -> String {
    format!("{:.1} %", ratio * 100.0)
}

/// The planning ticket for `pool` with `need` at `now`: P4, platform, channel monitoring, not
/// paging; the description lists the largest `consumers` and, where shares are declared, each
/// department's usage against its share (from `by_department`).
pub fn planning_ticket(
    pool: &Pool,
    need: &PlanningNeed,
    consumers: &[Consumer],
    by_department: &BTreeMap<String, f64>,
    now: Millis,
) -> NewTicket {
    let full_at = need.full_at_ms(now);
    let forecast = match full_at {
        Some(at) => format!("full by {}", &format_time(at)[..10]),
        None => "not growing".to_string(),
    };
    let summary = format!(
        "Capacity {}: {} pool {} at {} ({forecast})",
        need.level.as_str(),
        pool.kind,
        pool.id,
        percent(need.ratio),
    );
    let reason = match need.level {
        Level::Expand => format!("usage past the expand line {}", percent(pool.expand_ratio)),
        Level::Forecast => format!(
            "forecast full within {} days (line: {} days)",
            need.days_to_full.map_or(0.0, f64::ceil),
            pool.full_within_days
        ),
        Level::Plan => format!("usage past the plan line {}", percent(pool.plan_ratio)),
    };
    let unit = if pool.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", pool.unit)
    };
    let mut description = format!(
        "Pool {} ({}): {} of {}{unit} used ({}); {reason}. Forecast: {forecast}",
        pool.id,
        pool.kind,
        need.ratio * pool.capacity,
        pool.capacity,
        percent(need.ratio),
    );
    if let Some(days) = need.days_to_full {
        let _ = write!(description, " (in {days:.0} days)");
    }
    description.push_str(".\nLargest consumers:");
    for c in consumers {
        let _ = write!(
            description,
            "\n- {} ({}): {}{unit}, {} of the pool",
            c.target,
            c.department.as_deref().unwrap_or("platform"),
            c.used,
            percent(c.used / pool.capacity),
        );
    }
    for (department, share) in &pool.shares {
        let used = by_department.get(department).copied().unwrap_or(0.0);
        let _ = write!(
            description,
            "\nDepartment {department}: {} of the pool, share {}",
            percent(used / pool.capacity),
            percent(*share),
        );
    }
    NewTicket {
        rule: CAPACITY_RULE.to_string(),
        target: pool.ticket_target(),
        summary,
        description,
        severity: Severity::P4,
        tag: Some(Owner::Platform),
        reason: format!("capacity planning: {reason}"),
        evidence: None,
        customers: Vec::new(),
        started_at_ms: now,
        opened_by: SYSTEM.to_string(),
        channel: Channel::Monitoring,
        pages: false,
        reporter: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::pool::PoolKind;
    use faultline_wire::config_file::ConfigSource;
    use std::path::Path;

    fn pool() -> Pool {
        Pool {
            unit: "GB".into(),
            shares: [("finance".to_string(), 0.3)].into(),
            ..Pool::new(
                "san-a",
                PoolKind::Storage,
                1000.0,
                "storage_used_bytes",
                &["vm-1", "vm-2"],
            )
        }
    }

    fn grows(per_day: f64, level: f64) -> Option<Fit> {
        Some(Fit {
            slope_per_ms: per_day / DAY_MS as f64,
            level,
            origin_ms: 0,
        })
    }

    #[test]
    fn decide_table() {
        // (used, fit, level)
        let cases = [
            (100.0, None, None),
            (699.9, None, None),
            (700.0, None, Some(Level::Plan)),
            (849.0, None, Some(Level::Plan)),
            (850.0, None, Some(Level::Expand)),
            (1200.0, None, Some(Level::Expand)),
            // 500 left at 10 a day: 50 days, within 90.
            (500.0, grows(10.0, 500.0), Some(Level::Forecast)),
            // 500 left at 5 a day: 100 days, not within 90.
            (500.0, grows(5.0, 500.0), None),
            (750.0, grows(5.0, 500.0), Some(Level::Plan)),
            (750.0, grows(10.0, 500.0), Some(Level::Forecast)),
            (900.0, grows(10.0, 900.0), Some(Level::Expand)),
            // Shrinking: no forecast.
            (500.0, grows(-10.0, 500.0), None),
        ];
        for (used, fit, want) in cases {
            let s = state(&pool(), used, fit, 0);
            assert_eq!(decide(&pool(), &s).map(|n| n.level), want, "{used} {fit:?}");
        }
    }

    #[test]
    fn a_fit_needs_a_day_of_history_within_the_window() {
        let mut history = History::default();
        let now = 40 * DAY_MS;
        // 23 hours just inside the window (22 finished and the current one): too few.
        let start = now - 30 * DAY_MS;
        for h in 0..23 {
            history.record(start + h * 3_600_000, h as f64);
        }
        assert_eq!(fit(&pool(), &history, now), None, "23 hours");
        history.record(start + 23 * 3_600_000, 23.0);
        let got = fit(&pool(), &history, now).unwrap();
        assert!((got.slope_per_day() - 24.0).abs() < 1e-6, "{got:?}");
        // Older history is outside the window.
        assert_eq!(fit(&pool(), &history, now + 30 * DAY_MS), None);
    }

    #[test]
    fn largest_consumers_are_ordered_with_departments() {
        let inventory = Inventory::load(&ConfigSource::from_text(
            Path::new("inv.toml"),
            "[[departments]]\nid = \"finance\"\n\n[[targets]]\nid = \"vm-1\"\nkind = \"vm\"\nowner = \"customer\"\ndepartment = \"finance\"\n\n[[targets]]\nid = \"host-1\"\nkind = \"host\"\nowner = \"platform\"\n".into(),
        ))
        .unwrap();
        let usage: BTreeMap<String, f64> = [
            ("host-1".to_string(), 10.0),
            ("vm-1".to_string(), 30.0),
            ("vm-9".to_string(), 10.0),
        ]
        .into();
        let got: Vec<(String, Option<String>, f64)> = largest_consumers(&inventory, &usage, 2)
            .into_iter()
            .map(|c| (c.target, c.department, c.used))
            .collect();
        assert_eq!(
            got,
            [
                ("vm-1".into(), Some("finance".into()), 30.0),
                ("host-1".into(), None, 10.0)
            ]
        );
    }

    #[test]
    fn the_planning_ticket_names_pool_ratio_forecast_and_consumers_and_does_not_page() {
        let need = PlanningNeed {
            level: Level::Expand,
            ratio: 0.875,
            days_to_full: Some(12.4),
        };
        let consumers = [Consumer {
            target: "vm-1".into(),
            department: Some("finance".into()),
            used: 600.0,
        }];
        let by_department = [("finance".to_string(), 600.0)].into();
        // 2026-12-01 00:00 UTC.
        let now = 1_796_083_200_000;
        let t = planning_ticket(&pool(), &need, &consumers, &by_department, now);
        assert_eq!(
            t.summary,
            "Capacity expand: storage pool san-a at 87.5 % (full by 2026-12-13)"
        );
        assert_eq!(
            (t.rule.as_str(), t.target.as_str()),
            (CAPACITY_RULE, "pool:san-a")
        );
        assert_eq!(
            (t.severity, t.tag, t.channel, t.pages),
            (
                Severity::P4,
                Some(Owner::Platform),
                Channel::Monitoring,
                false
            )
        );
        assert!(t.customers.is_empty(), "no customer updates");
        for part in [
            "875 of 1000 GB used (87.5 %)",
            "past the expand line 85.0 %",
            "(in 12 days)",
            "- vm-1 (finance): 600 GB, 60.0 % of the pool",
            "Department finance: 60.0 % of the pool, share 30.0 %",
        ] {
            assert!(t.description.contains(part), "{part}: {}", t.description);
        }
        // Opened, it neither escalates nor pages; the same ticket paging would escalate.
        let policy = crate::TicketPolicy::default();
        let (opened, _) = crate::Ticket::open(0, t.clone(), &policy, now);
        assert_eq!(opened.escalate_at_ms, None);
        assert!(!opened.pages_for(&opened.timeline[0].change));
        let paging = NewTicket { pages: true, ..t };
        let (opened, _) = crate::Ticket::open(0, paging, &policy, now);
        assert!(opened.escalate_at_ms.is_some());
        assert!(opened.pages_for(&opened.timeline[0].change));
        let not_growing = PlanningNeed {
            level: Level::Plan,
            ratio: 0.7,
            days_to_full: None,
        };
        let t = planning_ticket(&pool(), &not_growing, &[], &BTreeMap::new(), now);
        assert!(
            t.summary.ends_with("at 70.0 % (not growing)"),
            "{}",
            t.summary
        );
    }
}
