//! Dated tables of the API versions a vendor serves, so that a connector refuses at start-up a
//! configured version the vendor no longer serves and warns about one close to its sunset,
//! instead of failing every request later with the vendor's version error.

use std::fmt::Write as _;

use chrono::NaiveDate;
use hush_contracts::config::ConfigError;

use crate::settings::Fields;

/// How many days before a version's sunset start-up warns about it: Meta keeps a replaced
/// version for at least 90 days, so a warning this early leaves time to move.
pub const WARN_DAYS_BEFORE_SUNSET: i64 = 90;

/// One version a vendor published, with the dates its documentation gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatedVersion {
    /// The version as configured and sent, e.g. `v27.0` or `202603`.
    pub name: &'static str,
    /// Day the vendor released it.
    pub released: NaiveDate,
    /// First day the vendor no longer serves it; `None` while the vendor has not announced one.
    pub sunset: Option<NaiveDate>,
}

impl DatedVersion {
    /// A version released on `released` that the vendor stops serving on `sunset`; a const
    /// constructor, so that a table lists one version a line.
    pub const fn with_sunset(name: &'static str, released: NaiveDate, sunset: NaiveDate) -> Self {
        Self {
            name,
            released,
            sunset: Some(sunset),
        }
    }

    /// A version released on `released` whose sunset the vendor has not announced.
    pub const fn without_sunset(name: &'static str, released: NaiveDate) -> Self {
        Self {
            name,
            released,
            sunset: None,
        }
    }
}

/// A vendor's versions, oldest first, as its documentation stood on `as_of`, with how the
/// vendor writes a version.
#[derive(Debug, Clone, Copy)]
pub struct VersionTable {
    /// The vendor and API, for messages, e.g. `Meta Marketing API`.
    pub api: &'static str,
    /// Orders versions (a larger rank is newer); `None` for a string that is not a version of
    /// this vendor's form.
    pub rank: fn(&str) -> Option<u64>,
    /// What a configured version must look like, said when it does not, e.g. `must look like
    /// \`v27.0\``.
    pub form: &'static str,
    /// The day the table was last checked against the vendor's documentation.
    pub as_of: NaiveDate,
    /// Every version the table knows, oldest first.
    pub versions: &'static [DatedVersion],
}

/// What the table says about one configured version on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionStatus {
    /// Served, and its sunset (if any) is more than [`WARN_DAYS_BEFORE_SUNSET`] days away.
    Served,
    /// Served, but the vendor stops serving it on `sunset`, `days_left` days from today.
    NearSunset {
        /// First day it is no longer served.
        sunset: NaiveDate,
        /// Days from today to `sunset`.
        days_left: i64,
    },
    /// No longer served: sunset on `sunset`, or (`None`) older than every version in the table.
    Gone {
        /// The sunset day, when the table lists the version.
        sunset: Option<NaiveDate>,
    },
    /// Not in the table and newer than its oldest entry: it cannot be checked.
    Unlisted,
}

/// A const constructor for table entries; panics at compile time on an impossible date.
pub const fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("impossible date in a version table"),
    }
}

impl VersionTable {
    /// The status of `version` on `today`. A version older than every listed one (by
    /// [`VersionTable::rank`]) counts as gone, because vendors retire versions oldest first.
    pub fn status(&self, version: &str, today: NaiveDate) -> VersionStatus {
        let rank = self.rank;
        if let Some(entry) = self.versions.iter().find(|v| v.name == version) {
            return match entry.sunset {
                Some(sunset) if sunset <= today => VersionStatus::Gone {
                    sunset: Some(sunset),
                },
                Some(sunset) if (sunset - today).num_days() <= WARN_DAYS_BEFORE_SUNSET => {
                    VersionStatus::NearSunset {
                        sunset,
                        days_left: (sunset - today).num_days(),
                    }
                }
                _ => VersionStatus::Served,
            };
        }
        let oldest = self.versions.first().and_then(|v| rank(v.name));
        match (rank(version), oldest) {
            (Some(asked), Some(oldest)) if asked < oldest => VersionStatus::Gone { sunset: None },
            _ => VersionStatus::Unlisted,
        }
    }

