//! Business-day and calendar-day arithmetic for legal deadlines.
//!
//! The receipt day is day 0. A deadline of `n` days ends at 23:59:59.999 local time (in the
//! business's time zone) on the n-th business (or calendar) day after the receipt day. A
//! business day is Monday to Friday and not a holiday of the configured [`HolidayCalendar`].
//!
//! # Which holidays the built-in calendar holds
//!
//! [`HolidayCalendar::us_federal_and_california`] holds the eleven US federal holidays
//! (5 U.S.C. 6103(a)) on their observed dates (a Saturday holiday is observed on the Friday
//! before, a Sunday holiday on the Monday after), plus the two California state holidays on
//! which state offices, the California Privacy Protection Agency included, are closed:
//!
//! - César Chávez Day (March 31; observed on Monday when it falls on a Sunday, and not moved
//!   when it falls on a Saturday, Gov. Code 6700 and the CalHR holiday rules);
//! - the day after Thanksgiving.
//!
//! Two other holidays listed in Gov. Code 6700 are left out on purpose: Lincoln's Birthday
//! (February 12) has not been a paid state holiday since 2009 and Native American Day (fourth
//! Friday of September) never was; state offices are open on both. Every holiday lengthens a
//! 15-business-day deadline by a day, so a calendar that holds a day the regulator works would
//! let a late response look timely. A business that closes on other days can configure its own
//! list with [`HolidayCalendar::from_dates`].

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Offset, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// A set of non-working dates; weekends are never business days whatever the set holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolidayCalendar {
    dates: BTreeSet<NaiveDate>,
}

impl HolidayCalendar {
    /// US federal holidays (observed dates) plus César Chávez Day and the day after
    /// Thanksgiving, for every year in `years` (see the module documentation for why these).
    /// An observed date that falls outside `years` (New Year's Day on a Saturday is observed
    /// on December 31 of the year before) is kept only when its own year is in `years`.
    pub fn us_federal_and_california(years: RangeInclusive<i32>) -> Self {
        let (first, last) = (*years.start(), *years.end());
        let dates = (first..=last.saturating_add(1))
            .flat_map(holidays_of_year)
            .filter(|date| years.contains(&date.year()))
            .collect();
        Self { dates }
    }

    /// Exactly the given dates (a business's configured list); an empty list means weekends only.
    pub fn from_dates(dates: impl IntoIterator<Item = NaiveDate>) -> Self {
        Self {
            dates: dates.into_iter().collect(),
        }
    }

    /// Whether `date` is one of the calendar's holidays.
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.dates.contains(&date)
    }

    /// Whether `date` is a business day: Monday to Friday and not a holiday.
    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.is_holiday(date)
    }
}

