//! Read-back: after a write, read the contacts again, up to 100 per `batch/read` call, and check
//! that HubSpot holds what each request demands.

use std::collections::BTreeSet;

use hush_contracts::connector::{Completion, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};

use crate::client::{ContactRead, HubSpotClient};
use crate::config::HubSpotSettings;
use crate::request::{contact_emails, property_change};

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

/// What an item's read-back looks for.
enum Expect {
    /// Every contact gone (a deletion).
    Gone,
    /// Every contact's `property` holding `value`; `absent_holds` when a missing contact
    /// confirms the outcome (`NOT_FOUND`).
    Value {
        property: String,
        value: &'static str,
        absent_holds: bool,
    },
}

/// Reads the outcomes of `items` back, with as few `batch/read` calls as their emails allow:
/// - an opt-out, opt-in or limit (`FLAGGED` or `NOT_FOUND`): each contact's property must hold
///   the written value; a contact that does not exist cannot be sold from HubSpot and counts
///   for neither side (`NOT_FOUND` stays verified while the contact is still absent);
/// - a deletion (`DELETED` or `NOT_FOUND`): each contact must be gone.
///
/// Per item: `FAILED` when any contact contradicts the request, `PENDING` when a read failed,
/// `UNVERIFIABLE` when no contact was left to check, else `VERIFIED`. Other outcomes, and work
/// without raw emails, keep the completion's status. One status per item, in order.
pub async fn read_back(
    client: &HubSpotClient,
    settings: &HubSpotSettings,
    items: &[(&SuppressionWork, &Completion)],
) -> Vec<VerificationStatus> {
    let plans: Vec<Option<(Expect, Vec<String>)>> = items
        .iter()
        .map(|(work, completion)| plan(settings, work, completion))
        .collect();
    let mut properties = BTreeSet::new();
    let mut emails = BTreeSet::new();
    for (expect, item_emails) in plans.iter().flatten() {
        if let Expect::Value { property, .. } = expect {
            properties.insert(property.as_str());
        }
        emails.extend(item_emails.iter().map(String::as_str));
    }
    let emails: Vec<&str> = emails.into_iter().collect();
    let reads = if emails.is_empty() {
        Default::default()
    } else {
        client.batch_read(&emails, &properties).await
    };
    items
        .iter()
        .zip(&plans)
        .map(|((_, completion), plan)| match plan {
            None => completion.verification,
            Some((expect, item_emails)) => combine(
                &item_emails
                    .iter()
                    .map(|email| check(expect, reads.get(email).unwrap_or(&ContactRead::Unknown)))
                    .collect::<Vec<_>>(),
            ),
        })
        .collect()
}

/// What to read back for one item, or `None` when its completion's status stands.
fn plan(
    settings: &HubSpotSettings,
    work: &SuppressionWork,
    completion: &Completion,
) -> Option<(Expect, Vec<String>)> {
    let emails = contact_emails(work).ok()?;
    let action = completion.action;
    let expect = if work.kind == RequestKind::Delete {
        matches!(
            action,
            ConfirmationAction::Deleted | ConfirmationAction::NotFound
        )
        .then_some(Expect::Gone)?
    } else {
        let change = property_change(work.kind, settings)?;
        if !matches!(
            action,
            ConfirmationAction::Flagged | ConfirmationAction::NotFound
        ) {
            return None;
        }
        Expect::Value {
            property: change.property,
            value: change.value,
            absent_holds: action == ConfirmationAction::NotFound,
        }
    };
    Some((expect, emails))
}

fn check(expect: &Expect, read: &ContactRead) -> Check {
    match (expect, read) {
        (_, ContactRead::Unknown) => Check::Unknown,
        (Expect::Gone, ContactRead::Missing) => Check::Holds,
        (Expect::Gone, ContactRead::Found(_)) => Check::Contradicted,
        (Expect::Value { absent_holds, .. }, ContactRead::Missing) => {
            if *absent_holds {
                Check::Holds
            } else {
                Check::Nothing
            }
        }
        (
            Expect::Value {
                property, value, ..
            },
            ContactRead::Found(properties),
        ) => match properties.get(property) {
            Some(Some(held)) if held == value => Check::Holds,
            _ => Check::Contradicted,
        },
    }
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
