//! The registry of connector kinds: the one list that maps a recipient's `kind` to the connector
//! crate that speaks that vendor's API. Adding a connector is one crate and one line in
//! [`FACTORIES`].

use std::sync::Arc;

use hush_contracts::config::ConfigError;
use hush_contracts::connector::{Connector, ConnectorFactory};
use hush_contracts::recipients::RecipientConfig;

/// Every connector this build knows.
pub static FACTORIES: &[&ConnectorFactory] = &[
    &hush_connector_webhook::FACTORY,
    &hush_connector_hubspot::FACTORY,
    &hush_connector_salesforce::FACTORY,
    &hush_connector_meta::FACTORY,
    &hush_connector_google_data_manager::FACTORY,
    &hush_connector_google_ads::FACTORY,
    &hush_connector_linkedin::FACTORY,
    &hush_connector_segment::FACTORY,
    &hush_connector_enrichment::FACTORY,
    &hush_connector_google_analytics::FACTORY,
    &hush_connector_amplitude::FACTORY,
    &hush_connector_mixpanel::FACTORY,
    &hush_connector_braze::FACTORY,
    &hush_connector_klaviyo::FACTORY,
    &hush_connector_postgres::FACTORY,
    &hush_connector_mailchimp::FACTORY,
    &hush_connector_snowflake::FACTORY,
    &hush_connector_bigquery::FACTORY,
    &hush_connector_tiktok::FACTORY,
    &hush_connector_the_trade_desk::FACTORY,
];

/// Every `kind` value this build knows, in registry order.
pub fn known_kinds() -> impl Iterator<Item = &'static str> {
    FACTORIES
        .iter()
        .flat_map(|factory| factory.kinds.iter().copied())
}

/// The factory serving `kind`, or an error naming the recipient's field and the known kinds.
pub fn factory_for(recipient: &RecipientConfig) -> Result<&'static ConnectorFactory, ConfigError> {
    FACTORIES
        .iter()
        .copied()
        .find(|factory| factory.serves(&recipient.kind))
        .ok_or_else(|| {
            ConfigError::Invalid(format!(
                "recipients.{}.kind: unknown connector kind `{}` (known: {})",
                recipient.id,
                recipient.kind,
                known_kinds().collect::<Vec<_>>().join(", ")
            ))
        })
}

/// Checks `recipient`'s kind, settings and credentials; the error names the field at fault.
pub fn validate(recipient: &RecipientConfig) -> Result<(), ConfigError> {
    (factory_for(recipient)?.validate)(recipient)
}

/// Builds the connector for `recipient`.
pub fn build(recipient: &RecipientConfig) -> Result<Arc<dyn Connector>, ConfigError> {
    (factory_for(recipient)?.build)(recipient)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient(kind: &str) -> RecipientConfig {
        toml::from_str(&format!(
            "id = \"x\"\nkind = \"{kind}\"\nrole = \"THIRD_PARTY\"\nbase_url = \"http://127.0.0.1:1\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn an_unknown_kind_is_refused_with_the_known_ones() {
        let err = build(&recipient("carrier-pigeon"))
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("carrier-pigeon")
                && err.contains("webhook")
                && err.contains("zoominfo")
                && err.contains("recipients.x.kind"),
            "{err}"
        );
    }

    #[test]
    fn no_kind_is_served_twice() {
        let mut kinds: Vec<&str> = known_kinds().collect();
        let count = kinds.len();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), count, "{kinds:?}");
        assert!(
            FACTORIES.iter().all(|factory| !factory.kinds.is_empty()),
            "every factory serves a kind"
        );
    }

    #[test]
    fn validation_reaches_the_connector_and_names_its_field() {
        let err = validate(&recipient("meta_custom_audiences"))
            .expect_err("a Meta recipient needs an audience_id")
            .to_string();
        assert!(err.contains("audience_id"), "{err}");
    }
}
