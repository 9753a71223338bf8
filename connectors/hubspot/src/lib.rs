//! The HubSpot connector (a `SERVICE_PROVIDER` CRM): opt-outs and limits set a custom contact
//! property, deletions use HubSpot's GDPR delete, and both are read back. See `README.md` for
//! the configuration block.
//!
//! Contacts are addressed by raw email (`idProperty=email`), so this connector needs intake to
//! keep raw emails (encrypted) for it; a request whose emails arrive hashed only fails
//! permanently with a detail saying so.

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verify;

use async_trait::async_trait;
use hush_connector_kit::outcome::{self, keep_deciding, Halt};
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    BatchResult, Completion, Connector, ConnectorError, Evidence, ItemResults, Operation,
    SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};

pub use client::{ContactRead, ContactWrite, HubSpotClient};
pub use config::{HubSpotConfig, HubSpotSettings};
use request::{
    batch_update_body, contact_emails, plan_calls, property_change, ContactUpdate, BATCH_LIMIT,
};

/// Applies privacy requests to the contacts of one HubSpot portal.
#[derive(Debug, Clone)]
pub struct HubSpotConnector {
    config: HubSpotConfig,
    client: HubSpotClient,
}

/// Per-item account of the contact writes made for it.
#[derive(Default)]
struct Tally {
    applied: usize,
    not_found: usize,
    last_status: u16,
    error: Option<ConnectorError>,
}

impl Tally {
    fn record(&mut self, outcome: Result<ContactWrite, ConnectorError>) {
        match outcome {
            Ok(ContactWrite::Applied(status)) => {
                self.applied += 1;
                self.last_status = status;
            }
            Ok(ContactWrite::NotFound(status)) => {
                self.not_found += 1;
                self.last_status = status;
            }
            // A permanent error on any of the item's contacts decides the item; otherwise the
            // first retryable error does.
            Err(error) => keep_deciding(&mut self.error, error),
        }
    }
}

impl HubSpotConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: HubSpotConfig) -> Result<Self, ConfigError> {
        let client = HubSpotClient::new(&config)?;
        Ok(Self { config, client })
    }

    async fn apply_property_changes(&self, batch: &[SuppressionWork]) -> ItemResults {
        let mut tallies: Vec<Tally> = batch.iter().map(|_| Tally::default()).collect();
        let mut updates = Vec::new();
        for (item, work) in batch.iter().enumerate() {
            let change = match property_change(work.kind, &self.config.settings) {
                Some(change) => change,
                None => {
                    tallies[item].record(Err(ConnectorError::Permanent(format!(
                        "request {} is a {}, which HubSpot applies through delete, not suppress",
                        work.request_id,
                        work.kind.as_str()
                    ))));
                    continue;
                }
            };
            match contact_emails(work) {
                Ok(emails) => updates.extend(emails.into_iter().map(|email| ContactUpdate {
                    item,
                    email,
                    change: change.clone(),
                })),
                Err(error) => tallies[item].record(Err(error)),
            }
        }
        let mut halt = Halt::default();
        for call in plan_calls(updates) {
            if let Some(error) = halt.halted() {
                for update in &call {
                    tallies[update.item].record(Err(error.clone()));
                }
                continue;
            }
            if let [update] = call.as_slice() {
                let outcome = self
                    .client
                    .update_contact(&update.email, &update.change)
                    .await;
                if let Err(error) = &outcome {
                    halt.note(error);
                }
                tallies[update.item].record(outcome);
                continue;
            }
            match self.client.batch_update(&batch_update_body(&call)).await {
                Ok(outcomes) => {
                    for (update, outcome) in call.iter().zip(outcomes) {
                        tallies[update.item].record(outcome);
                    }
                }
                Err(error) => {
                    halt.note(&error);
                    for update in &call {
                        tallies[update.item].record(Err(error.clone()));
                    }
                }
            }
        }
        batch
            .iter()
            .zip(tallies)
            .map(|(work, tally)| {
                self.finish(work, tally, ConfirmationAction::Flagged, "contacts_updated")
            })
            .collect()
    }

    async fn apply_deletions(&self, batch: &[SuppressionWork]) -> ItemResults {
        let mut halt = Halt::default();
        let mut results = Vec::with_capacity(batch.len());
        for work in batch {
            let mut tally = Tally::default();
            if work.kind != RequestKind::Delete {
                tally.record(Err(ConnectorError::Permanent(format!(
                    "request {} is a {}, not a deletion; HubSpot contacts are deleted only for DELETE",
                    work.request_id,
                    work.kind.as_str()
                ))));
            } else {
                match contact_emails(work) {
                    Ok(emails) => {
                        for email in emails {
                            let outcome = match halt.halted() {
                                Some(error) => Err(error.clone()),
                                None => self.client.gdpr_delete(&email).await,
                            };
                            if let Err(error) = &outcome {
                                halt.note(error);
                            }
                            tally.record(outcome);
                        }
                    }
                    Err(error) => tally.record(Err(error)),
                }
            }
            results.push(self.finish(work, tally, ConfirmationAction::Deleted, "contacts_deleted"));
        }
        results
    }

    fn finish(
        &self,
        work: &SuppressionWork,
        tally: Tally,
        done: ConfirmationAction,
        done_key: &str,
    ) -> Result<Completion, ConnectorError> {
        if let Some(error) = tally.error {
            return Err(error);
        }
        let mut evidence = Evidence::new();
        evidence.insert("http_status".into(), tally.last_status.to_string());
        evidence.insert(done_key.into(), tally.applied.to_string());
        evidence.insert("contacts_not_found".into(), tally.not_found.to_string());
        if let Some(change) = property_change(work.kind, &self.config.settings) {
            evidence.insert("property".into(), change.property);
            evidence.insert("value".into(), change.value.into());
        }
        let action = if tally.applied == 0 {
            ConfirmationAction::NotFound
        } else {
            done
        };
        Ok(Completion::new(action, evidence).with_verification(VerificationStatus::Pending))
    }
}

