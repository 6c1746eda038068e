//! Maintenance windows: planned works that hold back ticket creation and paging for what they
//! cover (rules → **incidents** → notifications: screens the desk's actions before a ticket is
//! created, and the pages of existing tickets before they are sent).
//!
//! A [`Window`] is one-off (`start`/`end`) or recurring (`repeat`: on some weekdays at a local
//! time, for a duration), in an IANA time zone, with a reason and who announced it. Its scope is a
//! target, a room, a site (every target in its rooms) or a carrier (every target of that carrier:
//! its announced works). With `dependents = true` (the default) it also covers every target that
//! depends on a covered one: while a carrier splices its fibre, our edge interface and the
//! customer VMs behind it fail as expected, and since the carrier's own incident is held back
//! there is no root ticket for them to join as symptoms.
//!
//! Suppression only stops creation and paging; the API keeps resolutions flowing by construction:
//! - [`Maintenance::screen`] can hold back only [`Action::Open`] (a new ticket). Every
//!   [`Action::Apply`] passes through untouched — condition cleared, symptom cleared, resolve,
//!   link, re-open — so a ticket opened before a window still resolves during it.
//! - [`Maintenance::screen_page`] can hold back only the pages Faultline itself raises
//!   ([`Change::Opened`], [`Change::Reopened`], [`Change::Escalated`],
//!   [`Change::SeverityRaised`] by [`SYSTEM`]); a
//!   resolution, a clearance or anything an engineer does is always sent.
//!
//! Each decision is a [`Suppression`] record (window id, reason, who announced it, the dependency
//! chain that made the target covered); [`Suppression::timeline_command`] turns it into the
//! timeline entry of the ticket concerned. An incident held back at creation is re-evaluated when
//! its window ends ([`Suppression::window_end_ms`], or [`Maintenance::ending_between`] on the
//! collector's tick): if its rule still fires, the desk runs again and the ticket opens then, with
//! the record appended; if it cleared during the window, no ticket is ever opened.
//!
//! ```toml
//! [[windows]]
//! id = "acme-splice"
//! reason = "ACME fibre splicing on the Pudong ring"
//! announced_by = "ACME NOC, change ACME-CHG-7781"
//! scope = { carrier = "ACME Telecom" }    # or { target = "core1" }, { room = "r2" }, { site = "dc1" }
//! time_zone = "Asia/Shanghai"             # default UTC
//! start = "2026-12-01 01:00"              # local, or RFC 3339 with an offset
//! end = "2026-12-01 05:00"
//!
//! [[windows]]
//! id = "patch-tuesday"
//! reason = "firmware updates on the core"
//! announced_by = "platform team"
//! scope = { target = "core1" }
//! dependents = false                      # only core1 itself
//! time_zone = "Europe/Berlin"
//! repeat = { days = ["tue"], at = "02:00", duration = "2h" }   # days omitted: every day;
//!                                         # optional from/until dates bound the recurrence
//! ```

use crate::Millis;
use crate::attribution::Attribution;
use crate::desk::Action;
use crate::inventory::{Inventory, check_id};
use crate::oncall::{LocalDate, TimeOfDay, When, Zone, add_days};
use crate::ticket::{Command, NewTicket, SYSTEM, Ticket, TimelineEntry};
use crate::{duration_ms, format_time};
use faultline_wire::config_file::{ConfigError, ConfigSource};
use jiff::civil::Weekday;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Longest recurring occurrence: a weekly window longer than a week would overlap itself.
const MAX_REPEAT: Duration = Duration::from_secs(7 * 86_400);

/// What a window covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One target.
    Target(String),
    /// Every target in a room.
    Room(String),
    /// Every target in the rooms of a site.
    Site(String),
    /// Every target of a carrier (by the inventory's `carrier` name).
    Carrier(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, name) = self.parts();
        write!(f, "{kind} {name}")
    }
}

impl Scope {
    /// The kind (also the config key) and the name.
    fn parts(&self) -> (&'static str, &str) {
        match self {
            Scope::Target(id) => ("target", id),
            Scope::Room(id) => ("room", id),
            Scope::Site(id) => ("site", id),
            Scope::Carrier(name) => ("carrier", name),
        }
    }

    /// Whether `target` itself is in scope (not through its dependencies).
    fn covers(&self, inventory: &Inventory, target: &str) -> bool {
        let Some(t) = inventory.target(target) else {
            return false;
        };
        match self {
            Scope::Target(id) => t.id == *id,
            Scope::Room(id) => t.room.as_deref() == Some(id.as_str()),
            Scope::Site(id) => t
                .room
                .as_deref()
                .and_then(|r| inventory.room(r))
                .is_some_and(|r| r.site == *id),
            Scope::Carrier(name) => t.carrier.as_deref() == Some(name.as_str()),
        }
    }

