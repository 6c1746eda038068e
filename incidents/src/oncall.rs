//! On-call schedules and escalation: who is paged for a ticket, and when (rules → incidents →
//! **notifications**: the notifiers ask this module whom a ticket's page goes to).
//!
//! A [`Schedule`] rotates its participants in order — daily, weekly, every N days, or every fixed
//! duration down to seconds (for tests and demos) — handing off at a time of day in an IANA time
//! zone. [`Override`]s put someone else on call for a time range, across hand-offs if need be. An
//! [`EscalationPolicy`] lists levels: level 1 is paged when the ticket (re-)opens (`after = "0s"`),
//! each further level when the ticket is still unacknowledged that long after the (re-)open.
//!
//! Tickets: [`EscalationClock::of_ticket`] reads when a ticket last (re-)opened and when it was
//! acknowledged or resolved since; [`OnCall::escalation_chain`] gives every level's page time,
//! person and status from it, and `next_page_ms` for the notifier's timer. The ticket's own
//! [`Timer::Escalate`](crate::ticket::Timer::Escalate) comes due on the same times: the collector
//! hands the state machine each tag's [`OnCall::escalation_offsets`] once at load
//! ([`TicketPolicy::escalation`](crate::ticket::TicketPolicy::escalation)), so the ticket's
//! escalation `n` and the chain's level `n + 1` fall in the same millisecond.
//!
//! Time zones: `jiff` with its bundled tz database (`tzdb-bundle-always`). It is maintained by
//! the author of `regex`, builds from crates.io alone (no build script, no network, no system
//! zoneinfo, so CI and every collector agree on the rules), and its civil-time arithmetic has
//! explicit gap/fold handling, which daily hand-offs across DST changes need. `chrono-tz` would
//! also bundle the database but generates it in a build script and adds a second date crate.
//!
//! DST: a daily or weekly rotation hands off at the same wall-clock time every day, so its shifts
//! are 23 or 25 hours long across a change; a hand-off time that falls into a gap is moved to the
//! end of the gap, one that falls into a fold takes its first occurrence. Rotations given as a
//! duration that is not a whole number of days (`"12h"`, `"90s"`) count exact elapsed time.
//!
//! ```toml
//! [[people]]
//! id = "ana"
//! name = "Ana Berg"
//! phone = "+49 30 5555 0101"
//!
//! [[schedules]]
//! id = "primary"
//! time_zone = "Europe/Berlin"
//! rotation = "weekly"          # "daily", "weekly", or a duration: "3 days", "12h", "90s"
//! handoff = "09:00"            # local time of day; "09:00:30" for seconds
//! start = "2026-01-05"         # local date of the first hand-off (to participants[0])
//! participants = ["ana", "bo", "cy"]
//!
//! [[schedules.overrides]]      # dan covers from Saturday night to Monday morning
//! person = "dan"
//! from = "2026-03-28 20:00"    # local to the schedule's zone, or RFC 3339 with an offset
//! until = "2026-03-30 08:00"
//! note = "swap with ana"
//!
//! [[escalations]]
//! id = "platform"
//! levels = [
//!   { schedule = "primary", after = "0s" },
//!   { schedule = "secondary", after = "10m" },
//!   { person = "head-of-ops", after = "30m" },
//! ]
//! ```

use crate::inventory::check_id;
use crate::ticket::Ticket;
use crate::{Millis, duration_ms, format_time};
use faultline_wire::config_file::{ConfigError, ConfigSource};
use humantime_serde::re::humantime;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;
use thiserror::Error;

const DAY_SECS: u64 = 86_400;

// ----- local time in a zone: shared by on-call schedules and maintenance windows -----

/// An IANA time zone from config (`"Europe/Berlin"`), resolved against jiff's bundled tz database.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl TryFrom<String> for Zone {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        match TimeZone::get(&name) {
            Ok(tz) => Ok(Self { name, tz }),
            Err(_) => Err(format!(
                "unknown time zone `{name}` (an IANA name such as \"Europe/Berlin\")"
            )),
        }
    }
}

impl Default for Zone {
    fn default() -> Self {
        Self {
            name: "UTC".to_string(),
            tz: TimeZone::UTC,
        }
    }
}

impl Zone {
    /// The IANA name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The instant of a wall-clock time in this zone: a time in a DST gap moves to the end of the
    /// gap, a time in a fold takes its first occurrence. `None` outside jiff's range.
    pub(crate) fn instant(&self, local: DateTime) -> Option<Millis> {
        self.tz
            .to_timestamp(local)
            .ok()
            .map(Timestamp::as_millisecond)
    }

    /// The wall-clock time of an instant in this zone.
    pub(crate) fn local(&self, t: Millis) -> Option<DateTime> {
        Timestamp::from_millisecond(t)
            .ok()
            .map(|ts| self.tz.to_datetime(ts))
    }
}

/// A date or time as written in config: a string, or a native TOML date/time (`09:00:00`,
/// `2026-03-02`, `2026-03-29T01:30:00`), read alike through its RFC 3339 text.
pub struct DateText(String);

impl<'de> Deserialize<'de> for DateText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(deserializer)? {
            toml::Value::String(text) => Ok(Self(text)),
            toml::Value::Datetime(datetime) => Ok(Self(datetime.to_string())),
            other => Err(D::Error::custom(format!(
                "expected a date or time, found {}",
                other.type_str()
            ))),
        }
    }
}

