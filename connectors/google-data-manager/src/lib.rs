//! Hush connector for Google Customer Match through the Data Manager API.
//!
//! An opt-out, a limit on sensitive PI or a deletion removes the person (hashed emails and
//! E.164 phone numbers, in Google's normal form) from one Customer Match audience with
//! `audienceMembers:remove`, then reads `requestStatus:retrieve` until `SUCCESS`, `FAILED` or
//! `PARTIAL_SUCCESS`. Google offers no restricted-data-processing mode for Customer Match, so
//! removal is the only suppression there is. This is Google's path for developers not
//! allowlisted for Customer Match in the Google Ads API (April 2026); it needs no developer
//! token. See the crate README for configuration and evidence.

pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verify;

use async_trait::async_trait;
use hush_connector_kit::google::customer_match::{self, Member};
use hush_connector_kit::poll::NamedStatus;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    BatchResult, Completion, Connector, ConnectorError, Evidence, ItemSlot, Operation,
    SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, VerificationStatus};

pub use client::{DataManagerClient, RequestStatus};
pub use config::{GoogleDataManagerConfig, GoogleDataManagerSettings};

use verify::RequestOutcome;

/// The recipient `kind` this connector serves.
pub const KIND: &str = "google_data_manager";

/// Evidence key of the Data Manager request ids (comma-separated) that `verify` reads back.
pub const EVIDENCE_REQUEST: &str = "request_id";
/// Evidence key of the requests' last known statuses (comma-separated, same order).
pub const EVIDENCE_REQUEST_STATUS: &str = "request_status";

/// The Google Data Manager Customer Match connector (role `THIRD_PARTY`).
pub struct GoogleDataManagerConnector {
    client: DataManagerClient,
}

/// One `audienceMembers:remove` request sent, and where it stood when the wait ended.
struct SentRequest {
    id: String,
    outcome: RequestOutcome,
}

impl GoogleDataManagerConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: GoogleDataManagerConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: DataManagerClient::new(config)?,
        })
    }

    /// Sends the members, waits for every request, and fills the slots of the items they
    /// carried.
    async fn remove_members(
        &self,
        members: &[Member],
        action: ConfirmationAction,
        results: &mut [ItemSlot],
    ) -> Result<(), ConnectorError> {
        let config = self.client.config();
        let destination = request::destination(
            &config.operating_account,
            config.login_account.as_ref(),
            &config.audience_id,
        );
        let bodies =
            request::remove_bodies(&destination, members, request::MAX_MEMBERS_PER_REQUEST);
        let mut ids = Vec::with_capacity(bodies.len());
        for (_, body) in &bodies {
            ids.push(self.client.remove(body).await?);
        }
        let mut sent = Vec::with_capacity(ids.len());
        for id in ids {
            let outcome = verify::wait_for_request(&self.client, &id, config.waits).await;
            tracing::info!(
                recipient = %config.recipient_id,
                request_id = %id,
                outcome = ?outcome,
                "Google Data Manager Customer Match removal"
            );
            sent.push(SentRequest { id, outcome });
        }

        let mut items: Vec<usize> = members.iter().map(|m| m.item).collect();
        items.dedup();
        for item in items {
            let carried: Vec<&SentRequest> = bodies
                .iter()
                .zip(&sent)
                .filter(|((range, _), _)| members[range.clone()].iter().any(|m| m.item == item))
                .map(|(_, request)| request)
                .collect();
            let mine: Vec<&Member> = members.iter().filter(|m| m.item == item).collect();
            results[item] = Some(self.item_result(action, members.len(), &mine, &carried));
        }
        Ok(())
    }

    /// One item's outcome from the requests that carried its members: a `FAILED` request is a
    /// permanent error (Google removed nothing of it); otherwise the item is confirmed,
    /// `VERIFIED` when every request succeeded, `FAILED` verification when one was a partial
    /// success, `PENDING` when one was still processing.
    fn item_result(
        &self,
        action: ConfirmationAction,
        batch_members: usize,
        mine: &[&Member],
        carried: &[&SentRequest],
    ) -> Result<Completion, ConnectorError> {
        let mut verification = VerificationStatus::Verified;
        let mut statuses = Vec::new();
        let mut evidence = Evidence::new();
        for request in carried {
            match &request.outcome {
                RequestOutcome::Finished(status) if status.status == "FAILED" => {
                    return Err(ConnectorError::Permanent(format!(
                        "Google Data Manager request {} FAILED ({}); nothing of it was removed",
                        request.id,
                        describe_errors(status)
                    )));
                }
                RequestOutcome::Finished(status) => {
                    let this = status.verification();
                    if this == VerificationStatus::Failed {
                        verification = VerificationStatus::Failed;
                        evidence.insert("error_counts".into(), describe_errors(status));
                    }
                    if let Some(count) = &status.removed_records {
                        evidence.insert("removed_records".into(), count.clone());
                    }
                    statuses.push(status.status.clone());
                }
                RequestOutcome::StillRunning {
                    last_status,
                    last_error,
                } => {
                    if verification == VerificationStatus::Verified {
                        verification = VerificationStatus::Pending;
                    }
                    if let Some(error) = last_error {
                        evidence.insert("last_read_error".into(), error.clone());
                    }
                    statuses.push(
                        last_status
                            .clone()
                            .unwrap_or_else(|| "REQUEST_STATUS_UNKNOWN".into()),
                    );
                }
            }
        }
        let config = self.client.config();
        let ids: Vec<&str> = carried.iter().map(|r| r.id.as_str()).collect();
        evidence.insert(EVIDENCE_REQUEST.into(), ids.join(","));
        evidence.insert(EVIDENCE_REQUEST_STATUS.into(), statuses.join(","));
        evidence.insert(
            "destination".into(),
            format!(
                "{} {} audience {}",
                config.operating_account.account_type,
                config.operating_account.account_id,
                config.audience_id
            ),
        );
        evidence.insert("batch_members".into(), batch_members.to_string());
        evidence.insert("item_members".into(), mine.len().to_string());
        evidence.insert(
            "identifier_sha256".into(),
            customer_match::identifier_digests(mine.iter().copied()),
        );
        Ok(Completion::new(action, evidence).with_verification(verification))
    }
}

