//! Management reports at the collector's edge (tickets store → report → **files / e-mail**): the
//! `report` command writes a period's HTML and CSV files ([`write_files`]); with `[reports]` the
//! scheduler task ([`start`]) mails the report of each month or ISO week once, soon after it ends.
//! Whether a report is due is the pure [`faultline_report::due`]; the last period sent is kept in
//! the ticket store, so a restart neither skips nor repeats one.

pub mod config;
mod files;

use crate::config::CollectorConfig;
use crate::store::Location;
use anyhow::Context;
use faultline_daemon::reload::Live;
use faultline_incidents::{Inventory, Millis};
use faultline_notify::channel::email::EmailConfig;
use faultline_notify::report_mail::{self, ReportMail};
use faultline_report::{Period, Schedule};
use jiff::tz::TimeZone;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use config::ReportsConfig;
pub use files::{ReportFiles, make};

/// How often the scheduler looks whether a report is due (and retries a failed send).
const CHECK_EVERY: Duration = Duration::from_secs(60);

/// Timeout of each SMTP command.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The time zone reports are counted in: `[reports] time_zone`, else `api.time_zone`, else UTC.
pub fn time_zone(config: &CollectorConfig) -> anyhow::Result<TimeZone> {
    let name = (config.reports.as_ref())
        .and_then(|r| r.time_zone.as_deref())
        .or(config.api.time_zone.as_deref());
    config::zone(name).map_err(anyhow::Error::msg)
}

/// `faultline-collector report`: writes the report of `period` (for `department`, or all) from
/// the ticket store of `config_file`, read only, into `out` as `<stem>.html` and `<stem>.csv`;
/// returns the two paths. Errors name the option or config field at fault.
pub fn write_files(
    config_file: &Path,
    period: &str,
    department: Option<&str>,
    out: &Path,
) -> anyhow::Result<[PathBuf; 2]> {
    let config = crate::config::load(config_file)?;
    let zone = time_zone(&config)?;
    let period = Period::parse(period, &zone).map_err(|e| anyhow::anyhow!("--period: {e}"))?;
    let incidents = config.incidents.as_ref().with_context(|| {
        format!(
            "{}: no [incidents] section: there are no tickets to report on",
            config_file.display()
        )
    })?;
    let setup = crate::incidents::Setup::load(incidents)?;
    let inventory = setup.inventory();
    if let Some(d) = department
        && inventory.department(d).is_none()
    {
        anyhow::bail!("--department: \"{d}\" is not a department of the inventory");
    }
    let location = Location::resolve(&config.store, incidents, &config.storage)?;
    let files = make(
        &location,
        &inventory,
        &period,
        department,
        &zone,
        faultline_wire::now_ms(),
    )?;
    std::fs::create_dir_all(out).with_context(|| format!("--out {}", out.display()))?;
    let html = out.join(format!("{}.html", files.stem));
    let csv = out.join(format!("{}.csv", files.stem));
    for (path, text) in [(&html, &files.html), (&csv, &files.csv)] {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok([html, csv])
}

/// What the scheduler works with.
struct Scheduler {
    schedule: Schedule,
    to: Vec<String>,
    zone: TimeZone,
    email: EmailConfig,
    store: Location,
    inventory: Live<Inventory>,
}

/// The schedule's name in the store (`monthly`, `weekly`).
fn schedule_name(schedule: Schedule) -> &'static str {
    match schedule {
        Schedule::Monthly => "monthly",
        Schedule::Weekly => "weekly",
    }
}

impl Scheduler {
    /// Sends the report that is due at `now_ms`, if any, and records it; returns the period sent.
    async fn tick(&self, now_ms: Millis) -> anyhow::Result<Option<String>> {
        let name = schedule_name(self.schedule);
        let store = self.store.clone();
        let last = tokio::task::spawn_blocking(move || {
            anyhow::Ok(store.open_read_only()?.report_sent(name)?)
        })
        .await??;
        let Some(period) =
            faultline_report::due(self.schedule, last.as_deref(), now_ms, &self.zone)
        else {
            return Ok(None);
        };
        let (store, inventory, zone) =
            (self.store.clone(), self.inventory.get(), self.zone.clone());
        let label = period.label.clone();
        let files = tokio::task::spawn_blocking(move || {
            make(&store, &inventory, &period, None, &zone, now_ms)
        })
        .await??;
        let mail = ReportMail {
            to: self.to.clone(),
            subject: format!("Faultline management report {label}"),
            text: files.summary,
            html: files.html,
            csv_name: format!("{}.csv", files.stem),
            csv: files.csv,
            message_id: format!("<report.{name}.{label}@faultline>"),
        };
        report_mail::send(&self.email, &mail, SMTP_TIMEOUT)
            .await
            .map_err(anyhow::Error::msg)?;
        let store = self.store.clone();
        let sent = label.clone();
        tokio::task::spawn_blocking(move || {
            anyhow::Ok(store.open()?.record_report_sent(name, &sent, now_ms)?)
        })
        .await??;
        Ok(Some(label))
    }
}

/// Starts the scheduler of `[reports]` on the ticket store `store`, with the live inventory;
/// `None` without `[reports]`. Checks every minute; a failed send is retried at the next check.
pub fn start(
    config: &CollectorConfig,
    store: Location,
    inventory: Live<Inventory>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(reports) = &config.reports else {
        return Ok(None);
    };
    let email = reports
        .email(&config.notify)
        .with_context(|| format!("reports.channel `{}`", reports.channel))?
        .clone();
    let scheduler = Scheduler {
        schedule: reports.schedule,
        to: reports.to.clone(),
        zone: time_zone(config)?,
        email,
        store,
        inventory,
    };
    Ok(Some(tokio::spawn(async move {
        let (mut failing, mut first) = (false, true);
        loop {
            match scheduler.tick(faultline_wire::now_ms()).await {
                Ok(Some(period)) => {
                    failing = false;
                    tracing::info!(period, to = ?scheduler.to, "management report sent");
                }
                Ok(None) => {
                    failing = false;
                    if first {
                        tracing::info!("no management report due");
                    }
                }
                // Logged once per run of failures, not every minute.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "management report not sent; retrying every minute");
                }
                Err(_) => {}
            }
            first = false;
            tokio::time::sleep(CHECK_EVERY).await;
        }
    })))
}
