//! Hush connector for Google Analytics 4 (analytics, role `SERVICE_PROVIDER`).
//!
//! A deletion becomes one User Deletion API request (`userDeletionRequests:upsert`) per user
//! id, client id or app instance id the request carries, on one GA4 property. Google records
//! the request (`deletionRequestTime`) and deletes asynchronously; it offers no way to read a
//! deletion back, so deletions are confirmed `DELETED` with verification `UNVERIFIABLE`. GA4
//! has no per-user opt-out call either: opt-outs and limits are `NOT_APPLICABLE` here and must
//! be enforced before collection. See the crate README for configuration and evidence.

pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;

use async_trait::async_trait;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    BatchResult, Completion, Connector, ConnectorError, Evidence, Operation, SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};

pub use client::{DeletionReceipt, GoogleAnalyticsClient};
pub use config::{GoogleAnalyticsConfig, GoogleAnalyticsSettings, KIND};

use request::ItemPlan;

/// Evidence key of Google's `deletionRequestTime`s, as `TYPE=time`, comma-separated, in the
/// order the identifiers were sent.
pub const EVIDENCE_DELETION_REQUEST_TIME: &str = "deletion_request_time";

/// The Google Analytics 4 connector.
pub struct GoogleAnalyticsConnector {
    client: GoogleAnalyticsClient,
}

impl GoogleAnalyticsConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: GoogleAnalyticsConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: GoogleAnalyticsClient::new(config)?,
        })
    }

    /// The outcome of one work item.
    async fn apply_one(&self, work: &SuppressionWork) -> Result<Completion, ConnectorError> {
        match work.kind {
            RequestKind::OptOutSaleShare | RequestKind::LimitSensitive => {
                return Ok(Completion::not_applicable(
                    "Google Analytics 4 has no per-user opt-out call: stop sending this person's \
                     events (consent mode, Hush's gate) to honour the opt-out",
                ))
            }
            RequestKind::OptInSaleShare => {
                return Ok(Completion::not_applicable(
                    "Google Analytics 4 has no per-user opt-in call; collection resumes when the \
                     business sends the person's events again",
                ))
            }
            RequestKind::Delete => {}
        }
        let config = self.client.config();
        let deletions = match request::plan_item(work, &config.identifier_types) {
            ItemPlan::Delete(deletions) => deletions,
            ItemPlan::Unmatched(reason) => return Ok(Completion::not_found(reason)),
            ItemPlan::Refused(reason) => return Err(ConnectorError::Permanent(reason)),
        };
        let mut times = Vec::with_capacity(deletions.len());
        for deletion in &deletions {
            let receipt = self.client.upsert(deletion).await?;
            times.push(format!(
                "{}={}",
                deletion.id_type, receipt.deletion_request_time
            ));
        }
        tracing::info!(
            recipient = %config.recipient_id,
            request_id = %work.request_id,
            identifiers = deletions.len(),
            "Google Analytics deletion requested"
        );
        let evidence = Evidence::from([
            ("property_id".to_owned(), config.property_id.clone()),
            (EVIDENCE_DELETION_REQUEST_TIME.to_owned(), times.join(",")),
            (
                "id_types".to_owned(),
                deletions
                    .iter()
                    .map(|d| d.id_type)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "identifier_sha256".to_owned(),
                deletions
                    .iter()
                    .map(|d| d.sha256.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "read_back".to_owned(),
                "none: Google Analytics offers no way to read a deletion request back".to_owned(),
            ),
        ]);
        Ok(Completion::new(ConfirmationAction::Deleted, evidence)
            .with_verification(VerificationStatus::Unverifiable))
    }
}

#[async_trait]
impl Connector for GoogleAnalyticsConnector {
    /// Nothing is read back from the vendor (the default `verify`), so no read-back slot of
    /// the rate limit is held.
    fn reads_back(&self) -> bool {
        false
    }

    /// Deletes each item's identifiers from the property (opt-outs, limits and opt-ins are
    /// `NOT_APPLICABLE`). A call-level failure fails only the item it happened on.
    async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        let mut results = Vec::with_capacity(batch.len());
        for work in batch {
            results.push(self.apply_one(work).await);
        }
        Ok(results)
    }
}

hush_contracts::connector_factory!(
    GoogleAnalyticsConnector,
    GoogleAnalyticsConfig,
    &[KIND],
    request::MAX_BATCH
);
