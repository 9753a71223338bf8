//! The `[[recipients]]` block of a Mailchimp recipient, validated at start-up.

use std::time::Duration;

use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

/// The connector kind this crate implements (`kind = "mailchimp"`).
pub const KIND: &str = "mailchimp";

/// Where `base_url` names the data center to be taken from the API key's suffix.
pub const DATA_CENTER_PLACEHOLDER: &str = "{dc}";

/// The Marketing API root of an account: `https://<dc>.api.mailchimp.com`, the data center
/// (`us21`, say) filled in from the API key's suffix.
pub const DEFAULT_BASE_URL: &str = "https://{dc}.api.mailchimp.com";

/// Host suffix of Mailchimp's Marketing API (`<dc>.api.mailchimp.com`).
const API_HOST_SUFFIX: &str = ".api.mailchimp.com";

/// Tag an opt-out of sale/share puts on the member by default.
pub const DEFAULT_OPT_OUT_TAG: &str = "hush_do_not_sell";

/// Tag a limit on sensitive PI puts on the member by default.
pub const DEFAULT_LIMIT_TAG: &str = "hush_limit_sensitive";

/// Connector-specific `[recipients.settings]` of a Mailchimp recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailchimpSettings {
    /// The audience's list id (Audience → Settings → Audience name and defaults), e.g.
    /// `9e67587f52`. Required.
    pub list_id: String,
    /// Tag an opt-out puts on the member. Default [`DEFAULT_OPT_OUT_TAG`].
    #[serde(default = "default_opt_out_tag")]
    pub opt_out_tag: String,
    /// Tag a limit on sensitive PI puts on the member. Default [`DEFAULT_LIMIT_TAG`].
    #[serde(default = "default_limit_tag")]
    pub limit_tag: String,
    /// Whether a limit on sensitive PI also unsubscribes the member (Mailchimp has no
    /// narrower switch). Default `false`: the member is only tagged.
    #[serde(default)]
    pub unsubscribe_on_limit: bool,
}

fn default_opt_out_tag() -> String {
    DEFAULT_OPT_OUT_TAG.to_owned()
}

fn default_limit_tag() -> String {
    DEFAULT_LIMIT_TAG.to_owned()
}

/// Everything the Mailchimp connector needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct MailchimpConfig {
    /// Recipient id (`connector_id` in confirmations).
    pub recipient_id: String,
    /// API root with its data center filled in, without `/3.0` or a trailing slash.
    pub base_url: String,
    /// Marketing API key (`<32 hex>-<dc>`), sent as the HTTP Basic password.
    pub api_key: Secret,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// List and tags.
    pub settings: MailchimpSettings,
}

impl MailchimpConfig {
    /// Reads and validates a `kind = "mailchimp"` recipient; the key comes from the environment
    /// variable named by `credentials.api_key`. Errors name the field at fault.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let api_key = Fields::of(recipient).credential("api_key")?;
        Self::with_api_key(recipient, api_key)
    }

    /// Validates the recipient with a key obtained by the caller.
    pub fn with_api_key(recipient: &RecipientConfig, api_key: Secret) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.kind_is(&[KIND], "Mailchimp")?;
        let settings: MailchimpSettings = recipient.settings()?;
        fields.not_blank("credentials.api_key", &api_key)?;
        let base_url = resolve_base_url(&fields, &recipient.base_url, api_key.expose())?;
        fields.at_least_one("timeout_ms", recipient.timeout_ms)?;
        let list_id = &settings.list_id;
        if list_id.is_empty() || !list_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(fields.invalid(
                "settings.list_id",
                "must be the audience's list id (letters and digits, e.g. 9e67587f52)",
            ));
        }
        for (field, tag) in [
            ("settings.opt_out_tag", &settings.opt_out_tag),
            ("settings.limit_tag", &settings.limit_tag),
        ] {
            if tag.trim().is_empty() || tag.trim() != tag {
                return Err(fields.invalid(
                    field,
                    "must be a tag name without leading or trailing spaces",
                ));
            }
        }
        Ok(Self {
            recipient_id: recipient.id.clone(),
            base_url,
            api_key,
            timeout: fields.timeout(),
            settings,
        })
    }
}

/// The data center an API key belongs to: the part after its last `-` (`us21` in
/// `…-us21`), when that is letters then digits.
pub fn data_center_of(api_key: &str) -> Option<&str> {
    let (_, suffix) = api_key.trim().rsplit_once('-')?;
    let digits = suffix.trim_start_matches(|c: char| c.is_ascii_lowercase());
    let letters = suffix.len() - digits.len();
    let valid = letters > 0 && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then_some(suffix)
}

