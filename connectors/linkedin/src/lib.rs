//! Hush connector for LinkedIn DMP segments (role THIRD_PARTY).
//!
//! An opt-out, a limit on sensitive data or a deletion removes the person from the configured
//! streaming user segment with a Rest.li `BATCH_CREATE` of `REMOVE` elements on
//! `POST /rest/dmpSegments/{segment_id}/users`. Removing an absent user succeeds (201), so a
//! repeated call is harmless. LinkedIn offers no member read-back, so every completion is
//! `SUPPRESSED` and `UNVERIFIABLE`. See the crate README for the configuration block.

pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verify;

use async_trait::async_trait;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    apply_except_opt_ins, BatchResult, Completion, Connector, ConnectorError, Evidence,
    ItemResults, Operation, SuppressionWork,
};
use hush_contracts::events::ConfirmationAction;

use crate::client::LinkedInClient;
use crate::config::LinkedInConfig;
use crate::request::{plan_removal, ItemPlan, RemovalPlan, MAX_ELEMENTS_PER_CALL};
use crate::response::{classify_element, ElementStatus};

/// The recipient `kind` this connector serves.
pub const KIND: &str = "linkedin_dmp_segment";

/// Removes people from one LinkedIn DMP user segment.
#[derive(Debug, Clone)]
pub struct LinkedInDmpSegment {
    client: LinkedInClient,
}

impl LinkedInDmpSegment {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: LinkedInConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: LinkedInClient::new(config)?,
        })
    }

    async fn remove(&self, batch: &[SuppressionWork]) -> Result<ItemResults, ConnectorError> {
        let opt_in = not_applicable(
            "an opt-in is not applied to LinkedIn segments: the business's own audience sync \
             adds people back",
        );
        apply_except_opt_ins(batch, opt_in, |works| async move {
            self.execute(&plan_removal(&works)).await
        })
        .await
    }

    async fn execute(&self, plan: &RemovalPlan) -> Result<ItemResults, ConnectorError> {
        let mut results: ItemResults = plan
            .items
            .iter()
            .map(|item| match item {
                ItemPlan::NothingToMatch => Ok(not_found(
                    "no email or mobile advertising id: nothing LinkedIn DMP segments match on",
                )),
                ItemPlan::Unsendable(reason) => Err(ConnectorError::Permanent(reason.clone())),
                ItemPlan::Send { .. } => Err(ConnectorError::Transient(
                    "LinkedIn gave no status for this person".to_owned(),
                )),
            })
            .collect();
        for (index, call) in plan.calls.iter().enumerate() {
            match self.client.remove_users(call).await {
                Ok((http_status, response)) => {
                    for (position, owner) in call.owners.iter().enumerate() {
                        results[*owner] = self.outcome(
                            &plan.items[*owner],
                            http_status,
                            call.body.elements.len(),
                            response.elements.get(position),
                        );
                    }
                }
                Err(error) if index == 0 => return Err(error),
                Err(error) => {
                    for owner in plan.calls[index..].iter().flat_map(|c| &c.owners) {
                        results[*owner] = Err(error.clone());
                    }
                    break;
                }
            }
        }
        Ok(results)
    }

    fn outcome(
        &self,
        item: &ItemPlan,
        http_status: u16,
        elements: usize,
        element: Option<&ElementStatus>,
    ) -> Result<Completion, ConnectorError> {
        let element = element.ok_or_else(|| {
            ConnectorError::Transient(format!(
                "LinkedIn answered fewer element statuses than the {elements} elements sent"
            ))
        })?;
        if let Some(error) = classify_element(element) {
            return Err(error);
        }
        let config = self.client.config();
        let mut evidence = Evidence::new();
        evidence.insert("segment_id".into(), config.segment_id.clone());
        evidence.insert("linkedin_version".into(), config.linkedin_version.clone());
        evidence.insert("http_status".into(), http_status.to_string());
        evidence.insert("elements".into(), elements.to_string());
        evidence.insert("element_status".into(), element.status.to_string());
        if let ItemPlan::Send {
            user_ids,
            maids_without_raw,
        } = item
        {
            evidence.insert("user_ids_sent".into(), user_ids.to_string());
            if *maids_without_raw > 0 {
                evidence.insert("maid_keys_skipped".into(), maids_without_raw.to_string());
            }
        }
        Ok(Completion::new(ConfirmationAction::Suppressed, evidence)
            .with_verification(verify::VERIFICATION))
    }
}

fn not_applicable(reason: &str) -> Completion {
    Completion::not_applicable(reason).with_verification(verify::VERIFICATION)
}

fn not_found(reason: &str) -> Completion {
    Completion::not_found(reason).with_verification(verify::VERIFICATION)
}

#[async_trait]
impl Connector for LinkedInDmpSegment {
    /// Nothing is read back from the vendor (the default `verify`), so no read-back slot of
    /// the rate limit is held.
    fn reads_back(&self) -> bool {
        false
    }

    /// Removes every person from the DMP segment, whatever the operation: removal is the only
    /// suppression LinkedIn offers. A person with no email or mobile advertising id is
    /// `NOT_FOUND` with the reason (no segment can hold them under anything LinkedIn matches
    /// on); an opt-in is `NOT_APPLICABLE`.
    async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        self.remove(batch).await
    }
}

hush_contracts::connector_factory!(
    LinkedInDmpSegment,
    LinkedInConfig,
    &[KIND],
    MAX_ELEMENTS_PER_CALL
);
