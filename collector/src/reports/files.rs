//! Making a report's files (store → report → **files**): shared by the `report` command and the
//! scheduled report mail.

use crate::store::Location;
use faultline_incidents::{Inventory, Millis};
use faultline_report::{Period, capacity, csv, html, load};
use jiff::tz::TimeZone;

/// A report's HTML page and CSV.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    /// File name stem: `faultline-report-2026-11` (with `-<department>` for one department).
    pub stem: String,
    /// Plain-text headline figures (the mail's text alternative).
    pub summary: String,
    /// The HTML page.
    pub html: String,
    /// The CSV.
    pub csv: String,
}

/// The report of `period` (for `department`, or all) from the ticket store, opened read only,
/// with times shown in `zone`, made at `now_ms`.
pub fn make(
    location: &Location,
    inventory: &Inventory,
    period: &Period,
    department: Option<&str>,
    zone: &TimeZone,
    now_ms: Millis,
) -> anyhow::Result<ReportFiles> {
    let store = location.open_read_only()?;
    let at = location.describe();
    // The pools' state as of the period's end (or now, for a period still running).
    let as_of = period.end_ms.min(now_ms);
    let history = store
        .capacity_history(capacity::history_since(inventory, as_of))
        .map_err(|e| anyhow::anyhow!("{at}: capacity history: {e}"))?;
    let pools = capacity::rows(inventory, history, as_of);
    let report = load::build(&*store, inventory, period, department, pools, now_ms)?;
    let o = &report.overall;
    let summary = format!(
        "Faultline management report {} ({}): {} tickets, MTTA {} min, MTTR {} min, SLA compliance {} %.",
        report.period,
        department.unwrap_or("all departments"),
        o.tickets,
        faultline_report::minutes(o.mtta_ms()),
        faultline_report::minutes(o.mttr_ms()),
        faultline_report::percent(o.sla_percent()),
    );
    let stem = match department {
        Some(d) => format!("faultline-report-{}-{d}", report.period),
        None => format!("faultline-report-{}", report.period),
    };
    Ok(ReportFiles {
        stem,
        summary,
        html: html::render(&report, zone)?,
        csv: csv::to_csv(&report)?,
    })
}