/// Why a subject with neither email nor phone is `NOT_FOUND`, not a failure: an audience
/// cannot hold them.
const UNMATCHABLE: &str = "no email or phone: a Customer Match audience matches people only by hashed email or phone number, so no member can be this subject";

/// Google's error counts of a request, or a note that it gave none.
fn describe_errors(status: &RequestStatus) -> String {
    if status.errors.is_empty() {
        "no error counts given".into()
    } else {
        status.errors.join(", ")
    }
}

#[async_trait]
impl Connector for GoogleDataManagerConnector {
    /// Removes every person from the Customer Match audience; the outcome is `SUPPRESSED` or
    /// `DELETED` after the request.
    async fn apply(&self, operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        let send = async |members: &[Member], action, results: &mut [ItemSlot]| {
            self.remove_members(members, action, results).await
        };
        customer_match::remove(batch, operation, request::plan_removals, UNMATCHABLE, send).await
    }

    /// A completion left `PENDING` (request still processing when the wait ran out) is read
    /// back from the requests it names: `VERIFIED` once all succeeded, `FAILED` as soon as one
    /// failed or partly failed, else still `PENDING`. Anything else is already final.
    async fn verify(&self, _work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        if completion.verification != VerificationStatus::Pending {
            return completion.verification;
        }
        let Some(ids) = completion.evidence.get(EVIDENCE_REQUEST) else {
            return VerificationStatus::Pending;
        };
        let mut verification = VerificationStatus::Verified;
        for id in ids.split(',').filter(|id| !id.is_empty()) {
            match verify::read_back(&self.client, id).await {
                VerificationStatus::Verified => {}
                VerificationStatus::Pending => verification = VerificationStatus::Pending,
                other => return other,
            }
        }
        verification
    }
}

hush_contracts::connector_factory!(
    GoogleDataManagerConnector,
    GoogleDataManagerConfig,
    &[KIND],
    request::MAX_BATCH
);