/// The holidays whose nominal date lies in `year` (observed dates may move into the next or
/// previous year). Dates chrono cannot represent are skipped.
fn holidays_of_year(year: i32) -> Vec<NaiveDate> {
    let fixed = |month, day| NaiveDate::from_ymd_opt(year, month, day);
    let nth = |month, weekday, n| NaiveDate::from_weekday_of_month_opt(year, month, weekday, n);
    let last_monday_of_may = nth(5, Weekday::Mon, 5).or_else(|| nth(5, Weekday::Mon, 4));
    let thanksgiving = nth(11, Weekday::Thu, 4);
    [
        fixed(1, 1).map(federal_observed),       // New Year's Day
        nth(1, Weekday::Mon, 3),                 // Birthday of Martin Luther King, Jr.
        nth(2, Weekday::Mon, 3),                 // Washington's Birthday
        fixed(3, 31).map(sunday_to_monday),      // César Chávez Day (California)
        last_monday_of_may,                      // Memorial Day
        fixed(6, 19).map(federal_observed),      // Juneteenth
        fixed(7, 4).map(federal_observed),       // Independence Day
        nth(9, Weekday::Mon, 1),                 // Labor Day
        nth(10, Weekday::Mon, 2),                // Columbus Day
        fixed(11, 11).map(federal_observed),     // Veterans Day
        thanksgiving,                            // Thanksgiving Day
        thanksgiving.and_then(|d| d.succ_opt()), // Day after Thanksgiving (California)
        fixed(12, 25).map(federal_observed),     // Christmas Day
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The federal observed-date rule: Saturday → the Friday before, Sunday → the Monday after.
fn federal_observed(date: NaiveDate) -> NaiveDate {
    match date.weekday() {
        Weekday::Sat => date.pred_opt().unwrap_or(date),
        Weekday::Sun => date.succ_opt().unwrap_or(date),
        _ => date,
    }
}

/// The California rule for a fixed-date state holiday: only a Sunday moves (to Monday).
fn sunday_to_monday(date: NaiveDate) -> NaiveDate {
    match date.weekday() {
        Weekday::Sun => date.succ_opt().unwrap_or(date),
        _ => date,
    }
}

/// End (23:59:59.999 local in `tz`) of the `n`-th business day after the local day of `start`,
/// which is day 0. With `n = 0` the deadline is the end of the receipt day itself.
///
/// # Panics
///
/// Only past the last date chrono can represent (the year 262143).
pub fn add_business_days(
    start: DateTime<Utc>,
    n: u32,
    tz: Tz,
    calendar: &HolidayCalendar,
) -> DateTime<Utc> {
    let mut date = start.with_timezone(&tz).date_naive();
    let mut counted = 0;
    while counted < n {
        date = date.succ_opt().expect("date within chrono's range");
        if calendar.is_business_day(date) {
            counted += 1;
        }
    }
    end_of_local_day(date, tz)
}

/// End (23:59:59.999 local in `tz`) of the `n`-th calendar day after the local day of `start`,
/// which is day 0.
///
/// # Panics
///
/// Only past the last date chrono can represent (the year 262143).
pub fn add_calendar_days(start: DateTime<Utc>, n: u32, tz: Tz) -> DateTime<Utc> {
    let date = start
        .with_timezone(&tz)
        .date_naive()
        .checked_add_days(Days::new(u64::from(n)))
        .expect("date within chrono's range");
    end_of_local_day(date, tz)
}

/// The last millisecond of local `date` in `tz`. When that local time occurs twice the later
/// instant is taken; when it does not exist (the zone skipped that date) the local time is read
/// with the offset in force after the skip, which gives the instant the day would have ended.
fn end_of_local_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let last = date.and_time(NaiveTime::from_hms_milli_opt(23, 59, 59, 999).expect("valid time"));
    tz.from_local_datetime(&last)
        .latest()
        .map(|local| local.with_timezone(&Utc))
        .unwrap_or_else(|| {
            let offset = tz.offset_from_utc_datetime(&last).fix();
            Utc.from_utc_datetime(&(last - offset))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::Los_Angeles;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_2026_calendar_holds_exactly_the_federal_and_california_holidays() {
        let calendar = HolidayCalendar::us_federal_and_california(2026..=2026);
        let expected = [
            d(2026, 1, 1),   // New Year's Day, Thursday
            d(2026, 1, 19),  // MLK Day, 3rd Monday
            d(2026, 2, 16),  // Washington's Birthday, 3rd Monday
            d(2026, 3, 31),  // César Chávez Day, Tuesday
            d(2026, 5, 25),  // Memorial Day, last Monday
            d(2026, 6, 19),  // Juneteenth, Friday
            d(2026, 7, 3),   // Independence Day observed (July 4 is a Saturday)
            d(2026, 9, 7),   // Labor Day
            d(2026, 10, 12), // Columbus Day
            d(2026, 11, 11), // Veterans Day, Wednesday
            d(2026, 11, 26), // Thanksgiving, 4th Thursday
            d(2026, 11, 27), // Day after Thanksgiving
            d(2026, 12, 25), // Christmas, Friday
        ];
        assert_eq!(calendar, HolidayCalendar::from_dates(expected));
    }

    #[test]
    fn a_saturday_federal_holiday_is_observed_on_the_friday_before() {
        let calendar = HolidayCalendar::us_federal_and_california(2026..=2026);
        assert!(calendar.is_holiday(d(2026, 7, 3)));
        assert!(!calendar.is_holiday(d(2026, 7, 4)));
        assert!(!calendar.is_business_day(d(2026, 7, 3)));
    }

    #[test]
    fn a_sunday_federal_holiday_is_observed_on_the_monday_after() {
        let calendar = HolidayCalendar::us_federal_and_california(2022..=2023);
        assert!(calendar.is_holiday(d(2022, 12, 26))); // Christmas 2022 is a Sunday
        assert!(calendar.is_holiday(d(2023, 1, 2))); // New Year's Day 2023 is a Sunday
        assert!(!calendar.is_holiday(d(2023, 1, 1)));
    }

    #[test]
    fn a_saturday_new_years_day_is_observed_in_the_year_before() {
        // January 1, 2022 is a Saturday: observed Friday, December 31, 2021.
        assert!(HolidayCalendar::us_federal_and_california(2021..=2021).is_holiday(d(2021, 12, 31)));
        assert!(
            !HolidayCalendar::us_federal_and_california(2022..=2022).is_holiday(d(2021, 12, 31))
        );
    }

    #[test]
    fn cesar_chavez_day_moves_from_sunday_but_not_from_saturday() {
        let calendar = HolidayCalendar::us_federal_and_california(2024..=2029);
        assert!(calendar.is_holiday(d(2024, 4, 1))); // March 31, 2024 is a Sunday
        assert!(!calendar.is_holiday(d(2029, 3, 30))); // March 31, 2029 is a Saturday
        assert!(calendar.is_holiday(d(2029, 3, 31)));
    }

    #[test]
    fn lincolns_birthday_and_native_american_day_are_not_holidays() {
        let calendar = HolidayCalendar::us_federal_and_california(2026..=2026);
        assert!(calendar.is_business_day(d(2026, 2, 12))); // Thursday
        assert!(calendar.is_business_day(d(2026, 9, 25))); // 4th Friday of September
    }

    #[test]
    fn memorial_day_is_the_last_monday_of_may() {
        let calendar = HolidayCalendar::us_federal_and_california(2025..=2026);
        assert!(calendar.is_holiday(d(2025, 5, 26))); // May 2025 has four Mondays
        assert!(calendar.is_holiday(d(2026, 5, 25))); // May 2026 has four Mondays too
        assert!(HolidayCalendar::us_federal_and_california(2027..=2027).is_holiday(d(2027, 5, 31)));
    }

    #[test]
    fn fifteen_business_days_from_the_friday_before_thanksgiving_2026() {
        // Receipt Friday Nov 20 (day 0). Business days: Nov 23, 24, 25 (1-3); Nov 26 Thanksgiving
        // and Nov 27 day after are holidays; Nov 30 (4), Dec 1-4 (5-8), Dec 7-11 (9-13),
        // Dec 14 (14), Dec 15 (15). End of Dec 15 PST (UTC-8) = Dec 16 07:59:59.999 UTC.
        let calendar = HolidayCalendar::us_federal_and_california(2026..=2026);
        let received = utc("2026-11-20T18:00:00Z");
        assert_eq!(
            add_business_days(received, 15, Los_Angeles, &calendar),
            utc("2026-12-16T07:59:59.999Z")
        );
    }

    #[test]
    fn the_configured_calendar_decides_which_days_are_skipped() {
        // Federal holidays only: Nov 27 is a business day, so day 15 is Monday Dec 14.
        let federal_only = HolidayCalendar::from_dates([d(2026, 11, 26)]);
        let received = utc("2026-11-20T18:00:00Z");
        assert_eq!(
            add_business_days(received, 15, Los_Angeles, &federal_only),
            utc("2026-12-15T07:59:59.999Z")
        );
    }

    #[test]
    fn the_receipt_day_is_the_local_day_in_the_business_time_zone() {
        // 2026-11-21T02:00Z is still Friday Nov 20 in Los Angeles (18:00 PST).
        let calendar = HolidayCalendar::us_federal_and_california(2026..=2026);
        let late_friday = utc("2026-11-21T02:00:00Z");
        assert_eq!(
            add_business_days(late_friday, 1, Los_Angeles, &calendar),
            utc("2026-11-24T07:59:59.999Z")
        );
        // In UTC the same instant is Saturday, so day 1 is Monday Nov 23 in UTC.
        assert_eq!(
            add_business_days(late_friday, 1, Tz::UTC, &calendar),
            utc("2026-11-23T23:59:59.999Z")
        );
    }

    #[test]
    fn a_weekend_receipt_counts_from_the_next_business_day() {
        let calendar = HolidayCalendar::default();
        let saturday = utc("2026-03-07T20:00:00Z");
        assert_eq!(
            add_business_days(saturday, 1, Los_Angeles, &calendar),
            utc("2026-03-10T06:59:59.999Z") // Monday Mar 9 ends at 23:59:59.999 PDT (UTC-7)
        );
        assert_eq!(
            add_business_days(saturday, 0, Los_Angeles, &calendar),
            utc("2026-03-08T07:59:59.999Z") // day 0 is the receipt day itself (PST)
        );
    }

    #[test]
    fn forty_five_calendar_days_end_at_local_midnight() {
        // Receipt Jan 10, 2026 (day 0) + 45 = Feb 24, 2026; PST.
        let received = utc("2026-01-10T17:00:00Z");
        assert_eq!(
            add_calendar_days(received, 45, Los_Angeles),
            utc("2026-02-25T07:59:59.999Z")
        );
        // + 90 (with the extension) = Apr 10, 2026; PDT.
        assert_eq!(
            add_calendar_days(received, 90, Los_Angeles),
            utc("2026-04-11T06:59:59.999Z")
        );
    }

    #[test]
    fn a_skipped_local_date_ends_where_the_day_would_have_ended() {
        // Samoa skipped December 30, 2011 (UTC-10 → UTC+14 at local midnight).
        let apia: Tz = "Pacific/Apia".parse().unwrap();
        let received = utc("2011-12-29T12:00:00Z"); // Dec 29, 02:00 local
        assert_eq!(
            add_calendar_days(received, 1, apia),
            utc("2011-12-30T09:59:59.999Z")
        );
    }

    #[test]
    fn a_day_end_that_occurs_twice_takes_the_later_instant() {
        // Santiago left DST at 24:00 on March 10, 2007: 23:00-23:59 local happened twice.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let received = utc("2007-03-10T12:00:00Z"); // 09:00 local, UTC-3
        assert_eq!(
            add_calendar_days(received, 0, santiago),
            utc("2007-03-11T03:59:59.999Z") // 23:59:59.999 at UTC-4
        );
    }
}