fn has_email(work: &SuppressionWork) -> bool {
    work.identifiers_of(IdentifierType::Email).next().is_some()
}

/// HubSpot holds contacts by email: a request that names no email at all (a cookie-only GPC
/// signal, say) has nothing to act on here. The work items that do name one.
fn with_email(batch: &[SuppressionWork]) -> Vec<SuppressionWork> {
    batch.iter().filter(|w| has_email(w)).cloned().collect()
}

/// Puts the results for the items with an email back in batch order; the others are
/// NOT_FOUND (the subject cannot be a HubSpot contact without an email).
fn in_batch_order(batch: &[SuppressionWork], applied: ItemResults) -> ItemResults {
    let mut applied = applied.into_iter();
    batch
        .iter()
        .map(|work| {
            if has_email(work) {
                applied
                    .next()
                    .unwrap_or_else(|| Err(ConnectorError::Transient("missing result".into())))
            } else {
                Ok(Completion::not_found(
                    "no EMAIL identifier: HubSpot contacts are found by email",
                ))
            }
        })
        .collect()
}

#[async_trait]
impl Connector for HubSpotConnector {
    /// Suppress sets the opt-out (or limit) property to `"true"`, or the opt-out property
    /// back to `"false"` on an opt-in: one `PATCH` when the call holds one contact,
    /// `batch/update` otherwise. Delete GDPR-deletes each contact: `DELETED`, or `NOT_FOUND`
    /// on a 404. An unknown contact is `NOT_FOUND`.
    async fn apply(&self, operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        let with_email = with_email(batch);
        let applied = match operation {
            Operation::Suppress => self.apply_property_changes(&with_email).await,
            Operation::Delete => self.apply_deletions(&with_email).await,
        };
        Ok(in_batch_order(batch, applied))
    }

    /// Reads the item's contacts back (see [`verify::read_back`]).
    async fn verify(&self, work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        outcome::verify_through_batch(self, work, completion).await
    }

    /// HubSpot's `batch/read` takes 100 contacts a call.
    fn verify_batch_limit(&self) -> usize {
        BATCH_LIMIT
    }

    /// Reads the items' contacts back together, 100 per `batch/read` call (see
    /// [`verify::read_back`]).
    async fn verify_batch(
        &self,
        items: &[(&SuppressionWork, &Completion)],
    ) -> Vec<VerificationStatus> {
        verify::read_back(&self.client, &self.config.settings, items).await
    }
}

hush_contracts::connector_factory!(
    HubSpotConnector,
    HubSpotConfig,
    &[config::KIND],
    BATCH_LIMIT
);
