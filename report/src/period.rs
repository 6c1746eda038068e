//! Report periods (tickets → **report**): a calendar month (`2026-11`) or an ISO week
//! (`2026-W48`) as a half-open time range `[start, end)` in a time zone, parsed from the command
//! line or derived from "now" for the scheduled report ([`Period::containing`],
//! [`Period::previous`]).

use faultline_incidents::Millis;
use jiff::ToSpan;
use jiff::civil::{Date, ISOWeekDate, Weekday};
use jiff::tz::TimeZone;
use thiserror::Error;

/// A period that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeriodError {
    /// The text is neither `YYYY-MM` nor `YYYY-Www`, or names no such month or week.
    #[error("\"{0}\" is not a month (YYYY-MM) or ISO week (YYYY-Www)")]
    Unparsable(String),
    /// The period lies outside the range the time zone arithmetic supports.
    #[error("\"{0}\" is out of range")]
    OutOfRange(String),
}

/// Which kind of period: the unit of the scheduled report too (`[reports] schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// A calendar month.
    Monthly,
    /// An ISO week (Monday to Sunday).
    Weekly,
}

/// A month or ISO week in a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// As written: `2026-11` or `2026-W48`.
    pub label: String,
    /// Month or week.
    pub kind: Schedule,
    /// First day of the period (a Monday for a week).
    first_day: Date,
    /// Start, inclusive (midnight of the first day in the zone).
    pub start_ms: Millis,
    /// End, exclusive (midnight after the last day in the zone).
    pub end_ms: Millis,
}

