//! The legal deadline of each request, by request kind and jurisdiction.
//!
//! Built-in table (overridable per jurisdiction in [`DeadlineConfig::overrides`]):
//!
//! | jurisdiction | opt-out / limit (opt-in uses the opt-out clock) | delete |
//! |---|---|---|
//! | `US-CA` | 15 business days, no extension (11 CCR 7026(f), 7027(g)) | 45 calendar days, one 45-day extension (Civ. Code 1798.130(a)(2)) |
//! | `US-VA`, `US-CO`, `US-CT`, `US-UT`, `US-TX`, `US-OR`, `US-MT`, `US-IA`, `US-DE`, `US-NH`, `US-NJ`, `US-TN`, `US-MN`, `US-MD`, `US-IN`, `US-KY`, `US-RI`, `US-NE` | 45 calendar days, one 45-day extension | the same |
//! | anything else | the strictest: 15 business days, no extension | 45 calendar days, one 45-day extension |
//!
//! Iowa's statute gives 90 days (+45); the table applies the 45-day clock of the other states,
//! which is stricter, so a request that meets it meets Iowa's too. Override `US-IA` to use 90.

use std::collections::BTreeMap;

use crate::events::RequestKind;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::{add_business_days, add_calendar_days, HolidayCalendar};

/// Years the built-in holiday calendar covers when no holiday list is configured.
pub const BUILT_IN_CALENDAR_YEARS: std::ops::RangeInclusive<i32> = 2000..=2099;

/// How the days of a clock are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayCount {
    /// Monday to Friday, holidays of the calendar excluded.
    BusinessDays,
    /// Every day.
    CalendarDays,
}

impl DayCount {
    fn noun(self, days: u32) -> &'static str {
        match (self, days) {
            (DayCount::BusinessDays, 1) => "business day",
            (DayCount::BusinessDays, _) => "business days",
            (DayCount::CalendarDays, 1) => "calendar day",
            (DayCount::CalendarDays, _) => "calendar days",
        }
    }
}

/// One response clock: `days` after receipt, optionally extended once by `extension_days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockRule {
    /// How days are counted.
    pub count: DayCount,
    /// Days after the receipt day (which is day 0).
    pub days: u32,
    /// Days one extension adds, counted the same way; 0 = no extension allowed.
    #[serde(default)]
    pub extension_days: u32,
    /// Legal source quoted in the deadline's rule text, e.g. `11 CCR 7026(f)`.
    pub source: String,
}

impl ClockRule {
    fn new(count: DayCount, days: u32, extension_days: u32, source: &str) -> Self {
        Self {
            count,
            days,
            extension_days,
            source: source.to_string(),
        }
    }
}

/// The clocks of one jurisdiction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JurisdictionRule {
    /// Opt-out of sale/share (and opt-in, which uses the same clock).
    pub opt_out: ClockRule,
    /// Limit use of sensitive personal information.
    pub limit: ClockRule,
    /// Delete.
    pub delete: ClockRule,
}

impl JurisdictionRule {
    fn for_kind(&self, kind: RequestKind) -> &ClockRule {
        match kind {
            RequestKind::OptOutSaleShare | RequestKind::OptInSaleShare => &self.opt_out,
            RequestKind::LimitSensitive => &self.limit,
            RequestKind::Delete => &self.delete,
        }
    }
}

/// Deadline settings, the `[deadlines]` block of the auditor's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineConfig {
    /// IANA time zone of the business; business days and day ends are local to it.
    #[serde(default = "default_time_zone")]
    pub time_zone: Tz,
    /// The business's own holiday list; replaces the built-in US federal + California
    /// calendar entirely when set (an empty list = weekends only).
    #[serde(default)]
    pub holidays: Option<Vec<NaiveDate>>,
    /// A request with confirmations missing is AT_RISK this many calendar days before its deadline.
    #[serde(default = "default_at_risk_days")]
    pub at_risk_days: u32,
    /// Per-jurisdiction rules (ISO 3166-2 code, e.g. `US-IA`) replacing the built-in table.
    #[serde(default)]
    pub overrides: BTreeMap<String, JurisdictionRule>,
}

fn default_time_zone() -> Tz {
    Tz::America__Los_Angeles
}

fn default_at_risk_days() -> u32 {
    3
}

