//! The HubSpot recipient's configuration: the `[[recipients]]` fields this connector reads, its
//! `settings` block and its private app token, validated at start-up.

use std::time::Duration;

use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use reqwest::Url;
use serde::Deserialize;

/// The connector kind this crate implements (`kind = "hubspot"`).
pub const KIND: &str = "hubspot";

/// The `[recipients.settings]` block of a HubSpot recipient. Both properties must exist in the
/// portal as single checkbox (boolean) contact properties.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSpotSettings {
    /// Contact property set to `"true"` on an opt-out of sale/sharing (and back to `"false"` on
    /// an opt-in). Default `hush_do_not_sell`.
    #[serde(default = "default_opt_out_property")]
    pub opt_out_property: String,
    /// Contact property set to `"true"` on a limit of sensitive PI. Default
    /// `hush_limit_sensitive`.
    #[serde(default = "default_limit_property")]
    pub limit_property: String,
    /// Date version of the CRM API in the path, `/crm/objects/{api_version}/contacts/…`.
    /// Default [`DEFAULT_API_VERSION`].
    #[serde(default = "default_api_version")]
    pub api_version: String,
}

/// The current CRM API date version on 2026-12-01: `2026-09`, released 2026-09-08 (2026-03 was
/// the first generally available one). The legacy `/crm/v3/...` paths lose support in
/// September 2027. Source: HubSpot developer docs, "Versioning" and the 2026-09 changelogs.
pub const DEFAULT_API_VERSION: &str = "2026-09";

fn default_api_version() -> String {
    DEFAULT_API_VERSION.to_owned()
}

fn default_opt_out_property() -> String {
    "hush_do_not_sell".to_owned()
}

fn default_limit_property() -> String {
    "hush_limit_sensitive".to_owned()
}

impl Default for HubSpotSettings {
    fn default() -> Self {
        Self {
            opt_out_property: default_opt_out_property(),
            limit_property: default_limit_property(),
            api_version: default_api_version(),
        }
    }
}

/// Everything the HubSpot connector needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct HubSpotConfig {
    /// Recipient id (`connector_id` in confirmations).
    pub recipient_id: String,
    /// API root, e.g. `https://api.hubapi.com`.
    pub base_url: Url,
    /// Private app access token from `credentials.token`.
    pub token: Secret,
    /// Timeout of one API call (`timeout_ms`).
    pub timeout: Duration,
    /// The contact properties to set.
    pub settings: HubSpotSettings,
}

impl HubSpotConfig {
    /// Reads and validates a `kind = "hubspot"` recipient; errors name the offending field
    /// (`recipients.<id>.<field>`). The token is read from the environment variable named by
    /// `credentials.token`.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.kind_is(&[KIND], "HubSpot")?;
        let settings: HubSpotSettings = recipient.settings()?;
        for (field, name) in [
            ("settings.opt_out_property", &settings.opt_out_property),
            ("settings.limit_property", &settings.limit_property),
        ] {
            if !is_property_name(name) {
                return Err(fields.invalid(
                    field,
                    format_args!(
                        "`{name}` is not a HubSpot internal property name (lowercase letters, \
                         digits and _, starting with a letter)"
                    ),
                ));
            }
        }
        if settings.opt_out_property == settings.limit_property {
            return Err(fields.invalid(
                "settings.limit_property",
                "must differ from settings.opt_out_property",
            ));
        }
        if !is_date_version(&settings.api_version) {
            return Err(fields.invalid(
                "settings.api_version",
                format_args!(
                    "`{}` is not a HubSpot date version: HubSpot releases one each March and \
                     September, written YYYY-03 or YYYY-09 (e.g. {DEFAULT_API_VERSION})",
                    settings.api_version
                ),
            ));
        }
        let base_url = Url::parse(&recipient.base_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| fields.invalid("base_url", "must be an http(s) URL"))?;
        fields.at_least_one("timeout_ms", recipient.timeout_ms)?;
        Ok(Self {
            recipient_id: recipient.id.clone(),
            base_url,
            token: fields.credential("token")?,
            timeout: fields.timeout(),
            settings,
        })
    }
}

/// Whether `version` is a HubSpot date version: `YYYY-03` or `YYYY-09`.
fn is_date_version(version: &str) -> bool {
    version.split_once('-').is_some_and(|(year, month)| {
        year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) && matches!(month, "03" | "09")
    })
}

fn is_property_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::assert_names_field;

    fn recipient(settings: &str) -> RecipientConfig {
        static SET: std::sync::Once = std::sync::Once::new();
        SET.call_once(|| std::env::set_var("HUSH_HUBSPOT_CONFIG_TEST_TOKEN", "pat-na1-test"));
        toml::from_str(&format!(
            "id = \"crm\"\nkind = \"hubspot\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"https://api.hubapi.com\"\ncredentials = {{ token = \"HUSH_HUBSPOT_CONFIG_TEST_TOKEN\" }}\n[settings]\n{settings}"
        ))
        .unwrap()
    }

    #[test]
    fn defaults_name_the_hush_properties() {
        let config = HubSpotConfig::from_recipient(&recipient("")).unwrap();
        assert_eq!(config.settings.opt_out_property, "hush_do_not_sell");
        assert_eq!(config.settings.limit_property, "hush_limit_sensitive");
        assert_eq!(config.token.expose(), "pat-na1-test");
        assert!(!format!("{config:?}").contains("pat-na1-test"));
    }

    #[test]
    fn the_default_api_version_is_the_current_date_version() {
        let config = HubSpotConfig::from_recipient(&recipient("")).unwrap();
        assert_eq!(config.settings.api_version, "2026-09");
        let older = HubSpotConfig::from_recipient(&recipient("api_version = \"2026-03\"\n"));
        assert_eq!(older.unwrap().settings.api_version, "2026-03");
    }

    #[test]
    fn a_legacy_or_malformed_api_version_is_refused_naming_the_field() {
        for version in ["v3", "2026-10", "202609"] {
            assert_names_field(
                HubSpotConfig::from_recipient(&recipient(&format!(
                    "api_version = \"{version}\"\n"
                ))),
                "recipients.crm.settings.api_version",
            );
        }
    }

    #[test]
    fn properties_can_be_renamed() {
        let config = HubSpotConfig::from_recipient(&recipient(
            "opt_out_property = \"ccpa_do_not_sell\"\nlimit_property = \"ccpa_limit_spi\"\n",
        ))
        .unwrap();
        assert_eq!(config.settings.opt_out_property, "ccpa_do_not_sell");
        assert_eq!(config.settings.limit_property, "ccpa_limit_spi");
    }

    #[test]
    fn a_display_label_instead_of_an_internal_name_is_refused_naming_the_field() {
        assert_names_field(
            HubSpotConfig::from_recipient(&recipient("opt_out_property = \"Do Not Sell\"\n")),
            "recipients.crm.settings.opt_out_property",
        );
    }

    #[test]
    fn one_property_for_both_rights_is_refused() {
        assert_names_field(
            HubSpotConfig::from_recipient(&recipient(
                "opt_out_property = \"hush_flag\"\nlimit_property = \"hush_flag\"\n",
            )),
            "recipients.crm.settings.limit_property",
        );
    }

    #[test]
    fn a_missing_token_names_the_credential() {
        let mut r = recipient("");
        r.credentials.clear();
        assert_names_field(HubSpotConfig::from_recipient(&r), "credentials.token");
    }

    #[test]
    fn another_kind_is_refused() {
        let mut r = recipient("");
        r.kind = "webhook".into();
        assert_names_field(HubSpotConfig::from_recipient(&r), "recipients.crm.kind");
    }
}
