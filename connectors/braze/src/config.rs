//! The `[[recipients]]` block of a Braze recipient, validated at start-up.

use std::time::Duration;

use hush_connector_kit::poll::{DefaultWaits, JobWaits, Waits};
use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

/// The connector kind this crate implements (`kind = "braze"`).
pub const KIND: &str = "braze";

/// Braze's REST endpoint of the US-01 instance; each instance has its own
/// (`https://rest.iad-0N.braze.com`, `https://rest.fra-0N.braze.eu`, …): `base_url` must be the
/// one of the dashboard the workspace lives on.
pub const DEFAULT_BASE_URL: &str = "https://rest.iad-01.braze.com";
/// Wait between two read-backs while Braze works through its queue, in milliseconds.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 5_000;
/// Longest wait inside one call for Braze to show the change, in milliseconds.
pub const DEFAULT_MAX_WAIT_MS: u64 = 60_000;

/// Braze standard profile fields (user attributes object): a custom attribute may not take one
/// of these names, or the write would change the profile field instead.
const PROFILE_FIELDS: &[&str] = &[
    "alias_name",
    "alias_label",
    "braze_id",
    "country",
    "current_location",
    "date_of_first_session",
    "date_of_last_session",
    "dob",
    "email",
    "email_subscribe",
    "email_open_tracking_disabled",
    "email_click_tracking_disabled",
    "external_id",
    "facebook",
    "first_name",
    "gender",
    "home_city",
    "language",
    "last_name",
    "marked_email_as_spam_at",
    "phone",
    "push_subscribe",
    "push_tokens",
    "subscription_groups",
    "time_zone",
    "twitter",
    "user_alias",
];

/// Connector-specific `[recipients.settings]` of a Braze recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrazeSettings {
    /// Boolean custom attribute set to `true` on an opt-out of sale/sharing (and to `false` on
    /// an opt-in). Default `hush_do_not_sell`.
    #[serde(default = "default_opt_out_attribute")]
    pub opt_out_attribute: String,
    /// Boolean custom attribute set to `true` on a limit of sensitive PI. Default
    /// `hush_limit_sensitive`.
    #[serde(default = "default_limit_attribute")]
    pub limit_attribute: String,
    /// Whether an opt-out of sale/sharing also sets the profile's `email_subscribe` to
    /// `unsubscribed` (no marketing email at all). Default `false`: the opt-out is recorded in
    /// the attribute only, and the business's segments must exclude it.
    #[serde(default)]
    pub unsubscribe_email: bool,
    /// `poll_interval_ms`, the wait between two read-backs, and `max_wait_ms`, the longest wait
    /// inside one call for Braze to show the change; one not shown by then is confirmed with
    /// verification `PENDING` and read back later.
    #[serde(flatten)]
    pub waits: JobWaits,
}

fn default_opt_out_attribute() -> String {
    "hush_do_not_sell".to_owned()
}

fn default_limit_attribute() -> String {
    "hush_limit_sensitive".to_owned()
}

/// The waits of a recipient that sets none.
const DEFAULT_WAITS: DefaultWaits = DefaultWaits {
    poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
    max_wait_ms: DEFAULT_MAX_WAIT_MS,
};

impl Default for BrazeSettings {
    fn default() -> Self {
        Self {
            opt_out_attribute: default_opt_out_attribute(),
            limit_attribute: default_limit_attribute(),
            unsubscribe_email: false,
            waits: JobWaits::default(),
        }
    }
}

/// Everything the Braze connector needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct BrazeConfig {
    /// Recipient id (`connector_id` in confirmations).
    pub recipient_id: String,
    /// The instance's REST endpoint without a trailing slash.
    pub base_url: String,
    /// REST API key with the `users.track`, `users.delete` and `users.export.ids` permissions.
    pub api_key: Secret,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// How long to wait for Braze to show a change, between read-backs and inside one call.
    pub waits: Waits,
    /// Attributes to write.
    pub settings: BrazeSettings,
}

