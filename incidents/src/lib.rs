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
pub use store::{Fed, FeedItem, FeedPosition, SqliteStore, StoreError, TicketStore};
pub use ticket::{
    Change, Command, NewTicket, Ticket, TicketError, TicketPolicy, TicketState, TimelineEntry,
    Timer,
};

/// Milliseconds since the Unix epoch: the only notion of time in this crate.
pub type Millis = i64;

/// Converts a configured duration to milliseconds, saturating at `i64::MAX`.
pub(crate) fn duration_ms(d: std::time::Duration) -> Millis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `YYYY-MM-DD HH:MM:SS UTC` for reasons and messages humans read.
pub fn format_time(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian), after H. Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn format_time_table() {
        let cases = [
            (0, "1970-01-01 00:00:00 UTC"),
            (951_782_400_000, "2000-02-29 00:00:00 UTC"),
            (1_795_850_538_999, "2026-11-28 07:22:18 UTC"),
            (-1_000, "1969-12-31 23:59:59 UTC"),
        ];
        for (ms, want) in cases {
            assert_eq!(super::format_time(ms), want, "{ms}");
        }
    }
}
