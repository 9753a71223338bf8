//! Validation of a `[[recipients]]` block whose errors name the field at fault, as
//! `recipients.<id>.<field>`, so an operator knows which line to fix.

use std::fmt::Display;
use std::time::Duration;

use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;

use crate::secret::Secret;

/// Checks on one recipient's block.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    recipient: &'a RecipientConfig,
}

impl<'a> Fields<'a> {
    /// Checks on `recipient`'s block.
    pub fn of(recipient: &'a RecipientConfig) -> Self {
        Self { recipient }
    }

    /// The full name of `field`, e.g. `recipients.crm.settings.audience_id`.
    pub fn name(&self, field: &str) -> String {
        format!("recipients.{}.{field}", self.recipient.id)
    }

    /// An error saying `field` `must` be something, e.g. `must be at least 1`.
    pub fn invalid(&self, field: &str, must: impl Display) -> ConfigError {
        ConfigError::Invalid(format!("{} {must}", self.name(field)))
    }

    /// `Ok` when the recipient's `kind` is one of `kinds`, which `connector` serves.
    pub fn kind_is(&self, kinds: &[&str], connector: &str) -> Result<(), ConfigError> {
        if kinds.contains(&self.recipient.kind.as_str()) {
            return Ok(());
        }
        Err(self.invalid(
            "kind",
            format!(
                "is `{}`, but the {connector} connector serves `{}`",
                self.recipient.kind,
                kinds.join("`, `")
            ),
        ))
    }

    /// `Ok` when `value` is at least 1.
    pub fn at_least_one(&self, field: &str, value: u64) -> Result<(), ConfigError> {
        if value == 0 {
            return Err(self.invalid(field, "must be at least 1"));
        }
        Ok(())
    }

    /// `value` seconds as a duration, when `value` is at least 1.
    pub fn at_least_one_second(&self, field: &str, value: u64) -> Result<Duration, ConfigError> {
        self.at_least_one(field, value)?;
        Ok(Duration::from_secs(value))
    }

    /// The recipient's `base_url` without a trailing slash, ready to have paths appended.
    pub fn base_url(&self) -> String {
        self.recipient.base_url.trim_end_matches('/').to_owned()
    }

    /// The recipient's `timeout_ms`: how long one call to the vendor may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.recipient.timeout_ms)
    }

    /// `Ok` when the secret `value` of credential `field` holds more than white space.
    pub fn not_blank(&self, field: &str, value: &Secret) -> Result<(), ConfigError> {
        if value.expose().trim().is_empty() {
            return Err(self.invalid(field, "is empty"));
        }
        Ok(())
    }

    /// `Ok` when `value` is a non-empty string of ASCII digits; `what` says what it identifies.
    pub fn numeric_id(&self, field: &str, value: &str, what: &str) -> Result<(), ConfigError> {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.invalid(field, format!("must be the numeric id of {what}")));
        }
        Ok(())
    }

    /// `Ok` when `value` is an `http://` or `https://` URL.
    pub fn http_url(&self, field: &str, value: &str) -> Result<(), ConfigError> {
        if !(value.starts_with("http://") || value.starts_with("https://")) {
            return Err(self.invalid(field, "must be an http(s) URL"));
        }
        Ok(())
    }

    /// The credential `name`, read from the environment variable the block names.
    pub fn credential(&self, name: &str) -> Result<Secret, ConfigError> {
        self.recipient.credential(name).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient() -> RecipientConfig {
        toml::from_str(
            "id = \"ads\"\nkind = \"meta_custom_audiences\"\nrole = \"THIRD_PARTY\"\nbase_url = \"http://127.0.0.1:1\"\n",
        )
        .unwrap()
    }

    #[test]
    fn every_check_names_the_field_at_fault() {
        let recipient = recipient();
        let fields = Fields::of(&recipient);
        let text = |r: Result<(), ConfigError>| r.unwrap_err().to_string();
        assert!(text(fields.at_least_one("settings.max_wait_ms", 0))
            .contains("recipients.ads.settings.max_wait_ms must be at least 1"));
        assert!(
            text(fields.numeric_id("settings.audience_id", "12a", "a Custom Audience")).contains(
                "recipients.ads.settings.audience_id must be the numeric id of a Custom Audience"
            )
        );
        assert!(text(fields.http_url("base_url", "ftp://x"))
            .contains("recipients.ads.base_url must be an http(s) URL"));
        assert!(text(fields.kind_is(&["hubspot"], "HubSpot"))
            .contains("recipients.ads.kind is `meta_custom_audiences`, but the HubSpot connector serves `hubspot`"));
    }

    #[test]
    fn values_come_back_in_the_form_connectors_use() {
        let mut recipient = recipient();
        recipient.base_url = "https://api.example.com/".into();
        recipient.timeout_ms = 1_500;
        let fields = Fields::of(&recipient);
        assert_eq!(fields.base_url(), "https://api.example.com");
        assert_eq!(fields.timeout(), Duration::from_millis(1_500));
        assert_eq!(
            fields.at_least_one_second("settings.wait", 60).unwrap(),
            Duration::from_secs(60)
        );
        let zero = fields.at_least_one_second("settings.wait", 0).unwrap_err();
        assert!(zero
            .to_string()
            .contains("recipients.ads.settings.wait must be at least 1"));
        let blank = fields.not_blank("credentials.token", &Secret::new(" "));
        assert!(blank
            .unwrap_err()
            .to_string()
            .contains("recipients.ads.credentials.token is empty"));
        assert!(fields
            .not_blank("credentials.token", &Secret::new("t"))
            .is_ok());
    }

    #[test]
    fn valid_values_pass() {
        let recipient = recipient();
        let fields = Fields::of(&recipient);
        assert!(fields.at_least_one("x", 1).is_ok());
        assert!(fields.numeric_id("x", "0123", "y").is_ok());
        assert!(fields.http_url("x", "https://a").is_ok());
        assert!(fields.kind_is(&["meta_custom_audiences"], "Meta").is_ok());
    }
}
