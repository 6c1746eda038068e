//! Faultline's incident core: the pure, synchronous heart of the collector's
//! `rules → incidents → notifications` stages.
//!
//! Flow: the collector's ingest hands every accepted [`faultline_wire::Sample`] to the rule
//! [`eval::Evaluator`], which emits firing / resolved [`eval::RuleEvent`]s in the samples' own time.
//! A firing event is attributed ([`attribution::attribute`]) against the [`inventory::Inventory`]
//! and the active incidents: a root opens a [`ticket::Ticket`], a symptom joins its root's ticket and
//! never pages. Tickets then move only through [`ticket::Ticket::apply`], whose events feed the
//! notifiers; [`ticket::Ticket::due_timers`] tells the collector which SLA, escalation, progress and
//! call-back timers are due, and [`followup::plan`] which customer follow-ups. [`store`] persists
//! tickets, timelines and follow-up tasks in SQLite.
//!
//! Nothing here owns a task, a socket or a clock: time is always passed in as milliseconds since the
//! Unix epoch, so every behaviour is covered by table tests.

pub mod attribution;
pub mod capacity;
pub mod carrier;
pub mod circuits;
pub mod counter;
pub mod desk;
pub mod dispatch;
pub mod eval;
pub mod followup;
pub mod inventory;
pub mod maintenance;
pub mod matcher;
pub mod oncall;
pub mod report_link;
pub mod rules;
pub mod ruletest;
pub mod settle;
pub mod store;
pub mod template;
pub mod ticket;

pub use attribution::{Attribution, Evidence, KnownIncident, NewIncident, Role, attribute};
pub use eval::{Evaluator, Firing, Resolved, RuleEvent};
pub use inventory::{Inventory, Owner};
pub use rules::{Rule, RuleSet, Severity};
pub use store::{
    CapacityHistory, Fed, FeedItem, FeedPosition, ListWindow, PgStore, ReportLedger, RuleMemory,
    SqliteStore, Store, StoreError, TicketStore,
};
pub use ticket::{
    Change, Channel, Command, NewTicket, Ticket, TicketError, TicketPolicy, TicketState,
    TimelineEntry, Timer,
};

/// Milliseconds since the Unix epoch: the only notion of time in this crate.
pub type Millis = i64;

/// Converts a configured duration to milliseconds, saturating at `i64::MAX`.
pub(crate) fn duration_ms(d: std::time::Duration) -> Millis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `YYYY-MM-DD HH:MM:SS UTC` for reasons and messages humans read (jiff, the one time crate);
/// a time outside jiff's range (±9999 years) shows as the nearest end of it.
pub fn format_time(ms: Millis) -> String {
    let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// RFC 3339 (UTC, millisecond precision when there is a fraction) of a time, for APIs that give
/// it next to the epoch milliseconds; `None` outside jiff's range.
pub fn rfc3339(ms: Millis) -> Option<String> {
    jiff::Timestamp::from_millisecond(ms)
        .ok()
        .map(|at| at.to_string())
}

/// A time given as RFC 3339 (`2026-11-28T07:22:18Z`) or as epoch milliseconds, as API filters
/// take it; `None` when it is neither.
pub fn parse_time(text: &str) -> Option<Millis> {
    text.parse::<Millis>().ok().or_else(|| {
        text.parse::<jiff::Timestamp>()
            .ok()
            .map(|at| at.as_millisecond())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_time_table() {
        assert_eq!(super::parse_time("1000"), Some(1000));
        assert_eq!(
            super::parse_time("2026-11-28T07:22:18.5Z"),
            Some(1_795_850_538_500)
        );
        assert_eq!(
            super::parse_time("2026-11-28T15:22:18+08:00"),
            Some(1_795_850_538_000)
        );
        assert_eq!(super::parse_time("yesterday"), None);
    }

    #[test]
    fn rfc3339_table() {
        assert_eq!(super::rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            super::rfc3339(1_795_850_538_500).as_deref(),
            Some("2026-11-28T07:22:18.5Z")
        );
        assert_eq!(super::rfc3339(i64::MAX), None);
    }

    #[test]
    fn format_time_table() {
        let cases = [
            (0, "1970-01-01 00:00:00 UTC"),
            (951_782_400_000, "2000-02-29 00:00:00 UTC"),
            (1_795_850_538_999, "2026-11-28 07:22:18 UTC"),
            (-1_000, "1969-12-31 23:59:59 UTC"),
            (i64::MAX, "9999-12-30 22:00:00 UTC"),
        ];
        for (ms, want) in cases {
            assert_eq!(super::format_time(ms), want, "{ms}");
        }
    }
}
