//! Making a report's files (store → report → **files**): shared by the `report` command and the
//! scheduled report mail.

use faultline_incidents::{Inventory, Millis, SqliteStore};
use faultline_report::{Period, capacity, csv, html, load};
use jiff::tz::TimeZone;
use std::path::Path;

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

/// The report of `period` (for `department`, or all) from the store file `database`, opened read
/// only, with times shown in `zone`, made at `now_ms`.
pub fn make(
    database: &Path,
    inventory: &Inventory,
    period: &Period,
    department: Option<&str>,
    zone: &TimeZone,
    now_ms: Millis,
) -> anyhow::Result<ReportFiles> {
    let store = SqliteStore::open_read_only(database)
        .map_err(|e| anyhow::anyhow!("{}: {e}", database.display()))?;
    // The pools' state as of the period's end (or now, for a period still running).
    let as_of = period.end_ms.min(now_ms);
    let history = store
        .capacity_history(capacity::history_since(inventory, as_of))
        .map_err(|e| anyhow::anyhow!("{}: capacity history: {e}", database.display()))?;
    let pools = capacity::rows(inventory, history, as_of);
    let report = load::build(&store, inventory, period, department, pools, now_ms)?;
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