impl Default for DeadlineConfig {
    fn default() -> Self {
        Self {
            time_zone: default_time_zone(),
            holidays: None,
            at_risk_days: default_at_risk_days(),
            overrides: BTreeMap::new(),
        }
    }
}

/// A computed legal deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// Last instant of compliance: the end of the last allowed day, local to the business.
    pub due: DateTime<Utc>,
    /// Human text naming the rule and its source, e.g. `11 CCR 7026(f): 15 business days`.
    pub rule: String,
}

/// Comprehensive state privacy laws with a 45-day (+45) clock for opt-out and delete.
const OTHER_STATES: [(&str, &str); 18] = [
    ("US-VA", "Virginia Consumer Data Protection Act"),
    ("US-CO", "Colorado Privacy Act"),
    ("US-CT", "Connecticut Data Privacy Act"),
    ("US-UT", "Utah Consumer Privacy Act"),
    ("US-TX", "Texas Data Privacy and Security Act"),
    ("US-OR", "Oregon Consumer Privacy Act"),
    ("US-MT", "Montana Consumer Data Privacy Act"),
    (
        "US-IA",
        "Iowa Consumer Data Protection Act (90 days allowed; stricter 45-day clock applied)",
    ),
    ("US-DE", "Delaware Personal Data Privacy Act"),
    ("US-NH", "New Hampshire Privacy Act"),
    ("US-NJ", "New Jersey Data Privacy Act"),
    ("US-TN", "Tennessee Information Protection Act"),
    ("US-MN", "Minnesota Consumer Data Privacy Act"),
    ("US-MD", "Maryland Online Data Privacy Act"),
    ("US-IN", "Indiana Consumer Data Protection Act"),
    ("US-KY", "Kentucky Consumer Data Protection Act"),
    (
        "US-RI",
        "Rhode Island Data Transparency and Privacy Protection Act",
    ),
    ("US-NE", "Nebraska Data Privacy Act"),
];

fn california() -> JurisdictionRule {
    JurisdictionRule {
        opt_out: ClockRule::new(DayCount::BusinessDays, 15, 0, "11 CCR 7026(f)"),
        limit: ClockRule::new(DayCount::BusinessDays, 15, 0, "11 CCR 7027(g)"),
        delete: ClockRule::new(DayCount::CalendarDays, 45, 45, "Civ. Code 1798.130(a)(2)"),
    }
}

fn other_state(act: &str) -> JurisdictionRule {
    let clock = ClockRule::new(DayCount::CalendarDays, 45, 45, act);
    JurisdictionRule {
        opt_out: clock.clone(),
        limit: clock.clone(),
        delete: clock,
    }
}

/// Computes deadlines from the per-jurisdiction table, the holiday calendar and the time zone.
#[derive(Debug, Clone)]
pub struct DeadlinePolicy {
    time_zone: Tz,
    calendar: HolidayCalendar,
    at_risk_days: u32,
    overrides: BTreeMap<String, JurisdictionRule>,
}

impl Default for DeadlinePolicy {
    fn default() -> Self {
        Self::new(DeadlineConfig::default())
    }
}

impl DeadlinePolicy {
    /// Builds the policy; jurisdiction codes are matched case-insensitively.
    pub fn new(config: DeadlineConfig) -> Self {
        let calendar = match config.holidays {
            Some(dates) => HolidayCalendar::from_dates(dates),
            None => HolidayCalendar::us_federal_and_california(BUILT_IN_CALENDAR_YEARS),
        };
        Self {
            time_zone: config.time_zone,
            calendar,
            at_risk_days: config.at_risk_days,
            overrides: config
                .overrides
                .into_iter()
                .map(|(code, rule)| (normalise_code(&code), rule))
                .collect(),
        }
    }

    /// Calendar days before the deadline at which an incomplete request becomes AT_RISK.
    pub fn at_risk_days(&self) -> u32 {
        self.at_risk_days
    }

