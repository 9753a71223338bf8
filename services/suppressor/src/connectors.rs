//! The catalogue of connector kinds: the one place that maps a recipient's `kind` to the
//! connector crate that speaks that vendor's API.

use std::sync::Arc;

use hush_core::config::ConfigError;
use hush_core::connector::Connector;
use hush_core::recipients::RecipientConfig;

/// Connector kinds this build knows.
pub const KNOWN_KINDS: &[&str] = &["webhook"];

/// Builds the connector for `recipient`, or says which kinds exist.
pub fn build(recipient: &RecipientConfig) -> Result<Arc<dyn Connector>, ConfigError> {
    Ok(match recipient.kind.as_str() {
        "webhook" => Arc::new(hush_connector_webhook::WebhookConnector::from_recipient(
            recipient,
        )?),
        other => {
            return Err(ConfigError::Invalid(format!(
                "recipients.{}.kind: unknown connector kind `{other}` (known: {})",
                recipient.id,
                KNOWN_KINDS.join(", ")
            )))
        }
    })
}