/// Lets a type that parses from a string also be read from config as [`DateText`].
macro_rules! from_date_text {
    ($($ty:ty),*) => {$(
        impl TryFrom<DateText> for $ty {
            type Error = String;

            fn try_from(text: DateText) -> Result<Self, String> {
                text.0.parse()
            }
        }
    )*};
}

from_date_text!(TimeOfDay, LocalDate, When);

/// A wall-clock time of day from config: `"09:00"` or `"09:00:30"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "DateText")]
pub struct TimeOfDay(pub Time);

impl FromStr for TimeOfDay {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.parse::<Time>()
            .map(Self)
            .map_err(|_| format!("`{text}` is not a time of day as HH:MM or HH:MM:SS"))
    }
}

/// A calendar date from config: `"2026-03-29"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "DateText")]
pub struct LocalDate(pub Date);

impl FromStr for LocalDate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.parse::<Date>()
            .map(Self)
            .map_err(|_| format!("`{text}` is not a date as YYYY-MM-DD"))
    }
}

/// A point in time from config: wall-clock time in the item's zone (`"2026-03-29 01:30"`, seconds
/// optional) or an instant with an offset (`"2026-03-29T01:30:00+02:00"`, `"…Z"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "DateText")]
pub enum When {
    /// Wall-clock time, resolved in the zone of the schedule or window.
    Local(DateTime),
    /// An exact instant.
    Exact(Timestamp),
}

impl FromStr for When {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        // An instant needs an offset; without one the text is wall-clock time.
        if let Ok(ts) = text.parse::<Timestamp>() {
            return Ok(Self::Exact(ts));
        }
        text.parse::<DateTime>().map(Self::Local).map_err(|_| {
            format!(
                "`{text}` is not a date and time such as \"2026-03-29 01:30\" or \"2026-03-29T01:30:00+02:00\""
            )
        })
    }
}

impl When {
    /// Milliseconds since the epoch, reading wall-clock time in `zone` (see [`Zone`] for gaps and
    /// folds).
    pub fn resolve(&self, zone: &Zone) -> Option<Millis> {
        match self {
            When::Local(local) => zone.instant(*local),
            When::Exact(ts) => Some(ts.as_millisecond()),
        }
    }
}

/// `date` plus `days` calendar days.
pub(crate) fn add_days(date: Date, days: i64) -> Option<Date> {
    date.checked_add(SignedDuration::from_hours(days.checked_mul(24)?))
        .ok()
}

/// Whole calendar days from `from` to `to` (negative when `to` is earlier).
fn days_between(from: Date, to: Date) -> i64 {
    from.duration_until(to)
        .as_secs()
        .div_euclid(DAY_SECS as i64)
}

/// Parses a duration in config units, rejecting anything below one second.
fn parse_period(text: &str) -> Result<Duration, String> {
    let period = humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e}"))?;
    if period < Duration::from_secs(1) {
        return Err(format!("`{text}` is shorter than one second"));
    }
    Ok(period)
}

// ----- configuration -----

/// Someone who can be paged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Unique id, used by schedules, overrides and escalation levels.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
}

/// How often a schedule hands off to the next participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Rotation {
    /// Every N calendar days at the hand-off time (`"daily"` = 1, `"weekly"` = 7, `"3 days"`).
    Days(u32),
    /// Every fixed duration of elapsed time from the first hand-off (`"12h"`, `"90s"`).
    Every(Duration),
}

impl TryFrom<String> for Rotation {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "daily" => return Ok(Self::Days(1)),
            "weekly" => return Ok(Self::Days(7)),
            _ => {}
        }
        let period = parse_period(&text)
            .map_err(|e| format!("rotation is \"daily\", \"weekly\" or a duration: {e}"))?;
        let whole_days = period.subsec_nanos() == 0 && period.as_secs() % DAY_SECS == 0;
        match u32::try_from(period.as_secs() / DAY_SECS) {
            Ok(days) if whole_days => Ok(Self::Days(days)),
            Err(_) => Err(format!("`{text}` is too long for a rotation")),
            Ok(_) => Ok(Self::Every(period)),
        }
    }
}

/// Someone else on call for a time range (`[from, until)`), whatever the rotation says.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Who covers.
    pub person: String,
    /// Start (inclusive).
    pub from: When,
    /// End (exclusive).
    pub until: When,
    /// Why, for humans.
    #[serde(default)]
    pub note: String,
}

/// An override resolved to instants.
#[derive(Debug, Clone, PartialEq)]
struct Cover {
    from_ms: Millis,
    until_ms: Millis,
    person: String,
    index: usize,
}

/// A rotation of participants with overrides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Unique id.
    pub id: String,
    /// Zone of the hand-off time, the start date and override times.
    pub time_zone: Zone,
    /// Hand-off period.
    pub rotation: Rotation,
    /// Local time of day of the hand-offs.
    pub handoff: TimeOfDay,
    /// Local date of the first hand-off; nobody is on call by rotation before it.
    pub start: LocalDate,
    /// Person ids, in rotation order (a person may appear more than once).
    pub participants: Vec<String>,
    /// Overrides; they must not overlap each other.
    #[serde(default)]
    pub overrides: Vec<Override>,
    /// Overrides resolved and sorted by start (filled by validation).
    #[serde(skip)]
    covers: Vec<Cover>,
}