/// `digits` as a number when it is exactly `len` ASCII digits.
fn number(digits: &str, len: usize) -> Option<i16> {
    (digits.len() == len && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Midnight at the start of `date` in `zone`, in ms.
fn midnight_ms(date: Date, zone: &TimeZone) -> Option<Millis> {
    zone.to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .ok()
        .map(jiff::Timestamp::as_millisecond)
}

impl Period {
    /// Reads `2026-11` (a month) or `2026-W48` (an ISO week) as a period in `zone`.
    pub fn parse(text: &str, zone: &TimeZone) -> Result<Self, PeriodError> {
        let bad = || PeriodError::Unparsable(text.to_string());
        let (year, rest) = text.split_once('-').ok_or_else(bad)?;
        let year = number(year, 4).ok_or_else(bad)?;
        let (kind, first_day) = match rest.strip_prefix('W') {
            Some(week) => {
                let week = number(week, 2).ok_or_else(bad)?;
                let day = ISOWeekDate::new(
                    year,
                    i8::try_from(week).map_err(|_| bad())?,
                    Weekday::Monday,
                )
                .map_err(|_| bad())?;
                (Schedule::Weekly, day.date())
            }
            None => {
                let month = number(rest, 2).ok_or_else(bad)?;
                let month = i8::try_from(month).map_err(|_| bad())?;
                (
                    Schedule::Monthly,
                    Date::new(year, month, 1).map_err(|_| bad())?,
                )
            }
        };
        Self::starting(kind, first_day, zone)
            .ok_or_else(|| PeriodError::OutOfRange(text.to_string()))
    }

    /// The period of `kind` that starts on `first_day`.
    fn starting(kind: Schedule, first_day: Date, zone: &TimeZone) -> Option<Self> {
        let (next, label) = match kind {
            Schedule::Monthly => (
                first_day.checked_add(1.month()).ok()?,
                format!("{:04}-{:02}", first_day.year(), first_day.month()),
            ),
            Schedule::Weekly => {
                let week = first_day.iso_week_date();
                (
                    first_day.checked_add(7.days()).ok()?,
                    format!("{:04}-W{:02}", week.year(), week.week()),
                )
            }
        };
        Some(Self {
            label,
            kind,
            first_day,
            start_ms: midnight_ms(first_day, zone)?,
            end_ms: midnight_ms(next, zone)?,
        })
    }

    /// The period of `kind` that contains `now_ms` in `zone`.
    pub fn containing(kind: Schedule, now_ms: Millis, zone: &TimeZone) -> Option<Self> {
        let today = zone
            .to_datetime(jiff::Timestamp::from_millisecond(now_ms).ok()?)
            .date();
        let first_day = match kind {
            Schedule::Monthly => today.first_of_month(),
            Schedule::Weekly => today
                .checked_sub(i64::from(today.weekday().to_monday_zero_offset()).days())
                .ok()?,
        };
        Self::starting(kind, first_day, zone)
    }

    /// The period just before this one.
    pub fn previous(&self, zone: &TimeZone) -> Option<Self> {
        let first_day = match self.kind {
            Schedule::Monthly => self.first_day.checked_sub(1.month()).ok()?,
            Schedule::Weekly => self.first_day.checked_sub(7.days()).ok()?,
        };
        Self::starting(self.kind, first_day, zone)
    }
}

/// The scheduled report to send at `now_ms`: the last period of `kind` that has ended, unless
/// the period `last_sent` (as recorded after the last send) ends as late or later. `None` also when
/// `last_sent` is the current period or in the future (a clock set back sends nothing twice).
/// A `last_sent` that no longer parses (the schedule changed kind) does not block a send.
pub fn due(
    kind: Schedule,
    last_sent: Option<&str>,
    now_ms: Millis,
    zone: &TimeZone,
) -> Option<Period> {
    let ended = Period::containing(kind, now_ms, zone)?.previous(zone)?;
    let sent = last_sent
        .and_then(|label| Period::parse(label, zone).ok())
        .filter(|sent| sent.kind == kind);
    match sent {
        Some(sent) if sent.end_ms >= ended.end_ms => None,
        _ => Some(ended),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shanghai() -> TimeZone {
        TimeZone::get("Asia/Shanghai").unwrap()
    }

    fn ms(rfc3339: &str) -> Millis {
        rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn parse_table() {
        let cases: &[(&str, &str, &str, &str)] = &[
            // (input, label, start, end) in Asia/Shanghai (UTC+8)
            (
                "2026-11",
                "2026-11",
                "2026-10-31T16:00:00Z",
                "2026-11-30T16:00:00Z",
            ),
            (
                "2026-12",
                "2026-12",
                "2026-11-30T16:00:00Z",
                "2026-12-31T16:00:00Z",
            ),
            (
                "2024-02",
                "2024-02",
                "2024-01-31T16:00:00Z",
                "2024-02-29T16:00:00Z",
            ),
            (
                "2026-W48",
                "2026-W48",
                "2026-11-22T16:00:00Z",
                "2026-11-29T16:00:00Z",
            ),
            (
                "2026-W01",
                "2026-W01",
                "2025-12-28T16:00:00Z",
                "2026-01-04T16:00:00Z",
            ),
            (
                "2026-W53",
                "2026-W53",
                "2026-12-27T16:00:00Z",
                "2027-01-03T16:00:00Z",
            ),
        ];
        for (input, label, start, end) in cases {
            let p = Period::parse(input, &shanghai()).unwrap();
            assert_eq!(p.label, *label, "{input}");
            assert_eq!(p.start_ms, ms(start), "{input} start");
            assert_eq!(p.end_ms, ms(end), "{input} end");
        }
    }

    #[test]
    fn bad_periods_name_the_input() {
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "2026-W54",
            "2025-W53",
            "2026-W00",
            "26-11",
            "2026",
            "2026/11",
            "2026-11-01",
            "",
            "2026-w48",
            "２０２６-11",
            "+2026-11",
        ] {
            let err = Period::parse(bad, &TimeZone::UTC).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("\"{bad}\" is not a month (YYYY-MM) or ISO week (YYYY-Www)")
            );
        }
    }

    #[test]
    fn containing_and_previous() {
        let zone = shanghai();
        // 2026-12-01 01:00 in Shanghai is still 2026-11-30 in UTC.
        let now = ms("2026-11-30T17:00:00Z");
        let month = Period::containing(Schedule::Monthly, now, &zone).unwrap();
        assert_eq!(month.label, "2026-12");
        assert_eq!(month.previous(&zone).unwrap().label, "2026-11");
        let utc = Period::containing(Schedule::Monthly, now, &TimeZone::UTC).unwrap();
        assert_eq!(utc.label, "2026-11");
        let week = Period::containing(Schedule::Weekly, now, &zone).unwrap();
        assert_eq!(week.label, "2026-W49");
        assert_eq!(week.previous(&zone).unwrap().label, "2026-W48");
        let january = Period::parse("2026-W01", &zone).unwrap();
        assert_eq!(january.previous(&zone).unwrap().label, "2025-W52");
    }

    #[test]
    fn due_table() {
        let zone = TimeZone::UTC;
        let now = ms("2026-12-07T21:40:00Z");
        let cases: &[(Schedule, Option<&str>, Option<&str>)] = &[
            (Schedule::Monthly, None, Some("2026-11")),
            (Schedule::Monthly, Some("2026-10"), Some("2026-11")),
            (Schedule::Monthly, Some("2026-11"), None),
            (Schedule::Monthly, Some("2026-12"), None),
            (Schedule::Monthly, Some("2027-01"), None),
            (Schedule::Monthly, Some("2026-W48"), Some("2026-11")),
            (Schedule::Monthly, Some("garbage"), Some("2026-11")),
            (Schedule::Weekly, None, Some("2026-W49")),
            (Schedule::Weekly, Some("2026-W48"), Some("2026-W49")),
            (Schedule::Weekly, Some("2026-W49"), None),
            (Schedule::Weekly, Some("2026-11"), Some("2026-W49")),
        ];
        for (kind, last, want) in cases {
            let got = due(*kind, *last, now, &zone).map(|p| p.label);
            assert_eq!(got.as_deref(), *want, "{kind:?} after {last:?}");
        }
        // Just after midnight on the 1st the month before is due; just before, the one before it.
        let first = ms("2026-12-01T00:00:00Z");
        assert_eq!(
            due(Schedule::Monthly, Some("2026-10"), first, &zone).map(|p| p.label),
            Some("2026-11".into())
        );
        assert_eq!(
            due(Schedule::Monthly, Some("2026-10"), first - 1, &zone),
            None
        );
    }
}