impl BrazeConfig {
    /// Reads and validates a `kind = "braze"` recipient; the API key comes from the environment
    /// variable named by `credentials.api_key`. Errors name the field at fault.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let api_key = Fields::of(recipient).credential("api_key")?;
        Self::with_api_key(recipient, api_key)
    }

    /// Validates the recipient with an API key obtained by the caller.
    pub fn with_api_key(recipient: &RecipientConfig, api_key: Secret) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.kind_is(&[KIND], "Braze")?;
        let settings: BrazeSettings = recipient.settings()?;
        for (field, name) in [
            ("settings.opt_out_attribute", &settings.opt_out_attribute),
            ("settings.limit_attribute", &settings.limit_attribute),
        ] {
            check_attribute_name(&fields, field, name)?;
        }
        if settings.opt_out_attribute == settings.limit_attribute {
            return Err(fields.invalid(
                "settings.limit_attribute",
                "must differ from settings.opt_out_attribute",
            ));
        }
        fields.http_url("base_url", &recipient.base_url)?;
        fields.at_least_one("timeout_ms", recipient.timeout_ms)?;
        let waits = settings.waits.configure(&fields, DEFAULT_WAITS)?;
        fields.not_blank("credentials.api_key", &api_key)?;
        Ok(Self {
            recipient_id: recipient.id.clone(),
            base_url: fields.base_url(),
            api_key,
            timeout: fields.timeout(),
            waits,
            settings,
        })
    }
}

/// A custom attribute name Braze accepts and that does not overwrite a profile field: non-empty,
/// at most 255 characters, not starting with `$` (reserved by Braze), not a standard field.
fn check_attribute_name(fields: &Fields<'_>, field: &str, name: &str) -> Result<(), ConfigError> {
    let refuse = |why: &str| Err(fields.invalid(field, format_args!("`{name}` {why}")));
    if name.trim().is_empty() || name.trim() != name {
        return refuse("must be a non-empty name without surrounding spaces");
    }
    if name.chars().count() > 255 {
        return refuse("is longer than Braze's 255 characters for a custom attribute name");
    }
    if name.starts_with('$') {
        return refuse("starts with `$`, which Braze reserves for its own attributes");
    }
    if PROFILE_FIELDS.contains(&name) {
        return refuse("is a Braze standard profile field, not a custom attribute");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::assert_names_field;

    fn recipient(extra: &str) -> RecipientConfig {
        toml::from_str(&format!(
            "id = \"mail\"\nkind = \"braze\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"https://rest.iad-01.braze.com/\"\n{extra}"
        ))
        .unwrap()
    }

    fn build(extra: &str) -> Result<BrazeConfig, ConfigError> {
        BrazeConfig::with_api_key(&recipient(extra), Secret::new("k"))
    }

    #[test]
    fn defaults_apply_without_a_settings_table() {
        let config = build("").unwrap();
        assert_eq!(config.base_url, DEFAULT_BASE_URL);
        assert_eq!(config.settings, BrazeSettings::default());
        assert_eq!(config.waits.poll_interval, Duration::from_secs(5));
        assert_eq!(config.waits.max_wait, Duration::from_secs(60));
        assert!(!format!("{config:?}").contains("\"k\""));
    }

    #[test]
    fn attribute_names_that_braze_would_misread_are_refused() {
        for (name, why) in [
            ("email_subscribe", "standard profile field"),
            ("$do_not_sell", "reserves"),
            ("", "non-empty"),
        ] {
            let error = build(&format!("[settings]\nopt_out_attribute = \"{name}\""))
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("recipients.mail.settings.opt_out_attribute") && error.contains(why),
                "{error}"
            );
        }
        assert_names_field(
            build("[settings]\nlimit_attribute = \"hush_do_not_sell\""),
            "recipients.mail.settings.limit_attribute",
        );
    }

    #[test]
    fn other_errors_name_the_field() {
        assert_names_field(
            build("[settings]\npoll_interval_ms = 0"),
            "recipients.mail.settings.poll_interval_ms",
        );
        assert_names_field(
            build("[settings]\nlist = \"x\""),
            "recipients.mail.settings",
        );
        assert_names_field(
            BrazeConfig::from_recipient(&recipient("")),
            "credentials.api_key",
        );
        assert_names_field(
            BrazeConfig::with_api_key(&recipient(""), Secret::new(" ")),
            "recipients.mail.credentials.api_key",
        );
        let wrong_kind: RecipientConfig = toml::from_str(
            "id = \"mail\"\nkind = \"hubspot\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"https://x\"\n",
        )
        .unwrap();
        assert_names_field(
            BrazeConfig::with_api_key(&wrong_kind, Secret::new("k")),
            "recipients.mail.kind",
        );
    }
}