/// Where the person on call comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ShiftSource {
    /// The rotation's shift number `shift` (0 starts at the first hand-off).
    Rotation {
        /// Shift number.
        shift: u64,
    },
    /// The schedule's override at this index in the file.
    Override {
        /// Index in `overrides`.
        index: usize,
    },
}

/// Who is on call, and for how long without a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    /// Person id.
    pub person: String,
    /// Rotation or override.
    pub source: ShiftSource,
    /// Start of this stretch (a hand-off or an override edge).
    pub from_ms: Millis,
    /// End of this stretch (exclusive).
    pub until_ms: Millis,
}

/// The next change of who is on call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// When.
    pub at_ms: Millis,
    /// Who hands off (`None`: nobody was on call).
    pub from: Option<String>,
    /// Who takes over (`None`: nobody will be on call).
    pub to: Option<String>,
}

impl Schedule {
    /// Start of rotation shift `k`.
    fn handoff_ms(&self, k: i64) -> Option<Millis> {
        match self.rotation {
            Rotation::Days(n) => {
                let date = add_days(self.start.0, k.checked_mul(i64::from(n))?)?;
                self.time_zone.instant(date.to_datetime(self.handoff.0))
            }
            Rotation::Every(period) => {
                let first = self
                    .time_zone
                    .instant(self.start.0.to_datetime(self.handoff.0))?;
                first.checked_add(k.checked_mul(duration_ms(period))?)
            }
        }
    }

    /// The rotation shift at `t`: `k` with `handoff_ms(k) <= t < handoff_ms(k + 1)`.
    fn shift_index(&self, t: Millis) -> Option<i64> {
        let mut k = match self.rotation {
            Rotation::Days(n) => {
                let today = self.time_zone.local(t)?.date();
                days_between(self.start.0, today).div_euclid(i64::from(n))
            }
            Rotation::Every(period) => {
                let first = self.handoff_ms(0)?;
                t.checked_sub(first)?.div_euclid(duration_ms(period))
            }
        };
        // The date estimate is off by at most one shift (before the hand-off time of day, or a
        // DST shift around it); the loops are bounded so bad input can never spin.
        for _ in 0..3 {
            if self.handoff_ms(k)? > t {
                k -= 1;
            } else if self.handoff_ms(k + 1)? <= t {
                k += 1;
            } else {
                return Some(k);
            }
        }
        None
    }

    fn participant(&self, k: i64) -> Option<&String> {
        let len = i64::try_from(self.participants.len()).ok()?;
        let index = usize::try_from(k.checked_rem_euclid(len)?).ok()?;
        self.participants.get(index)
    }

    /// Who is on call at `t`: an override covering `t`, else the rotation (nobody before the
    /// first hand-off).
    pub fn on_call(&self, t: Millis) -> Option<Shift> {
        if let Some(cover) = self
            .covers
            .iter()
            .find(|c| c.from_ms <= t && t < c.until_ms)
        {
            return Some(Shift {
                person: cover.person.clone(),
                source: ShiftSource::Override { index: cover.index },
                from_ms: cover.from_ms,
                until_ms: cover.until_ms,
            });
        }
        let k = self.shift_index(t).filter(|k| *k >= 0)?;
        // The stretch is the rotation shift cut by the overrides ending before / starting after t.
        let from_ms = self
            .covers
            .iter()
            .map(|c| c.until_ms)
            .filter(|end| *end <= t)
            .fold(self.handoff_ms(k)?, Millis::max);
        let until_ms = self
            .covers
            .iter()
            .map(|c| c.from_ms)
            .filter(|start| *start > t)
            .fold(self.handoff_ms(k + 1)?, Millis::min);
        Some(Shift {
            person: self.participant(k)?.clone(),
            source: ShiftSource::Rotation {
                shift: u64::try_from(k).ok()?,
            },
            from_ms,
            until_ms,
        })
    }

    /// The first rotation hand-off or override edge after `t`.
    fn next_boundary(&self, t: Millis) -> Option<Millis> {
        let rotation = match self.shift_index(t) {
            Some(k) if k >= 0 => self.handoff_ms(k + 1),
            _ => self.handoff_ms(0).filter(|first| *first > t),
        };
        self.covers
            .iter()
            .flat_map(|c| [c.from_ms, c.until_ms])
            .filter(|edge| *edge > t)
            .chain(rotation)
            .min()
    }

    /// The next time after `t` at which the person on call changes (a hand-off to the same
    /// person, as in a one-person rotation, is no change). `None` when nobody new comes within a
    /// full turn of the rotation and the overrides.
    pub fn next_handoff(&self, t: Millis) -> Option<Handoff> {
        let from = self.on_call(t).map(|s| s.person);
        let mut at = t;
        for _ in 0..self.participants.len() + 2 * self.covers.len() + 2 {
            at = self.next_boundary(at)?;
            let to = self.on_call(at).map(|s| s.person);
            if to != from {
                return Some(Handoff {
                    at_ms: at,
                    from,
                    to,
                });
            }
        }
        None
    }
}

/// One escalation level: a schedule's on-call person or a named person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Page whoever is on call in this schedule…
    #[serde(default)]
    pub schedule: Option<String>,
    /// …or this person.
    #[serde(default)]
    pub person: Option<String>,
    /// Paged when the ticket is still unacknowledged this long after it (re-)opened.
    #[serde(default, with = "humantime_serde")]
    pub after: Duration,
}

/// Escalation levels, paged in order while a ticket stays unacknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    /// Unique id.
    pub id: String,
    /// Level 1 first; `after` strictly increasing.
    pub levels: Vec<Level>,
}

