//! The catalogue of connector kinds: the one place that maps a recipient's `kind` to the
//! connector crate that speaks that vendor's API.

use std::sync::Arc;

use hush_contracts::connector::Connector;
use hush_contracts::recipients::RecipientConfig;
use hush_runtime::config::ConfigError;

/// Connector kinds this build knows, as written in `[[recipients]] kind`.
pub const KNOWN_KINDS: &[&str] = &[
    "webhook",
    "hubspot",
    "salesforce",
    "meta_custom_audiences",
    "google_ads",
    "linkedin_dmp_segment",
    "segment",
    "clearbit",
    "zoominfo",
];

/// Builds the connector for `recipient`, or says which kinds exist.
pub fn build(recipient: &RecipientConfig) -> Result<Arc<dyn Connector>, ConfigError> {
    Ok(match recipient.kind.as_str() {
        "webhook" => Arc::new(hush_connector_webhook::WebhookConnector::from_recipient(
            recipient,
        )?),
        "hubspot" => Arc::new(hush_connector_hubspot::HubSpotConnector::from_recipient(
            recipient,
        )?),
        "salesforce" => {
            Arc::new(hush_connector_salesforce::SalesforceConnector::from_recipient(recipient)?)
        }
        "meta_custom_audiences" => Arc::new(
            hush_connector_meta::MetaCustomAudiences::from_recipient(recipient)?,
        ),
        "google_ads" => {
            Arc::new(hush_connector_google_ads::GoogleAdsConnector::from_recipient(recipient)?)
        }
        "linkedin_dmp_segment" => Arc::new(
            hush_connector_linkedin::LinkedInDmpSegment::from_recipient(recipient)?,
        ),
        "segment" => Arc::new(hush_connector_segment::SegmentConnector::from_recipient(
            recipient,
        )?),
        "clearbit" | "zoominfo" => {
            Arc::new(hush_connector_enrichment::EnrichmentConnector::from_recipient(recipient)?)
        }
        other => {
            return Err(ConfigError::Invalid(format!(
                "recipients.{}.kind: unknown connector kind `{other}` (known: {})",
                recipient.id,
                KNOWN_KINDS.join(", ")
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_kind_is_refused_with_the_known_ones() {
        let recipient: RecipientConfig = toml::from_str(
            "id = \"x\"\nkind = \"carrier-pigeon\"\nrole = \"THIRD_PARTY\"\nbase_url = \"http://127.0.0.1:1\"\n",
        )
        .unwrap();
        let err = build(&recipient).err().expect("refused").to_string();
        assert!(
            err.contains("carrier-pigeon")
                && err.contains("webhook")
                && err.contains("recipients.x.kind"),
            "{err}"
        );
    }
}
