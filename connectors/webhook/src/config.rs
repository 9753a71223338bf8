//! The webhook recipient's configuration: the `[[recipients]]` fields this connector reads, its
//! `settings` block and its signing secret, validated at start-up.

use std::time::Duration;

use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

/// The connector kind this crate implements (`kind = "webhook"`).
pub const KIND: &str = hush_contracts::callback::WEBHOOK_KIND;

/// Shortest signing secret accepted, in bytes (128 bits of an ASCII secret).
pub const MIN_SECRET_LEN: usize = 16;

/// The `[recipients.settings]` block of a webhook recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Path appended to `base_url` for the notice `POST`; starts with `/`. Default `/`.
    #[serde(default = "default_path")]
    pub path: String,
    /// Where the recipient posts its signed [`crate::RecipientCallback`]; sent in every notice.
    /// Without it the notice is the end of the trail (verification `UNVERIFIABLE`).
    #[serde(default)]
    pub callback_url: Option<String>,
}

fn default_path() -> String {
    "/".to_owned()
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            path: default_path(),
            callback_url: None,
        }
    }
}

/// Everything the webhook connector needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Recipient id (`connector_id` in confirmations).
    pub recipient_id: String,
    /// Full URL the notice is posted to: `base_url` + `settings.path`.
    pub endpoint: String,
    /// HMAC-SHA256 key from `credentials.signing_secret`.
    pub signing_secret: Secret,
    /// Callback URL announced to the recipient, if any.
    pub callback_url: Option<String>,
    /// Timeout of one notice call (`timeout_ms`).
    pub timeout: Duration,
}

impl WebhookConfig {
    /// Reads and validates a `kind = "webhook"` recipient; errors name the offending field
    /// (`recipients.<id>.<field>`). The signing secret is read from the environment variable
    /// named by `credentials.signing_secret`.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.kind_is(&[KIND], "webhook")?;
        let at = |field: &str| fields.name(field);
        let settings: WebhookSettings = recipient.settings()?;
        settings.validate(&at)?;
        let base = recipient.base_url.trim_end_matches('/');
        if !is_http_url(base) {
            return Err(fields.invalid("base_url", "must be an http(s) URL"));
        }
        fields.at_least_one("timeout_ms", recipient.timeout_ms)?;
        let signing_secret = fields.credential("signing_secret")?;
        if signing_secret.expose().len() < MIN_SECRET_LEN {
            return Err(fields.invalid(
                "credentials.signing_secret",
                format!("must name a secret of at least {MIN_SECRET_LEN} bytes"),
            ));
        }
        Ok(Self {
            recipient_id: recipient.id.clone(),
            endpoint: format!("{base}{}", settings.path),
            signing_secret,
            callback_url: settings.callback_url,
            timeout: fields.timeout(),
        })
    }
}

impl WebhookSettings {
    fn validate(&self, at: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        if !self.path.starts_with('/') {
            return Err(ConfigError::Invalid(format!(
                "{} must start with `/`",
                at("settings.path")
            )));
        }
        if self.path.contains(['?', '#']) {
            return Err(ConfigError::Invalid(format!(
                "{} must be a plain path without query or fragment",
                at("settings.path")
            )));
        }
        if let Some(url) = &self.callback_url {
            if !is_http_url(url) {
                return Err(ConfigError::Invalid(format!(
                    "{} must be an http(s) URL",
                    at("settings.callback_url")
                )));
            }
        }
        Ok(())
    }
}

fn is_http_url(url: &str) -> bool {
    ["http://", "https://"]
        .iter()
        .any(|scheme| url.len() > scheme.len() && url.starts_with(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::assert_names_field;

    fn recipient(extra: &str) -> RecipientConfig {
        toml::from_str(&format!(
            "id = \"partner\"\nkind = \"webhook\"\nrole = \"THIRD_PARTY\"\nbase_url = \"https://hooks.example.com/\"\ncredentials = {{ signing_secret = \"HUSH_WEBHOOK_CONFIG_TEST_SECRET\" }}\n{extra}"
        ))
        .unwrap()
    }

    fn with_secret() {
        static SET: std::sync::Once = std::sync::Once::new();
        SET.call_once(|| {
            std::env::set_var("HUSH_WEBHOOK_CONFIG_TEST_SECRET", "0123456789abcdef-secret")
        });
    }

    #[test]
    fn defaults_post_to_the_base_url_root_without_callback() {
        with_secret();
        let config = WebhookConfig::from_recipient(&recipient("")).unwrap();
        assert_eq!(config.endpoint, "https://hooks.example.com/");
        assert_eq!(config.callback_url, None);
        assert_eq!(config.timeout, Duration::from_millis(10_000));
    }

    #[test]
    fn path_and_callback_come_from_settings() {
        with_secret();
        let config = WebhookConfig::from_recipient(&recipient(
            "[settings]\npath = \"/privacy/notices\"\ncallback_url = \"https://privacy.example.com/v1/callbacks/partner\"\n",
        ))
        .unwrap();
        assert_eq!(config.endpoint, "https://hooks.example.com/privacy/notices");
        assert_eq!(
            config.callback_url.as_deref(),
            Some("https://privacy.example.com/v1/callbacks/partner")
        );
    }

    #[test]
    fn a_relative_path_is_refused_naming_the_field() {
        with_secret();
        assert_names_field(
            WebhookConfig::from_recipient(&recipient("[settings]\npath = \"notices\"\n")),
            "recipients.partner.settings.path",
        );
    }

    #[test]
    fn a_non_http_callback_is_refused_naming_the_field() {
        with_secret();
        assert_names_field(
            WebhookConfig::from_recipient(&recipient(
                "[settings]\ncallback_url = \"mailto:privacy@example.com\"\n",
            )),
            "recipients.partner.settings.callback_url",
        );
    }

    #[test]
    fn unknown_settings_are_refused() {
        with_secret();
        assert_names_field(
            WebhookConfig::from_recipient(&recipient("[settings]\npaht = \"/x\"\n")),
            "paht",
        );
    }

    #[test]
    fn another_kind_is_refused() {
        with_secret();
        let mut r = recipient("");
        r.kind = "hubspot".into();
        assert_names_field(WebhookConfig::from_recipient(&r), "recipients.partner.kind");
    }

    #[test]
    fn a_missing_secret_names_the_variable() {
        let mut r = recipient("");
        r.credentials.insert(
            "signing_secret".into(),
            hush_contracts::config::SecretRef("HUSH_WEBHOOK_CONFIG_TEST_UNSET".into()),
        );
        assert_names_field(
            WebhookConfig::from_recipient(&r),
            "HUSH_WEBHOOK_CONFIG_TEST_UNSET",
        );
    }

    #[test]
    fn the_secret_is_redacted_in_debug_output() {
        with_secret();
        let config = WebhookConfig::from_recipient(&recipient("")).unwrap();
        assert!(!format!("{config:?}").contains("0123456789abcdef"));
    }
}