    /// The config key and message when the scope names something the inventory does not have
    /// (a carrier is known when some target has it as its `carrier`).
    fn problem(&self, inventory: &Inventory) -> Option<(&'static str, String)> {
        let known = match self {
            Scope::Target(id) => inventory.target(id).is_some(),
            Scope::Room(id) => inventory.room(id).is_some(),
            Scope::Site(id) => inventory.site(id).is_some(),
            Scope::Carrier(_) => inventory
                .targets()
                .keys()
                .any(|t| self.covers(inventory, t)),
        };
        let (kind, name) = self.parts();
        (!known).then(|| (kind, format!("unknown {kind} `{name}`")))
    }
}

/// A weekday from config: `"tue"` or `"tuesday"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Day(pub Weekday);

impl TryFrom<String> for Day {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let day = match text.to_ascii_lowercase().as_str() {
            "mon" | "monday" => Weekday::Monday,
            "tue" | "tuesday" => Weekday::Tuesday,
            "wed" | "wednesday" => Weekday::Wednesday,
            "thu" | "thursday" => Weekday::Thursday,
            "fri" | "friday" => Weekday::Friday,
            "sat" | "saturday" => Weekday::Saturday,
            "sun" | "sunday" => Weekday::Sunday,
            _ => return Err(format!("`{text}` is not a weekday (mon, tue, … sun)")),
        };
        Ok(Self(day))
    }
}

/// A recurring window: on `days` (every day when empty) at local time `at`, for `duration`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    /// Weekdays the window starts on; empty: every day.
    #[serde(default)]
    pub days: Vec<Day>,
    /// Local start time.
    pub at: TimeOfDay,
    /// Length of each occurrence (down to seconds, at most 7 days).
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// First local date an occurrence may start on.
    #[serde(default)]
    pub from: Option<LocalDate>,
    /// Last local date an occurrence may start on.
    #[serde(default)]
    pub until: Option<LocalDate>,
}

/// A maintenance window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Unique id (recorded on the timelines it touches).
    pub id: String,
    /// Why: the works announced.
    pub reason: String,
    /// Who announced it (a carrier's NOC and change number, a team).
    pub announced_by: String,
    /// What it covers.
    pub scope: Scope,
    /// Whether targets depending on a covered target are covered too (default true).
    #[serde(default = "yes")]
    pub dependents: bool,
    /// Zone of `start`, `end` and `repeat` (default UTC).
    #[serde(default)]
    pub time_zone: Zone,
    /// One-off start (inclusive).
    #[serde(default)]
    pub start: Option<When>,
    /// One-off end (exclusive).
    #[serde(default)]
    pub end: Option<When>,
    /// Recurrence, instead of `start`/`end`.
    #[serde(default)]
    pub repeat: Option<Repeat>,
    /// `start`/`end` resolved (filled by validation).
    #[serde(skip)]
    once: Option<(Millis, Millis)>,
}

fn yes() -> bool {
    true
}

impl Window {
    /// Occurrences `[start, end)` with `end > lo` and `start <= hi`, in time order.
    fn occurrences(&self, lo: Millis, hi: Millis) -> Vec<(Millis, Millis)> {
        let Some(repeat) = &self.repeat else {
            return self
                .once
                .filter(|(start, end)| *end > lo && *start <= hi)
                .into_iter()
                .collect();
        };
        let zone = &self.time_zone;
        let (Some(lo_local), Some(hi_local)) = (zone.local(lo), zone.local(hi)) else {
            return Vec::new();
        };
        // An occurrence that started up to its duration (plus a day) earlier may still run.
        let back = i64::try_from(repeat.duration.as_secs() / 86_400 + 1).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        let mut day = add_days(lo_local.date(), -back);
        while let Some(date) = day.filter(|d| *d <= hi_local.date()) {
            day = add_days(date, 1);
            let weekday_ok =
                repeat.days.is_empty() || repeat.days.iter().any(|d| d.0 == date.weekday());
            let in_range =
                repeat.from.is_none_or(|f| f.0 <= date) && repeat.until.is_none_or(|u| date <= u.0);
            if !(weekday_ok && in_range) {
                continue;
            }
            let Some(start) = zone.instant(date.to_datetime(repeat.at.0)) else {
                continue;
            };
            let end = start.saturating_add(duration_ms(repeat.duration));
            if end > lo && start <= hi {
                out.push((start, end));
            }
        }
        out
    }

