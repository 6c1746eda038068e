//! The report as one self-contained HTML page (figures → **HTML**): inline CSS, horizontal bar
//! charts as inline SVG, no scripts and no external assets, so it opens from a mail attachment
//! or a file share. Rendered with a minijinja template (`templates/report.html`, auto-escaped);
//! chart geometry is computed here ([`bar_chart`]). Labels are English; zh-CN is planned
//! (the console's catalogue approach).

use crate::figures::{Report, Totals};
use crate::{minutes, percent};
use faultline_incidents::Millis;
use jiff::tz::TimeZone;
use minijinja::{Environment, context};
use serde::Serialize;

const TEMPLATE: &str = include_str!("../templates/report.html");

/// Width of a chart's bar area in SVG units.
const BAR_AREA: f64 = 360.0;
/// Height of one bar row in SVG units.
const ROW: u32 = 22;

/// A failure rendering the page (a template error: a bug, not bad input).
pub type Error = minijinja::Error;

/// One bar of a chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    /// What it counts.
    pub label: String,
    /// The count.
    pub value: u64,
    /// Top edge (SVG units).
    pub y: u32,
    /// Length (SVG units), proportional to the largest bar's value.
    pub width: f64,
}

/// A horizontal bar chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// Total height (SVG units).
    pub height: u32,
    /// The bars, in the given order.
    pub bars: Vec<Bar>,
}

/// A chart of `items`, bar lengths proportional to the largest value (all zero: no length).
pub fn bar_chart<'a>(title: &str, items: impl IntoIterator<Item = (&'a String, &'a u64)>) -> Chart {
    let items: Vec<(&String, u64)> = items.into_iter().map(|(l, v)| (l, *v)).collect();
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
    let bars: Vec<Bar> = (0u32..)
        .zip(&items)
        .map(|(i, (label, value))| Bar {
            label: (*label).clone(),
            value: *value,
            y: i * ROW,
            width: (*value as f64 / max * BAR_AREA).round(),
        })
        .collect();
    Chart {
        title: title.to_string(),
        height: u32::try_from(bars.len()).unwrap_or(0) * ROW,
        bars,
    }
}

#[derive(Serialize)]
struct TotalsView {
    name: String,
    tickets: u64,
    mtta: String,
    mttr: String,
    sla: String,
    respond_breached: u64,
    resolve_breached: u64,
}

fn totals_view(name: &str, t: &Totals) -> TotalsView {
    TotalsView {
        name: name.to_string(),
        tickets: t.tickets,
        mtta: minutes(t.mtta_ms()),
        mttr: minutes(t.mttr_ms()),
        sla: percent(t.sla_percent()),
        respond_breached: t.respond_breached,
        resolve_breached: t.resolve_breached,
    }
}

fn time(ms: Millis, zone: &TimeZone) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| zone.to_datetime(t).strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// The page of `report`, times shown in `zone`.
pub fn render(report: &Report, zone: &TimeZone) -> Result<String, Error> {
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)?;
    let o = &report.overall;
    let charts = [
        bar_chart("Tickets by responsibility tag", &o.by_tag),
        bar_chart("Tickets by severity", &o.by_severity),
        bar_chart("Tickets by channel", &o.by_channel),
        bar_chart("Security-device tickets by role", &report.security),
    ];
    let departments: Vec<TotalsView> = report
        .departments
        .iter()
        .filter(|_| report.department.is_none())
        .map(|(name, t)| totals_view(name, t))
        .collect();
    let longest: Vec<_> = report
        .longest
        .iter()
        .map(|i| {
            context! { id => i.id, summary => i.summary, target => i.target, tag => i.tag,
            severity => i.severity.to_string(), minutes => minutes(Some(i.duration_ms)),
            ongoing => i.ongoing }
        })
        .collect();
    let circuits: Vec<_> = report
        .circuits
        .iter()
        .map(|(id, c)| {
            context! { id, tickets => c.tickets, outage => minutes(Some(c.outage_ms)),
            response => minutes(c.mean_response_ms()) }
        })
        .collect();
    let followups: Vec<_> = report
        .followups
        .iter()
        .map(|(line, c)| {
            context! { kind => line.label(), due => c.due, done => c.done,
            percent => percent(c.percent()) }
        })
        .collect();
    let capacity: Vec<_> = report
        .capacity
        .iter()
        .map(|p| {
            context! { pool => p.pool, used => percent(Some(p.ratio * 100.0)),
            days => p.days_to_full.map(|d| format!("{d:.1}")).unwrap_or_default() }
        })
        .collect();
    env.get_template("report.html")?.render(context! {
        period => report.period,
        scope => report.department.as_deref().unwrap_or("all departments"),
        zone => zone.iana_name().unwrap_or("UTC"),
        start => time(report.start_ms, zone),
        end => time(report.end_ms, zone),
        as_of => time(report.as_of_ms, zone),
        overall => totals_view("all", o),
        charts,
        bar_area => BAR_AREA,
        departments,
        longest,
        circuits,
        followups,
        capacity,
    })
}
