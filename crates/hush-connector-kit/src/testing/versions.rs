//! What every connector that checks its configured API version against a [`VersionTable`] owes
//! at start-up (Meta, LinkedIn), checked through the connector's own configuration.

use chrono::{Days, NaiveDate};
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;

use crate::settings::Fields;
use crate::versions::{VersionStatus, VersionTable};

/// A connector's version table and how its configuration is built with a given version.
pub struct VersionChecks<'a> {
    /// The connector's table of the vendor's versions.
    pub table: &'a VersionTable,
    /// A valid `[[recipients]]` block of the connector, which errors are named after.
    pub recipient: &'a RecipientConfig,
    /// The version setting, e.g. `settings.api_version`.
    pub field: &'a str,
    /// The version a recipient gets when it configures none.
    pub default: &'a str,
    /// A version of the vendor's form older than every one the table lists.
    pub older: &'a str,
    /// Builds the connector's configuration from `recipient` with the version field set to
    /// `version`, judging the version as on the given day.
    pub build: &'a dyn Fn(&str, NaiveDate) -> Result<(), ConfigError>,
}

impl VersionChecks<'_> {
    /// Runs every check, judged on the table's `as_of` day or on days around each sunset.
    pub fn run(&self) {
        self.the_default_is_served_without_a_warning();
        self.an_older_version_is_refused_naming_the_field_and_the_served_versions();
        for version in self.table.versions {
            if let Some(sunset) = version.sunset {
                self.a_version_near_its_sunset_builds_with_a_warning_naming_the_day(
                    version.name,
                    sunset,
                );
                self.a_version_is_refused_from_its_sunset_day(version.name, sunset);
            }
        }
    }

    fn the_default_is_served_without_a_warning(&self) {
        let today = self.table.as_of;
        assert_eq!(
            self.table.status(self.default, today),
            VersionStatus::Served,
            "the default {} is served without a warning on {today}",
            self.default
        );
        if let Err(error) = (self.build)(self.default, today) {
            panic!("the default {} is refused: {error}", self.default);
        }
    }

    fn an_older_version_is_refused_naming_the_field_and_the_served_versions(&self) {
        let refused = match (self.build)(self.older, self.table.as_of) {
            Ok(()) => panic!("{} is older than the table, yet built", self.older),
            Err(error) => error.to_string(),
        };
        let field = Fields::of(self.recipient).name(self.field);
        assert!(
            refused.contains(&field) && refused.contains(self.default),
            "the refusal names {field} and the served {}: {refused}",
            self.default
        );
    }

    fn a_version_near_its_sunset_builds_with_a_warning_naming_the_day(
        &self,
        version: &str,
        sunset: NaiveDate,
    ) {
        let day = sunset - Days::new(45);
        let advisory = self
            .table
            .check(&Fields::of(self.recipient), self.field, version, day)
            .unwrap_or_else(|error| {
                panic!("{version} is refused 45 days before {sunset}: {error}")
            });
        assert!(
            advisory
                .as_deref()
                .is_some_and(|a| a.contains(&sunset.to_string())),
            "{version} warns on {day} naming its sunset {sunset}, got {advisory:?}"
        );
        if let Err(error) = (self.build)(version, day) {
            panic!("{version} is refused on {day}, 45 days before its sunset: {error}");
        }
    }

    fn a_version_is_refused_from_its_sunset_day(&self, version: &str, sunset: NaiveDate) {
        let eve = sunset - Days::new(1);
        if let Err(error) = (self.build)(version, eve) {
            panic!("{version} is refused on {eve}, the day before its sunset: {error}");
        }
        let field = Fields::of(self.recipient).name(self.field);
        match (self.build)(version, sunset) {
            Ok(()) => panic!("{version} builds on its sunset day {sunset}"),
            Err(error) => assert!(
                error.to_string().contains(&field),
                "the refusal names {field}: {error}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versions::{date, DatedVersion};

    const TABLE: VersionTable = VersionTable {
        api: "Example API",
        rank: |v| v.parse().ok(),
        form: "must be digits",
        as_of: date(2026, 12, 1),
        versions: &[
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

    fn recipient() -> RecipientConfig {
        toml::from_str(
            "id = \"x\"\nkind = \"k\"\nrole = \"THIRD_PARTY\"\nbase_url = \"http://h\"\n",
        )
        .unwrap()
    }

    /// The checks of `TABLE`, building with `build`.
    fn checks<'a>(
        recipient: &'a RecipientConfig,
        build: &'a dyn Fn(&str, NaiveDate) -> Result<(), ConfigError>,
    ) -> VersionChecks<'a> {
        VersionChecks {
            table: &TABLE,
            recipient,
            field: "settings.v",
            default: "5",
            older: "3",
            build,
        }
    }

    #[test]
    fn a_configuration_checked_against_the_table_passes() {
        let recipient = recipient();
        let fields = Fields::of(&recipient);
        checks(&recipient, &|version, today| {
            TABLE
                .check_configured(&fields, "settings.v", version, today)
                .map(drop)
        })
        .run();
    }

    #[test]
    #[should_panic(expected = "older than the table, yet built")]
    fn a_configuration_that_never_checks_fails() {
        let recipient = recipient();
        checks(&recipient, &|_, _| Ok(())).run();
    }
}