    /// The occurrence running at `t` (`start <= t < end`), the one ending last if several
    /// overlap (a daily window longer than a day).
    fn running(&self, t: Millis) -> Option<(Millis, Millis)> {
        self.occurrences(t, t)
            .into_iter()
            .max_by_key(|(_, end)| *end)
    }

    /// The dependency chain from `target` to the target this window covers directly.
    fn chain(&self, inventory: &Inventory, target: &str) -> Option<Vec<String>> {
        if self.scope.covers(inventory, target) {
            return Some(vec![target.to_string()]);
        }
        if !self.dependents {
            return None;
        }
        inventory
            .upstream(target)
            .into_iter()
            .find(|path| path.last().is_some_and(|u| self.scope.covers(inventory, u)))
    }
}

/// Why a ticket's creation or page was held back: the record for its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// The window's id.
    pub window: String,
    /// The window's reason.
    pub reason: String,
    /// Who announced the works.
    pub announced_by: String,
    /// What the window covers.
    pub scope: Scope,
    /// From the incident's target to the covered target (just the target when covered directly).
    pub chain: Vec<String>,
    /// Start of the window's occurrence.
    pub window_start_ms: Millis,
    /// End of the window's occurrence: re-evaluate a held incident then.
    pub window_end_ms: Millis,
}

impl Suppression {
    /// One line for humans.
    pub fn note(&self) -> String {
        let via = if self.chain.len() > 1 {
            format!(" via {}", self.chain.join(" → "))
        } else {
            String::new()
        };
        format!(
            "held back by maintenance window `{}` ({}{via}, {} to {}): {} — announced by {}",
            self.window,
            self.scope,
            format_time(self.window_start_ms),
            format_time(self.window_end_ms),
            self.reason,
            self.announced_by,
        )
    }

    /// The timeline entry recording it on a ticket, as a comment by [`SYSTEM`].
    pub fn timeline_command(&self) -> Command {
        Command::Comment {
            by: SYSTEM.to_string(),
            text: self.note(),
        }
    }
}

/// A window occurrence ending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowEnd {
    /// The window's id.
    pub window: String,
    /// When the occurrence started.
    pub start_ms: Millis,
    /// When it ends.
    pub end_ms: Millis,
}

