//! ISO 8601 weeks, the period of every check-in and answer.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// Why a string is not an ISO week.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeekError {
    #[error("{0:?} is not an ISO week; write it as 2026-W47")]
    Format(String),
    #[error("{year} has no ISO week {week}")]
    OutOfRange { year: i32, week: u32 },
}

/// An ISO 8601 week (`2026-W47`): Monday to Sunday, numbered within its
/// ISO year, which may differ from the calendar year around New Year.
///
/// ```
/// use nudged::domain::IsoWeek;
///
/// let week: IsoWeek = "2026-W53".parse().unwrap();
/// assert_eq!(week.plus(1).to_string(), "2027-W01");
/// assert!("2027-W53".parse::<IsoWeek>().is_err()); // 2027 has 52 weeks
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IsoWeek {
    year: i32,
    week: u32,
}

impl IsoWeek {
    /// The week `week` of ISO year `year`, if it exists (weeks 1..=52 or 53).
    pub fn new(year: i32, week: u32) -> Result<Self, WeekError> {
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon)
            .map(|_| Self { year, week })
            .ok_or(WeekError::OutOfRange { year, week })
    }

    /// The ISO week that contains `date`.
    pub fn of(date: NaiveDate) -> Self {
        let w = date.iso_week();
        Self {
            year: w.year(),
            week: w.week(),
        }
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn week(self) -> u32 {
        self.week
    }

    /// The Monday that starts this week.
    pub fn monday(self) -> NaiveDate {
        // Construction guarantees the week exists.
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon)
            .expect("IsoWeek is validated on construction")
    }

    /// The week `n` weeks later (`n` may be negative).
    pub fn plus(self, n: i64) -> Self {
        Self::of(self.monday() + chrono::Duration::weeks(n))
    }

    /// Whole weeks from `earlier` to `self` (negative if `self` is earlier).
    pub fn weeks_since(self, earlier: IsoWeek) -> i64 {
        self.ordinal() - earlier.ordinal()
    }

    /// Weeks since the week of 1970-01-01, by integer arithmetic: the model
    /// computes week distances in its inner loops, where building dates
    /// would dominate.
    fn ordinal(self) -> i64 {
        // ISO week 1 is the week holding 4 January.
        let jan4 = days_from_civil(i64::from(self.year), 1, 4);
        let monday_of_week1 = jan4 - (jan4 + 3).rem_euclid(7);
        (monday_of_week1 + 3).div_euclid(7) + i64::from(self.week) - 1
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d` (Howard
/// Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

impl FromStr for IsoWeek {
    type Err = WeekError;

    fn from_str(s: &str) -> Result<Self, WeekError> {
        let bad = || WeekError::Format(s.to_owned());
        let (year, week) = s.trim().split_once(['-']).ok_or_else(bad)?;
        let week = week
            .strip_prefix('W')
            .or_else(|| week.strip_prefix('w'))
            .ok_or_else(bad)?;
        if year.len() != 4 || !(1..=2).contains(&week.len()) {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        let week: u32 = week.parse().map_err(|_| bad())?;
        Self::new(year, week)
    }
}

impl TryFrom<String> for IsoWeek {
    type Error = WeekError;
    fn try_from(s: String) -> Result<Self, WeekError> {
        s.parse()
    }
}

impl From<IsoWeek> for String {
    fn from(w: IsoWeek) -> String {
        w.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_iso_weeks() {
        let w: IsoWeek = "2026-W47".parse().unwrap();
        assert_eq!((w.year(), w.week()), (2026, 47));
        assert_eq!(w.to_string(), "2026-W47");
        assert_eq!(
            "2026-w01".parse::<IsoWeek>().unwrap().to_string(),
            "2026-W01"
        );
    }

    #[test]
    fn rejects_malformed_and_nonexistent_weeks() {
        for bad in ["2026-47", "2026W47", "26-W47", "2026-W", "2026-Wxx", ""] {
            assert!(
                matches!(bad.parse::<IsoWeek>(), Err(WeekError::Format(_))),
                "{bad}"
            );
        }
        // 2026 has 53 ISO weeks, 2027 has 52.
        assert!("2026-W53".parse::<IsoWeek>().is_ok());
        assert_eq!(
            "2027-W53".parse::<IsoWeek>(),
            Err(WeekError::OutOfRange {
                year: 2027,
                week: 53
            })
        );
        assert!("2026-W00".parse::<IsoWeek>().is_err());
    }

    #[test]
    fn iso_year_differs_from_calendar_year_at_new_year() {
        let d = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        assert_eq!(IsoWeek::of(d).to_string(), "2026-W53");
        let d = NaiveDate::from_ymd_opt(2024, 12, 30).unwrap();
        assert_eq!(IsoWeek::of(d).to_string(), "2025-W01");
    }

    #[test]
    fn week_distances_match_the_calendar_for_every_week_of_three_centuries() {
        let origin = IsoWeek::of(NaiveDate::from_ymd_opt(2000, 1, 1).unwrap());
        let mut date = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
        while date.year() < 2200 {
            let week = IsoWeek::of(date);
            assert_eq!(
                week.weeks_since(origin),
                (week.monday() - origin.monday()).num_weeks(),
                "{week}"
            );
            date += chrono::Duration::days(7);
        }
    }

    #[test]
    fn arithmetic_crosses_year_boundaries() {
        let w: IsoWeek = "2026-W52".parse().unwrap();
        assert_eq!(w.plus(2).to_string(), "2027-W01");
        assert_eq!(w.plus(2).weeks_since(w), 2);
        assert_eq!(w.plus(-52).to_string(), "2025-W52");
    }
}