/// What escalation needs to know about a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationClock {
    /// When the ticket last (re-)opened: escalation counts from here.
    pub since_ms: Millis,
    /// When it was acknowledged or resolved since then: escalation stops there.
    pub stopped_at_ms: Option<Millis>,
}

impl EscalationClock {
    /// The clock of a ticket: from its last `Opened`/`Reopened` entry to its acknowledgement or
    /// resolution since.
    pub fn of_ticket(ticket: &Ticket) -> Self {
        let since_ms = ticket.escalation_since_ms();
        let stopped_at_ms = [ticket.acknowledged_at_ms, ticket.resolved_at_ms]
            .into_iter()
            .flatten()
            .min();
        Self {
            since_ms,
            stopped_at_ms,
        }
    }
}

/// Where an escalation level stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Its time came while the ticket was unacknowledged: it was paged.
    Paged,
    /// Its time has not come yet.
    Pending,
    /// The ticket was acknowledged or resolved before its time: it is never paged. (A level due
    /// in the very millisecond of the acknowledgement counts as paged.)
    Stopped,
}

/// One level of a ticket's escalation chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Level number, 1-based.
    pub level: u32,
    /// When this level is (or was) paged.
    pub page_at_ms: Millis,
    /// The schedule it pages, if any.
    pub schedule: Option<String>,
    /// Who is paged: the schedule's on-call person at `page_at_ms`, or the level's person.
    /// `None` when the schedule has nobody on call then; the notifier goes on to the next level.
    pub person: Option<String>,
    /// Paged, pending or stopped, as of the time asked about.
    pub status: StepStatus,
}

/// A ticket's escalation chain at one time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    /// The policy followed.
    pub policy: String,
    /// Every level, level 1 first.
    pub steps: Vec<Step>,
    /// When the next level is paged, if one is pending.
    pub next_page_ms: Option<Millis>,
}