/// The outcome of screening a desk action.
#[derive(Debug, Clone, PartialEq)]
pub enum Screened {
    /// Carry the action out.
    Proceed(Action),
    /// A new ticket held back by a window: no ticket, no page. Keep it and re-evaluate it at
    /// `suppression.window_end_ms`.
    Held {
        /// The ticket that would have opened.
        ticket: Box<NewTicket>,
        /// Its attribution.
        attribution: Box<Attribution>,
        /// Why it is held.
        suppression: Suppression,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceFile {
    #[serde(default)]
    windows: Vec<Window>,
}

/// Validated maintenance windows.
#[derive(Debug, Clone, Default)]
pub struct Maintenance {
    windows: Vec<Window>,
}

impl Maintenance {
    /// Parses and validates a maintenance file against the inventory; errors name file, line
    /// and field.
    pub fn load(source: &ConfigSource, inventory: &Inventory) -> Result<Self, ConfigError> {
        let file: MaintenanceFile = source.parse()?;
        let mut windows: Vec<Window> = Vec::with_capacity(file.windows.len());
        for (i, mut w) in file.windows.into_iter().enumerate() {
            let field = |f: &str| format!("windows[{i}]{f}");
            let duplicate = windows.iter().any(|other| other.id == w.id);
            check_id(source, &field(".id"), &w.id, duplicate)?;
            for (name, text) in [("reason", &w.reason), ("announced_by", &w.announced_by)] {
                if text.trim().is_empty() {
                    return Err(source.error(&field(&format!(".{name}")), "must not be empty"));
                }
            }
            if let Some((name, problem)) = w.scope.problem(inventory) {
                return Err(source.error(&field(&format!(".scope.{name}")), problem));
            }
            match (&w.start, &w.end, &w.repeat) {
                (Some(start), Some(end), None) => {
                    let resolve = |when: &When, name: &str| {
                        when.resolve(&w.time_zone).ok_or_else(|| {
                            source.error(&field(&format!(".{name}")), "out of range")
                        })
                    };
                    let (start, end) = (resolve(start, "start")?, resolve(end, "end")?);
                    if end <= start {
                        return Err(source.error(&field(".end"), "must be after `start`"));
                    }
                    w.once = Some((start, end));
                }
                (None, None, Some(r)) => {
                    if r.duration.is_zero() || r.duration > MAX_REPEAT {
                        return Err(source.error(
                            &field(".repeat.duration"),
                            "must be longer than zero and at most 7 days",
                        ));
                    }
                    if let (Some(from), Some(until)) = (r.from, r.until)
                        && until < from
                    {
                        return Err(
                            source.error(&field(".repeat.until"), "must not be before `from`")
                        );
                    }
                }
                (_, _, Some(_)) => {
                    return Err(source.error(
                        &field(".repeat"),
                        "a window has either `start`/`end` or `repeat`, not both",
                    ));
                }
                (start, _, None) => {
                    let missing = if start.is_none() { ".start" } else { ".end" };
                    return Err(source.error(
                        &field(missing),
                        "a window needs `start` and `end`, or `repeat`",
                    ));
                }
            }
            windows.push(w);
        }
        Ok(Self { windows })
    }

    /// The windows, in file order.
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// Whether `target` is covered at `t`, and by what: of the windows running at `t` that cover
    /// it (directly or through its dependencies), the one ending last, so a held incident is
    /// re-evaluated once all of them are over.
    pub fn covering(&self, inventory: &Inventory, target: &str, t: Millis) -> Option<Suppression> {
        self.windows
            .iter()
            .filter_map(|w| {
                let (start, end) = w.running(t)?;
                let chain = w.chain(inventory, target)?;
                Some(Suppression {
                    window: w.id.clone(),
                    reason: w.reason.clone(),
                    announced_by: w.announced_by.clone(),
                    scope: w.scope.clone(),
                    chain,
                    window_start_ms: start,
                    window_end_ms: end,
                })
            })
            .max_by_key(|s| s.window_end_ms)
    }

    /// Window occurrences ending in `(t0, t1]`, by end time: when they end, the collector
    /// re-evaluates the incidents they held back that still fail.
    pub fn ending_between(&self, t0: Millis, t1: Millis) -> Vec<WindowEnd> {
        if t1 <= t0 {
            return Vec::new();
        }
        let mut out: Vec<WindowEnd> = self
            .windows
            .iter()
            .flat_map(|w| {
                w.occurrences(t0, t1)
                    .into_iter()
                    .filter(|(_, end)| *end <= t1)
                    .map(|(start_ms, end_ms)| WindowEnd {
                        window: w.id.clone(),
                        start_ms,
                        end_ms,
                    })
            })
            .collect();
        out.sort_by(|a, b| (a.end_ms, &a.window).cmp(&(b.end_ms, &b.window)));
        out
    }

    /// Screens a desk action at `t` (the firing's own time, `Firing::fired_at_ms`): only a new
    /// ticket for a covered target is held back; every other action proceeds unchanged.
    pub fn screen(&self, inventory: &Inventory, action: Action, t: Millis) -> Screened {
        match action {
            Action::Open {
                ticket,
                attribution,
            } => match self.covering(inventory, &ticket.target, t) {
                Some(suppression) => Screened::Held {
                    ticket,
                    attribution,
                    suppression,
                },
                None => Screened::Proceed(Action::Open {
                    ticket,
                    attribution,
                }),
            },
            other => Screened::Proceed(other),
        }
    }

    /// Whether the page for `entry` on `ticket` is held back: only pages Faultline raises by
    /// itself (opened, re-opened, escalated, severity raised) for a covered target; resolutions,
    /// clearances and engineers' actions always go out.
    pub fn screen_page(
        &self,
        inventory: &Inventory,
        ticket: &Ticket,
        entry: &TimelineEntry,
    ) -> Option<Suppression> {
        if !ticket.pages_for(&entry.change) || entry.who != SYSTEM {
            return None;
        }
        self.covering(inventory, &ticket.target, entry.at_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desk::Desk;
    use crate::eval::{Firing, Resolved, RuleEvent};
    use crate::inventory::Owner;
    use crate::rules::{Correlate, Severity};
    use crate::ticket::Change;
    use crate::ticket::TicketPolicy;
    use jiff::Timestamp;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn dir() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    fn inventory() -> Inventory {
        Inventory::load(&ConfigSource::read(&dir().join("testdata/inventory.toml")).unwrap())
            .unwrap()
    }

    fn text() -> String {
        std::fs::read_to_string(dir().join("testdata/maintenance.toml")).unwrap()
    }

    fn load(text: &str) -> Result<Maintenance, ConfigError> {
        Maintenance::load(
            &ConfigSource::from_text(Path::new("maint.toml"), text.to_string()),
            &inventory(),
        )
    }

    fn at(text: &str) -> Millis {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn coverage_table() {
        let inv = inventory();
        let m = load(&text()).unwrap();
        // (target, instant, expected window, expected chain)
        let cases: &[(&str, &str, Option<&str>, &[&str])] = &[
            // ACME's works 01:00–05:00 Shanghai = 17:00–21:00 UTC the day before.
            ("acme-circuit", "2026-11-30T16:59:59Z", None, &[]),
            (
                "acme-circuit",
                "2026-11-30T17:00:00Z",
                Some("acme-splice"),
                &["acme-circuit"],
            ),
            (
                "edge1-wan",
                "2026-11-30T18:00:00Z",
                Some("acme-splice"),
                &["edge1-wan", "acme-circuit"],
            ),
            (
                "vm-1",
                "2026-11-30T18:00:00Z",
                Some("acme-splice"),
                &[
                    "vm-1",
                    "host-1",
                    "tor1",
                    "core1",
                    "edge1-wan",
                    "acme-circuit",
                ],
            ),
            ("edge1", "2026-11-30T18:00:00Z", None, &[]),
            ("temp-1", "2026-11-30T18:00:00Z", None, &[]),
            ("acme-circuit", "2026-11-30T21:00:00Z", None, &[]),
            // Patch Tuesday 02:00–04:00 Berlin: 01:00–03:00 UTC in winter, 00:00–02:00 in summer.
            (
                "core1",
                "2026-03-24T01:00:00Z",
                Some("patch-tuesday"),
                &["core1"],
            ),
            (
                "core1",
                "2026-03-24T02:59:59Z",
                Some("patch-tuesday"),
                &["core1"],
            ),
            ("core1", "2026-03-24T03:00:00Z", None, &[]),
            (
                "core1",
                "2026-03-31T00:00:00Z",
                Some("patch-tuesday"),
                &["core1"],
            ),
            ("core1", "2026-03-31T02:00:00Z", None, &[]),
            ("core1", "2026-03-30T00:30:00Z", None, &[]),
            // dependents = false: what sits behind core1 is not covered.
            ("tor1", "2026-03-24T01:30:00Z", None, &[]),
            // Room r2's chiller works cover the room's targets only.
            (
                "temp-1",
                "2026-06-10T09:00:00Z",
                Some("r2-cooling"),
                &["temp-1"],
            ),
            (
                "gw-1",
                "2026-06-10T09:00:00Z",
                Some("r2-cooling"),
                &["gw-1"],
            ),
            ("host-1", "2026-06-10T09:00:00Z", None, &[]),
            // Site dc1, Sun and Mon 23:30 Berlin for 3 h, July 1–27: crosses midnight.
            (
                "temp-2",
                "2026-07-05T23:00:00Z",
                Some("dc1-power"),
                &["temp-2"],
            ),
            (
                "vm-2",
                "2026-07-05T23:00:00Z",
                Some("dc1-power"),
                &["vm-2", "host-1"],
            ),
            ("acme-circuit", "2026-07-05T23:00:00Z", None, &[]),
            ("temp-2", "2026-06-28T22:00:00Z", None, &[]),
            (
                "temp-2",
                "2026-07-27T22:00:00Z",
                Some("dc1-power"),
                &["temp-2"],
            ),
            ("temp-2", "2026-08-02T22:00:00Z", None, &[]),
            // Tuesday 2026-07-07 00:15 UTC: core1 has both windows, the one ending last wins;
            // tor1 only has the site's.
            (
                "core1",
                "2026-07-07T00:15:00Z",
                Some("patch-tuesday"),
                &["core1"],
            ),
            ("tor1", "2026-07-07T00:15:00Z", Some("dc1-power"), &["tor1"]),
            ("unknown-target", "2026-07-07T00:15:00Z", None, &[]),
        ];
        for (target, t, window, chain) in cases {
            let got = m.covering(&inv, target, at(t));
            assert_eq!(
                got.as_ref().map(|s| s.window.as_str()),
                *window,
                "{target} at {t}"
            );
            if let Some(s) = got {
                assert_eq!(s.chain, *chain, "{target} at {t}");
                assert!(s.window_start_ms <= at(t) && at(t) < s.window_end_ms);
            }
        }
    }

    #[test]
    fn overlapping_daily_occurrences_end_with_the_last_one() {
        let inv = inventory();
        let m = load(
            "[[windows]]\nid = \"soak\"\nreason = \"burn-in\"\nannounced_by = \"lab\"\n\
             scope = { target = \"gw-1\" }\nrepeat = { at = \"00:00\", duration = \"36h\" }\n",
        )
        .unwrap();
        let s = m
            .covering(&inv, "gw-1", at("2026-05-02T06:00:00Z"))
            .unwrap();
        assert_eq!(
            (s.window_start_ms, s.window_end_ms),
            (at("2026-05-02T00:00:00Z"), at("2026-05-03T12:00:00Z"))
        );
    }

    #[test]
    fn ending_between_table() {
        let m = load(&text()).unwrap();
        // (t0, t1, expected (window, end))
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
        let cases: &[Case<'_>] = &[
            (
                "2026-11-30T00:00:00Z",
                "2026-11-30T23:59:00Z",
                &[("acme-splice", "2026-11-30T21:00:00Z")],
            ),
            // (t0, t1]: an end at t0 was reported by the previous call.
            (
                "2026-11-30T20:00:00Z",
                "2026-11-30T21:00:00Z",
                &[("acme-splice", "2026-11-30T21:00:00Z")],
            ),
            ("2026-11-30T21:00:00Z", "2026-11-30T22:00:00Z", &[]),
            (
                "2026-07-05T00:00:00Z",
                "2026-07-07T12:00:00Z",
                &[
                    ("dc1-power", "2026-07-06T00:30:00Z"),
                    ("dc1-power", "2026-07-07T00:30:00Z"),
                    ("patch-tuesday", "2026-07-07T02:00:00Z"),
                ],
            ),
            ("2026-07-07T12:00:00Z", "2026-07-05T00:00:00Z", &[]),
        ];
        for (t0, t1, want) in cases {
            let got: Vec<(String, Millis)> = m
                .ending_between(at(t0), at(t1))
                .into_iter()
                .map(|e| (e.window, e.end_ms))
                .collect();
            let want: Vec<(String, Millis)> =
                want.iter().map(|(w, e)| (w.to_string(), at(e))).collect();
            assert_eq!(got, want, "({t0}, {t1}]");
        }
    }

    fn firing(rule: &str, target: &str, t: Millis) -> RuleEvent {
        RuleEvent::Firing(Firing {
            rule: rule.into(),
            target: target.into(),
            labels: BTreeMap::new(),
            severity: Severity::P2,
            value: 2.0,
            started_at_ms: t,
            fired_at_ms: t,
            summary: format!("{rule} on {target}"),
            description: String::new(),
            correlate: Correlate::None,
            same_fault: vec![rule.into()],
        })
    }

    fn open_ticket(target: &str, t: Millis) -> Ticket {
        let new = NewTicket {
            rule: "DeviceUnreachable".into(),
            target: target.into(),
            summary: String::new(),
            description: String::new(),
            severity: Severity::P2,
            tag: Some(Owner::Platform),
            reason: "r".into(),
            evidence: None,
            customers: Vec::new(),
            started_at_ms: t,
            opened_by: SYSTEM.into(),
            channel: crate::ticket::Channel::Monitoring,
            pages: true,
            reporter: None,
        };
        Ticket::open(1, new, &TicketPolicy::default(), t).0
    }

    #[test]
    fn screen_holds_back_only_new_tickets() {
        let inv = inventory();
        let m = load(&text()).unwrap();
        let policy = TicketPolicy::default();
        let during = at("2026-11-30T18:00:00Z");
        let after = at("2026-11-30T21:00:00Z");
        let tickets = [open_ticket("edge1-wan", during - 1)];
        let last_seen = BTreeMap::new();
        let desk = Desk {
            inventory: &inv,
            tickets: &[],
            last_seen_ms: &last_seen,
            correlation_window_ms: 0,
            policy: &policy,
        };
        let open = desk.on_event(&firing("DeviceUnreachable", "vm-1", during), during);
        assert!(matches!(open, Action::Open { .. }), "{open:?}");
        let with_ticket = Desk {
            tickets: &tickets,
            ..desk
        };
        let resolved = RuleEvent::Resolved(Resolved {
            rule: "DeviceUnreachable".into(),
            target: "edge1-wan".into(),
            resolved_at_ms: during,
            value: Some(1.0),
        });
        let clear = with_ticket.on_event(&resolved, during);
        // (what, action, time, held?)
        let cases = [
            ("new ticket in the window", open.clone(), during, true),
            ("new ticket after the window", open.clone(), after, false),
            ("resolution in the window", clear.clone(), during, false),
            (
                "symptom cleared in the window",
                Action::Apply {
                    ticket: 1,
                    command: Command::SymptomCleared {
                        rule: "r".into(),
                        target: "vm-1".into(),
                    },
                },
                during,
                false,
            ),
            (
                "re-open in the window (its page is screened instead)",
                Action::Apply {
                    ticket: 1,
                    command: Command::Refire,
                },
                during,
                false,
            ),
            (
                "nothing",
                Action::Nothing { why: "x".into() },
                during,
                false,
            ),
        ];
        for (what, action, t, held) in cases {
            match m.screen(&inv, action.clone(), t) {
                Screened::Held { suppression, .. } => {
                    assert!(held, "{what}: held by {}", suppression.window);
                    assert_eq!(suppression.window, "acme-splice", "{what}");
                }
                Screened::Proceed(passed) => {
                    assert!(!held, "{what}: not held");
                    assert_eq!(passed, action, "{what}: passes unchanged");
                }
            }
        }
        assert_eq!(
            clear,
            Action::Apply {
                ticket: 1,
                command: Command::ConditionCleared
            }
        );
    }

    #[test]
    fn screen_page_table() {
        let inv = inventory();
        let m = load(&text()).unwrap();
        let during = at("2026-11-30T18:00:00Z");
        let after = at("2026-11-30T21:00:00Z");
        let ticket = open_ticket("edge1-wan", during - 60_000);
        let entry = |who: &str, change: Change, at_ms: Millis| TimelineEntry {
            at_ms,
            who: who.into(),
            change,
        };
        let opened = Change::Opened {
            severity: Severity::P2,
            tag: Some(Owner::Carrier),
            reason: "r".into(),
        };
        // (what, entry, held?)
        let cases = [
            (
                "opened by faultline",
                entry(SYSTEM, opened.clone(), during),
                true,
            ),
            ("opened by an engineer", entry("ana", opened, during), false),
            (
                "escalated",
                entry(SYSTEM, Change::Escalated { level: 1 }, during),
                true,
            ),
            (
                "escalated after",
                entry(SYSTEM, Change::Escalated { level: 1 }, after),
                false,
            ),
            (
                "re-opened",
                entry(
                    SYSTEM,
                    Change::Reopened {
                        count: 1,
                        flapping: false,
                    },
                    during,
                ),
                true,
            ),
            (
                "resolved automatically",
                entry(
                    SYSTEM,
                    Change::Resolved {
                        automatic: true,
                        note: String::new(),
                        flapping: false,
                    },
                    during,
                ),
                false,
            ),
            (
                "symptom cleared",
                entry(
                    SYSTEM,
                    Change::SymptomCleared {
                        rule: "r".into(),
                        target: "vm-1".into(),
                    },
                    during,
                ),
                false,
            ),
            (
                "SLA breach",
                entry(
                    SYSTEM,
                    Change::SlaBreached {
                        kind: crate::ticket::SlaKind::Respond,
                    },
                    during,
                ),
                false,
            ),
        ];
        for (what, entry, held) in cases {
            let got = m.screen_page(&inv, &ticket, &entry);
            assert_eq!(got.is_some(), held, "{what}: {got:?}");
        }
    }

    #[test]
    fn held_incident_opens_when_the_window_ends_and_still_fails() {
        let inv = inventory();
        let m = load(&text()).unwrap();
        let policy = TicketPolicy::default();
        let last_seen = BTreeMap::new();
        let desk = Desk {
            inventory: &inv,
            tickets: &[],
            last_seen_ms: &last_seen,
            correlation_window_ms: 0,
            policy: &policy,
        };
        let fired = at("2026-11-30T17:30:00Z");
        let event = firing("CarrierLinkLoss", "edge1-wan", fired);
        let Screened::Held { suppression, .. } =
            m.screen(&inv, desk.on_event(&event, fired), fired)
        else {
            panic!("not held");
        };
        let end = suppression.window_end_ms;
        assert_eq!(end, at("2026-11-30T21:00:00Z"));
        // The collector's tick sees the window end and re-runs the desk for what still fails.
        let ends = m.ending_between(end - 1_000, end);
        assert_eq!(
            ends.iter().map(|e| e.window.as_str()).collect::<Vec<_>>(),
            [suppression.window.as_str()]
        );
        let Screened::Proceed(Action::Open { ticket, .. }) =
            m.screen(&inv, desk.on_event(&event, end), end)
        else {
            panic!("still held after the window");
        };
        let (ticket, _) = Ticket::open(7, *ticket, &policy, end);
        let (ticket, entries) = ticket
            .apply(suppression.timeline_command(), &policy, end)
            .unwrap();
        let Change::Commented { text } = &entries[0].change else {
            panic!("{entries:?}");
        };
        assert_eq!(
            text,
            "held back by maintenance window `acme-splice` (carrier ACME Telecom via edge1-wan → \
             acme-circuit, 2026-11-30 17:00:00 UTC to 2026-11-30 21:00:00 UTC): ACME fibre \
             splicing on the Pudong ring — announced by ACME NOC, change ACME-CHG-7781"
        );
        assert_eq!(
            (entries[0].who.as_str(), ticket.timeline.len()),
            (SYSTEM, 2)
        );
    }

    #[test]
    fn invalid_windows_table() {
        let base = text();
        assert!(load(&base).is_ok());
        // (replace, with, expected field, fragment of the message)
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "scope = { carrier = \"ACME Telecom\" }",
                "scope = { carrier = \"Globex\" }",
                "windows[0].scope.carrier",
                "unknown carrier",
            ),
            (
                "scope = { target = \"core1\" }",
                "scope = { target = \"core9\" }",
                "windows[1].scope.target",
                "unknown target `core9`",
            ),
            (
                "scope = { room = \"r2\" }",
                "scope = { room = \"r9\" }",
                "windows[2].scope.room",
                "unknown room `r9`",
            ),
            (
                "scope = { site = \"dc1\" }",
                "scope = { site = \"dc9\" }",
                "windows[3].scope.site",
                "unknown site `dc9`",
            ),
            (
                "scope = { room = \"r2\" }",
                "scope = { room = \"r2\", site = \"dc1\" }",
                "windows[2].scope",
                "exactly 1 element",
            ),
            (
                "start = 2026-06-10T08:00:00Z",
                "start = 42",
                "windows[2].start",
                "expected a date or time, found integer",
            ),
            (
                "end = \"2026-12-01 05:00\"",
                "end = \"2026-12-01 00:59\"",
                "windows[0].end",
                "must be after `start`",
            ),
            (
                "end = \"2026-12-01 05:00\"\n",
                "",
                "windows[0].end",
                "needs `start` and `end`, or `repeat`",
            ),
            (
                "end = \"2026-12-01 05:00\"",
                "end = \"2026-12-01 05:00\"\nrepeat = { at = \"01:00\", duration = \"1h\" }",
                "windows[0].repeat",
                "not both",
            ),
            (
                "duration = \"2h\"",
                "duration = \"0s\"",
                "windows[1].repeat.duration",
                "longer than zero",
            ),
            (
                "duration = \"2h\"",
                "duration = \"8 days\"",
                "windows[1].repeat.duration",
                "at most 7 days",
            ),
            (
                "until = \"2026-07-27\"",
                "until = \"2026-06-27\"",
                "windows[3].repeat.until",
                "before `from`",
            ),
            (
                "days = [\"tue\"]",
                "days = [\"tues\"]",
                "windows[1].repeat.days[0]",
                "not a weekday",
            ),
            (
                "at = \"02:00\"",
                "at = \"2am\"",
                "windows[1].repeat.at",
                "not a time of day",
            ),
            (
                "time_zone = \"Asia/Shanghai\"",
                "time_zone = \"Asia/Shangai\"",
                "windows[0].time_zone",
                "unknown time zone",
            ),
            (
                "reason = \"UPS maintenance\"",
                "reason = \" \"",
                "windows[3].reason",
                "must not be empty",
            ),
            (
                "id = \"dc1-power\"",
                "id = \"r2-cooling\"",
                "windows[3].id",
                "duplicate id",
            ),
        ];
        for (from, to, field, fragment) in cases {
            assert!(base.contains(from), "{from}");
            let err = load(&base.replacen(from, to, 1)).unwrap_err();
            assert_eq!(err.field, *field, "{to}: {err}");
            assert!(err.message.contains(fragment), "{to}: {err}");
            // The error sits on the changed line; a missing field at its window's header.
            let changed = base.replacen(from, to, 1);
            let line = err.position.map_or(0, |p| p.0);
            let line_text = changed.lines().nth(line.wrapping_sub(1)).unwrap_or("");
            let marker = to.lines().last().unwrap_or("[[windows]]");
            assert!(
                line_text.contains(marker),
                "{to}: line {line} is `{line_text}`: {err}"
            );
        }
    }
}
