//! Hush connector for TikTok audiences (role THIRD_PARTY).
//!
//! An opt-out, a limit on sensitive data or a deletion removes the person from the configured
//! TikTok audiences with the Audience Segment API, `POST /open_api/v1.3/segment/mapping/` with
//! `action: "delete"`, by the SHA-256 digests intake already made (email, phone, mobile
//! advertising id). TikTok offers no per-person read-back, so every completion is `SUPPRESSED`
//! and `UNVERIFIABLE`. See the crate README for the configuration block.

#![warn(missing_docs)]

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

pub use client::TikTokClient;
pub use config::{TikTokConfig, TikTokSettings, KIND};

use request::{plan_removal, ItemPlan, RemovalPlan};

/// Most work items one call to the connector carries: one row each at least, so a batch this
/// size fits TikTok's row limit unless people carry several identifiers.
pub const MAX_BATCH: usize = request::MAX_ROWS_PER_CALL;

/// Removes people from the custom audiences of one TikTok ad account.
#[derive(Debug, Clone)]
pub struct TikTokAudiences {
    client: TikTokClient,
}

/// What the calls carrying one item's rows answered.
#[derive(Default)]
struct Outcome {
    error: Option<ConnectorError>,
    request_ids: Vec<String>,
}

impl TikTokAudiences {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: TikTokConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: TikTokClient::new(config)?,
        })
    }

    async fn remove(&self, batch: &[SuppressionWork]) -> Result<ItemResults, ConnectorError> {
        let opt_in = Completion::not_applicable(
            "an opt-in is not applied to TikTok audiences: the business's own audience sync adds \
             people back",
        )
        .with_verification(verify::VERIFICATION);
        apply_except_opt_ins(batch, opt_in, |works| async move {
            let config = self.client.config();
            let plan = plan_removal(&works, &config.advertiser_id, &config.audience_ids);
            Ok(self.execute(&plan).await)
        })
        .await
    }

    /// Makes the plan's calls in order. After a rate limit or a transient failure nothing more
    /// is sent: the rest of the batch waits with the same error rather than pressing on.
    async fn execute(&self, plan: &RemovalPlan) -> ItemResults {
        let mut outcomes: Vec<Outcome> = plan.items.iter().map(|_| Outcome::default()).collect();
        let mut halted: Option<ConnectorError> = None;
        for call in &plan.calls {
            let answer = match &halted {
                Some(error) => Err(error.clone()),
                None => self.client.map(&call.body).await,
            };
            match answer {
                Ok(envelope) => {
                    for owner in &call.owners {
                        let ids = &mut outcomes[*owner].request_ids;
                        if let Some(id) = &envelope.request_id {
                            if !ids.contains(id) {
                                ids.push(id.clone());
                            }
                        }
                    }
                }
                Err(error) => {
                    if error.is_retryable() && halted.is_none() {
                        halted = Some(error.clone());
                    }
                    for owner in &call.owners {
                        outcomes[*owner].error.get_or_insert_with(|| error.clone());
                    }
                }
            }
        }
        plan.results(outcomes, |item, outcome| self.result(item, outcome))
    }

    fn result(&self, item: &ItemPlan, outcome: Outcome) -> Result<Completion, ConnectorError> {
        let rows = match item {
            ItemPlan::NothingToMatch => {
                return Ok(Completion::not_found(
                    "no email, phone or mobile advertising id: nothing TikTok audiences match on",
                )
                .with_verification(verify::VERIFICATION))
            }
            ItemPlan::Unsendable(reason) => return Err(ConnectorError::Permanent(reason.clone())),
            ItemPlan::Send { rows } => *rows,
        };
        if let Some(error) = outcome.error {
            return Err(error);
        }
        let config = self.client.config();
        let mut evidence = Evidence::new();
        evidence.insert("advertiser_id".into(), config.advertiser_id.clone());
        evidence.insert("audience_ids".into(), config.audience_ids.join(","));
        evidence.insert("api_version".into(), "v1.3".into());
        evidence.insert("action".into(), "delete".into());
        evidence.insert("ids_sent".into(), rows.to_string());
        evidence.insert("tiktok_request_ids".into(), outcome.request_ids.join(","));
        evidence.insert("verification_note".into(), verify::REASON.into());
        Ok(Completion::new(ConfirmationAction::Suppressed, evidence)
            .with_verification(verify::VERIFICATION))
    }
}

#[async_trait]
impl Connector for TikTokAudiences {
    /// Nothing is read back from the vendor (the default `verify`), so no read-back slot of
    /// the rate limit is held.
    fn reads_back(&self) -> bool {
        false
    }

    /// Removes every person from the configured audiences, whatever the operation: removal is
    /// the only suppression TikTok audiences offer (`SUPPRESSED`, `UNVERIFIABLE`). An opt-in is
    /// `NOT_APPLICABLE`; a person with no email, phone or MAID is `NOT_FOUND` with the reason
    /// (no audience can hold them under anything TikTok matches on).
    async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        self.remove(batch).await
    }
}

hush_contracts::connector_factory!(TikTokAudiences, TikTokConfig, &[KIND], MAX_BATCH);
