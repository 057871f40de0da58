//! Periods in Vietnam's calendar (local dates, inclusive): parsing `2024`, `2024-Q1`,
//! `2024-03` or from/to dates; the previous period of the same length; and the split of a
//! period into whole years, whole months and leftover days, the three grains tallies keep.

use chrono::{Datelike, Months, NaiveDate, TimeDelta};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// The grains of stored tallies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grain {
    Year,
    Month,
    Day,
}

impl Grain {
    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Year => "y",
            Grain::Month => "m",
            Grain::Day => "d",
        }
    }

    /// The first day of the bucket of this grain that holds `date`.
    pub fn start_of(self, date: NaiveDate) -> NaiveDate {
        match self {
            Grain::Year => NaiveDate::from_ymd_opt(date.year(), 1, 1).unwrap_or(date),
            Grain::Month => date.with_day(1).unwrap_or(date),
            Grain::Day => date,
        }
    }
}

/// A piece of a period: a whole year or month (by its first day), or a run of days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    Year(NaiveDate),
    Month(NaiveDate),
    Days(NaiveDate, NaiveDate),
}

fn last_of_month(first: NaiveDate) -> NaiveDate {
    first.checked_add_months(Months::new(1)).map_or(first, |d| d - TimeDelta::days(1))
}

impl Period {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Option<Period> {
        (from <= to).then_some(Period { from, to })
    }

