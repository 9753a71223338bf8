//! The `[[recipients]]` block of a The Trade Desk recipient, validated at start-up.

use std::collections::BTreeMap;
use std::time::Duration;

use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::events::IdentifierType;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

use crate::request::TtdIdType;

/// The connector kind this crate implements (`kind = "the_trade_desk"`).
pub const KIND: &str = "the_trade_desk";

/// The Trade Desk's API host for the deletion/opt-out call; the connector appends
/// `/data/deletion-optout/advertiser`.
pub const DEFAULT_BASE_URL: &str = "https://api.thetradedesk.com/v3";

/// Wait after a 429 that carries no `Retry-After`, in seconds.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 60;

/// Connector-specific `[recipients.settings]` of a The Trade Desk recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradeDeskSettings {
    /// The advertiser whose data is deleted or opted out (TTD's advertiser id, e.g. `qxwcdxw`).
    pub advertiser_id: String,
    /// The data provider id the advertiser's data came through, when TTD asks for one.
    #[serde(default)]
    pub data_provider_id: Option<String>,
    /// Which Hush identifier kind carries which TTD id type, e.g.
    /// `{ MAID = "DAID", COOKIE_ID = "TDID", DEVICE_ID = "UID2" }`. Default `{ MAID = "DAID" }`.
    /// Email and phone cannot be mapped: TTD takes them only as a UID2/EUID, which the UID2
    /// service derives, so a UID2 must arrive through identity resolution under another kind.
    #[serde(default = "default_id_map")]
    pub id_map: BTreeMap<String, String>,
    /// Wait, in seconds, after a 429 without `Retry-After`.
    #[serde(default = "default_retry_after_secs")]
    pub rate_limit_retry_after_secs: u64,
}

fn default_id_map() -> BTreeMap<String, String> {
    BTreeMap::from([("MAID".to_owned(), "DAID".to_owned())])
}

fn default_retry_after_secs() -> u64 {
    DEFAULT_RETRY_AFTER_SECS
}

/// Everything the connector needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct TradeDeskConfig {
    /// Recipient id (`connector_id` in confirmations).
    pub recipient_id: String,
    /// API base URL without a trailing slash.
    pub base_url: String,
    /// Advertiser id.
    pub advertiser_id: String,
    /// Data provider id, when configured.
    pub data_provider_id: Option<String>,
    /// Hush identifier kind (its schema symbol, e.g. `MAID`) → TTD id type.
    pub id_map: BTreeMap<&'static str, TtdIdType>,
    /// API token, sent as `TTD-Auth`.
    pub auth_token: Secret,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// Wait after a 429 without `Retry-After`.
    pub default_retry_after: Duration,
}

impl TradeDeskConfig {
    /// Reads and validates a `kind = "the_trade_desk"` recipient; the token comes from the
    /// environment variable named by `credentials.auth_token`. Errors name the field at fault.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let token = Fields::of(recipient).credential("auth_token")?;
        Self::with_auth_token(recipient, token)
    }

    /// Validates the recipient with a token obtained by the caller.
    pub fn with_auth_token(
        recipient: &RecipientConfig,
        auth_token: Secret,
    ) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.kind_is(&[KIND], "The Trade Desk")?;
        let settings: TradeDeskSettings = recipient.settings()?;
        if settings.advertiser_id.is_empty()
            || !settings
                .advertiser_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        {
            return Err(fields.invalid(
                "settings.advertiser_id",
                "must be a TTD advertiser id (letters and digits)",
            ));
        }
        if let Some(provider) = &settings.data_provider_id {
            if provider.trim().is_empty() || provider.trim() != provider {
                return Err(fields.invalid(
                    "settings.data_provider_id",
                    "must be a non-empty id without surrounding spaces, or left out",
                ));
            }
        }
        let id_map = id_map(&fields, &settings.id_map)?;
        fields.http_url("base_url", &recipient.base_url)?;
        fields.at_least_one("timeout_ms", recipient.timeout_ms)?;
        let default_retry_after = fields.at_least_one_second(
            "settings.rate_limit_retry_after_secs",
            settings.rate_limit_retry_after_secs,
        )?;
        fields.not_blank("credentials.auth_token", &auth_token)?;
        Ok(Self {
            recipient_id: recipient.id.clone(),
            base_url: fields.base_url(),
            advertiser_id: settings.advertiser_id,
            data_provider_id: settings.data_provider_id,
            id_map,
            auth_token,
            timeout: fields.timeout(),
            default_retry_after,
        })
    }
}

