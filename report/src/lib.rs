//! Faultline's management reports (store → **report** → files and e-mail): the tickets of a month
//! or ISO week ([`period`]), reduced to plain rows ([`row`]), aggregated into figures overall and
//! per department ([`figures`], pure), read from the ticket store a page at a time ([`load`]),
//! with the capacity pools' state ([`capacity`]), and written as a self-contained HTML page with
//! SVG charts ([`html`]) and as CSV ([`csv`]).
//! The collector's `report` subcommand and its scheduled report mail are the shells around it.

pub mod capacity;
pub mod csv;
pub mod figures;
pub mod html;
pub mod load;
pub mod period;
pub mod row;

pub use figures::{Builder, CapacityRow, Report};
pub use period::{Period, PeriodError, Schedule, due};
pub use row::ReportTicket;

/// Milliseconds as minutes with one decimal (`90000` → `1.5`); empty for `None`.
pub fn minutes(ms: Option<i64>) -> String {
    ms.map(|ms| format!("{:.1}", ms as f64 / 60_000.0))
        .unwrap_or_default()
}

/// A percentage with one decimal (`83.333` → `83.3`); empty for `None`.
pub fn percent(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.1}")).unwrap_or_default()
}
