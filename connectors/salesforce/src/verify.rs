//! Read-back: the `Individual` flags the connector wrote are read again, and after a deletion
//! the Contacts and Leads are searched for again by email.

use hush_contracts::connector::{Completion, ConnectorError, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};

use crate::client::SalesforceClient;
use crate::request::{emails_of, individual_fields, PERSON_OBJECTS};

/// Evidence key listing the `Individual` ids a completion wrote (comma separated).
pub const EVIDENCE_INDIVIDUAL_IDS: &str = "individual_ids";

/// Reads an outcome back from Salesforce.
///
/// - FLAGGED: every `Individual` in the evidence holds the values the request
///   kind writes (see [`individual_fields`]) → VERIFIED, otherwise FAILED.
/// - DELETED: as above for `ShouldForget` (an `Individual` deleted since counts as forgotten),
///   and no Contact or Lead holds any of the subject's emails → VERIFIED, otherwise FAILED.
/// - any other action: the completion's own status.
///
/// A read that fails (timeout, 5xx, rate limit) answers PENDING: nothing is known yet.
pub async fn verify(
    client: &SalesforceClient,
    work: &SuppressionWork,
    completion: &Completion,
) -> VerificationStatus {
    if !matches!(
        completion.action,
        ConfirmationAction::Flagged | ConfirmationAction::Deleted
    ) {
        return completion.verification;
    }
    match read_back(client, work, completion).await {
        Ok(true) => VerificationStatus::Verified,
        Ok(false) => VerificationStatus::Failed,
        Err(error) => {
            tracing::info!(
                request_id = %work.request_id,
                %error,
                "Salesforce read-back did not complete; verification stays pending"
            );
            VerificationStatus::Pending
        }
    }
}

async fn read_back(
    client: &SalesforceClient,
    work: &SuppressionWork,
    completion: &Completion,
) -> Result<bool, ConnectorError> {
    let (expected, _) = individual_fields(work.kind, &client.config().settings);
    let ids = completion
        .evidence
        .get(EVIDENCE_INDIVIDUAL_IDS)
        .map(String::as_str)
        .unwrap_or_default()
        .split(',')
        .filter(|id| !id.is_empty())
        .collect::<Vec<_>>();
    if ids.is_empty() && completion.action != ConfirmationAction::Deleted {
        // Nothing to read back: a flag outcome without the records it wrote proves nothing.
        return Ok(false);
    }
    for id in ids {
        match client.read_individual(id).await? {
            Some(state) if state.matches(&expected) => {}
            None if work.kind == RequestKind::Delete => {}
            _ => return Ok(false),
        }
    }
    if completion.action == ConfirmationAction::Deleted {
        let emails = emails_of(work)?;
        if !emails.is_empty() {
            for object in PERSON_OBJECTS {
                let found = client.people_by_email(object, &emails).await?;
                if found.values().any(|records| !records.is_empty()) {
                    return Ok(false);
                }
            }
        }
    }
    Ok(true)
}