    /// The deadline of a `kind` request from `jurisdiction` received at `received_at`. With
    /// `extended`, the rule's one extension is added where the rule allows one; the rule text
    /// says when it does not. An unknown jurisdiction gets the strictest clock.
    pub fn deadline_for(
        &self,
        kind: RequestKind,
        jurisdiction: &str,
        received_at: DateTime<Utc>,
        extended: bool,
    ) -> Deadline {
        let code = normalise_code(jurisdiction);
        let (rule, prefix) = self.rule_for(&code);
        let clock = rule.for_kind(kind);
        let mut text = String::new();
        if let Some(prefix) = prefix {
            text.push_str(prefix);
        }
        if kind == RequestKind::OptInSaleShare {
            text.push_str("opt-in uses the opt-out clock; ");
        }
        text.push_str(&format!(
            "{}: {} {}",
            clock.source,
            clock.days,
            clock.count.noun(clock.days)
        ));
        let mut days = clock.days;
        if extended {
            if clock.extension_days > 0 {
                days = days.saturating_add(clock.extension_days);
                text.push_str(&format!(" + {}-day extension", clock.extension_days));
            } else {
                text.push_str(" (no extension available)");
            }
        }
        let due = match clock.count {
            DayCount::BusinessDays => {
                add_business_days(received_at, days, self.time_zone, &self.calendar)
            }
            DayCount::CalendarDays => add_calendar_days(received_at, days, self.time_zone),
        };
        Deadline { due, rule: text }
    }

    /// The rule of a normalised jurisdiction code, with a rule-text prefix when it is a fallback.
    fn rule_for(&self, code: &str) -> (JurisdictionRule, Option<&'static str>) {
        if let Some(rule) = self.overrides.get(code) {
            return (rule.clone(), None);
        }
        if code == "US-CA" {
            return (california(), None);
        }
        if let Some((_, act)) = OTHER_STATES.iter().find(|(state, _)| *state == code) {
            return (other_state(act), None);
        }
        (
            california(),
            Some("unknown jurisdiction, strictest rule applied: "),
        )
    }
}