    /// `2024`, `2024-Q1` .. `2024-Q4`, or `2024-03`.
    pub fn parse(spec: &str) -> Option<Period> {
        let spec = spec.trim();
        if let Some((year, q)) = spec.split_once("-Q").or_else(|| spec.split_once("-q")) {
            let year: i32 = year.parse().ok()?;
            let q: u32 = q.parse().ok().filter(|q| (1..=4).contains(q))?;
            let from = NaiveDate::from_ymd_opt(year, 3 * q - 2, 1)?;
            return Period::new(from, last_of_month(from.checked_add_months(Months::new(2))?));
        }
        if let Some((year, month)) = spec.split_once('-') {
            let from = NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)?;
            return Period::new(from, last_of_month(from));
        }
        let year: i32 = spec.parse().ok().filter(|y| (1900..=9999).contains(y))?;
        Period::new(NaiveDate::from_ymd_opt(year, 1, 1)?, NaiveDate::from_ymd_opt(year, 12, 31)?)
    }

    pub fn year(year: i32) -> Option<Period> {
        Period::parse(&year.to_string())
    }

    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// Whole calendar months: the number of them, when the period is made of whole months.
    fn whole_months(&self) -> Option<u32> {
        if self.from.day() != 1 || last_of_month(self.to.with_day(1)?) != self.to {
            return None;
        }
        let months = (self.to.year() - self.from.year()) * 12 + self.to.month() as i32 - self.from.month() as i32 + 1;
        u32::try_from(months).ok()
    }

    /// The period of the same length just before: the previous year, quarter or months for
    /// whole months, otherwise as many days.
    pub fn previous(&self) -> Period {
        if let Some(from) = self.whole_months().and_then(|m| self.from.checked_sub_months(Months::new(m))) {
            return Period { from, to: self.from - TimeDelta::days(1) };
        }
        let len = TimeDelta::days(self.days());
        Period { from: self.from - len, to: self.to - len }
    }

    /// Splits into whole years, then whole months, then runs of days.
    pub fn spans(&self) -> Vec<Span> {
        let mut out = Vec::new();
        let mut cursor = self.from;
        while cursor <= self.to {
            let year_end = NaiveDate::from_ymd_opt(cursor.year(), 12, 31).unwrap_or(cursor);
            let month_end = last_of_month(cursor.with_day(1).unwrap_or(cursor));
            if cursor.ordinal() == 1 && year_end <= self.to {
                out.push(Span::Year(cursor));
                cursor = year_end + TimeDelta::days(1);
            } else if cursor.day() == 1 && month_end <= self.to {
                out.push(Span::Month(cursor));
                cursor = month_end + TimeDelta::days(1);
            } else {
                let end = if cursor.day() == 1 { self.to } else { month_end.min(self.to) };
                match out.last_mut() {
                    Some(Span::Days(_, last)) if *last + TimeDelta::days(1) == cursor => *last = end,
                    _ => out.push(Span::Days(cursor, end)),
                }
                cursor = end + TimeDelta::days(1);
            }
        }
        out
    }

    /// Consecutive calendar months (or quarters) covering the period, clipped to it.
    pub fn series(&self, quarterly: bool) -> Vec<Period> {
        let step = if quarterly { 3 } else { 1 };
        let mut first = self.from.with_day(1).unwrap_or(self.from);
        if quarterly {
            first = first.with_month(((first.month() - 1) / 3) * 3 + 1).unwrap_or(first);
        }
        let mut out = Vec::new();
        while first <= self.to {
            let Some(next) = first.checked_add_months(Months::new(step)) else {
                break;
            };
            out.push(Period { from: first.max(self.from), to: (next - TimeDelta::days(1)).min(self.to) });
            first = next;
        }
        out
    }

    /// `2024`, `2024-Q1`, `2024-03` when the period is exactly one of those, else `from..to`.
    pub fn label(&self) -> String {
        match self.whole_months() {
            Some(12) if self.from.month() == 1 => self.from.year().to_string(),
            Some(3) if (self.from.month() - 1).is_multiple_of(3) => {
                format!("{}-Q{}", self.from.year(), (self.from.month() - 1) / 3 + 1)
            }
            Some(1) => format!("{}-{:02}", self.from.year(), self.from.month()),
            _ => format!("{}..{}", self.from, self.to),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn parses_years_quarters_and_months() {
        assert_eq!(Period::parse("2024"), Period::new(d(2024, 1, 1), d(2024, 12, 31)));
        assert_eq!(Period::parse("2024-Q1"), Period::new(d(2024, 1, 1), d(2024, 3, 31)));
        assert_eq!(Period::parse("2024-Q4"), Period::new(d(2024, 10, 1), d(2024, 12, 31)));
        assert_eq!(Period::parse("2024-02"), Period::new(d(2024, 2, 1), d(2024, 2, 29)));
        for bad in ["2024-Q5", "2024-13", "abc", "", "2024-02-30"] {
            assert_eq!(Period::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn previous_period_has_the_same_length() {
        let p = |s| Period::parse(s).unwrap_or_else(|| panic!("{s}"));
        assert_eq!(p("2024").previous(), p("2023"));
        assert_eq!(p("2024-Q1").previous(), p("2023-Q4"));
        assert_eq!(p("2024-03").previous(), p("2024-02"));
        let odd = Period::new(d(2024, 3, 10), d(2024, 3, 19)).unwrap_or_else(|| panic!());
        assert_eq!(odd.previous(), Period::new(d(2024, 2, 29), d(2024, 3, 9)).unwrap_or_else(|| panic!()));
    }

    #[test]
    fn spans_use_the_coarsest_grain_that_fits() {
        let p = Period::new(d(2023, 12, 30), d(2025, 2, 3)).unwrap_or_else(|| panic!());
        assert_eq!(
            p.spans(),
            vec![
                Span::Days(d(2023, 12, 30), d(2023, 12, 31)),
                Span::Year(d(2024, 1, 1)),
                Span::Month(d(2025, 1, 1)),
                Span::Days(d(2025, 2, 1), d(2025, 2, 3)),
            ]
        );
        let q = Period::parse("2024-Q2").unwrap_or_else(|| panic!());
        assert_eq!(q.spans(), vec![Span::Month(d(2024, 4, 1)), Span::Month(d(2024, 5, 1)), Span::Month(d(2024, 6, 1))]);
    }

    #[test]
    fn series_cover_the_period_by_month_or_quarter() {
        let p = Period::new(d(2024, 2, 15), d(2024, 7, 10)).unwrap_or_else(|| panic!());
        let months = p.series(false);
        assert_eq!(months.len(), 6);
        assert_eq!(months[0], Period::new(d(2024, 2, 15), d(2024, 2, 29)).unwrap_or_else(|| panic!()));
        let quarters = p.series(true);
        assert_eq!(quarters.len(), 3);
        assert_eq!(quarters[1].label(), "2024-Q2");
    }
}
