//! Read-back: after a write, read each contact again and check that HubSpot holds what the
//! request demands.

use hush_contracts::connector::{Completion, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};

use crate::client::{ContactRead, HubSpotClient};
use crate::config::HubSpotSettings;
use crate::request::{contact_emails, property_change, ID_PROPERTY};

/// What one contact's read-back showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// HubSpot holds what the request demands.
    Holds,
    /// HubSpot contradicts it.
    Contradicted,
    /// Nothing to check (a flagged contact no longer exists).
    Nothing,
    /// The read failed; try again later.
    Unknown,
}

/// Reads the outcome back:
/// - an opt-out, opt-in or limit (`FLAGGED` or `NOT_FOUND`): each contact's property must hold
///   the written value; a contact that does not exist cannot be sold from HubSpot and counts
///   for neither side (`NOT_FOUND` stays verified while the contact is still absent);
/// - a deletion (`DELETED` or `NOT_FOUND`): each contact must be gone (404).
///
/// `FAILED` when any contact contradicts the request, `PENDING` when a read failed,
/// `UNVERIFIABLE` when no contact was left to check, else `VERIFIED`. Other outcomes, and work
/// without raw emails, keep the completion's status.
pub async fn read_back(
    client: &HubSpotClient,
    settings: &HubSpotSettings,
    work: &SuppressionWork,
    completion: &Completion,
) -> VerificationStatus {
    let Ok(emails) = contact_emails(work) else {
        return completion.verification;
    };
    let action = completion.action;
    let mut checks = Vec::with_capacity(emails.len());
    if work.kind == RequestKind::Delete {
        if !matches!(
            action,
            ConfirmationAction::Deleted | ConfirmationAction::NotFound
        ) {
            return completion.verification;
        }
        for email in &emails {
            checks.push(match client.read_property(email, ID_PROPERTY).await {
                Ok(ContactRead::Missing) => Check::Holds,
                Ok(ContactRead::Found(_)) => Check::Contradicted,
                Err(_) => Check::Unknown,
            });
        }
    } else {
        let Some(change) = property_change(work.kind, settings) else {
            return completion.verification;
        };
        if !matches!(
            action,
            ConfirmationAction::Flagged | ConfirmationAction::NotFound
        ) {
            return completion.verification;
        }
        for email in &emails {
            checks.push(match client.read_property(email, &change.property).await {
                Ok(ContactRead::Found(Some(value))) if value == change.value => Check::Holds,
                Ok(ContactRead::Found(_)) => Check::Contradicted,
                Ok(ContactRead::Missing) if action == ConfirmationAction::NotFound => Check::Holds,
                Ok(ContactRead::Missing) => Check::Nothing,
                Err(_) => Check::Unknown,
            });
        }
    }
    combine(&checks)
}

fn combine(checks: &[Check]) -> VerificationStatus {
    if checks.contains(&Check::Contradicted) {
        VerificationStatus::Failed
    } else if checks.contains(&Check::Unknown) {
        VerificationStatus::Pending
    } else if checks.contains(&Check::Holds) {
        VerificationStatus::Verified
    } else {
        VerificationStatus::Unverifiable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contradiction_outweighs_everything() {
        assert_eq!(
            combine(&[Check::Holds, Check::Unknown, Check::Contradicted]),
            VerificationStatus::Failed
        );
    }

    #[test]
    fn an_unread_contact_keeps_it_pending() {
        assert_eq!(
            combine(&[Check::Holds, Check::Unknown]),
            VerificationStatus::Pending
        );
    }

    #[test]
    fn vanished_contacts_do_not_block_verification() {
        assert_eq!(
            combine(&[Check::Holds, Check::Nothing]),
            VerificationStatus::Verified
        );
        assert_eq!(combine(&[Check::Nothing]), VerificationStatus::Unverifiable);
    }
}