fn normalise_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Friday before Thanksgiving 2026, 10:00 PST.
    fn friday_before_thanksgiving() -> DateTime<Utc> {
        utc("2026-11-20T18:00:00Z")
    }

    #[test]
    fn california_opt_out_is_fifteen_business_days() {
        let deadline = DeadlinePolicy::default().deadline_for(
            RequestKind::OptOutSaleShare,
            "US-CA",
            friday_before_thanksgiving(),
            false,
        );
        // Hand count in calendar.rs: day 15 is Tuesday, December 15, 2026 (PST).
        assert_eq!(deadline.due, utc("2026-12-16T07:59:59.999Z"));
        assert_eq!(deadline.rule, "11 CCR 7026(f): 15 business days");
    }

    #[test]
    fn california_limit_cites_7027_and_uses_the_same_clock() {
        let deadline = DeadlinePolicy::default().deadline_for(
            RequestKind::LimitSensitive,
            "us-ca",
            friday_before_thanksgiving(),
            false,
        );
        assert_eq!(deadline.due, utc("2026-12-16T07:59:59.999Z"));
        assert_eq!(deadline.rule, "11 CCR 7027(g): 15 business days");
    }

    #[test]
    fn an_opt_out_cannot_be_extended_in_california() {
        let deadline = DeadlinePolicy::default().deadline_for(
            RequestKind::OptOutSaleShare,
            "US-CA",
            friday_before_thanksgiving(),
            true,
        );
        assert_eq!(deadline.due, utc("2026-12-16T07:59:59.999Z"));
        assert_eq!(
            deadline.rule,
            "11 CCR 7026(f): 15 business days (no extension available)"
        );
    }

    #[test]
    fn opt_in_uses_the_opt_out_clock() {
        let deadline = DeadlinePolicy::default().deadline_for(
            RequestKind::OptInSaleShare,
            "US-CA",
            friday_before_thanksgiving(),
            false,
        );
        assert_eq!(deadline.due, utc("2026-12-16T07:59:59.999Z"));
        assert!(deadline.rule.ends_with("11 CCR 7026(f): 15 business days"));
    }

    #[test]
    fn california_delete_is_45_calendar_days_and_90_with_the_extension() {
        let policy = DeadlinePolicy::default();
        let received = friday_before_thanksgiving();
        // Nov 20 + 45 = Jan 4, 2027 (10 days to Nov 30, 31 to Dec 31, 4 more); PST.
        let normal = policy.deadline_for(RequestKind::Delete, "US-CA", received, false);
        assert_eq!(normal.due, utc("2027-01-05T07:59:59.999Z"));
        assert_eq!(normal.rule, "Civ. Code 1798.130(a)(2): 45 calendar days");
        // Nov 20 + 90 = Feb 18, 2027 (45 to Jan 4, 27 more to Jan 31, 18 more).
        let extended = policy.deadline_for(RequestKind::Delete, "US-CA", received, true);
        assert_eq!(extended.due, utc("2027-02-19T07:59:59.999Z"));
        assert_eq!(
            extended.rule,
            "Civ. Code 1798.130(a)(2): 45 calendar days + 45-day extension"
        );
    }

    #[test]
    fn other_states_give_45_calendar_days_for_opt_out_too() {
        let policy = DeadlinePolicy::default();
        for (state, act) in OTHER_STATES {
            let deadline = policy.deadline_for(
                RequestKind::OptOutSaleShare,
                state,
                friday_before_thanksgiving(),
                false,
            );
            assert_eq!(deadline.due, utc("2027-01-05T07:59:59.999Z"), "{state}");
            assert_eq!(deadline.rule, format!("{act}: 45 calendar days"));
            let extended = policy.deadline_for(
                RequestKind::OptOutSaleShare,
                state,
                friday_before_thanksgiving(),
                true,
            );
            assert_eq!(extended.due, utc("2027-02-19T07:59:59.999Z"), "{state}");
        }
    }

    #[test]
    fn an_unknown_jurisdiction_gets_the_strictest_rule() {
        let policy = DeadlinePolicy::default();
        let received = friday_before_thanksgiving();
        for code in ["US-WA", "DE-BY", ""] {
            let opt_out = policy.deadline_for(RequestKind::OptOutSaleShare, code, received, false);
            assert_eq!(opt_out.due, utc("2026-12-16T07:59:59.999Z"));
            assert_eq!(
                opt_out.rule,
                "unknown jurisdiction, strictest rule applied: 11 CCR 7026(f): 15 business days"
            );
            let delete = policy.deadline_for(RequestKind::Delete, code, received, false);
            assert_eq!(delete.due, utc("2027-01-05T07:59:59.999Z"));
        }
    }

    #[test]
    fn an_override_replaces_the_built_in_rule() {
        let config: DeadlineConfig = toml::from_str(
            r#"
            time_zone = "America/New_York"
            holidays = []
            at_risk_days = 5
            [overrides.us-ia]
            opt_out = { count = "calendar_days", days = 90, extension_days = 45, source = "Iowa Code 715D.4" }
            limit = { count = "calendar_days", days = 90, source = "Iowa Code 715D.4" }
            delete = { count = "business_days", days = 10, source = "internal policy" }
            "#,
        )
        .unwrap();
        let policy = DeadlinePolicy::new(config);
        assert_eq!(policy.at_risk_days(), 5);
        let received = utc("2026-11-20T15:00:00Z"); // Friday 10:00 EST
        let opt_out = policy.deadline_for(RequestKind::OptOutSaleShare, "US-IA", received, false);
        // Nov 20 + 90 = Feb 18, 2027, end of day EST (UTC-5).
        assert_eq!(opt_out.due, utc("2027-02-19T04:59:59.999Z"));
        assert_eq!(opt_out.rule, "Iowa Code 715D.4: 90 calendar days");
        let limit = policy.deadline_for(RequestKind::LimitSensitive, "US-IA", received, true);
        assert_eq!(
            limit.rule,
            "Iowa Code 715D.4: 90 calendar days (no extension available)"
        );
        // Empty holiday list: Thanksgiving counts. Nov 23-27 (1-5), Nov 30-Dec 4 (6-10).
        let delete = policy.deadline_for(RequestKind::Delete, "US-IA", received, false);
        assert_eq!(delete.due, utc("2026-12-05T04:59:59.999Z"));
        // California still uses the built-in rule, counted in the configured zone.
        let california = policy.deadline_for(RequestKind::Delete, "US-CA", received, false);
        assert_eq!(california.due, utc("2027-01-05T04:59:59.999Z"));
    }

    #[test]
    fn the_default_config_is_los_angeles_with_three_at_risk_days() {
        let config: DeadlineConfig = toml::from_str("").unwrap();
        assert_eq!(config, DeadlineConfig::default());
        assert_eq!(config.time_zone, Tz::America__Los_Angeles);
        assert_eq!(config.at_risk_days, 3);
        assert!(config.holidays.is_none());
    }

    #[test]
    fn an_unknown_time_zone_is_refused() {
        let error = toml::from_str::<DeadlineConfig>(r#"time_zone = "America/Nowhere""#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("America/Nowhere"), "{error}");
    }
}
