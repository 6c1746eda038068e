//! The report as CSV (figures → **CSV**): one figure per row, `section,department,item,value`,
//! so a spreadsheet can pivot it and a test can read any number back. `department` is `all` for
//! the overall figures (or the one department reported on); durations are in minutes with one
//! decimal, shares in percent with one decimal, empty when there is nothing to average.

use crate::figures::{Report, Totals};
use crate::{minutes, percent};

/// The header row.
pub const HEADER: [&str; 4] = ["section", "department", "item", "value"];

/// A failure writing CSV (only the underlying writer can fail).
pub type Error = csv::Error;

fn totals(rows: &mut Vec<[String; 4]>, department: &str, t: &Totals) {
    let mut row = |section: &str, item: &str, value: String| {
        rows.push([section.into(), department.into(), item.into(), value]);
    };
    row("tickets", "", t.tickets.to_string());
    for (section, counts) in [
        ("tag", &t.by_tag),
        ("severity", &t.by_severity),
        ("channel", &t.by_channel),
    ] {
        for (item, n) in counts {
            row(section, item, n.to_string());
        }
    }
    row("mtta_minutes", "", minutes(t.mtta_ms()));
    row("mttr_minutes", "", minutes(t.mttr_ms()));
    row("sla_compliance_percent", "", percent(t.sla_percent()));
    row("respond_breached", "", t.respond_breached.to_string());
    row("resolve_breached", "", t.resolve_breached.to_string());
}

/// The rows of `report`, header excluded.
pub fn rows(report: &Report) -> Vec<[String; 4]> {
    let scope = report.department.as_deref().unwrap_or("all");
    let mut rows = Vec::new();
    totals(&mut rows, scope, &report.overall);
    if report.department.is_none() {
        for (department, t) in &report.departments {
            totals(&mut rows, department, t);
        }
    }
    let mut row = |section: &str, item: String, value: String| {
        rows.push([section.into(), scope.into(), item, value]);
    };
    for i in &report.longest {
        let ongoing = if i.ongoing { " (ongoing)" } else { "" };
        let item = format!("#{} {} {}{ongoing}", i.id, i.target, i.tag);
        row("longest_minutes", item, minutes(Some(i.duration_ms)));
    }
    for (circuit, c) in &report.circuits {
        row("circuit_tickets", circuit.clone(), c.tickets.to_string());
        row(
            "circuit_outage_minutes",
            circuit.clone(),
            minutes(Some(c.outage_ms)),
        );
        row(
            "circuit_first_response_minutes",
            circuit.clone(),
            minutes(c.mean_response_ms()),
        );
    }
    for (role, n) in &report.security {
        row("security_device_tickets", role.clone(), n.to_string());
    }
    for (line, c) in &report.followups {
        row("followup_due", line.label(), c.due.to_string());
        row("followup_done", line.label(), c.done.to_string());
        row("followup_done_percent", line.label(), percent(c.percent()));
    }
    for pool in &report.capacity {
        row(
            "capacity_used_percent",
            pool.pool.clone(),
            percent(Some(pool.ratio * 100.0)),
        );
        row(
            "capacity_days_to_full",
            pool.pool.clone(),
            pool.days_to_full
                .map(|d| format!("{d:.1}"))
                .unwrap_or_default(),
        );
    }
    rows
}

/// The report as CSV text.
pub fn to_csv(report: &Report) -> Result<String, Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(HEADER)?;
    for row in rows(report) {
        writer.write_record(&row)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