    /// The listed versions served on `today`, oldest first.
    pub fn served_on(&self, today: NaiveDate) -> Vec<&'static str> {
        self.versions
            .iter()
            .filter(|v| v.released <= today && v.sunset.is_none_or(|sunset| sunset > today))
            .map(|v| v.name)
            .collect()
    }

    /// [`VersionTable::check`] after refusing, with an error naming `field` and saying
    /// [`VersionTable::form`], a `version` that is not of the vendor's form at all.
    pub fn check_configured(
        &self,
        fields: &Fields<'_>,
        field: &str,
        version: &str,
        today: NaiveDate,
    ) -> Result<Option<String>, ConfigError> {
        if (self.rank)(version).is_none() {
            return Err(fields.invalid(field, self.form));
        }
        self.check(fields, field, version, today)
    }

    /// Start-up check of the configured `version` in `field`: an error naming the field and the
    /// versions served today when it is gone, a `tracing` warning (also returned) when it is
    /// near its sunset or not in the table, nothing otherwise.
    pub fn check(
        &self,
        fields: &Fields<'_>,
        field: &str,
        version: &str,
        today: NaiveDate,
    ) -> Result<Option<String>, ConfigError> {
        let served = self.served_on(today).join(", ");
        let advisory = match self.status(version, today) {
            VersionStatus::Served => return Ok(None),
            VersionStatus::Gone { sunset } => {
                let mut must = format!("is {version}, which the {} no longer serves", self.api);
                if let Some(sunset) = sunset {
                    let _ = write!(must, " (sunset {sunset})");
                }
                let _ = write!(must, "; set it to one served today: {served}");
                return Err(fields.invalid(field, must));
            }
            VersionStatus::NearSunset { sunset, days_left } => format!(
                "{} is {version}, which the {} stops serving on {sunset} ({days_left} days); \
                 move to one of: {served}",
                fields.name(field),
                self.api
            ),
            VersionStatus::Unlisted => format!(
                "{} is {version}, which is not in Hush's table of {} versions (as of {}), so \
                 its sunset cannot be checked; versions known to be served: {served}",
                fields.name(field),
                self.api,
                self.as_of
            ),
        };
        tracing::warn!(field = %fields.name(field), version, "{advisory}");
        Ok(Some(advisory))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: VersionTable = VersionTable {
        api: "Example API",
        rank,
        form: "must be digits",
        as_of: date(2026, 12, 1),
        versions: &[
            DatedVersion {
                name: "3",
                released: date(2025, 1, 1),
                sunset: Some(date(2026, 6, 1)),
            },
            DatedVersion {
                name: "4",
                released: date(2025, 6, 1),
                sunset: Some(date(2027, 1, 15)),
            },
            DatedVersion {
                name: "5",
                released: date(2026, 6, 1),
                sunset: None,
            },
        ],
    };

    fn rank(version: &str) -> Option<u64> {
        version.parse().ok()
    }

    const TODAY: NaiveDate = date(2026, 12, 1);

    #[test]
    fn a_version_past_its_sunset_is_gone() {
        assert_eq!(
            TABLE.status("3", TODAY),
            VersionStatus::Gone {
                sunset: Some(date(2026, 6, 1))
            }
        );
    }

    #[test]
    fn a_version_older_than_the_table_is_gone() {
        assert_eq!(
            TABLE.status("2", TODAY),
            VersionStatus::Gone { sunset: None }
        );
    }

    #[test]
    fn a_version_within_the_warning_window_is_near_sunset() {
        assert_eq!(
            TABLE.status("4", TODAY),
            VersionStatus::NearSunset {
                sunset: date(2027, 1, 15),
                days_left: 45
            }
        );
        assert_eq!(TABLE.status("4", date(2026, 10, 1)), VersionStatus::Served);
    }

    #[test]
    fn a_version_without_a_sunset_is_served() {
        assert_eq!(TABLE.status("5", TODAY), VersionStatus::Served);
    }

    #[test]
    fn an_unknown_newer_version_is_unlisted() {
        assert_eq!(TABLE.status("6", TODAY), VersionStatus::Unlisted);
        assert_eq!(TABLE.status("x", TODAY), VersionStatus::Unlisted);
    }

    #[test]
    fn a_configured_version_of_the_wrong_form_is_refused_naming_the_field() {
        let recipient: hush_contracts::recipients::RecipientConfig = toml::from_str(
            "id = \"ads\"\nkind = \"k\"\nrole = \"THIRD_PARTY\"\nbase_url = \"http://h\"\n",
        )
        .unwrap();
        let fields = Fields::of(&recipient);
        let check = |version| TABLE.check_configured(&fields, "settings.v", version, TODAY);
        let malformed = check("v5").unwrap_err().to_string();
        assert!(
            malformed.contains("recipients.ads.settings.v must be digits"),
            "{malformed}"
        );
        let gone = check("3").unwrap_err().to_string();
        assert!(gone.contains("no longer serves"), "{gone}");
        assert_eq!(check("5").unwrap(), None);
    }

    #[test]
    fn served_versions_exclude_sunset_and_unreleased_ones() {
        assert_eq!(TABLE.served_on(TODAY), ["4", "5"]);
        assert_eq!(TABLE.served_on(date(2025, 2, 1)), ["3"]);
    }
}