fn id_map(
    fields: &Fields<'_>,
    configured: &BTreeMap<String, String>,
) -> Result<BTreeMap<&'static str, TtdIdType>, ConfigError> {
    const FIELD: &str = "settings.id_map";
    if configured.is_empty() {
        return Err(fields.invalid(
            FIELD,
            "must map at least one identifier kind to a TTD id type",
        ));
    }
    let mut map = BTreeMap::new();
    for (kind, id_type) in configured {
        let kind = match kind.as_str() {
            "MAID" => IdentifierType::Maid,
            "DEVICE_ID" => IdentifierType::DeviceId,
            "COOKIE_ID" => IdentifierType::CookieId,
            "CUSTOMER_ID" => IdentifierType::CustomerId,
            "EMAIL" | "PHONE" => {
                return Err(fields.invalid(
                    FIELD,
                    format_args!(
                        "cannot map {kind}: The Trade Desk takes emails and phones only as a UID2 \
                         or EUID, which the UID2 service derives and Hush does not; have an \
                         identity resolver add the person's UID2 under another kind (e.g. \
                         DEVICE_ID) and map that kind to UID2"
                    ),
                ))
            }
            other => {
                return Err(fields.invalid(
                    FIELD,
                    format_args!(
                        "key `{other}` is not an identifier kind (MAID, DEVICE_ID, COOKIE_ID, \
                         CUSTOMER_ID)"
                    ),
                ))
            }
        };
        let Some(ttd) = TtdIdType::parse(id_type) else {
            return Err(fields.invalid(
                FIELD,
                format_args!(
                    "{kind:?} maps to `{id_type}`, which is not a TTD id type ({})",
                    TtdIdType::ALL.map(TtdIdType::as_str).join(", ")
                ),
            ));
        };
        map.insert(kind.as_str(), ttd);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::{assert_names_field, recipient_with};

    /// The block each test starts from; `build` adds or replaces keys of its `[settings]`.
    const BLOCK: &str = "id = \"ttd\"\nkind = \"the_trade_desk\"\nrole = \"THIRD_PARTY\"\nbase_url = \"https://api.thetradedesk.com/v3/\"\n[settings]\nadvertiser_id = \"qxwcdxw\"\n";

    fn build(settings: &str) -> Result<TradeDeskConfig, ConfigError> {
        TradeDeskConfig::with_auth_token(
            &recipient_with(BLOCK, settings),
            Secret::new("ttd-secret"),
        )
    }

    #[test]
    fn defaults_map_maids_to_daid_and_hide_the_token() {
        let config = build("").unwrap();
        assert_eq!(config.base_url, DEFAULT_BASE_URL);
        assert_eq!(config.id_map, BTreeMap::from([("MAID", TtdIdType::Daid)]));
        assert_eq!(config.data_provider_id, None);
        assert!(!format!("{config:?}").contains("ttd-secret"));
    }

    #[test]
    fn a_resolved_uid2_and_a_tdid_can_be_mapped() {
        let config =
            build("id_map = { DEVICE_ID = \"UID2\", COOKIE_ID = \"TDID\", MAID = \"DAID\" }")
                .unwrap();
        assert_eq!(config.id_map["DEVICE_ID"], TtdIdType::Uid2);
        assert_eq!(config.id_map["COOKIE_ID"], TtdIdType::Tdid);
    }

    #[test]
    fn an_email_cannot_stand_in_for_a_uid2() {
        let error = build("id_map = { EMAIL = \"UID2\" }")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("recipients.ttd.settings.id_map") && error.contains("UID2 service"),
            "{error}"
        );
    }

    #[test]
    fn errors_name_the_field_at_fault() {
        for (settings, field) in [
            ("id_map = { MAID = \"IDFA\" }", "settings.id_map"),
            ("id_map = { SSN = \"TDID\" }", "settings.id_map"),
            ("id_map = {}", "settings.id_map"),
            ("data_provider_id = \" \"", "settings.data_provider_id"),
            (
                "rate_limit_retry_after_secs = 0",
                "settings.rate_limit_retry_after_secs",
            ),
            ("segment = \"x\"", "settings"),
            ("advertiser_id = \"a b\"", "settings.advertiser_id"),
        ] {
            assert_names_field(build(settings), &format!("recipients.ttd.{field}"));
        }
        assert_names_field(
            TradeDeskConfig::with_auth_token(&recipient_with(BLOCK, ""), Secret::new("")),
            "recipients.ttd.credentials.auth_token",
        );
        assert_names_field(
            TradeDeskConfig::from_recipient(&recipient_with(BLOCK, "")),
            "credentials.auth_token",
        );
    }
}