/// `base_url` with `{dc}` filled from the key, `/3.0` and trailing slashes dropped; refuses a
/// `{dc}` the key cannot fill and a Mailchimp host of another data center than the key's.
fn resolve_base_url(
    fields: &Fields<'_>,
    base_url: &str,
    api_key: &str,
) -> Result<String, ConfigError> {
    let key_dc = data_center_of(api_key);
    let mut url = base_url.trim().trim_end_matches('/').to_owned();
    if let Some(root) = url.strip_suffix("/3.0") {
        url = root.to_owned();
    }
    if url.contains(DATA_CENTER_PLACEHOLDER) {
        let Some(dc) = key_dc else {
            return Err(fields.invalid(
                "credentials.api_key",
                "has no data-center suffix (such as -us21) to fill base_url's {dc}; set \
                 base_url to https://<dc>.api.mailchimp.com",
            ));
        };
        url = url.replace(DATA_CENTER_PLACEHOLDER, dc);
    }
    fields.http_url("base_url", &url)?;
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or_default())
        .unwrap_or_default();
    if let (Some(url_dc), Some(key_dc)) = (host.strip_suffix(API_HOST_SUFFIX), key_dc) {
        if url_dc != key_dc {
            return Err(fields.invalid(
                "base_url",
                format_args!(
                    "is Mailchimp's `{url_dc}` data center, but the API key belongs to \
                     `{key_dc}`; use https://{key_dc}.api.mailchimp.com or {DEFAULT_BASE_URL}"
                ),
            ));
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::assert_names_field;

    const KEY: &str = "0123456789abcdef0123456789abcdef-us21";

    fn recipient(base_url: &str, settings: &str) -> RecipientConfig {
        toml::from_str(&format!(
            "id = \"mc\"\nkind = \"mailchimp\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"{base_url}\"\n[settings]\n{settings}"
        ))
        .unwrap()
    }

    fn build(base_url: &str, settings: &str, key: &str) -> Result<MailchimpConfig, ConfigError> {
        MailchimpConfig::with_api_key(&recipient(base_url, settings), Secret::new(key))
    }

    #[test]
    fn the_data_center_comes_from_the_key_suffix() {
        let config = build(DEFAULT_BASE_URL, "list_id = \"9e67587f52\"", KEY).unwrap();
        assert_eq!(config.base_url, "https://us21.api.mailchimp.com");
        assert_eq!(config.settings.opt_out_tag, DEFAULT_OPT_OUT_TAG);
        assert_eq!(config.settings.limit_tag, DEFAULT_LIMIT_TAG);
        assert!(!config.settings.unsubscribe_on_limit);
        assert!(!format!("{config:?}").contains("0123456789abcdef"));
        assert_eq!(data_center_of("abc-us6"), Some("us6"));
        assert_eq!(data_center_of("abc"), None);
        assert_eq!(data_center_of("abc-21"), None);
        assert_eq!(data_center_of("abc-us"), None);
    }

    #[test]
    fn an_explicit_base_url_is_used_as_given_without_its_api_version() {
        let config = build(
            "https://us21.api.mailchimp.com/3.0/",
            "list_id = \"9e67587f52\"",
            "keywithoutsuffix",
        )
        .unwrap();
        assert_eq!(config.base_url, "https://us21.api.mailchimp.com");
        let sim = build("http://127.0.0.1:9/", "list_id = \"a1\"", KEY).unwrap();
        assert_eq!(sim.base_url, "http://127.0.0.1:9");
    }

    #[test]
    fn a_data_center_the_key_contradicts_or_cannot_fill_is_refused() {
        let error = build(
            "https://us6.api.mailchimp.com",
            "list_id = \"9e67587f52\"",
            KEY,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("recipients.mc.base_url") && error.contains("belongs to `us21`"),
            "{error}"
        );
        assert_names_field(
            build(DEFAULT_BASE_URL, "list_id = \"9e67587f52\"", "nosuffix"),
            "recipients.mc.credentials.api_key",
        );
    }

    #[test]
    fn other_errors_name_the_field() {
        assert_names_field(
            build(DEFAULT_BASE_URL, "list_id = \"9e67-587f52\"", KEY),
            "recipients.mc.settings.list_id",
        );
        assert_names_field(build(DEFAULT_BASE_URL, "", KEY), "recipients.mc.settings");
        assert_names_field(
            build(
                DEFAULT_BASE_URL,
                "list_id = \"a1\"\nopt_out_tag = \" x\"",
                KEY,
            ),
            "recipients.mc.settings.opt_out_tag",
        );
        assert_names_field(
            build(DEFAULT_BASE_URL, "list_id = \"a1\"\nlimit_tag = \"\"", KEY),
            "recipients.mc.settings.limit_tag",
        );
        assert_names_field(
            build("ftp://x", "list_id = \"a1\"", KEY),
            "recipients.mc.base_url",
        );
        assert_names_field(
            build(DEFAULT_BASE_URL, "list_id = \"a1\"", " "),
            "recipients.mc.credentials.api_key",
        );
        assert_names_field(
            MailchimpConfig::from_recipient(&recipient(DEFAULT_BASE_URL, "list_id = \"a1\"")),
            "credentials.api_key",
        );
    }
}