/// A lookup of something that is not configured.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OnCallError {
    /// No schedule with this id.
    #[error("unknown on-call schedule `{0}`")]
    UnknownSchedule(String),
    /// No escalation policy with this id.
    #[error("unknown escalation policy `{0}`")]
    UnknownEscalation(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnCallFile {
    #[serde(default)]
    people: Vec<Person>,
    #[serde(default)]
    schedules: Vec<Schedule>,
    #[serde(default)]
    escalations: Vec<EscalationPolicy>,
}

/// A validated on-call configuration: people, schedules and escalation policies.
#[derive(Debug, Clone, Default)]
pub struct OnCall {
    people: BTreeMap<String, Person>,
    schedules: BTreeMap<String, Schedule>,
    escalations: BTreeMap<String, EscalationPolicy>,
}

impl OnCall {
    /// Parses and validates an on-call file; errors name file, line and field.
    pub fn load(source: &ConfigSource) -> Result<Self, ConfigError> {
        let file: OnCallFile = source.parse()?;
        let mut oncall = OnCall::default();
        for (i, person) in file.people.into_iter().enumerate() {
            let duplicate = oncall.people.contains_key(&person.id);
            check_id(source, &format!("people[{i}].id"), &person.id, duplicate)?;
            oncall.people.insert(person.id.clone(), person);
        }
        for (i, mut schedule) in file.schedules.into_iter().enumerate() {
            let duplicate = oncall.schedules.contains_key(&schedule.id);
            check_id(
                source,
                &format!("schedules[{i}].id"),
                &schedule.id,
                duplicate,
            )?;
            schedule.covers = oncall.validate_schedule(source, i, &schedule)?;
            if schedule.handoff_ms(0).is_none() {
                return Err(source.error(
                    &format!("schedules[{i}].start"),
                    "the first hand-off is out of range",
                ));
            }
            oncall.schedules.insert(schedule.id.clone(), schedule);
        }
        for (i, policy) in file.escalations.into_iter().enumerate() {
            let duplicate = oncall.escalations.contains_key(&policy.id);
            check_id(
                source,
                &format!("escalations[{i}].id"),
                &policy.id,
                duplicate,
            )?;
            oncall.validate_policy(source, i, &policy)?;
            oncall.escalations.insert(policy.id.clone(), policy);
        }
        Ok(oncall)
    }

    fn check_person(
        &self,
        source: &ConfigSource,
        field: &str,
        id: &str,
    ) -> Result<(), ConfigError> {
        if self.people.contains_key(id) {
            Ok(())
        } else {
            Err(source.error(field, format!("unknown person `{id}`")))
        }
    }

    /// Checks participants and overrides; returns the overrides resolved and sorted.
    fn validate_schedule(
        &self,
        source: &ConfigSource,
        i: usize,
        schedule: &Schedule,
    ) -> Result<Vec<Cover>, ConfigError> {
        let field = |f: &str| format!("schedules[{i}].{f}");
        if schedule.participants.is_empty() {
            return Err(source.error(
                &field("participants"),
                "a rotation needs at least one participant",
            ));
        }
        for (j, person) in schedule.participants.iter().enumerate() {
            self.check_person(source, &field(&format!("participants[{j}]")), person)?;
        }
        let mut covers = Vec::new();
        for (j, o) in schedule.overrides.iter().enumerate() {
            let at = |f: &str| field(&format!("overrides[{j}].{f}"));
            self.check_person(source, &at("person"), &o.person)?;
            let resolve = |when: &When, name: &str| {
                when.resolve(&schedule.time_zone)
                    .ok_or_else(|| source.error(&at(name), "out of range"))
            };
            let (from_ms, until_ms) = (resolve(&o.from, "from")?, resolve(&o.until, "until")?);
            if until_ms <= from_ms {
                return Err(source.error(&at("until"), "must be after `from`"));
            }
            covers.push(Cover {
                from_ms,
                until_ms,
                person: o.person.clone(),
                index: j,
            });
        }
        covers.sort_by_key(|c| c.from_ms);
        for pair in covers.windows(2) {
            if let [a, b] = pair
                && b.from_ms < a.until_ms
            {
                return Err(source.error(
                    &field(&format!("overrides[{}].from", b.index)),
                    format!(
                        "overlaps overrides[{}] ({} to {})",
                        a.index,
                        format_time(a.from_ms),
                        format_time(a.until_ms)
                    ),
                ));
            }
        }
        Ok(covers)
    }

    fn validate_policy(
        &self,
        source: &ConfigSource,
        i: usize,
        policy: &EscalationPolicy,
    ) -> Result<(), ConfigError> {
        if policy.levels.is_empty() {
            return Err(source.error(
                &format!("escalations[{i}].levels"),
                "an escalation policy needs at least one level",
            ));
        }
        for (j, level) in policy.levels.iter().enumerate() {
            let at = |f: &str| format!("escalations[{i}].levels[{j}]{f}");
            match (&level.schedule, &level.person) {
                (Some(s), None) if !self.schedules.contains_key(s) => {
                    return Err(source.error(&at(".schedule"), format!("unknown schedule `{s}`")));
                }
                (None, Some(p)) => self.check_person(source, &at(".person"), p)?,
                (Some(_), None) => {}
                _ => {
                    return Err(source.error(&at(""), "name either `schedule` or `person`"));
                }
            }
            if j > 0 && level.after <= policy.levels[j - 1].after {
                return Err(source.error(
                    &at(".after"),
                    "must be longer than the previous level's `after`",
                ));
            }
        }
        Ok(())
    }

    /// A person by id.
    pub fn person(&self, id: &str) -> Option<&Person> {
        self.people.get(id)
    }

    /// A schedule by id.
    pub fn schedule(&self, id: &str) -> Option<&Schedule> {
        self.schedules.get(id)
    }

    /// An escalation policy by id.
    pub fn escalation(&self, id: &str) -> Option<&EscalationPolicy> {
        self.escalations.get(id)
    }

    /// Every level's `after` of escalation policy `id`, level 1 first: how long after a ticket's
    /// (re-)open each level is paged, for the ticket state machine's escalation timer.
    pub fn escalation_offsets(&self, id: &str) -> Result<Vec<Duration>, OnCallError> {
        self.escalations
            .get(id)
            .map(|p| p.levels.iter().map(|l| l.after).collect())
            .ok_or_else(|| OnCallError::UnknownEscalation(id.to_string()))
    }

    /// Who is on call in schedule `schedule` at `t` (`Ok(None)`: nobody).
    pub fn on_call(&self, schedule: &str, t: Millis) -> Result<Option<Shift>, OnCallError> {
        self.schedules
            .get(schedule)
            .map(|s| s.on_call(t))
            .ok_or_else(|| OnCallError::UnknownSchedule(schedule.to_string()))
    }

    /// The next change of who is on call in `schedule` after `t`.
    pub fn next_handoff(&self, schedule: &str, t: Millis) -> Result<Option<Handoff>, OnCallError> {
        self.schedules
            .get(schedule)
            .map(|s| s.next_handoff(t))
            .ok_or_else(|| OnCallError::UnknownSchedule(schedule.to_string()))
    }

    /// The escalation chain of a ticket at `t`: every level of `policy`, when it is paged, whom
    /// it pages then, and whether that already happened.
    pub fn escalation_chain(
        &self,
        policy: &str,
        clock: &EscalationClock,
        t: Millis,
    ) -> Result<Chain, OnCallError> {
        let p = self
            .escalations
            .get(policy)
            .ok_or_else(|| OnCallError::UnknownEscalation(policy.to_string()))?;
        let stopped = clock.stopped_at_ms.filter(|s| *s <= t);
        let mut steps = Vec::with_capacity(p.levels.len());
        for (level, l) in (1..).zip(&p.levels) {
            let page_at_ms = clock.since_ms.saturating_add(duration_ms(l.after));
            let person = match (&l.schedule, &l.person) {
                (Some(s), _) => self.on_call(s, page_at_ms)?.map(|shift| shift.person),
                (None, person) => person.clone(),
            };
            let status = match stopped {
                Some(s) if page_at_ms > s => StepStatus::Stopped,
                _ if page_at_ms <= t => StepStatus::Paged,
                _ => StepStatus::Pending,
            };
            steps.push(Step {
                level,
                page_at_ms,
                schedule: l.schedule.clone(),
                person,
                status,
            });
        }
        let next_page_ms = steps
            .iter()
            .find(|s| s.status == StepStatus::Pending)
            .map(|s| s.page_at_ms);
        Ok(Chain {
            policy: p.id.clone(),
            steps,
            next_page_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const S: Millis = 1_000;
    const H: Millis = 3_600 * S;

    fn load(text: &str) -> Result<OnCall, ConfigError> {
        OnCall::load(&ConfigSource::from_text(
            Path::new("oncall.toml"),
            text.to_string(),
        ))
    }

    fn testdata() -> OnCall {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/oncall.toml");
        OnCall::load(&ConfigSource::read(&path).unwrap()).unwrap()
    }

    /// Milliseconds of an RFC 3339 instant.
    fn at(text: &str) -> Millis {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn zone_and_time_parsing_table() {
        let berlin = Zone::try_from("Europe/Berlin".to_string()).unwrap();
        // (text, expected instant in Berlin)
        let cases = [
            ("2026-01-10 09:00", Some("2026-01-10T08:00:00Z")),
            ("2026-01-10T09:00:30", Some("2026-01-10T08:00:30Z")),
            ("2026-07-10 09:00", Some("2026-07-10T07:00:00Z")),
            ("2026-07-10T09:00:00Z", Some("2026-07-10T09:00:00Z")),
            ("2026-07-10T09:00:00+08:00", Some("2026-07-10T01:00:00Z")),
            // In the spring gap: moved to its end. In the autumn fold: the first occurrence.
            ("2026-03-29 02:30", Some("2026-03-29T01:30:00Z")),
            ("2026-10-25 02:30", Some("2026-10-25T00:30:00Z")),
            ("yesterday", None),
        ];
        for (text, want) in cases {
            let got = text.parse::<When>().ok().and_then(|w| w.resolve(&berlin));
            assert_eq!(got, want.map(at), "{text}");
        }
        assert!(Zone::try_from("Mars/Olympus".to_string()).is_err());
        assert!("25:00".parse::<TimeOfDay>().is_err());
        assert!("2026-02-30".parse::<LocalDate>().is_err());
    }

    #[test]
    fn rotation_parsing_table() {
        let cases = [
            ("daily", Ok(Rotation::Days(1))),
            ("weekly", Ok(Rotation::Days(7))),
            ("3 days", Ok(Rotation::Days(3))),
            ("48h", Ok(Rotation::Days(2))),
            ("12h", Ok(Rotation::Every(Duration::from_secs(12 * 3600)))),
            ("90s", Ok(Rotation::Every(Duration::from_secs(90)))),
            ("500ms", Err("shorter than one second")),
            ("fortnightly", Err("\"daily\", \"weekly\" or a duration")),
        ];
        for (text, want) in cases {
            let got = Rotation::try_from(text.to_string());
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn who_is_on_call_table() {
        let oncall = testdata();
        // (schedule, instant, expected person, expected stretch)
        type Case<'a> = (
            &'a str,
            &'a str,
            Option<&'a str>,
            Option<(&'a str, &'a str)>,
        );
        let cases: &[Case<'_>] = &[
            // Berlin weekly, Monday 09:00 local, from Monday 2026-03-02: ana, bo, cy, …
            ("berlin-weekly", "2026-03-02T07:59:59Z", None, None),
            (
                "berlin-weekly",
                "2026-03-02T08:00:00Z",
                Some("ana"),
                Some(("2026-03-02T08:00:00Z", "2026-03-09T08:00:00Z")),
            ),
            // Third week: cy until the override of Saturday 20:00.
            (
                "berlin-weekly",
                "2026-03-20T12:00:00Z",
                Some("cy"),
                Some(("2026-03-16T08:00:00Z", "2026-03-21T19:00:00Z")),
            ),
            // The override (dan) crosses the hand-off of Monday 2026-03-23.
            (
                "berlin-weekly",
                "2026-03-23T09:00:00Z",
                Some("dan"),
                Some(("2026-03-21T19:00:00Z", "2026-03-23T11:00:00Z")),
            ),
            // After the override: the new week's person (ana), not the one before it.
            (
                "berlin-weekly",
                "2026-03-23T11:00:00Z",
                Some("ana"),
                Some(("2026-03-23T11:00:00Z", "2026-03-30T07:00:00Z")),
            ),
            // Summer time since 2026-03-29: the 09:00 hand-off is now 07:00 UTC.
            ("berlin-weekly", "2026-03-30T06:59:59Z", Some("ana"), None),
            ("berlin-weekly", "2026-03-30T07:00:00Z", Some("bo"), None),
            // Berlin daily at 02:30: on 2026-03-29 that is in the gap, so 03:30 CEST (01:30 UTC).
            ("berlin-daily", "2026-03-29T01:29:59Z", Some("bo"), None),
            (
                "berlin-daily",
                "2026-03-29T01:30:00Z",
                Some("ana"),
                Some(("2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z")),
            ),
            // 2026-10-25 02:30 happens twice: the first one (CEST, 00:30 UTC) hands off; the day
            // that follows is 25 hours long.
            ("berlin-daily", "2026-10-25T00:29:59Z", Some("bo"), None),
            (
                "berlin-daily",
                "2026-10-25T00:30:00Z",
                Some("ana"),
                Some(("2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z")),
            ),
            // Shanghai, no DST: 08:00 CST is always 00:00 UTC.
            ("shanghai-daily", "2026-07-01T23:59:59Z", Some("wang"), None),
            (
                "shanghai-daily",
                "2026-07-02T00:00:00Z",
                Some("li"),
                Some(("2026-07-02T00:00:00Z", "2026-07-03T00:00:00Z")),
            ),
            // Every 90 s from 2026-01-01 00:00 Shanghai (2025-12-31T16:00Z).
            ("demo-90s", "2025-12-31T16:01:29Z", Some("ana"), None),
            (
                "demo-90s",
                "2025-12-31T16:01:30Z",
                Some("bo"),
                Some(("2025-12-31T16:01:30Z", "2025-12-31T16:03:00Z")),
            ),
            ("demo-90s", "2025-12-31T16:03:00Z", Some("ana"), None),
        ];
        for (schedule, t, person, stretch) in cases {
            let shift = oncall.on_call(schedule, at(t)).unwrap();
            assert_eq!(
                shift.as_ref().map(|s| s.person.as_str()),
                *person,
                "{schedule} at {t}"
            );
            if let (Some(shift), Some((from, until))) = (&shift, stretch) {
                assert_eq!(
                    (shift.from_ms, shift.until_ms),
                    (at(from), at(until)),
                    "{schedule} at {t}"
                );
            }
        }
        assert_eq!(
            oncall.on_call("nope", 0),
            Err(OnCallError::UnknownSchedule("nope".into()))
        );
    }

    #[test]
    fn shanghai_days_are_always_24_hours_and_berlin_dst_days_are_not() {
        let oncall = testdata();
        let length = |schedule: &str, t: &str| {
            let shift = oncall.on_call(schedule, at(t)).unwrap().unwrap();
            (shift.until_ms - shift.from_ms) / H
        };
        assert_eq!(length("berlin-daily", "2026-03-28T12:00:00Z"), 24);
        assert_eq!(length("berlin-daily", "2026-03-29T12:00:00Z"), 23);
        assert_eq!(length("berlin-daily", "2026-06-01T12:00:00Z"), 24);
        assert_eq!(length("berlin-daily", "2026-10-25T12:00:00Z"), 25);
        for t in ["2026-03-29T12:00:00Z", "2026-10-25T12:00:00Z"] {
            assert_eq!(length("shanghai-daily", t), 24, "{t}");
        }
    }

    #[test]
    fn next_handoff_table() {
        let oncall = testdata();
        // (schedule, now, expected hand-off time, from, to)
        type Case<'a> = (
            &'a str,
            &'a str,
            Option<(&'a str, Option<&'a str>, Option<&'a str>)>,
        );
        let cases: &[Case<'_>] = &[
            (
                "berlin-weekly",
                "2026-02-01T00:00:00Z",
                Some(("2026-03-02T08:00:00Z", None, Some("ana"))),
            ),
            (
                "berlin-weekly",
                "2026-03-03T00:00:00Z",
                Some(("2026-03-09T08:00:00Z", Some("ana"), Some("bo"))),
            ),
            // The override starts before the week ends…
            (
                "berlin-weekly",
                "2026-03-20T00:00:00Z",
                Some(("2026-03-21T19:00:00Z", Some("cy"), Some("dan"))),
            ),
            // …and the Monday hand-off inside it changes nothing for the pager.
            (
                "berlin-weekly",
                "2026-03-22T00:00:00Z",
                Some(("2026-03-23T11:00:00Z", Some("dan"), Some("ana"))),
            ),
            // Across the DST change: Monday 09:00 CEST.
            (
                "berlin-weekly",
                "2026-03-29T12:00:00Z",
                Some(("2026-03-30T07:00:00Z", Some("ana"), Some("bo"))),
            ),
            // A one-person rotation never hands off.
            ("solo", "2026-03-29T12:00:00Z", None),
        ];
        for (schedule, now, want) in cases {
            let got = oncall.next_handoff(schedule, at(now)).unwrap();
            let want = want.map(|(t, from, to)| Handoff {
                at_ms: at(t),
                from: from.map(String::from),
                to: to.map(String::from),
            });
            assert_eq!(got, want, "{schedule} after {now}");
        }
    }

    #[test]
    fn escalation_chain_table() {
        let oncall = testdata();
        let since = at("2026-03-10T10:00:00Z");
        let clock = |stopped: Option<Millis>| EscalationClock {
            since_ms: since,
            stopped_at_ms: stopped,
        };
        use StepStatus::{Paged, Pending, Stopped};
        // (what, clock, now, statuses, next page)
        let cases = [
            (
                "just opened",
                clock(None),
                since,
                [Paged, Pending, Pending],
                Some(since + 600 * S),
            ),
            (
                "level 2 at exactly 10 minutes",
                clock(None),
                since + 600 * S,
                [Paged, Paged, Pending],
                Some(since + 1_800 * S),
            ),
            (
                "everyone paged",
                clock(None),
                since + 2 * H,
                [Paged, Paged, Paged],
                None,
            ),
            (
                "acknowledged after 5 minutes",
                clock(Some(since + 300 * S)),
                since + 2 * H,
                [Paged, Stopped, Stopped],
                None,
            ),
            (
                "acknowledged in the millisecond level 2 was paged: that page went out",
                clock(Some(since + 600 * S)),
                since + 2 * H,
                [Paged, Paged, Stopped],
                None,
            ),
            (
                "acknowledgement in the future is not known yet",
                clock(Some(since + 2 * H)),
                since + 700 * S,
                [Paged, Paged, Pending],
                Some(since + 1_800 * S),
            ),
        ];
        for (what, clock, now, statuses, next) in cases {
            let chain = oncall.escalation_chain("platform", &clock, now).unwrap();
            let got: Vec<StepStatus> = chain.steps.iter().map(|s| s.status).collect();
            assert_eq!(got, statuses, "{what}");
            assert_eq!(chain.next_page_ms, next, "{what}");
        }
        let chain = oncall
            .escalation_chain("platform", &clock(None), since)
            .unwrap();
        let whom: Vec<(u32, Option<&str>)> = chain
            .steps
            .iter()
            .map(|s| (s.level, s.person.as_deref()))
            .collect();
        // Tuesday 2026-03-10 is bo's week in Berlin; in Shanghai day 68 of the rotation (li).
        assert_eq!(whom, [(1, Some("bo")), (2, Some("li")), (3, Some("erik"))]);
        assert_eq!(
            oncall.escalation_chain("nope", &clock(None), since),
            Err(OnCallError::UnknownEscalation("nope".into()))
        );
        // The ticket's escalation timer runs on the same offsets.
        assert_eq!(
            oncall.escalation_offsets("platform"),
            Ok([0, 600, 1_800].map(Duration::from_secs).to_vec())
        );
        assert!(oncall.escalation_offsets("nope").is_err());
    }

    #[test]
    fn escalation_clock_follows_the_ticket() {
        use crate::inventory::Owner;
        use crate::rules::Severity;
        use crate::ticket::{Command, NewTicket, TicketPolicy};
        let policy = TicketPolicy::default();
        let new = NewTicket {
            rule: "InterfaceDown".into(),
            target: "tor1".into(),
            summary: String::new(),
            description: String::new(),
            severity: Severity::P2,
            tag: Some(Owner::Platform),
            reason: "r".into(),
            evidence: None,
            customers: Vec::new(),
            started_at_ms: 0,
            opened_by: "faultline".into(),
            channel: crate::ticket::Channel::Monitoring,
            pages: true,
            reporter: None,
        };
        let (t, _) = Ticket::open(1, new, &policy, 100 * S);
        assert_eq!(
            EscalationClock::of_ticket(&t),
            EscalationClock {
                since_ms: 100 * S,
                stopped_at_ms: None
            }
        );
        let (t, _) = t
            .apply(Command::Acknowledge { by: "ana".into() }, &policy, 200 * S)
            .unwrap();
        assert_eq!(EscalationClock::of_ticket(&t).stopped_at_ms, Some(200 * S));
        let (t, _) = t
            .apply(Command::ConditionCleared, &policy, 300 * S)
            .unwrap();
        let (t, _) = t.apply(Command::Refire, &policy, 400 * S).unwrap();
        assert_eq!(
            EscalationClock::of_ticket(&t),
            EscalationClock {
                since_ms: 400 * S,
                stopped_at_ms: None
            },
            "a re-open restarts escalation"
        );
    }

    #[test]
    fn invalid_configs_table() {
        let base = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/oncall.toml"),
        )
        .unwrap();
        assert!(load(&base).is_ok());
        // (replace, with, expected field, fragment of the message)
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "participants = [\"ana\", \"bo\", \"cy\"]",
                "participants = [\"ana\", \"bob\", \"cy\"]",
                "schedules[0].participants[1]",
                "unknown person `bob`",
            ),
            (
                "participants = [\"ana\", \"bo\", \"cy\"]",
                "participants = []",
                "schedules[0].participants",
                "at least one participant",
            ),
            (
                "person = \"dan\"",
                "person = \"dave\"",
                "schedules[0].overrides[0].person",
                "unknown person `dave`",
            ),
            (
                "until = \"2026-03-23 12:00\"",
                "until = \"2026-03-21 20:00\"",
                "schedules[0].overrides[0].until",
                "must be after `from`",
            ),
            (
                "from = \"2026-04-10 18:00\"",
                "from = \"2026-03-23 11:00\"",
                "schedules[0].overrides[1].from",
                "overlaps overrides[0]",
            ),
            (
                "time_zone = \"Europe/Berlin\"",
                "time_zone = \"Europe/Berlim\"",
                "schedules[0].time_zone",
                "unknown time zone `Europe/Berlim`",
            ),
            (
                "handoff = \"09:00\"",
                "handoff = \"9 o'clock\"",
                "schedules[0].handoff",
                "not a time of day",
            ),
            (
                "rotation = \"weekly\"",
                "rotation = \"0s\"",
                "schedules[0].rotation",
                "shorter than one second",
            ),
            (
                "{ schedule = \"shanghai-daily\", after = \"10m\" }",
                "{ schedule = \"tokyo\", after = \"10m\" }",
                "escalations[0].levels[1].schedule",
                "unknown schedule `tokyo`",
            ),
            (
                "{ schedule = \"shanghai-daily\", after = \"10m\" }",
                "{ schedule = \"shanghai-daily\", after = \"0s\" }",
                "escalations[0].levels[1].after",
                "longer than the previous level",
            ),
            (
                "{ person = \"erik\", after = \"30m\" }",
                "{ person = \"erik\", schedule = \"solo\", after = \"30m\" }",
                "escalations[0].levels[2]",
                "either `schedule` or `person`",
            ),
            (
                "id = \"solo\"",
                "id = \"berlin-daily\"",
                "schedules[4].id",
                "duplicate id",
            ),
        ];
        for (from, to, field, fragment) in cases {
            assert!(base.contains(from), "{from}");
            let err = load(&base.replacen(from, to, 1)).unwrap_err();
            assert_eq!(err.field, *field, "{to}: {err}");
            assert!(err.message.contains(fragment), "{to}: {err}");
            let line = base[..base.find(from).unwrap()].matches('\n').count() + 1;
            assert_eq!(err.position.map(|p| p.0), Some(line), "{to}: {err}");
            assert!(err.to_string().starts_with("oncall.toml:"), "{err}");
        }
    }
}
